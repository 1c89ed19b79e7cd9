"""Turn the gateway's watermark headers into a per-request logits processor.

The gateway sets ``x-distillwarden-org`` (the account id) and, when the account's licence
asks for it, ``x-distillwarden-watermark`` (the licence's watermark settings as JSON, e.g.
``{"mode": "generation", "gamma": 0.25, "delta": 2.0, "context_width": 2}``). Each request gets its own
:class:`~distillwarden.watermark.AccountWatermarkLogitsProcessor` keyed with
``derive_account_key(master_secret, org)``, so rows of different accounts share a batch.

These headers are trusted: the local model server must only be reachable by the gateway
(it binds 127.0.0.1 by default).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..watermark import WatermarkConfig, derive_account_key
from ..watermark.licence import config_for_tokenizer, parse_licence_watermark
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

# aliases accepted besides the licence format of ``distillwarden.watermark.licence``
_ALIASES = {"window": "context_width"}


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
    """``(account, strength settings)`` when the headers ask for a generation watermark.

    The header holds the licence's watermark settings (see
    :func:`distillwarden.watermark.licence.parse_licence_watermark`); ``"enabled": false``
    and ``"window"`` are accepted as aliases of ``"mode": "off"`` and ``"context_width"``.
    A ``posthoc``-only licence needs nothing from the model, so it yields None here.
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
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        raise WatermarkHeaderError(f"{WATERMARK_HEADER}: `enabled` must be true or false")
    if not enabled:
        settings["mode"] = "off"
    for alias, name in _ALIASES.items():
        if alias in settings:
            settings[name] = settings.pop(alias)
    try:
        licence = parse_licence_watermark(settings)
    except (TypeError, ValueError) as exc:
        raise WatermarkHeaderError(f"{WATERMARK_HEADER}: {exc}") from exc
    if not licence.generation:
        return None
    org = (headers.get(ORG_HEADER) or "").strip()
    if not org:
        raise WatermarkHeaderError(
            f"{WATERMARK_HEADER} asks for a watermark but {ORG_HEADER} (the account id) "
            "is missing; requests must come through the gateway"
        )
    return org, dict(licence.strength)


def watermark_requested(headers: Mapping[str, str]) -> bool:
    """Whether the gateway asks for this request to be watermarked (validating the headers)."""
    return parse_watermark_headers(headers) is not None


class Watermarker:
    """Builds per-request watermark processors from the gateway's headers for the model
    whose ``tokenizer`` is given; a licence may change only the strength settings."""

    def __init__(self, master_secret: bytes, tokenizer: Any) -> None:
        if not master_secret:
            raise ValueError("the watermark master secret is empty; set `secret:` in the config")
        self._secret = master_secret
        self.tokenizer = tokenizer
        self.base_config = config_for_tokenizer(tokenizer)

    def plan(self, headers: Mapping[str, str]) -> WatermarkPlan | None:
        """The watermark plan for a request, or None when it is not to be watermarked."""
        parsed = parse_watermark_headers(headers)
        if parsed is None:
            return None
        org, strength = parsed
        try:
            config = config_for_tokenizer(self.tokenizer, strength)
        except (TypeError, ValueError) as exc:
            raise WatermarkHeaderError(f"{WATERMARK_HEADER}: {exc}") from exc
        return WatermarkPlan(org, config)

    def key(self, account: str) -> bytes:
        """The account's watermark key."""
        return derive_account_key(self._secret, account)

    def processor(self, plan: WatermarkPlan, temperature: float = 1.0) -> RowLogitsProcessor:
        """A fresh processor for one generation (it keeps per-sequence context history);
        ``temperature`` is the request's, applied after it, so that the watermark leaves the
        end-of-turn probability, hence the answer length, as it was."""
        from ..watermark import AccountWatermarkLogitsProcessor

        proc = AccountWatermarkLogitsProcessor(
            plan.config, self.key(plan.account), max(0.0, temperature)
        )
        return cast(RowLogitsProcessor, proc)
