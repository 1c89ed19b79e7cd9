"""A licence's watermark settings (``Licence.watermark``, sent upstream as the
``x-distillwarden-watermark`` header) parsed into what the upstream and gateway apply.

Format (every field optional)::

    {"mode": "generation" | "posthoc" | "both" | "off",
     "gamma": 0.25, "delta": 2.0, "context_width": 2, "ignore_repeated_contexts": true,
     "length_neutral": true, "canary_rate": 0.0}

``generation`` biases the local model's logits (needs a model we run), ``posthoc`` applies the
lexical watermark to finished non-streaming responses (any upstream), ``both`` does both.
An empty mapping means "generation with the defaults" when the upstream can do it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from .config import TokenizerLike, WatermarkConfig, special_token_ids, tokenizer_fingerprint

__all__ = ["LicenceWatermark", "config_for_tokenizer", "parse_licence_watermark"]

Mode = Literal["generation", "posthoc", "both", "off"]
_MODES = ("generation", "posthoc", "both", "off")
_STRENGTH = ("gamma", "delta", "context_width", "ignore_repeated_contexts", "length_neutral")


@dataclass(frozen=True)
class LicenceWatermark:
    """Parsed licence watermark settings."""

    mode: Mode = "generation"
    strength: Mapping[str, Any] = field(default_factory=dict)
    canary_rate: float = 0.0

    @property
    def generation(self) -> bool:
        return self.mode in ("generation", "both")

    @property
    def posthoc(self) -> bool:
        return self.mode in ("posthoc", "both")


def parse_licence_watermark(value: Mapping[str, Any] | str | None) -> LicenceWatermark:
    """Parse the licence mapping or the header's JSON; errors name the offending field."""
    if value is None or value == "":
        return LicenceWatermark()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"watermark settings are not valid JSON: {exc}") from exc
    if not isinstance(value, Mapping):
        raise ValueError("watermark settings must be a JSON object")
    data = dict(value)
    mode = data.pop("mode", "generation")
    if mode not in _MODES:
        raise ValueError(f"watermark mode {mode!r} is not one of {list(_MODES)}")
    rate = float(data.pop("canary_rate", 0.0))
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"canary_rate must lie in [0, 1], got {rate}")
    unknown = set(data) - set(_STRENGTH)
    if unknown:
        raise ValueError(
            f"unknown watermark settings {sorted(unknown)}; allowed: "
            f"{sorted(('mode', 'canary_rate', *_STRENGTH))}"
        )
    WatermarkConfig().with_settings(data)  # validate values early
    return LicenceWatermark(mode=mode, strength=data, canary_rate=rate)


@lru_cache(maxsize=8)
def _base_config(name: str, digest: str, size: int, special: tuple[int, ...]) -> WatermarkConfig:
    return WatermarkConfig(
        tokenizer_name=name, tokenizer_sha256=digest, vocab_size=size, special_token_ids=special
    )


@lru_cache(maxsize=64)
def _with(base: WatermarkConfig, items: tuple[tuple[str, Any], ...]) -> WatermarkConfig:
    return base.with_settings(dict(items)) if items else base


def config_for_tokenizer(
    tokenizer: TokenizerLike, strength: Mapping[str, Any] | None = None
) -> WatermarkConfig:
    """The watermark config for ``tokenizer`` with a licence's strength applied (cached per
    tokenizer object and settings, so calling it per request is cheap)."""
    fp = getattr(tokenizer, "_distillwarden_fp", None)
    if fp is None:
        fp = (*tokenizer_fingerprint(tokenizer), special_token_ids(tokenizer))
        with contextlib.suppress(AttributeError):
            tokenizer._distillwarden_fp = fp  # type: ignore[attr-defined]
    return _with(_base_config(*fp), tuple(sorted((strength or {}).items())))
