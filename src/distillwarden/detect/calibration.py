"""Calibration of one signal on benign accounts into an upper-tail probability, and the
combination of several tail probabilities into one.

:class:`TailCalibrator` turns a signal value into ``P(benign value >= x)``: the empirical
tail with +1 smoothing inside the benign range, and beyond the benign 90th percentile an
generalised Pareto tail fitted on the exceedances, so that
values far outside anything benign get probabilities below ``1/(N+1)`` rather than all
tying at the smallest empirical value. The tail is a generalised Pareto with a fixed positive
shape (heavier than exponential: benign traffic the reference never saw should not look
impossible), whose scale is widened where needed so that it does not call the largest
benign value rarer than ``1/(N+1)`` (a tail fitted on many small exceedances under a sparse
benign sub-population far out would be too light), and ties use the mid-p (a signal that is 0 on most benign accounts gives 0 a
probability near 0.5, not 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TailCalibrator", "cauchy_combine", "fisher_combine"]


@dataclass
class TailCalibrator:
    """Upper-tail probability of a signal under benign traffic.

    ``min_scale`` is the smallest exponential-tail scale allowed (in the signal's units); it
    keeps a signal that is constant on benign accounts (say, always 0) from turning any
    nonzero value into certainty. ``consistent_max`` widens the tail until the largest
    benign value is no rarer than ``1/(n+1)`` under it.
    """

    min_scale: float = 0.0
    tail_quantile: float = 0.9
    tail_shape: float = 0.25
    consistent_max: bool = True

    def fit(self, values: np.ndarray) -> TailCalibrator:
        """Learn the benign distribution (NaNs, meaning 'not defined', are ignored)."""
        v = np.asarray(values, dtype=np.float64)
        v = np.sort(v[np.isfinite(v)])
        self.n_ = len(v)
        if self.n_ == 0:
            self.u_ = np.inf
            self.scale_ = 1.0
            self.p_u_ = 1.0
            return self
        self.u_ = float(np.quantile(v, self.tail_quantile))
        exc = v[v > self.u_] - self.u_
        spread = float(np.std(v)) if self.n_ > 1 else 0.0
        floor = max(self.min_scale, 0.1 * spread, 1e-6)
        self.scale_ = max(float(exc.mean()) if len(exc) else 0.0, floor)
        if spread == 0.0 and self.min_scale == 0.0:
            # a signal constant on every benign account has no scale to extrapolate with:
            # a value never seen among n benign accounts is worth 1 / (n + 1), no less
            self.scale_ = float("inf")
        self.p_u_ = (1.0 + float((v > self.u_).sum())) / (self.n_ + 1.0)
        if self.consistent_max and np.isfinite(self.scale_) and v[-1] > self.u_:
            # the fitted tail must not call the largest benign value itself rarer than
            # 1 / (n + 1): a tail fitted on many small exceedances under a few large ones
            # (a benign sub-population) is too light, and would make that sub-population's
            # next account look impossible
            target = 1.0 / (self.n_ + 1.0)
            if self.p_u_ > target:
                xi = self.tail_shape
                z = (((self.p_u_ / target) ** xi - 1.0) / xi if xi > 0
                     else float(np.log(self.p_u_ / target)))
                self.scale_ = max(self.scale_, (float(v[-1]) - self.u_) / z)
        # mid-p empirical tail at each distinct benign value (pvalue interpolates in between)
        self.values_, counts = np.unique(v, return_counts=True)
        self.knots_ = (1.0 + self.n_ - np.cumsum(counts) + 0.5 * counts) / (self.n_ + 1.0)
        return self

    def pvalue(self, x: np.ndarray) -> np.ndarray:
        """``P(benign >= x)`` for each value; NaN where ``x`` is NaN (signal undefined)."""
        x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=np.nan, posinf=1e300,
                          neginf=-1e300)
        out = np.full(x.shape, np.nan)
        ok = np.isfinite(x)
        if self.n_ == 0:
            out[ok] = 1.0
            return out
        xs = x[ok]
        # the empirical tail linearly interpolated between distinct benign values: no flat
        # steps, so accounts between two sparse benign values keep their order
        p = np.interp(xs, self.values_, self.knots_, left=1.0, right=self.knots_[-1])
        p = np.where(xs > self.u_, np.minimum(p, self._tail(xs)), p)
        # past the largest benign value: at most 1 / (n + 1), then down the fitted tail
        top = float(self.values_[-1])
        beyond = xs > top
        if beyond.any():
            t_top = float(self._tail(np.array([max(top, self.u_)]))[0])
            start = min(1.0 / (self.n_ + 1.0), t_top)
            p[beyond] = start * self._tail(xs[beyond]) / t_top
        out[ok] = p
        return np.clip(out, 1e-300, 1.0)

    def _tail(self, x: np.ndarray) -> np.ndarray:
        """The fitted generalised Pareto tail ``P(X >= x)`` above ``u_``."""
        with np.errstate(over="ignore"):
            z = np.minimum(np.maximum(x - self.u_, 0.0) / self.scale_, 1e200)
        if self.tail_shape > 0:
            return np.asarray(self.p_u_ * (1.0 + self.tail_shape * z) ** (-1.0 / self.tail_shape))
        return np.asarray(self.p_u_ * np.exp(-z))


def cauchy_combine(p: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Cauchy combination (Liu & Xie 2020) of the p-values in each row, NaNs skipped.

    Valid under arbitrary dependence between signals in the tail, and dominated by the
    smallest p-values, so one strong signal is not diluted by many quiet ones.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    w = np.ones(p.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(p)
    # p-values near 1 would contribute huge negative terms and mask real evidence
    pc = np.clip(np.where(ok, p, 0.5), 1e-300, 0.99)
    # tan((0.5 - p) * pi) == 1 / tan(p * pi); the latter is exact for tiny p
    t = np.where(pc < 1e-15, 1.0 / (pc * np.pi), np.tan((0.5 - pc) * np.pi))
    wsum = (ok * w).sum(1)
    stat = (np.where(ok, t, 0.0) * w).sum(1) / np.maximum(wsum, 1e-12)
    big = stat > 1e15
    out = np.where(big, 1.0 / (np.where(big, stat, 1.0) * np.pi), 0.5 - np.arctan(stat) / np.pi)
    out = np.where(wsum > 0, out, 1.0)
    return np.clip(out, 1e-300, 1.0)


def fisher_combine(p: np.ndarray) -> np.ndarray:
    """Fisher's method per row (assumes independent signals; NaNs skipped)."""
    from scipy.stats import chi2

    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    ok = np.isfinite(p)
    stat = -2.0 * np.where(ok, np.log(np.clip(p, 1e-300, 1.0)), 0.0).sum(1)
    k = ok.sum(1)
    out = np.where(k > 0, chi2.sf(stat, 2 * np.maximum(k, 1)), 1.0)
    return np.clip(out, 1e-300, 1.0)
