"""The keyed green-list hash: numpy and torch agree bit for bit and behave like a PRF."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from distillwarden.watermark.config import derive_account_key
from distillwarden.watermark.greenlist import (
    _signed,
    context_hash_np,
    context_hash_torch,
    gamma_threshold,
    green_count_matrix_np,
    green_mask_np_into,
    green_mask_torch,
    green_np,
    green_torch,
    key_words,
    score_np,
    score_torch,
    token_hash_np,
    token_hash_torch,
    token_premix_np,
    window_digest_np,
)


def test_numpy_and_torch_agree_bit_for_bit(rng: np.random.Generator) -> None:
    keys = [derive_account_key(b"master", f"acct-{i}") for i in range(5)]
    windows = rng.integers(0, 2**31 - 1, (4000, 3))
    tokens = rng.integers(0, 2**31 - 1, 4000)
    for key in keys:
        k_ctx, k_tok = key_words(key)
        c_np = context_hash_np(np.uint64(k_ctx), windows)
        c_t = context_hash_torch(torch.tensor(_signed(k_ctx)), torch.from_numpy(windows))
        assert np.array_equal(c_np, c_t.numpy().view(np.uint64))
        t_np = token_hash_np(np.uint64(k_tok), tokens)
        t_t = token_hash_torch(torch.tensor(_signed(k_tok)), torch.from_numpy(tokens))
        assert np.array_equal(t_np, t_t.numpy().view(np.uint64))
        s_np = score_np(c_np, t_np)
        s_t = score_torch(c_t, t_t)
        assert np.array_equal(s_np, s_t.numpy().astype(np.uint64))
        assert s_np.max() < 2**32
        fast = green_mask_torch(c_t, t_t[:, None], gamma_threshold(0.3))[:, 0]
        assert np.array_equal(fast.numpy(), s_np < gamma_threshold(0.3))
        wide = green_mask_torch(c_t[:7], t_t[None, :], gamma_threshold(0.3))
        assert np.array_equal(wide.numpy(), score_np(c_np[:7, None], t_np[None, :]) < 2**32 * 0.3)
        g_np = green_np(key, windows, tokens, 0.3)
        g_t = green_torch(key, torch.from_numpy(windows), torch.from_numpy(tokens), 0.3)
        assert np.array_equal(g_np, g_t.numpy())


def test_numpy_mask_kernel_matches_scores_at_every_threshold(rng: np.random.Generator) -> None:
    # the kernel skips the mix's last step below 2^31 (gamma < 0.5): exact on both sides of
    # that boundary, and for thresholds at and next to it, odd and even
    ctx = rng.integers(0, 2**63, 6, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    tok = rng.integers(0, 2**63, (6, 5000), dtype=np.uint64) * np.uint64(2)
    scores = score_np(ctx[:, None], tok)
    z, t = np.empty_like(tok), np.empty_like(tok)
    out = np.empty(tok.shape, dtype=bool)
    # thresholds equal to observed odd scores above 2^31 are where the last step decides
    odd_top = [int(v) for v in scores.ravel() if v >= 2**31 and v % 2 == 1][:5]
    assert odd_top
    fixed = [1, gamma_threshold(0.25), 2**31 - 1, 2**31, 2**31 + 1, gamma_threshold(0.75)]
    for thr in fixed + odd_top:
        got = green_mask_np_into(ctx, tok, thr, z, t, out)
        assert np.array_equal(got, scores < thr), thr


def test_deterministic_and_key_dependent(rng: np.random.Generator) -> None:
    windows = rng.integers(0, 50_000, (20_000, 2))
    tokens = rng.integers(0, 50_000, 20_000)
    a1 = green_np(derive_account_key(b"m", "a"), windows, tokens, 0.25)
    a2 = green_np(derive_account_key(b"m", "a"), windows, tokens, 0.25)
    b = green_np(derive_account_key(b"m", "b"), windows, tokens, 0.25)
    assert np.array_equal(a1, a2)
    # independent keys agree only at chance: P(both green) = gamma^2
    both = int((a1 & b).sum())
    assert stats.binomtest(both, a1.size, 0.25**2).pvalue > 1e-4


def test_green_rate_is_gamma_and_lists_differ_between_contexts() -> None:
    key = derive_account_key(b"m", "acct")
    vocab = np.arange(49_152)
    lists = []
    for ctx in ([1, 2], [1, 3], [2, 1], [40_000, 7]):
        windows = np.broadcast_to(np.array(ctx), (vocab.size, 2))
        lists.append(green_np(key, windows, vocab, 0.25))
    for g in lists:
        assert stats.binomtest(int(g.sum()), g.size, 0.25).pvalue > 1e-4
    for i in range(len(lists)):
        for j in range(i + 1, len(lists)):
            overlap = int((lists[i] & lists[j]).sum())
            assert stats.binomtest(overlap, vocab.size, 0.25**2).pvalue > 1e-4


def test_gamma_threshold_bounds() -> None:
    assert gamma_threshold(0.25) == 2**30
    for bad in (0.0, 1.0, -0.1, 1.5):
        try:
            gamma_threshold(bad)
        except ValueError as exc:
            assert "gamma" in str(exc)
        else:
            raise AssertionError(f"gamma={bad} accepted")


def test_short_keys_rejected() -> None:
    try:
        key_words(b"short")
    except ValueError as exc:
        assert "derive_account_key" in str(exc)
    else:
        raise AssertionError("8-byte key accepted")


def test_count_kernel_matches_elementwise_scores(rng: np.random.Generator) -> None:
    keys = [derive_account_key(b"m", f"k{i}") for i in range(37)]
    windows = rng.integers(0, 49_152, (501, 2))
    tokens = rng.integers(0, 49_152, 501)
    words = [key_words(k) for k in keys]
    k_ctx = np.array([w[0] for w in words], dtype=np.uint64)
    k_tok = np.array([w[1] for w in words], dtype=np.uint64)
    thr = gamma_threshold(0.25)
    got = green_count_matrix_np(
        k_ctx, k_tok, window_digest_np(windows), token_premix_np(tokens), thr, block=1000
    )
    want = [int(green_np(k, windows, tokens, 0.25).sum()) for k in keys]
    assert got.tolist() == want
