"""Watermark detection, windowed scan and attribution with exact p-values.

Each distinct (context window, token) pair is scored once across the whole input (so
repeated or templated text cannot inflate the evidence), windows that occur in the prompt
are excluded when the prompt is given, special tokens (EOS, chat markers: the config's
``special_token_ids``, which the length-neutral processor does not bias) are never scored,
and the green count is tested against its exact binomial null. Attribution scores every
candidate account key in one vectorised pass and controls the family-wise error rate
(Bonferroni, or Holm when several accounts may have leaked).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .config import TokenizerLike, WatermarkConfig, derive_account_key
from .greenlist import (
    context_hash_np,
    gamma_threshold,
    green_count_matrix_np,
    key_words,
    score_np,
    token_hash_np,
    token_premix_np,
    window_digest_np,
)
from .stats import LN10, binom_log_sf, binom_log_sf_array, bonferroni_log, holm_log

__all__ = [
    "AccountScore",
    "AttributionResult",
    "BatchScores",
    "DetectionResult",
    "ScanResult",
    "ScoredPairs",
    "attribute",
    "attribute_groups",
    "attribute_tokens",
    "detect",
    "detect_batch",
    "detect_tokens",
    "green_counts",
    "prepare_pairs",
    "scan",
    "scan_tokens",
    "tokens_needed",
]

Verdict = Literal["watermarked", "no_watermark", "not_enough_evidence"]
TokenInput = Sequence[int] | np.ndarray | Sequence[Sequence[int]]
Progress = Callable[[int, int], None]

_CHUNK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class ScoredPairs:
    """The distinct (context window, token) pairs of an input, ready to score against keys.

    ``positions`` are token offsets in the concatenated input (for the windowed scan)."""

    windows: np.ndarray
    tokens: np.ndarray
    positions: np.ndarray
    total_tokens: int

    @property
    def count(self) -> int:
        return int(self.tokens.size)


def _as_sequences(ids: TokenInput) -> list[np.ndarray]:
    if isinstance(ids, np.ndarray):
        return [ids.astype(np.int64)] if ids.ndim == 1 else [r.astype(np.int64) for r in ids]
    seq = list(ids)
    if seq and not isinstance(seq[0], int | np.integer):
        return [np.asarray(s, dtype=np.int64) for s in seq]  # type: ignore[arg-type]
    return [np.asarray(seq, dtype=np.int64)]


def _windows(ids: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
    if ids.size <= h:
        return np.empty((0, h), np.int64), np.empty(0, np.int64)
    win = np.lib.stride_tricks.sliding_window_view(ids, h)[:-1]
    return np.ascontiguousarray(win), ids[h:]


def _window_ids(windows: np.ndarray) -> np.ndarray:
    """Key-independent 64-bit identifiers of context windows (for set operations)."""
    return context_hash_np(np.uint64(0x5DEECE66D), windows)


def prepare_pairs(
    token_ids: TokenInput,
    context_width: int,
    prompt_ids: TokenInput | None = None,
    *,
    exclude_tokens: Sequence[int] = (),
) -> ScoredPairs:
    """Distinct (window, token) pairs of one sequence or of several (windows never span two
    sequences), minus windows that occur in the prompt(s) and pairs whose token is one of
    ``exclude_tokens`` (special tokens); first occurrences kept in order."""
    h = context_width
    all_w, all_t, all_p = [], [], []
    offset = 0
    total = 0
    for seq in _as_sequences(token_ids):
        w, t = _windows(seq, h)
        all_w.append(w)
        all_t.append(t)
        all_p.append(np.arange(h, seq.size, dtype=np.int64) + offset)
        offset += seq.size
        total += int(seq.size)
    windows = np.concatenate(all_w) if all_w else np.empty((0, h), np.int64)
    tokens = np.concatenate(all_t) if all_t else np.empty(0, np.int64)
    positions = np.concatenate(all_p) if all_p else np.empty(0, np.int64)
    wid = _window_ids(windows)
    keep = np.ones(tokens.size, dtype=bool)
    if len(exclude_tokens):
        keep &= ~np.isin(tokens, np.asarray(exclude_tokens, dtype=np.int64))
    if prompt_ids is not None:
        prompt_w = [_windows(s, h)[0] for s in _as_sequences(prompt_ids)]
        pw = np.concatenate(prompt_w) if prompt_w else np.empty((0, h), np.int64)
        # the last prompt window (which predicts the first output token) counts too
        tails = [s[-h:][None, :] for s in _as_sequences(prompt_ids) if s.size >= h]
        if tails:
            pw = np.concatenate([pw, *tails])
        keep &= ~np.isin(wid, _window_ids(pw))
    pair_id = context_hash_np(wid, tokens[:, None])
    kept = np.nonzero(keep)[0]
    _, first = np.unique(pair_id[kept], return_index=True)
    sel = np.sort(kept[first])
    return ScoredPairs(windows[sel], tokens[sel], positions[sel], total)


def _key_matrix(keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    words = [key_words(k) for k in keys]
    k_ctx = np.array([w[0] for w in words], dtype=np.uint64)
    k_tok = np.array([w[1] for w in words], dtype=np.uint64)
    return k_ctx, k_tok


def green_bits(pairs: ScoredPairs, key: bytes, gamma: float) -> np.ndarray:
    """Green bit of each pair under one key."""
    k_ctx, k_tok = key_words(key)
    c = context_hash_np(np.uint64(k_ctx), pairs.windows)
    t = token_hash_np(np.uint64(k_tok), pairs.tokens)
    return score_np(c, t) < np.uint64(gamma_threshold(gamma))


def green_counts(
    pairs: ScoredPairs, keys: Sequence[bytes], gamma: float, progress: Progress | None = None
) -> np.ndarray:
    """Green counts of ``pairs`` under each key: one vectorised (keys × pairs) pass; the
    key-free window digests and token premixes are computed once for all keys."""
    k_ctx, k_tok = _key_matrix(keys)
    thr = gamma_threshold(gamma)
    digests = window_digest_np(pairs.windows)
    premix = token_premix_np(pairs.tokens)
    out = np.zeros(len(keys), dtype=np.int64)
    step = max(1, _CHUNK_ELEMENTS // max(1, pairs.count))
    for s in range(0, len(keys), step):
        e = min(len(keys), s + step)
        out[s:e] = green_count_matrix_np(k_ctx[s:e], k_tok[s:e], digests, premix, thr)
        if progress is not None:
            progress(e, len(keys))
    return out


@dataclass(frozen=True)
class BatchScores:
    """Per-text scored pairs, green counts and exact ln p-values of a batch of texts."""

    scored: np.ndarray
    green: np.ndarray
    log_p: np.ndarray


def detect_batch(
    tokens: np.ndarray, lengths: np.ndarray, keys: Sequence[bytes], config: WatermarkConfig
) -> BatchScores:
    """Detection for many texts at once, each against its own key: ``tokens`` is a padded
    ``(B, L)`` matrix, ``lengths`` the true lengths. Same counts as :func:`detect_tokens`
    per row (no prompt exclusion), vectorised for corpus-scale scans and calibration."""
    config.check()
    toks = np.asarray(tokens, dtype=np.int64)
    b, length = toks.shape
    if len(keys) != b:
        raise ValueError(f"need one key per text: {len(keys)} keys for {b} texts")
    h = config.context_width
    if length <= h:
        zeros = np.zeros(b, dtype=np.int64)
        return BatchScores(zeros, zeros, np.zeros(b))
    windows = np.lib.stride_tricks.sliding_window_view(toks, h, axis=1)[:, :-1, :]
    nxt = toks[:, h:]
    valid = np.arange(h, length)[None, :] < np.asarray(lengths)[:, None]
    if config.special_token_ids:
        valid &= ~np.isin(nxt, np.asarray(config.special_token_ids, dtype=np.int64))
    digest = window_digest_np(windows)
    premix = token_premix_np(nxt)
    pair_id = context_hash_np(np.uint64(0x5DEECE66D), digest[..., None])
    pair_id ^= premix
    pair_id = np.where(valid, pair_id, np.uint64(0xFFFFFFFFFFFFFFFF))
    order = np.argsort(pair_id, axis=1, kind="stable")
    sorted_ids = np.take_along_axis(pair_id, order, axis=1)
    first_sorted = np.ones_like(sorted_ids, dtype=bool)
    first_sorted[:, 1:] = sorted_ids[:, 1:] != sorted_ids[:, :-1]
    first = np.empty_like(first_sorted)
    np.put_along_axis(first, order, first_sorted, axis=1)
    first &= valid
    k_ctx, k_tok = _key_matrix(keys)
    ctx = score_np(context_hash_np(k_ctx[:, None], windows), token_hash_np(k_tok[:, None], nxt))
    green = (ctx < np.uint64(gamma_threshold(config.gamma))) & first
    scored = first.sum(axis=1)
    greens = green.sum(axis=1)
    return BatchScores(scored, greens, binom_log_sf_array(greens, scored, config.green_rate))


def tokens_needed(config: WatermarkConfig, alpha: float) -> int:
    """Scored tokens needed to reach ``alpha`` at the config's planning green rate."""
    q, g = config.expected_watermarked_green_rate, config.green_rate
    target = math.log(alpha)

    def ok(n: int) -> bool:
        return binom_log_sf(math.ceil(q * n), n, g) <= target

    hi = 1
    while not ok(hi):
        hi *= 2
        if hi > 1 << 24:
            return hi
    lo = hi // 2
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class DetectionResult:
    """Evidence that a text carries one key's watermark."""

    total_tokens: int
    scored_tokens: int
    green_tokens: int
    gamma: float
    log10_p: float
    alpha: float
    verdict: Verdict
    tokens_needed: int

    @property
    def p_value(self) -> float:
        """The p-value as a float (may underflow to 0; use ``log10_p``)."""
        return 10.0**self.log10_p

    @property
    def z_score(self) -> float:
        n = self.scored_tokens
        if n == 0:
            return 0.0
        return (self.green_tokens - n * self.gamma) / math.sqrt(n * self.gamma * (1 - self.gamma))

    @property
    def message(self) -> str:
        if self.verdict == "watermarked":
            return f"watermarked (p = 10^{self.log10_p:.1f} <= alpha = {self.alpha:g})"
        if self.verdict == "not_enough_evidence":
            return (
                f"not enough evidence: {self.scored_tokens} scored tokens, about "
                f"{self.tokens_needed} needed to reach alpha = {self.alpha:g}"
            )
        return f"no watermark detected (p = 10^{self.log10_p:.2f} > alpha = {self.alpha:g})"


def _verdict(log_p: float, scored: int, alpha: float, needed: int) -> Verdict:
    if log_p <= math.log(alpha):
        return "watermarked"
    if scored < needed:
        return "not_enough_evidence"
    return "no_watermark"


def detect_tokens(
    token_ids: TokenInput,
    config: WatermarkConfig,
    key: bytes,
    *,
    prompt_ids: TokenInput | None = None,
    alpha: float = 1e-3,
) -> DetectionResult:
    """Test token ids (one sequence or several) for ``key``'s watermark."""
    config.check()
    pairs = prepare_pairs(
        token_ids, config.context_width, prompt_ids, exclude_tokens=config.special_token_ids
    )
    g = int(green_bits(pairs, key, config.gamma).sum()) if pairs.count else 0
    gamma = config.green_rate
    log_p = binom_log_sf(g, pairs.count, gamma)
    needed = tokens_needed(config, alpha)
    return DetectionResult(
        total_tokens=pairs.total_tokens,
        scored_tokens=pairs.count,
        green_tokens=g,
        gamma=gamma,
        log10_p=log_p / LN10,
        alpha=alpha,
        verdict=_verdict(log_p, pairs.count, alpha, needed),
        tokens_needed=needed,
    )


def _encode(tokenizer: TokenizerLike, text: str | Sequence[str]) -> list[list[int]]:
    texts = [text] if isinstance(text, str) else list(text)
    return [list(tokenizer.encode(t, add_special_tokens=False)) for t in texts]


def detect(
    text: str | Sequence[str],
    config: WatermarkConfig,
    tokenizer: TokenizerLike,
    key: bytes,
    *,
    prompt: str | Sequence[str] | None = None,
    alpha: float = 1e-3,
) -> DetectionResult:
    """Test a text (or a corpus of texts, pooled) for one key's watermark.

    Raises :class:`~distillwarden.watermark.config.WatermarkConfigMismatch` when the
    tokenizer or settings are not the ones the config was made with."""
    config.check(tokenizer)
    prompt_ids = _encode(tokenizer, prompt) if prompt is not None else None
    return detect_tokens(_encode(tokenizer, text), config, key, prompt_ids=prompt_ids, alpha=alpha)


@dataclass(frozen=True)
class ScanResult:
    """Best-scoring passage of a long input, with a p-value corrected for every window tried."""

    start_token: int
    end_token: int
    scored_tokens: int
    green_tokens: int
    windows_tested: int
    log10_p_window: float
    log10_p_corrected: float
    alpha: float

    @property
    def watermarked(self) -> bool:
        return self.log10_p_corrected <= math.log10(self.alpha)


def scan_tokens(
    token_ids: TokenInput,
    config: WatermarkConfig,
    key: bytes,
    *,
    window_sizes: Sequence[int] = (50, 100, 200, 400, 800),
    alpha: float = 1e-3,
) -> ScanResult:
    """Slide windows of several sizes (in scored pairs, stride a quarter window) over the
    input and report the most significant one; the p-value is Bonferroni-corrected across
    all windows tested, so a long clean document stays at family-wise level ``alpha``."""
    config.check()
    pairs = prepare_pairs(
        token_ids, config.context_width, exclude_tokens=config.special_token_ids
    )
    bits = green_bits(pairs, key, config.gamma).astype(np.int64)
    n = bits.size
    cum = np.concatenate([[0], np.cumsum(bits)])
    starts_all, ends_all = [], []
    sizes = sorted({min(w, n) for w in window_sizes if w > 0} | ({n} if n else set()))
    for w in sizes:
        if w <= 0:
            continue
        stride = max(1, w // 4)
        s = np.arange(0, n - w + 1, stride)
        if s.size == 0 or s[-1] != n - w:
            s = np.append(s, n - w)
        starts_all.append(s)
        ends_all.append(s + w)
    if not starts_all:
        return ScanResult(0, 0, 0, 0, 0, 0.0, 0.0, alpha)
    starts = np.concatenate(starts_all)
    ends = np.concatenate(ends_all)
    greens = cum[ends] - cum[starts]
    log_p = binom_log_sf_array(greens, ends - starts, config.green_rate)
    i = int(np.argmin(log_p))
    m = int(starts.size)
    h = config.context_width
    return ScanResult(
        start_token=int(pairs.positions[starts[i]]) - h,
        end_token=int(pairs.positions[ends[i] - 1]) + 1,
        scored_tokens=int(ends[i] - starts[i]),
        green_tokens=int(greens[i]),
        windows_tested=m,
        log10_p_window=float(log_p[i]) / LN10,
        log10_p_corrected=float(bonferroni_log(np.array([log_p[i]]), m)[0]) / LN10,
        alpha=alpha,
    )


def scan(
    text: str,
    config: WatermarkConfig,
    tokenizer: TokenizerLike,
    key: bytes,
    *,
    window_sizes: Sequence[int] = (50, 100, 200, 400, 800),
    alpha: float = 1e-3,
) -> ScanResult:
    """Find a watermarked passage inside a long document (see :func:`scan_tokens`)."""
    config.check(tokenizer)
    return scan_tokens(
        _encode(tokenizer, text), config, key, window_sizes=window_sizes, alpha=alpha
    )


@dataclass(frozen=True)
class AccountScore:
    """One candidate account's evidence; p-values as log10, adjusted for the family."""

    account: str
    green_tokens: int
    log10_p: float
    log10_p_bonferroni: float
    log10_p_holm: float
    attributed: bool


@dataclass(frozen=True)
class AttributionResult:
    """Candidate accounts ranked by evidence, with family-wise error control at ``alpha``."""

    total_tokens: int
    scored_tokens: int
    candidates: int
    alpha: float
    method: Literal["bonferroni", "holm"]
    ranked: list[AccountScore] = field(default_factory=list)
    tokens_needed: int = 0

    @property
    def attributed(self) -> list[AccountScore]:
        """Accounts whose adjusted p-value is at most ``alpha``."""
        return [a for a in self.ranked if a.attributed]

    @property
    def verdict(self) -> Verdict:
        if self.attributed:
            return "watermarked"
        if self.scored_tokens < self.tokens_needed:
            return "not_enough_evidence"
        return "no_watermark"


def attribute_tokens(
    token_ids: TokenInput,
    keys: Mapping[str, bytes],
    config: WatermarkConfig,
    *,
    prompt_ids: TokenInput | None = None,
    alpha: float = 1e-3,
    method: Literal["bonferroni", "holm"] = "holm",
    top: int | None = 10,
    progress: Progress | None = None,
) -> AttributionResult:
    """Rank candidate account keys by the evidence that ``token_ids`` carry their watermark.

    ``alpha`` is the family-wise error rate over all candidates: with ``holm`` several
    accounts can be attributed at once (text leaked by more than one account); with
    ``bonferroni`` each account is tested at ``alpha / N``."""
    return attribute_groups(
        token_ids,
        [(config, keys)],
        prompt_ids=prompt_ids,
        alpha=alpha,
        method=method,
        top=top,
        progress=progress,
    )


def attribute_groups(
    token_ids: TokenInput,
    groups: Sequence[tuple[WatermarkConfig, Mapping[str, bytes]]],
    *,
    prompt_ids: TokenInput | None = None,
    alpha: float = 1e-3,
    method: Literal["bonferroni", "holm"] = "holm",
    top: int | None = 10,
    progress: Progress | None = None,
) -> AttributionResult:
    """Attribution when candidate accounts hold licences with different watermark settings:
    each group is scored under its own config, and the family-wise correction runs over
    all candidates together."""
    total_keys = sum(len(k) for _, k in groups)
    if total_keys == 0:
        raise ValueError("no candidate accounts given; pass at least one account id")
    names: list[str] = []
    log_ps: list[np.ndarray] = []
    counts_all: list[np.ndarray] = []
    scored = total = 0
    needed = 0
    done = 0
    for config, keys in groups:
        if not keys:
            continue
        config.check()
        pairs = prepare_pairs(
            token_ids, config.context_width, prompt_ids, exclude_tokens=config.special_token_ids
        )
        group_names = list(keys)
        base = done

        def _progress(i: int, _n: int, base: int = base) -> None:
            if progress is not None:
                progress(base + i, total_keys)

        counts = green_counts(pairs, [keys[n] for n in group_names], config.gamma, _progress)
        done += len(group_names)
        names += group_names
        counts_all.append(counts)
        log_ps.append(
            binom_log_sf_array(counts, np.full(counts.size, pairs.count), config.green_rate)
        )
        scored = max(scored, pairs.count)
        total = pairs.total_tokens
        needed = max(needed, tokens_needed(config, alpha / total_keys))
    log_p = np.concatenate(log_ps)
    counts_cat = np.concatenate(counts_all)
    bonf = bonferroni_log(log_p, len(names))
    holm = holm_log(log_p)
    adj = holm if method == "holm" else bonf
    order = np.argsort(log_p, kind="stable")
    if top is not None:
        order = order[:top]
    la = math.log(alpha)
    ranked = [
        AccountScore(
            account=names[i],
            green_tokens=int(counts_cat[i]),
            log10_p=float(log_p[i]) / LN10,
            log10_p_bonferroni=float(bonf[i]) / LN10,
            log10_p_holm=float(holm[i]) / LN10,
            attributed=bool(adj[i] <= la),
        )
        for i in order
    ]
    return AttributionResult(
        total_tokens=total,
        scored_tokens=scored,
        candidates=len(names),
        alpha=alpha,
        method=method,
        ranked=ranked,
        tokens_needed=needed,
    )


def attribute(
    text: str | Sequence[str],
    accounts: Sequence[str],
    master_secret: bytes,
    config: WatermarkConfig,
    tokenizer: TokenizerLike,
    *,
    prompt: str | Sequence[str] | None = None,
    alpha: float = 1e-3,
    method: Literal["bonferroni", "holm"] = "holm",
    top: int | None = 10,
    progress: Progress | None = None,
) -> AttributionResult:
    """Which of ``accounts`` received this text? Keys are derived from ``master_secret``."""
    config.check(tokenizer)
    keys = {a: derive_account_key(master_secret, a) for a in dict.fromkeys(accounts)}
    prompt_ids = _encode(tokenizer, prompt) if prompt is not None else None
    return attribute_tokens(
        _encode(tokenizer, text),
        keys,
        config,
        prompt_ids=prompt_ids,
        alpha=alpha,
        method=method,
        top=top,
        progress=progress,
    )
