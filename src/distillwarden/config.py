"""Installation configuration: one YAML file, embedded defaults when there is none.

Every part reads its settings from :class:`Settings`; nothing reads environment variables
behind the caller's back except :func:`load_settings`, which documents the ones it honours.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ConfigError",
    "LimitSettings",
    "ModelRoute",
    "Settings",
    "UpstreamSettings",
    "load_settings",
]


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpstreamSettings(_Strict):
    """An OpenAI-compatible upstream server (vLLM, Ollama, OpenAI, the local model...)."""

    name: str
    base_url: str = Field(description="e.g. http://127.0.0.1:8000/v1")
    api_key: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    max_connections: int = 256


class ModelRoute(_Strict):
    """A model name clients use, mapped to an upstream and the name the upstream knows."""

    name: str
    upstream: str
    upstream_model: str | None = None
    owned_by: str = "distillwarden"


class LimitSettings(_Strict):
    """Default rate limits; a licence may override them (0 means unlimited)."""

    key_requests_per_min: int = 600
    key_tokens_per_min: int = 1_000_000
    org_requests_per_min: int = 3000
    org_tokens_per_min: int = 5_000_000
    throttled_factor: float = 0.1


class Settings(_Strict):
    """Everything an installation needs. ``data_dir`` holds the SQLite store, the event log
    and the spool in the embedded default."""

    data_dir: Path = Path("./distillwarden-data")
    database_url: str | None = None
    secret: str | None = Field(
        default=None,
        description="installation secret: keys API-key hashes, IP/UA hashes, watermark keys",
    )
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    upstreams: list[UpstreamSettings] = Field(default_factory=list)
    models: list[ModelRoute] = Field(default_factory=list)
    region_header: str | None = "x-distillwarden-region"
    ip_regions: dict[str, str] = Field(
        default_factory=dict, description="CIDR -> region code, first match wins"
    )
    default_region: str = "unknown"
    trust_forwarded_for: bool = False
    limits: LimitSettings = Field(default_factory=LimitSettings)
    max_body_bytes: int = 4 * 1024 * 1024
    redis_url: str | None = None
    events_dir: Path | None = None
    segment_max_events: int = 50_000
    segment_max_age_s: float = 60.0
    status_poll_s: float = 0.5
    webhooks_allow_private: bool = False
    log_level: str = "info"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'distillwarden.db').resolve()}"

    @property
    def effective_events_dir(self) -> Path:
        return self.events_dir or (self.data_dir / "events")

    def secret_bytes(self) -> bytes:
        """The installation secret; load_settings guarantees it is set."""
        if not self.secret:
            raise ConfigError("no installation secret configured (set `secret:` in the config)")
        return self.secret.encode()


def _persisted_secret(data_dir: Path, name: str) -> str:
    """A random secret kept in ``data_dir`` so that restarts keep hashes stable."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from a YAML file (or embedded defaults when ``path`` is None).

    Honours ``DISTILLWARDEN_CONFIG`` (a path) and ``DISTILLWARDEN_DATA_DIR`` when no path or
    data_dir is given. Missing secrets are generated once and persisted under ``data_dir``.
    """
    raw: dict[str, Any] = {}
    if path is None and os.environ.get("DISTILLWARDEN_CONFIG"):
        path = os.environ["DISTILLWARDEN_CONFIG"]
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of settings")
        raw.update(loaded)
    if "data_dir" not in raw and "data_dir" not in overrides and os.environ.get(
        "DISTILLWARDEN_DATA_DIR"
    ):
        raw["data_dir"] = os.environ["DISTILLWARDEN_DATA_DIR"]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        lines = [
            f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in exc.errors()
        ]
        raise ConfigError(f"invalid configuration{where}:\n" + "\n".join(lines)) from exc
    if not settings.secret:
        settings.secret = _persisted_secret(settings.data_dir, "secret")
    if not settings.admin_token:
        settings.admin_token = _persisted_secret(settings.data_dir, "admin_token")
    for route in settings.models:
        if route.upstream not in {u.name for u in settings.upstreams}:
            raise ConfigError(
                f"model {route.name!r} routes to unknown upstream {route.upstream!r}; "
                f"known upstreams: {sorted(u.name for u in settings.upstreams)}"
            )
    return settings
