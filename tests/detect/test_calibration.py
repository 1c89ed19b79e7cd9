"""Tail calibration and p-value combination."""

from __future__ import annotations

import numpy as np
import pytest

from distillwarden.detect.calibration import TailCalibrator, cauchy_combine, fisher_combine


def test_empirical_tail_is_calibrated_on_fresh_benign_draws() -> None:
    rng = np.random.default_rng(0)
    cal = TailCalibrator().fit(rng.normal(size=5000))
    p = cal.pvalue(rng.normal(size=20000))
    for alpha in (0.01, 0.05, 0.2):
        assert abs((p <= alpha).mean() - alpha) < 0.35 * alpha + 0.003


def test_tail_extrapolates_below_one_over_n_and_is_monotone() -> None:
    rng = np.random.default_rng(1)
    cal = TailCalibrator().fit(rng.exponential(size=500))
    xs = np.array([0.5, 3.0, 8.0, 20.0, 100.0])
    p = cal.pvalue(xs)
    assert np.all(np.diff(p) < 0)
    assert p[-1] < 1.0 / 501


def test_constant_benign_signal_uses_mid_p_and_scale_floor() -> None:
    cal = TailCalibrator(min_scale=1.0).fit(np.zeros(200))
    p0, p1, p10 = cal.pvalue(np.array([0.0, 1.0, 10.0]))
    assert 0.45 < p0 < 0.55
    assert 1e-4 < p1 < 0.01  # one unit above anything benign is evidence, not certainty
    assert p10 < p1


def test_nan_means_undefined() -> None:
    cal = TailCalibrator().fit(np.array([1.0, 2.0, np.nan, 3.0]))
    assert cal.n_ == 3
    assert np.isnan(cal.pvalue(np.array([np.nan]))[0])


def test_cauchy_combination_uniform_under_null_and_driven_by_smallest() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(size=(20000, 8))
    comb = cauchy_combine(p)
    assert abs((comb <= 0.05).mean() - 0.05) < 0.01
    one_strong = np.array([[1e-9] + [0.6] * 20])
    assert cauchy_combine(one_strong)[0] < 1e-7
    assert cauchy_combine(np.array([[np.nan, np.nan]]))[0] == 1.0


def test_fisher_combination() -> None:
    # chi-square with 4 d.f. at -2 ln(0.25): sf = 0.25 * (1 - ln 0.25)
    assert fisher_combine(np.array([[0.5, 0.5]]))[0] == pytest.approx(0.25 * (1 - np.log(0.25)))
    assert fisher_combine(np.array([[1e-6, 1e-6]]))[0] < 1e-9


def test_no_plateau_between_or_beyond_sparse_top_benign_values() -> None:
    # the top of a benign sample is sparse; accounts that fall between its last values, or
    # past them, must keep their order (a flat step would tie them with benign accounts)
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(size=480), [3.9, 5.0]]
    cal = TailCalibrator().fit(values)
    xs = np.array([3.91, 3.93, 3.96, 4.5, 5.2, 7.0, 12.0])
    p = cal.pvalue(xs)
    assert np.all(np.diff(p) < 0)
    assert p[4] <= 1.0 / 483  # past the largest benign value: below 1 / (n + 1)


def test_signal_constant_on_benign_is_not_extrapolated() -> None:
    # every benign account is direct (0); a reseller account (1) was never seen among them:
    # that is evidence worth 1 / (n + 1), not a probability of 1e-24 from a vanishing scale
    cal = TailCalibrator().fit(np.zeros(480))
    p0, p1 = cal.pvalue(np.array([0.0, 1.0]))
    assert 0.45 < p0 < 0.55
    assert p1 == pytest.approx(1.0 / 481)


def test_tail_stays_consistent_with_a_sparse_benign_subpopulation() -> None:
    # most benign accounts never redact (0), a tenth redact a little, and 3 of 480 (say,
    # translation pipelines that redact everything) sit far out: the tail fitted on the many
    # small exceedances must not call the next such pipeline impossible
    rng = np.random.default_rng(4)
    values = np.r_[np.zeros(430), rng.uniform(0.0, 0.004, 47), [0.045, 0.05, 0.055]]
    cal = TailCalibrator().fit(values)
    p_max, p_next, p_far = cal.pvalue(np.array([0.055, 0.06, 0.5]))
    assert p_max >= 0.4 / 481
    assert p_next > 1e-4  # one more of the sub-population: rare, not a 1e-5 event
    assert p_far < p_next < p_max  # still monotone, and far values still extrapolate down
    # where the tail was already consistent with the largest value, nothing changes
    expo = rng.exponential(size=500)
    assert TailCalibrator().fit(expo).scale_ == TailCalibrator(consistent_max=False).fit(
        expo).scale_


def test_knn_novelty_adds_up_many_moderate_departures_under_l1() -> None:
    """Manhattan distance (the default) adds up departures on many signals, so an account a
    little unusual on six signals is further from the benign cloud than one that departs
    as much, in Euclidean terms, on one signal only; Euclidean distance ranks them equal."""
    from distillwarden.detect.combination import KnnCombiner

    rng = np.random.default_rng(0)
    ref = np.abs(rng.normal(0.0, 0.3, size=(400, 8)))
    many = np.zeros((1, 8))
    many[0, :6] = 1.5  # Euclidean norm 1.5 * sqrt(6)
    one = np.zeros((1, 8))
    one[0, 0] = 1.5 * np.sqrt(6)
    for metric, further in (("manhattan", True), ("euclidean", False)):
        d = [KnnCombiner.knn_distances(ref, x, 5, metric)[0] for x in (many, one)]
        assert bool(d[0] > 1.3 * d[1]) == further, (metric, d)
    with pytest.raises(ValueError, match="kNN metric"):
        KnnCombiner(5, metric="cosine")
