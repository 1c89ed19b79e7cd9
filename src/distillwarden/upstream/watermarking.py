"""Turn the gateway's watermark headers into a per-request logits processor.

The gateway sets ``x-distillwarden-org`` (the account id) and, when the account's licence
asks for it, ``x-distillwarden-watermark`` (the licence's watermark settings as JSON, e.g.
``{"enabled": true, "gamma": 0.25, "delta": 2.0, "window": 2}``). Each request gets its own
:class:`~distillwarden.watermark.AccountWatermarkLogitsProcessor` keyed with
``derive_account_key(master_secret, org)``, so rows of different accounts share a batch.

These headers are trusted: the local model server must only be reachable by the gateway
(it binds 127.0.0.1 by default).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..watermark import WatermarkConfig, derive_account_key
from .engine import RowLogitsProcessor

__all__ = [
    "ORG_HEADER",
    "WATERMARK_HEADER",
    "WatermarkHeaderError",
    "WatermarkPlan",
    "Watermarker",
    "parse_watermark_headers",
    "watermark_requested",
]

ORG_HEADER = "x-distillwarden-org"
WATERMARK_HEADER = "x-distillwarden-watermark"

# licence field name -> WatermarkConfig field name
_SETTING_NAMES = {
    "gamma": "gamma",
    "delta": "delta",
    "window": "context_width",
    "context_width": "context_width",
    "ignore_repeated_contexts": "ignore_repeated_contexts",
}
# licence fields that belong to other watermark mechanisms (post-hoc lexical, canaries)
_OTHER_MECHANISMS = {"enabled", "lexical", "canaries", "canary", "posthoc", "mode", "version"}


class WatermarkHeaderError(ValueError):
    """The watermark headers are malformed; the message names the field to fix."""


@dataclass(frozen=True)
class WatermarkPlan:
    """What one request gets: the account, the config used, and the processor factory."""

    account: str
    config: WatermarkConfig

    def config_json(self) -> str:
        return self.config.to_json()


def parse_watermark_headers(headers: Mapping[str, str]) -> tuple[str, dict[str, Any]] | None:
    """``(account, strength settings)`` when the headers ask for a watermark, else None.

    Strength settings use :class:`WatermarkConfig` names (``window`` becomes
    ``context_width``); fields of other watermark mechanisms (lexical, canaries) are ignored.
    """
    raw = headers.get(WATERMARK_HEADER)
    if raw is None or not raw.strip():
        return None
    try:
        settings = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise WatermarkHeaderError(f"{WATERMARK_HEADER} is not valid JSON: {exc}") from exc
    if not isinstance(settings, dict):
        raise WatermarkHeaderError(f"{WATERMARK_HEADER} must be a JSON object")
    enabled = settings.get("enabled", True)
    if not isinstance(enabled, bool):
        raise WatermarkHeaderError(f"{WATERMARK_HEADER}: `enabled` must be true or false")
    if not enabled:
        return None
    org = (headers.get(ORG_HEADER) or "").strip()
    if not org:
        raise WatermarkHeaderError(
            f"{WATERMARK_HEADER} asks for a watermark but {ORG_HEADER} (the account id) "
            "is missing; requests must come through the gateway"
        )
    unknown = set(settings) - set(_SETTING_NAMES) - _OTHER_MECHANISMS
    if unknown:
        raise WatermarkHeaderError(
            f"{WATERMARK_HEADER}: unknown settings {sorted(unknown)}; allowed: "
            f"{sorted(set(_SETTING_NAMES) | {'enabled'})}"
        )
    return org, {_SETTING_NAMES[k]: v for k, v in settings.items() if k in _SETTING_NAMES}


def watermark_requested(headers: Mapping[str, str]) -> bool:
    """Whether the gateway asks for this request to be watermarked (validating the headers)."""
    return parse_watermark_headers(headers) is not None


class Watermarker:
    """Builds per-request watermark processors from the gateway's headers.

    ``base_config`` is bound to the served model's tokenizer; a licence may change only the
    strength settings (gamma, delta, window, ignore_repeated_contexts).
    """

    def __init__(self, master_secret: bytes, base_config: WatermarkConfig) -> None:
        if not master_secret:
            raise ValueError("the watermark master secret is empty; set `secret:` in the config")
        self._secret = master_secret
        self.base_config = base_config

    @classmethod
    def for_tokenizer(cls, master_secret: bytes, tokenizer: Any) -> Watermarker:
        """A watermarker whose default config is bound to ``tokenizer``."""
        return cls(master_secret, WatermarkConfig.for_tokenizer(tokenizer))

    def plan(self, headers: Mapping[str, str]) -> WatermarkPlan | None:
        """The watermark plan for a request, or None when it is not to be watermarked."""
        parsed = parse_watermark_headers(headers)
        if parsed is None:
            return None
        org, settings = parsed
        strength = tuple(sorted(settings.items()))
        try:
            config = self._config(strength)
        except (TypeError, ValueError) as exc:
            raise WatermarkHeaderError(f"{WATERMARK_HEADER}: {exc}") from exc
        return WatermarkPlan(org, config)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - bounded; one watermarker per server
    def _config(self, strength: tuple[tuple[str, Any], ...]) -> WatermarkConfig:
        return self.base_config.with_settings(dict(strength)) if strength else self.base_config

    def key(self, account: str) -> bytes:
        """The account's watermark key."""
        return derive_account_key(self._secret, account)

    def processor(self, plan: WatermarkPlan) -> RowLogitsProcessor:
        """A fresh processor for one generation (it keeps per-sequence context history)."""
        from ..watermark import AccountWatermarkLogitsProcessor

        proc = AccountWatermarkLogitsProcessor(plan.config, self.key(plan.account))
        return cast(RowLogitsProcessor, proc)
