"""Detection, windowed scan and attribution on a seeded synthetic language model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from distillwarden.watermark.config import WatermarkConfig, derive_account_key
from distillwarden.watermark.detect import (
    attribute,
    attribute_tokens,
    detect,
    detect_batch,
    detect_tokens,
    prepare_pairs,
    scan_tokens,
    tokens_needed,
)
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor

from .synthetic import TinyTokenizer, synthetic_generate

CFG = WatermarkConfig(vocab_size=500, gamma=0.25, delta=2.0, context_width=2)
MASTER = b"installation-secret"


def _key(account: str) -> bytes:
    return derive_account_key(MASTER, account)


@pytest.fixture(scope="module")
def marked() -> torch.Tensor:
    proc = AccountWatermarkLogitsProcessor(CFG, [_key(f"acct-{i}") for i in range(4)])
    return synthetic_generate(500, 4, 400, processor=proc, seed=7)[:, 4:]


@pytest.fixture(scope="module")
def clean() -> torch.Tensor:
    return synthetic_generate(500, 4, 400, seed=8)[:, 4:]


def test_each_distinct_pair_scored_once_and_prompt_windows_excluded() -> None:
    text = [1, 2, 3, 4, 5, 6]
    once = prepare_pairs(text, 2)
    assert once.count == 4 and once.total_tokens == 6
    many = prepare_pairs(text * 50, 2)
    assert many.count == 6  # only the wrap-around pairs (5, 6)->1 and (6, 1)->2 are new
    across = prepare_pairs([text, text], 2)
    assert across.count == 4 and across.total_tokens == 12
    no_prompt = prepare_pairs([3, 4, 9, 9, 1, 2, 8], 2, prompt_ids=[1, 2, 3, 4])
    kept = {
        tuple(w) + (t,)
        for w, t in zip(no_prompt.windows.tolist(), no_prompt.tokens.tolist(), strict=True)
    }
    assert kept == {(4, 9, 9), (9, 9, 1), (9, 1, 2)}


def test_repeating_watermarked_text_adds_no_evidence(marked: torch.Tensor) -> None:
    once = detect_tokens(marked[0, :80].tolist(), CFG, _key("acct-0"))
    repeated = detect_tokens(marked[0, :80].tolist() * 20, CFG, _key("acct-0"))
    assert repeated.scored_tokens <= once.scored_tokens + 2
    assert repeated.log10_p == pytest.approx(once.log10_p, abs=1.5)


def test_watermarked_detected_clean_not(marked: torch.Tensor, clean: torch.Tensor) -> None:
    for i in range(4):
        res = detect_tokens(marked[i].tolist(), CFG, _key(f"acct-{i}"))
        assert res.verdict == "watermarked", res.message
        assert res.log10_p < -10 and res.scored_tokens > 350
        assert detect_tokens(clean[i].tolist(), CFG, _key(f"acct-{i}")).verdict == "no_watermark"
        wrong = detect_tokens(marked[i].tolist(), CFG, _key("somebody-else"))
        assert wrong.verdict == "no_watermark"


def test_short_text_is_not_enough_evidence_with_tokens_needed(marked: torch.Tensor) -> None:
    res = detect_tokens(marked[0, :6].tolist(), CFG, _key("acct-0"), alpha=1e-6)
    assert res.verdict == "not_enough_evidence"
    assert res.tokens_needed == tokens_needed(CFG, 1e-6) > res.scored_tokens
    assert str(res.tokens_needed) in res.message
    empty = detect_tokens([], CFG, _key("acct-0"))
    assert empty.verdict == "not_enough_evidence" and empty.scored_tokens == 0
    assert empty.log10_p == 0.0
    # the planning figure is honest: that many watermarked tokens do reach alpha here
    n = tokens_needed(CFG, 1e-6)
    assert detect_tokens(marked[0, : n + 2].tolist(), CFG, _key("acct-0"), alpha=1e-6).verdict == (
        "watermarked"
    )


def test_detect_on_text_with_tokenizer(tiny_tokenizer: TinyTokenizer, marked: torch.Tensor) -> None:
    cfg = WatermarkConfig.for_tokenizer(tiny_tokenizer, gamma=0.25, delta=2.0, context_width=2)
    text = tiny_tokenizer.decode(marked[1].tolist())
    res = detect(text, cfg, tiny_tokenizer, _key("acct-1"))
    assert res.verdict == "watermarked"
    with_prompt = detect(text, cfg, tiny_tokenizer, _key("acct-1"), prompt=text[:200])
    assert with_prompt.scored_tokens < res.scored_tokens


def test_attribution_picks_the_right_key_among_1000(marked: torch.Tensor) -> None:
    accounts = [f"acct-{i}" for i in range(1000)]
    keys = {a: _key(a) for a in accounts}
    for i in range(4):
        res = attribute_tokens(marked[i, :300].tolist(), keys, CFG, alpha=1e-6)
        assert res.ranked[0].account == f"acct-{i}"
        assert [a.account for a in res.attributed] == [f"acct-{i}"]
        assert res.ranked[0].log10_p_bonferroni == pytest.approx(res.ranked[0].log10_p + 3)


def test_holm_attributes_two_leaking_accounts(marked: torch.Tensor, clean: torch.Tensor) -> None:
    corpus = [marked[0, :250].tolist(), marked[2, :250].tolist(), clean[0].tolist()]
    keys = {f"acct-{i}": _key(f"acct-{i}") for i in range(200)}
    res = attribute_tokens(corpus, keys, CFG, alpha=1e-3, method="holm")
    assert {a.account for a in res.attributed} == {"acct-0", "acct-2"}
    holm = [a.log10_p_holm for a in res.ranked[:3]]
    bonf = [a.log10_p_bonferroni for a in res.ranked[:3]]
    assert all(h <= b + 1e-9 for h, b in zip(holm, bonf, strict=True))


def test_attribute_with_tokenizer_and_master_secret(
    tiny_tokenizer: TinyTokenizer, marked: torch.Tensor
) -> None:
    cfg = WatermarkConfig.for_tokenizer(tiny_tokenizer, gamma=0.25, delta=2.0, context_width=2)
    text = tiny_tokenizer.decode(marked[3].tolist())
    res = attribute(text, [f"acct-{i}" for i in range(50)], MASTER, cfg, tiny_tokenizer)
    assert res.verdict == "watermarked" and res.attributed[0].account == "acct-3"
    res_wrong_secret = attribute(text, ["acct-3"], b"another-secret", cfg, tiny_tokenizer)
    assert res_wrong_secret.verdict == "no_watermark"
    with pytest.raises(ValueError, match="candidate"):
        attribute_tokens([1, 2, 3], {}, CFG)


def test_scan_finds_passage_in_long_clean_document(marked: torch.Tensor) -> None:
    filler = synthetic_generate(500, 1, 3000, seed=99)[0, 4:].tolist()
    passage = marked[0, :150].tolist()
    doc = filler[:1500] + passage + filler[1500:]
    whole = detect_tokens(doc, CFG, _key("acct-0"))
    found = scan_tokens(doc, CFG, _key("acct-0"))
    assert found.watermarked and found.windows_tested > 50
    assert found.log10_p_corrected < whole.log10_p
    assert found.start_token < 1500 + 150 and found.end_token > 1500
    overlap = min(found.end_token, 1650) - max(found.start_token, 1500)
    assert overlap >= 0.6 * min(150, found.end_token - found.start_token)
    clean_scan = scan_tokens(filler, CFG, _key("acct-0"))
    assert not clean_scan.watermarked
    assert clean_scan.log10_p_corrected >= clean_scan.log10_p_window


def test_false_positive_rate_is_calibrated_under_null(rng: np.random.Generator) -> None:
    """Random and highly repetitive texts: the rejection rate at alpha=0.01 stays in the
    99.9% binomial interval (a small version of the benchmark's calibration)."""
    rejections = 0
    trials = 1500
    for i in range(trials):
        if i % 3 == 0:
            base = rng.integers(0, 500, 8).tolist()
            toks = (base * 30)[: rng.integers(20, 240)]
        else:
            toks = rng.integers(0, 500 if i % 3 == 1 else 20, rng.integers(20, 240)).tolist()
        res = detect_tokens(toks, CFG, _key(f"k{i}"), alpha=0.01)
        rejections += res.verdict == "watermarked"
    lo, hi = (
        0.01 * trials - 3.3 * math.sqrt(trials * 0.0099),
        0.01 * trials + 3.3 * math.sqrt(trials * 0.0099),
    )
    assert lo <= rejections <= hi


def test_batch_detection_equals_per_text(rng: np.random.Generator, marked: torch.Tensor) -> None:
    rows = []
    for i in range(24):
        n = int(rng.integers(0, 120))
        if i % 4 == 0:
            rows.append((rng.integers(0, 500, 5).tolist() * 40)[:n])
        elif i % 4 == 1:
            rows.append(marked[i % 4, :n].tolist())
        else:
            rows.append(rng.integers(0, 500, n).tolist())
    length = max(len(r) for r in rows)
    mat = np.zeros((len(rows), length), dtype=np.int64)
    for i, r in enumerate(rows):
        mat[i, : len(r)] = r
    keys = [_key(f"acct-{i % 4}") for i in range(len(rows))]
    batch = detect_batch(mat, np.array([len(r) for r in rows]), keys, CFG)
    for i, r in enumerate(rows):
        one = detect_tokens(r, CFG, keys[i])
        assert (batch.scored[i], batch.green[i]) == (one.scored_tokens, one.green_tokens)
        assert batch.log_p[i] / math.log(10) == pytest.approx(one.log10_p)


def test_special_tokens_are_never_scored(marked: torch.Tensor) -> None:
    """EOS and chat markers are not biased by the length-neutral processor, so detection
    leaves them out: runs of them add no pairs, and every entry point agrees."""
    cfg = WatermarkConfig(vocab_size=500, special_token_ids=(0, 1))
    ids = [5, 6, 0, 7, 8, 1, 9, 0]
    pairs = prepare_pairs(ids, 2, exclude_tokens=(0, 1))
    assert 0 not in pairs.tokens and 1 not in pairs.tokens
    assert pairs.count == prepare_pairs(ids, 2).count - 3
    seq = marked[0, :300].tolist()
    key = _key("acct-0")
    padded = seq[:150] + [0, 1] * 40 + seq[150:]  # a block of special tokens in the middle
    with_sp = detect_tokens(padded, cfg, key)
    plain = detect_tokens(seq, cfg, key)
    assert with_sp.scored_tokens <= plain.scored_tokens + 2  # only windows across the block
    assert with_sp.verdict == "watermarked"
    naive = detect_tokens(padded, CFG, key)  # a config without special ids scores them
    assert naive.scored_tokens > with_sp.scored_tokens
    toks = np.array([padded, padded[::-1]])
    batch = detect_batch(toks, np.array([len(padded)] * 2), [key, key], cfg)
    assert int(batch.scored[0]) == with_sp.scored_tokens
    assert int(batch.green[0]) == with_sp.green_tokens
    ranked = attribute_tokens(padded, {"a": key, "b": _key("acct-1")}, cfg)
    assert ranked.scored_tokens == with_sp.scored_tokens
    assert scan_tokens(padded, cfg, key).watermarked
