"""Combining calibrated signal p-values into one account p-value.

``knn``: each account becomes the vector of its normal scores ``z_j = Φ⁻¹(1 - p_j)``,
floored at ``-low`` (:func:`normal_scores`), and its novelty is the mean distance to its
``k`` nearest *benign reference* accounts in that space; the distance is itself calibrated
on benign accounts (out of fold) into a tail probability. Why: single features are used legitimately
by some benign products (an education site asks for step-by-step reasoning on GSM8K-like
problems; a coding assistant sends placeholder-laden code), so what marks extraction is the
*combination* (reasoning elicitation + benchmark items + single turn + machine volume) that
no benign account shows. Marginal combinations (Cauchy, Fisher) flag any account that is
extreme on one signal, including every benign product built around that signal; kNN in
calibrated-score space compares an account with the benign accounts that resemble it.
Both sides of each signal count: a product is as much what it does little of as what it
does a lot of, and "templated single-turn requests, sent at a person's pace" is a
combination no benign product shows (pipelines that template are machine-paced), though
no signal of it is extreme. The floor keeps one signal that is merely low from dominating
the distance; ``low=0`` (the detector's default) keeps only the suspicious side of every
signal.

``knn+cauchy`` (the default): the smaller of the two p-values, doubled (Bonferroni over the
two tests). kNN novelty needs a reference dense enough around every benign product; with a
small or shifted reference, benign accounts already look novel and the kNN test loses power,
while the Cauchy combination still sees one signal far outside anything benign.

``knn``, ``cauchy`` and ``fisher`` alone are kept for comparison.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from sklearn.neighbors import NearestNeighbors

from .calibration import TailCalibrator, cauchy_combine, fisher_combine

__all__ = ["COMBINATIONS", "KNN_METRICS", "KnnCombiner", "either", "normal_scores"]

COMBINATIONS = ("knn+cauchy", "knn", "cauchy", "fisher")


def normal_scores(p: np.ndarray, low: float = 0.0) -> np.ndarray:
    """``max(Φ⁻¹(1 - p), -low)`` per entry: how far into the suspicious (positive) or the
    ordinary (negative) tail of benign accounts a signal puts an account; undefined signals
    (NaN) score 0."""
    q = np.clip(np.nan_to_num(np.asarray(p, dtype=np.float64), nan=0.5), 1e-300, 1 - 1e-12)
    return np.maximum(norm.isf(q), -float(low))


#: distances the kNN novelty may use (scikit-learn metric names)
KNN_METRICS = ("euclidean", "manhattan")


class KnnCombiner:
    """Novelty of an account's calibrated-score vector among benign reference accounts."""

    def __init__(self, k: int = 5, metric: str = "euclidean") -> None:
        if metric not in KNN_METRICS:
            raise ValueError(f"unknown kNN metric {metric!r}; use one of {KNN_METRICS}")
        self.k = k
        self.metric = metric

    def fit(self, z_reference: np.ndarray, oof_distances: np.ndarray) -> KnnCombiner:
        """Index the benign reference scores; calibrate distances on out-of-fold ones."""
        self.reference_ = np.asarray(z_reference, dtype=np.float64)
        k = max(1, min(self.k, len(self.reference_)))
        self.index_ = NearestNeighbors(n_neighbors=k, metric=self.metric).fit(self.reference_)
        self.calibrator_ = TailCalibrator(min_scale=0.05).fit(oof_distances)
        return self

    def distances(self, z: np.ndarray) -> np.ndarray:
        """Mean distance to the k nearest benign reference accounts."""
        if len(z) == 0:
            return np.zeros(0)
        d, _ = self.index_.kneighbors(np.asarray(z, dtype=np.float64))
        return np.asarray(d.mean(1))

    def pvalue(self, z: np.ndarray) -> np.ndarray:
        """Tail probability of each account's distance under benign traffic."""
        return np.asarray(self.calibrator_.pvalue(self.distances(z)))

    @staticmethod
    def knn_distances(
        train: np.ndarray, test: np.ndarray, k: int, metric: str = "euclidean"
    ) -> np.ndarray:
        """Mean distance of each ``test`` row to its k nearest ``train`` rows."""
        k = max(1, min(k, len(train)))
        d, _ = NearestNeighbors(n_neighbors=k, metric=metric).fit(train).kneighbors(test)
        return np.asarray(d.mean(1))


def either(p_knn: np.ndarray, p_cauchy: np.ndarray) -> np.ndarray:
    """Bonferroni union of the kNN and Cauchy tests: ``min(1, 2 min(p_knn, p_cauchy))``."""
    return np.minimum(1.0, 2.0 * np.minimum(p_knn, p_cauchy))


def combine_marginal(p: np.ndarray, method: str) -> np.ndarray:
    """Cauchy or Fisher combination of each row's p-values."""
    if method == "cauchy":
        return cauchy_combine(p)
    if method == "fisher":
        return fisher_combine(p)
    raise ValueError(f"unknown combination {method!r}; use one of {COMBINATIONS}")
