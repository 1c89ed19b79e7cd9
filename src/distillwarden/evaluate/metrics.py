"""Metrics over account scores: thresholds at a benign FPR, ROC, TPR, cluster agreement.

Pure functions over arrays, checkable with small inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score, roc_auc_score, roc_curve

__all__ = [
    "Threshold",
    "adjusted_rand",
    "calibrate_threshold",
    "roc",
    "roc_auc",
]


@dataclass(frozen=True)
class Threshold:
    """A threshold set so that at most ``fpr`` of calibration accounts score above it.

    ``exceeding`` calibration accounts score strictly above ``value``; ``backing`` is
    ``fpr * n_calibration``, the number of accounts the quantile rests on (below 1 the
    threshold is the calibration maximum and the FPR estimate is weak).
    """

    fpr: float
    value: float
    n_calibration: int
    exceeding: int
    backing: float


def calibrate_threshold(calibration_scores: np.ndarray, fpr: float) -> Threshold:
    """The smallest threshold with at most ``floor(fpr * n)`` calibration scores above it."""
    scores = np.sort(np.asarray(calibration_scores, dtype=np.float64))[::-1]
    n = scores.size
    if n == 0:
        raise ValueError("no calibration scores: cannot set a threshold")
    k = int(np.floor(fpr * n))
    value = float(scores[min(k, n - 1)])
    exceeding = int(np.sum(scores > value))
    return Threshold(fpr=fpr, value=value, n_calibration=n, exceeding=exceeding,
                     backing=round(fpr * n, 3))


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve; None when only one class is present."""
    y = np.asarray(y)
    if y.min(initial=0) == y.max(initial=0) or np.unique(y).size < 2:
        return None
    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64)))


def roc(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) points of the ROC curve."""
    fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(scores, dtype=np.float64))
    return fpr, tpr


def adjusted_rand(true: list[str], predicted: list[str | None]) -> float | None:
    """Adjusted Rand index; accounts the detector left unclustered count as singletons."""
    if len(true) < 2:
        return None
    pred = [p if p is not None else f"__single_{i}" for i, p in enumerate(predicted)]
    return float(adjusted_rand_score(true, pred))
