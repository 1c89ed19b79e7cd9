"""The kNN novelty's space: normal scores of calibrated p-values, both sides of a signal."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwarden.detect.combination import KnnCombiner, normal_scores


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), st.floats(0.0, 6.0))
@settings(max_examples=200, deadline=None)
def test_normal_scores_are_floored_and_ordered(p: list[float], low: float) -> None:
    z = normal_scores(np.array(p), low)
    assert np.all(z >= -low - 1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(z[order]) <= 1e-9)  # smaller p, larger score


def test_normal_scores_centre_and_undefined() -> None:
    z = normal_scores(np.array([0.5, np.nan, 1.0, 1e-10]), 3.0)
    assert z[0] == 0.0 and z[1] == 0.0 and z[2] == -3.0 and z[3] > 6


def test_the_low_side_makes_a_combination_no_benign_account_shows_novel() -> None:
    # benign accounts that template their requests (first signal high) are paced like most
    # accounts or faster (second signal near its median); an account that templates at a pace
    # slower than nearly every benign account is novel only when the low side counts
    rng = np.random.default_rng(0)
    templated = np.column_stack([rng.uniform(0.001, 0.05, 200), rng.uniform(0.3, 0.7, 200)])
    others = np.column_stack([rng.uniform(0.2, 1.0, 200), rng.uniform(0.0, 1.0, 200)])
    ref = np.vstack([templated, others])
    odd = np.array([[0.01, 0.999]])
    typical = np.array([[0.01, 0.5]])

    def novelty(low: float) -> tuple[float, float]:
        z_ref = normal_scores(ref, low)
        half = np.arange(len(ref)) % 2 == 0
        oof = np.empty(len(ref))
        oof[half] = KnnCombiner.knn_distances(z_ref[~half], z_ref[half], 5)
        oof[~half] = KnnCombiner.knn_distances(z_ref[half], z_ref[~half], 5)
        knn = KnnCombiner(5).fit(z_ref, oof)
        return (float(knn.pvalue(normal_scores(odd, low))[0]),
                float(knn.pvalue(normal_scores(typical, low))[0]))

    p_odd, p_typical = novelty(3.0)
    assert p_odd < 0.01 < p_typical
    p_odd_one_sided, _ = novelty(0.0)
    assert p_odd_one_sided > 0.1  # with the suspicious side only, the low side is invisible
