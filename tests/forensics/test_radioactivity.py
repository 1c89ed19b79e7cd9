"""The radioactivity test finds the leaking account in a mixed corpus, stays silent for
other accounts and for clean text, and its p-values are valid under the null."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from distillwarden.forensics.radioactivity import radioactivity_test
from distillwarden.watermark import WatermarkConfigMismatch, derive_account_key

pytestmark = pytest.mark.model

LEAKER = "org_alice"


def keys(secret: bytes, names: list[str]) -> dict[str, bytes]:
    return {n: derive_account_key(secret, n) for n in names}


def test_leaker_found_in_mixed_corpus(
    local_model: Any,
    wm_config: Any,
    watermarked_texts: list[str],
    clean_texts: list[str],
    master_secret: bytes,
) -> None:
    corpus = watermarked_texts + clean_texts[:24]  # one third ours, two thirds not
    names = [LEAKER] + [f"org_{i}" for i in range(30)]
    result = radioactivity_test(
        corpus, local_model.tokenizer, keys(master_secret, names), wm_config
    )
    assert result.accounts[0].account == LEAKER
    assert result.accounts[0].log10_p_holm < -8
    assert [a.account for a in result.attributed] == [LEAKER]
    others = [a for a in result.accounts if a.account != LEAKER]
    assert min(a.log10_p for a in others) > -3
    assert result.examples and result.examples[0]["account"] == LEAKER


def test_wrong_accounts_and_clean_corpus_give_uniform_p_values(
    local_model: Any, wm_config: Any, clean_texts: list[str], master_secret: bytes
) -> None:
    names = [f"org_{i}" for i in range(200)]
    result = radioactivity_test(
        clean_texts[:150], local_model.tokenizer, keys(master_secret, names), wm_config
    )
    assert result.scored_pairs > 10_000
    p = np.array([10**a.log10_p for a in result.accounts])
    # valid p-values: P(p <= t) <= t (binomial p-values are conservative), and not all ~1
    for t in (0.01, 0.05, 0.2, 0.5):
        assert np.mean(p <= t) <= t + 3 * np.sqrt(t * (1 - t) / p.size) + 0.01
    assert 0.3 < float(np.mean(p)) < 0.7
    assert not result.attributed and not result.pooled_significant


def test_pooled_test_counts_every_candidate_key(
    local_model: Any, wm_config: Any, watermarked_texts: list[str], master_secret: bytes
) -> None:
    k = keys(master_secret, [LEAKER, "org_bob", "org_carol"])
    result = radioactivity_test(watermarked_texts, local_model.tokenizer, k, wm_config)
    assert result.pooled_trials == 3 * result.scored_pairs
    assert result.pooled_green == sum(a.green for a in result.accounts)
    assert result.pooled_significant
    assert result.accounts[0].log10_p < result.pooled_log10_p  # one leaker: pooling dilutes


def test_repetition_cannot_inflate_evidence(
    local_model: Any, wm_config: Any, watermarked_texts: list[str], master_secret: bytes
) -> None:
    k = keys(master_secret, [LEAKER])
    once = radioactivity_test(watermarked_texts[:2], local_model.tokenizer, k, wm_config)
    many = radioactivity_test(watermarked_texts[:2] * 20, local_model.tokenizer, k, wm_config)
    assert many.scored_pairs == once.scored_pairs
    assert many.accounts[0].log10_p == pytest.approx(once.accounts[0].log10_p)


def test_prompt_windows_are_excluded(
    local_model: Any, wm_config: Any, master_secret: bytes
) -> None:
    text = "Write a short story about a lighthouse keeper who lives alone by the sea."
    k = keys(master_secret, [LEAKER])
    alone = radioactivity_test([text], local_model.tokenizer, k, wm_config)
    with_prompt = radioactivity_test([text], local_model.tokenizer, k, wm_config, prompts=[text])
    assert with_prompt.scored_pairs == 0 < alone.scored_pairs


def test_config_for_another_tokenizer_fails_loudly(local_model: Any, master_secret: bytes) -> None:
    from distillwarden.watermark import WatermarkConfig

    foreign = WatermarkConfig(tokenizer_name="gpt2", tokenizer_sha256="0" * 64, vocab_size=50257)
    with pytest.raises(WatermarkConfigMismatch):
        radioactivity_test(
            ["some text here"], local_model.tokenizer, keys(master_secret, ["a"]), foreign
        )


def test_no_accounts_is_an_error(local_model: Any, wm_config: Any) -> None:
    with pytest.raises(ValueError, match="candidate accounts"):
        radioactivity_test(["x"], local_model.tokenizer, {}, wm_config)


def test_received_contexts_filter_concentrates_the_evidence(
    local_model: Any,
    wm_config: Any,
    watermarked_texts: list[str],
    clean_texts: list[str],
    master_secret: bytes,
) -> None:
    corpus = watermarked_texts[:3] + clean_texts[:60]  # a faint trace in a lot of other text
    k = keys(master_secret, [LEAKER] + [f"org_{i}" for i in range(9)])
    plain = radioactivity_test(corpus, local_model.tokenizer, k, wm_config)
    focused = radioactivity_test(
        corpus, local_model.tokenizer, k, wm_config, received=watermarked_texts
    )
    assert focused.filtered and focused.pairs_before_filter == plain.scored_pairs
    assert focused.scored_pairs < plain.scored_pairs / 3
    assert focused.accounts[0].account == LEAKER
    assert focused.accounts[0].log10_p < plain.accounts[0].log10_p


def test_received_filter_keeps_the_null_valid(
    local_model: Any,
    wm_config: Any,
    watermarked_texts: list[str],
    clean_texts: list[str],
    master_secret: bytes,
) -> None:
    names = [f"org_{i}" for i in range(200)]
    result = radioactivity_test(
        clean_texts[:300],
        local_model.tokenizer,
        keys(master_secret, names),
        wm_config,
        received=watermarked_texts + clean_texts[300:400],
    )
    assert result.scored_pairs > 1000
    p = np.array([10**a.log10_p for a in result.accounts])
    assert np.mean(p <= 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / p.size) + 0.01
    assert not result.attributed
