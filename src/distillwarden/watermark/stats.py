"""Exact tail probabilities in log space and family-wise error corrections.

Watermark evidence is a count of "hits" among independent Bernoulli trials, so its exact
null distribution is binomial (or Poisson-binomial when trials differ). The normal
approximation used by transformers' ``WatermarkDetector`` understates right-tail p-values
for gamma < 0.5 (the issue quotes 18x at z = 6; for gamma = 0.25 it is 22x at 100 scored
tokens and 12x at 200), which overstates the evidence; everything here is exact and never underflows to 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

__all__ = [
    "LN10",
    "binom_log_sf",
    "binom_log_sf_array",
    "binom_log_sf_randomized",
    "bonferroni_log",
    "holm_log",
    "normal_approx_log_sf",
    "poisson_binom_log_sf",
]

LN10 = math.log(10.0)
_SAFE_LOG = math.log(1e-280)


def _exact_tail(k: int, n: int, p: float) -> float:
    """ln P(X >= k) by a log-sum-exp over the pmf terms k..n (chunked, exact)."""
    best = -math.inf
    total = 0.0
    chunk = 1 << 16
    log_terms: list[np.ndarray] = []
    for start in range(k, n + 1, chunk):
        j = np.arange(start, min(n, start + chunk - 1) + 1)
        log_terms.append(stats.binom.logpmf(j, n, p))
    allt = np.concatenate(log_terms)
    best = float(allt.max())
    total = float(np.exp(allt - best).sum())
    return best + math.log(total)


def binom_log_sf(k: int, n: int, p: float) -> float:
    """Natural log of P(X >= k) for X ~ Binomial(n, p), exact, finite for any k <= n."""
    if k <= 0:
        return 0.0
    if k > n:
        return -math.inf
    v = float(stats.binom.logsf(k - 1, n, p))
    if math.isfinite(v) and v > _SAFE_LOG:
        return min(v, 0.0)
    return min(_exact_tail(k, n, p), 0.0)


def binom_log_sf_array(k: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """Vectorised :func:`binom_log_sf` (falls back to the exact sum where scipy underflows)."""
    k = np.asarray(k, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    k, n = np.broadcast_arrays(k, n)
    out = np.asarray(stats.binom.logsf(k - 1, n, p), dtype=np.float64).copy()
    out = np.where(k <= 0, 0.0, out)
    out = np.where(k > n, -np.inf, out)
    bad = (k > 0) & (k <= n) & ~(np.isfinite(out) & (out > _SAFE_LOG))
    for idx in zip(*np.nonzero(bad), strict=True):
        out[idx] = binom_log_sf(int(k[idx]), int(n[idx]), p)
    return np.minimum(out, 0.0)


def binom_log_sf_randomized(k: np.ndarray, n: np.ndarray, p: float, u: np.ndarray) -> np.ndarray:
    """ln of the randomised binomial p-value P(X > k) + u·P(X = k), u ~ Uniform(0, 1).

    Exactly uniform under the null, so its false-positive rate equals alpha even for short
    texts, where the conservative p-value's is below alpha. Used for calibration; evidence
    reports use the conservative :func:`binom_log_sf`."""
    k = np.asarray(k, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    above = binom_log_sf_array(k + 1, n, p)
    at = stats.binom.logpmf(k, n, p) + np.log(np.asarray(u, dtype=np.float64))
    return np.minimum(np.logaddexp(above, at), 0.0)


def poisson_binom_log_sf(k: int, probs: Sequence[float] | np.ndarray) -> float:
    """ln P(S >= k) where S is a sum of independent Bernoulli(probs[i]); exact dynamic
    programme carried in log space (O(n^2), for the few hundred trials of lexical marks)."""
    q = np.asarray(probs, dtype=np.float64)
    n = q.size
    if k <= 0:
        return 0.0
    if k > n:
        return -math.inf
    log_dist = np.full(n + 1, -np.inf)
    log_dist[0] = 0.0
    lp = np.log(q)
    lq = np.log1p(-q)
    for i in range(n):
        stay = log_dist[: i + 2] + np.concatenate([[lq[i]] * (i + 1), [-np.inf]])
        move = np.concatenate([[-np.inf], log_dist[: i + 1] + lp[i]])
        log_dist[: i + 2] = np.logaddexp(stay, move)
    return min(float(special.logsumexp(log_dist[k:])), 0.0)


def normal_approx_log_sf(k: int, n: int, p: float) -> float:
    """The one-proportion z-test tail transformers' detector reports (for comparison only)."""
    z = (k - n * p) / math.sqrt(n * p * (1 - p))
    return float(stats.norm.logsf(z))


def bonferroni_log(log_p: np.ndarray, m: int) -> np.ndarray:
    """Bonferroni-adjusted ln p-values for ``m`` tests (capped at ln 1 = 0)."""
    return np.minimum(np.asarray(log_p, dtype=np.float64) + math.log(m), 0.0)


def holm_log(log_p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted ln p-values (same order as the input), controlling the
    family-wise error rate when several hypotheses (accounts) may be false at once."""
    lp = np.asarray(log_p, dtype=np.float64)
    m = lp.size
    if m == 0:
        return lp.copy()
    order = np.argsort(lp, kind="stable")
    factors = np.log(np.arange(m, 0, -1, dtype=np.float64))
    adj_sorted = np.minimum(np.maximum.accumulate(lp[order] + factors), 0.0)
    out = np.empty(m)
    out[order] = adj_sorted
    return out
