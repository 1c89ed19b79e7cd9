"""Exact tails in log space, no underflow, and the error corrections."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from distillwarden.watermark.stats import (
    LN10,
    binom_log_sf,
    binom_log_sf_array,
    binom_log_sf_randomized,
    bonferroni_log,
    holm_log,
    normal_approx_log_sf,
    poisson_binom_log_sf,
)


def _exact_sf(k: int, n: int, p: Fraction) -> Fraction:
    return sum(
        (Fraction(math.comb(n, j)) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1)),
        Fraction(0),
    )


@pytest.mark.parametrize("n", [1, 7, 30, 64])
@pytest.mark.parametrize("p", [0.25, 0.5, 0.1])
def test_binomial_tail_exact_on_small_cases(n: int, p: float) -> None:
    for k in range(0, n + 2):
        want = float(_exact_sf(k, n, Fraction(p))) if k <= n else 0.0
        got = math.exp(binom_log_sf(k, n, p))
        assert got == pytest.approx(want, rel=1e-9, abs=0.0)
        if 0 < k <= n:
            assert got == pytest.approx(float(stats.binom.sf(k - 1, n, p)), rel=1e-9)


def test_no_underflow_at_ten_thousand_tokens() -> None:
    n = 10_000
    all_green = binom_log_sf(n, n, 0.25) / LN10
    assert all_green == pytest.approx(n * math.log10(0.25), rel=1e-12)
    nine_tenths = binom_log_sf(9_000, n, 0.25)
    assert math.isfinite(nine_tenths) and nine_tenths / LN10 < -4000
    # the exact log-space sum agrees with the leading-term bound within one decade
    lead = stats.binom.logpmf(9_000, n, 0.25)
    assert lead <= nine_tenths <= lead + LN10
    arr = binom_log_sf_array(np.array([9_000, 2_500, n]), np.array([n, n, n]), 0.25)
    assert np.all(np.isfinite(arr)) and arr[0] == pytest.approx(nine_tenths)


def test_normal_approximation_understates_p_at_z6() -> None:
    # gamma = 0.25, 100 scored tokens, 51 green: z = 6.0
    n, k, g = 100, 51, 0.25
    z = (k - n * g) / math.sqrt(n * g * (1 - g))
    assert z == pytest.approx(6.0, abs=0.01)
    ratio = math.exp(binom_log_sf(k, n, g) - normal_approx_log_sf(k, n, g))
    assert ratio > 18


def test_poisson_binomial_matches_brute_force(rng: np.random.Generator) -> None:
    probs = rng.uniform(0.05, 0.9, 10)
    dist = np.zeros(11)
    for bits in itertools.product([0, 1], repeat=10):
        b = np.array(bits)
        dist[b.sum()] += np.prod(np.where(b == 1, probs, 1 - probs))
    for k in range(12):
        want = dist[k:].sum() if k <= 10 else 0.0
        assert math.exp(poisson_binom_log_sf(k, probs)) == pytest.approx(want, rel=1e-9)
    same = np.full(40, 0.3)
    assert poisson_binom_log_sf(25, same) == pytest.approx(binom_log_sf(25, 40, 0.3), rel=1e-9)


def test_holm_and_bonferroni() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.5])
    holm = np.exp(holm_log(np.log(p)))
    # textbook Holm: sorted .01,.03,.04,.5 -> .04,.09,.09,.5
    assert holm == pytest.approx([0.04, 0.09, 0.09, 0.5])
    bonf = np.exp(bonferroni_log(np.log(p), 4))
    assert bonf == pytest.approx([0.04, 0.16, 0.12, 1.0])
    assert np.all(holm <= bonf + 1e-12)


def test_randomized_p_value_is_exactly_uniform_and_bounded(rng: np.random.Generator) -> None:
    n = np.full(200_000, 12)
    k = rng.binomial(12, 0.25, n.size)
    u = rng.uniform(size=n.size)
    pr = np.exp(binom_log_sf_randomized(k, n, 0.25, u))
    conservative = np.exp(binom_log_sf_array(k, n, 0.25))
    assert np.all(pr <= conservative + 1e-12)
    for alpha in (0.01, 0.05, 0.2):
        # the conservative test is well below alpha at n = 12; the randomised one is exact
        assert (conservative <= alpha).mean() < 0.8 * alpha
        assert abs((pr <= alpha).mean() - alpha) < 4 * math.sqrt(alpha / n.size)
