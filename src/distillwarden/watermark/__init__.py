"""Account-keyed watermarks and attribution (DESIGN.md, part ``watermark``).

Generation watermark: :class:`AccountWatermarkLogitsProcessor` (transformers) or
:class:`~distillwarden.watermark.vllm.VLLMWatermarkProcessor` (vLLM), keyed per account with
:func:`derive_account_key` and configured by a versioned :class:`WatermarkConfig`.
Detection: :func:`detect`, :func:`scan`, :func:`attribute` with exact p-values.

Black-box upstreams: :class:`LexicalWatermarker` (keyed WordNet synonym choice) and
per-account canaries (:class:`~distillwarden.watermark.canary.CanarySet`).

Torch is imported lazily: detection needs only numpy and scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import (
    WatermarkConfig,
    WatermarkConfigMismatch,
    derive_account_key,
    tokenizer_fingerprint,
)
from .detect import (
    AccountScore,
    AttributionResult,
    DetectionResult,
    ScanResult,
    attribute,
    attribute_groups,
    attribute_tokens,
    detect,
    detect_batch,
    detect_tokens,
    scan,
    scan_tokens,
)
from .lexical import LexicalDetection, LexicalWatermarker, attribute_lexical
from .licence import LicenceWatermark, config_for_tokenizer, parse_licence_watermark

if TYPE_CHECKING:
    from .processor import AccountWatermarkLogitsProcessor

__all__ = [
    "AccountScore",
    "AccountWatermarkLogitsProcessor",
    "AttributionResult",
    "DetectionResult",
    "LexicalDetection",
    "LexicalWatermarker",
    "LicenceWatermark",
    "ScanResult",
    "WatermarkConfig",
    "WatermarkConfigMismatch",
    "attribute",
    "attribute_groups",
    "attribute_lexical",
    "attribute_tokens",
    "config_for_tokenizer",
    "derive_account_key",
    "detect",
    "detect_batch",
    "detect_tokens",
    "parse_licence_watermark",
    "scan",
    "scan_tokens",
    "tokenizer_fingerprint",
]


def __getattr__(name: str) -> Any:
    if name == "AccountWatermarkLogitsProcessor":
        from .processor import AccountWatermarkLogitsProcessor

        return AccountWatermarkLogitsProcessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
