"""Licence watermark settings and attribution across licences with different settings."""

from __future__ import annotations

import pytest

from distillwarden.watermark.config import WatermarkConfig, derive_account_key
from distillwarden.watermark.detect import attribute_groups
from distillwarden.watermark.licence import config_for_tokenizer, parse_licence_watermark
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor

from .synthetic import TinyTokenizer, synthetic_generate


def test_parse_licence_settings_and_header_json() -> None:
    assert parse_licence_watermark(None).generation
    lw = parse_licence_watermark('{"mode": "both", "delta": 3.0, "canary_rate": 0.01}')
    assert lw.generation and lw.posthoc and lw.strength == {"delta": 3.0}
    assert lw.canary_rate == 0.01
    assert not parse_licence_watermark({"mode": "off"}).generation
    with pytest.raises(ValueError, match="mode"):
        parse_licence_watermark({"mode": "loud"})
    with pytest.raises(ValueError, match="allowed"):
        parse_licence_watermark({"strength": 2})
    with pytest.raises(ValueError, match="gamma"):
        parse_licence_watermark({"gamma": 2})
    with pytest.raises(ValueError, match="JSON"):
        parse_licence_watermark("{mode")


def test_config_for_tokenizer_is_cached_and_applies_strength(
    tiny_tokenizer: TinyTokenizer,
) -> None:
    a = config_for_tokenizer(tiny_tokenizer, {"delta": 3.0})
    assert a is config_for_tokenizer(tiny_tokenizer, {"delta": 3.0})
    assert a.delta == 3.0 and a.vocab_size == 500
    a.check(tiny_tokenizer)


def test_attribution_across_licences_with_different_settings() -> None:
    strong = WatermarkConfig(vocab_size=500, delta=3.0, context_width=1)
    default = WatermarkConfig(vocab_size=500)
    key = derive_account_key(b"m", "strong-7")
    text = synthetic_generate(
        500, 1, 200, processor=AccountWatermarkLogitsProcessor(strong, key), seed=3
    )[0, 4:].tolist()
    groups = [
        (default, {f"d-{i}": derive_account_key(b"m", f"d-{i}") for i in range(100)}),
        (strong, {f"strong-{i}": derive_account_key(b"m", f"strong-{i}") for i in range(100)}),
    ]
    res = attribute_groups(text, groups, alpha=1e-6)
    assert res.candidates == 200
    assert [a.account for a in res.attributed] == ["strong-7"]
    assert res.ranked[0].log10_p_bonferroni == pytest.approx(
        res.ranked[0].log10_p + 2.30103, abs=1e-4
    )
