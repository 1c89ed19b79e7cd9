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


def test_version_2_round_trip_and_special_ids(tiny_tokenizer: TinyTokenizer) -> None:
    cfg = WatermarkConfig(vocab_size=500, special_token_ids=(5, 0, 2, 2))
    assert cfg.version == 2 and cfg.length_neutral and cfg.special_token_ids == (0, 2, 5)
    again = WatermarkConfig.from_json(cfg.to_json())
    assert again == cfg and again.special_token_ids == (0, 2, 5)
    off = cfg.with_settings({"length_neutral": False})
    assert not off.length_neutral and off != cfg
    with pytest.raises(ValueError, match="special_token_ids"):
        WatermarkConfig(vocab_size=500, special_token_ids=(500,))
    with pytest.raises(WatermarkConfigMismatch, match="special_token_ids"):
        WatermarkConfig.from_dict({**json.loads(cfg.to_json()), "special_token_ids": "eos"})


def test_version_1_configs_still_load_with_their_old_generator(
    tiny_tokenizer: TinyTokenizer,
) -> None:
    """A config stored before length neutrality existed keeps meaning what it meant: the
    plain bias on every token. Claiming length neutrality under version 1 is refused."""
    v2 = json.loads(WatermarkConfig.for_tokenizer(tiny_tokenizer).to_json())
    v1 = {k: v for k, v in v2.items() if k not in ("length_neutral", "special_token_ids")}
    v1["version"] = 1
    old = WatermarkConfig.from_dict(v1)
    assert old.version == 1 and not old.length_neutral and old.special_token_ids == ()
    old.check(tiny_tokenizer)
    assert WatermarkConfig.from_json(old.to_json()) == old
    with pytest.raises(WatermarkConfigMismatch, match="version 2"):
        WatermarkConfig.from_dict({**v1, "length_neutral": True})


def test_for_tokenizer_collects_special_tokens() -> None:
    class _Added:
        def __init__(self, special: bool) -> None:
            self.special = special

    class WithSpecials(TinyTokenizer):
        all_special_ids = [1, 2]
        eos_token_id = 2
        added_tokens_decoder = {0: _Added(True), 3: _Added(True), 7: _Added(False)}

    tok = WithSpecials([f"w{i}" for i in range(500)])
    cfg = WatermarkConfig.for_tokenizer(tok)
    assert cfg.special_token_ids == (0, 1, 2, 3)
    from distillwarden.watermark.licence import config_for_tokenizer

    assert config_for_tokenizer(tok).special_token_ids == (0, 1, 2, 3)
    assert config_for_tokenizer(tok, {"length_neutral": False}).length_neutral is False
    from distillwarden.watermark.licence import parse_licence_watermark

    assert parse_licence_watermark({"length_neutral": False}).strength == {"length_neutral": False}
