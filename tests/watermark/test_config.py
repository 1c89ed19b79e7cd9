"""Versioned config JSON, self-test vectors, tokenizer binding and account keys."""

from __future__ import annotations

import json

import pytest

from distillwarden.watermark.config import (
    WatermarkConfig,
    WatermarkConfigMismatch,
    derive_account_key,
)
from distillwarden.watermark.detect import detect

from .synthetic import TinyTokenizer


def test_json_round_trip_keeps_self_test(tiny_tokenizer: TinyTokenizer) -> None:
    cfg = WatermarkConfig.for_tokenizer(tiny_tokenizer, gamma=0.3, delta=1.5, context_width=3)
    again = WatermarkConfig.from_json(cfg.to_json())
    assert again == cfg
    assert again.self_test == cfg.self_test
    assert cfg.vocab_size == 500 and cfg.tokenizer_name == "tiny-words"
    again.check(tiny_tokenizer)


def test_tampered_self_test_fails_loudly(tiny_tokenizer: TinyTokenizer) -> None:
    cfg = WatermarkConfig.for_tokenizer(tiny_tokenizer)
    data = json.loads(cfg.to_json())
    data["self_test"]["pairs"][0][2] ^= 1
    with pytest.raises(WatermarkConfigMismatch, match="self-test failed"):
        WatermarkConfig.from_dict(data).check()


def test_changed_gamma_with_old_vector_fails(tiny_tokenizer: TinyTokenizer) -> None:
    data = json.loads(WatermarkConfig.for_tokenizer(tiny_tokenizer, gamma=0.25).to_json())
    data["gamma"] = 0.5  # someone edited gamma but the vector was made with 0.25
    with pytest.raises(WatermarkConfigMismatch, match="self-test"):
        WatermarkConfig.from_dict(data).check()


def test_unknown_scheme_version_and_fields(tiny_tokenizer: TinyTokenizer) -> None:
    data = json.loads(WatermarkConfig.for_tokenizer(tiny_tokenizer).to_json())
    with pytest.raises(WatermarkConfigMismatch, match="scheme"):
        WatermarkConfig.from_dict({**data, "scheme": "kgw-selfhash"}).check()
    with pytest.raises(WatermarkConfigMismatch, match="upgrade"):
        WatermarkConfig.from_dict({**data, "version": 99})
    with pytest.raises(WatermarkConfigMismatch, match="unknown watermark config fields"):
        WatermarkConfig.from_dict({**data, "seeding": "left"})
    with pytest.raises(WatermarkConfigMismatch, match="not valid JSON"):
        WatermarkConfig.from_json("{gamma: 0.25")


def test_wrong_tokenizer_fails_loudly(tiny_tokenizer: TinyTokenizer) -> None:
    cfg = WatermarkConfig.for_tokenizer(tiny_tokenizer)
    other = TinyTokenizer([f"w{i}" for i in range(499)] + ["zz"], name="other")
    key = derive_account_key(b"m", "a")
    with pytest.raises(WatermarkConfigMismatch, match="tokenizer 'other'"):
        detect("w1 w2 w3 w4", cfg, other, key)


def test_licence_settings_and_validation() -> None:
    base = WatermarkConfig(vocab_size=1000)
    strong = base.with_settings({"delta": 4.0, "context_width": 1})
    assert strong.delta == 4.0 and strong.context_width == 1
    assert strong.self_test != base.self_test
    strong.check()
    with pytest.raises(ValueError, match="allowed"):
        base.with_settings({"strength": 3})
    with pytest.raises(ValueError, match="gamma"):
        WatermarkConfig(gamma=1.0)
    with pytest.raises(ValueError, match="context_width"):
        WatermarkConfig(context_width=0)


def test_account_keys_are_separated() -> None:
    k = derive_account_key(b"secret", "org-1")
    assert len(k) == 32
    assert k == derive_account_key(b"secret", "org-1")
    assert k != derive_account_key(b"secret", "org-2")
    assert k != derive_account_key(b"other", "org-1")
    with pytest.raises(ValueError, match="master secret"):
        derive_account_key(b"", "org-1")
