"""Run any detector with the estimator API over a labelled dataset and measure it.

Protocol: fit on the benign reference accounts' events; score calibration benign accounts
and set thresholds at their score quantiles for each FPR (never looking at attackers); score
the held-out test benign accounts and all attackers; report ROC AUC, TPR at each FPR, the
FPR actually measured on test benign accounts, TPR per strategy / per mixing fraction / for
hydra members, balanced accuracy, hard negatives flagged, queries and hours to detection
(each attacker re-scored on its first k events for growing k), and cluster recovery (ARI).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..sim.dataset import Dataset
from .metrics import Threshold, adjusted_rand, calibrate_threshold, roc, roc_auc
from .splits import HARD_NEGATIVE_PERSONAS, AccountSplit, split_accounts

__all__ = [
    "DEFAULT_DELAY_STEPS",
    "Detector",
    "DetectorResult",
    "EvaluationReport",
    "evaluate",
    "first_k_events",
    "group_of",
]

log = logging.getLogger(__name__)

DEFAULT_DELAY_STEPS = (5, 10, 20, 50, 100, 200, 500, 1000, 1500)


@runtime_checkable
class Detector(Protocol):
    """The estimator API the harness runs (scikit-learn style)."""

    def fit(self, events: pa.Table, accounts: pa.Table | None = None) -> Any: ...

    def decision_function(
        self, events: pa.Table, accounts: pa.Table | None = None
    ) -> Mapping[str, float]: ...


def group_of(rec: Mapping[str, Any]) -> str:
    """Evaluation group of an attacker: ``hydra``, ``mixer`` or ``pure``."""
    if rec.get("cluster"):
        return "hydra"
    frac = rec.get("attacker_fraction")
    if frac is not None and float(frac) < 1.0:
        return "mixer"
    if rec.get("persona") and rec.get("strategy") and rec["persona"] != rec["strategy"]:
        return "mixer"
    return "pure"


@dataclass
class DetectorResult:
    """Everything measured for one detector on one dataset."""

    name: str
    roc_auc: float | None
    thresholds: list[Threshold]
    tpr: dict[str, float]
    tpr_pure: dict[str, float]
    benign_fpr: dict[str, float]
    balanced_accuracy: dict[str, float]
    tpr_by_strategy: dict[str, dict[str, float]]
    tpr_by_fraction: dict[str, dict[str, float]]
    tpr_hydra: dict[str, float]
    hard_negatives: dict[str, dict[str, int]]
    delay: dict[str, dict[str, Any]]
    cluster_ari: float | None
    cluster_ari_all: float | None
    native: dict[str, float] | None
    unscored: int
    seconds: dict[str, float]
    roc_points: dict[str, list[float]] = field(default_factory=dict)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def as_dict(self, *, with_curves: bool = False) -> dict[str, Any]:
        """JSON-ready result (curves and raw scores only when asked)."""
        out: dict[str, Any] = {
            "name": self.name,
            "roc_auc": self.roc_auc,
            "thresholds": [t.__dict__ for t in self.thresholds],
            "tpr": self.tpr,
            "tpr_pure": self.tpr_pure,
            "benign_fpr": self.benign_fpr,
            "balanced_accuracy": self.balanced_accuracy,
            "tpr_by_strategy": self.tpr_by_strategy,
            "tpr_by_fraction": self.tpr_by_fraction,
            "tpr_hydra": self.tpr_hydra,
            "hard_negatives_flagged": self.hard_negatives,
            "detection_delay": self.delay,
            "cluster_ari": self.cluster_ari,
            "cluster_ari_all": self.cluster_ari_all,
            "native_threshold": self.native,
            "unscored_accounts": self.unscored,
            "seconds": self.seconds,
        }
        if with_curves:
            out["roc_points"] = self.roc_points
            out["scores"] = self.scores
        return out


@dataclass
class EvaluationReport:
    """Results of one or more detectors on one dataset, with the split used."""

    dataset: str
    split: dict[str, int]
    fprs: tuple[float, ...]
    results: list[DetectorResult]
    attackers: dict[str, int]

    def as_dict(self, *, with_curves: bool = False) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "fprs": list(self.fprs),
            "attackers": self.attackers,
            "detectors": [r.as_dict(with_curves=with_curves) for r in self.results],
        }

    def result(self, name: str) -> DetectorResult:
        """The result of the detector called ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no detector {name!r}; have {[r.name for r in self.results]}")


def _fkey(fpr: float) -> str:
    return f"{fpr:g}"


def _filter_orgs(events: pa.Table, orgs: Sequence[str]) -> pa.Table:
    return events.filter(pc.is_in(events.column("org_id"), value_set=pa.array(list(orgs))))


def first_k_events(events: pa.Table, k: int) -> pa.Table:
    """Each account's first ``k`` events by time."""
    if events.num_rows == 0:
        return events
    orgs = events.column("org_id").to_numpy(zero_copy_only=False)
    ts = events.column("ts").cast(pa.int64()).to_numpy()
    _, codes = np.unique(orgs, return_inverse=True)
    order = np.lexsort((ts, codes))
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    return events.take(pa.array(order[rank < k]))


def _rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if flags.size else float("nan")


def _score_array(scores: Mapping[str, float], orgs: Sequence[str]) -> tuple[np.ndarray, int]:
    out = np.empty(len(orgs), dtype=np.float64)
    missing = 0
    for i, o in enumerate(orgs):
        v = scores.get(o)
        if v is None or not np.isfinite(v):
            missing += 1
            out[i] = -np.inf
        else:
            out[i] = float(v)
    return out, missing


def _delays(
    detector: Detector, att_events: pa.Table, accounts: pa.Table | None, orgs: list[str],
    thresholds: list[Threshold], steps: Sequence[int],
) -> dict[str, dict[str, Any]]:
    """Queries (and hours) until each attacker's prefix score first crosses each threshold."""
    if not orgs or att_events.num_rows == 0:
        return {}
    counts = dict(zip(*np.unique(att_events.column("org_id").to_numpy(zero_copy_only=False),
                                 return_counts=True), strict=True))
    first_hit: dict[str, dict[str, int]] = {_fkey(t.fpr): {} for t in thresholds}
    max_n = max(counts.values())
    by_step: dict[str, list[float]] = {_fkey(t.fpr): [] for t in thresholds}
    for k in steps:
        prefix = first_k_events(att_events, k)
        scores = detector.decision_function(prefix, accounts)
        for t in thresholds:
            hits = first_hit[_fkey(t.fpr)]
            for o in orgs:
                if o in hits:
                    continue
                v = scores.get(o)
                if v is not None and np.isfinite(v) and v > t.value:
                    hits[o] = min(k, int(counts.get(o, k)))
            by_step[_fkey(t.fpr)].append(len(hits) / len(orgs))
        if k >= max_n:
            break  # longer prefixes are the full traffic again
    ts_sorted = first_k_events(att_events, max(steps))
    org_col = ts_sorted.column("org_id").to_numpy(zero_copy_only=False)
    ts_col = ts_sorted.column("ts").cast(pa.int64()).to_numpy()
    by_org: dict[str, np.ndarray] = {}
    for o in np.unique(org_col):
        by_org[str(o)] = np.sort(ts_col[org_col == o])
    out: dict[str, dict[str, Any]] = {}
    for t in thresholds:
        hits = first_hit[_fkey(t.fpr)]
        queries = np.array(list(hits.values()), dtype=np.float64)
        hours = []
        for o, q in hits.items():
            times = by_org.get(o)
            if times is not None and times.size:
                hours.append((times[min(q, times.size) - 1] - times[0]) / 3.6e9)
        out[_fkey(t.fpr)] = {
            "detected": len(hits),
            "attackers": len(orgs),
            "median_queries": float(np.median(queries)) if queries.size else None,
            "p90_queries": float(np.percentile(queries, 90)) if queries.size else None,
            "median_hours": float(np.median(hours)) if hours else None,
            "steps": list(steps),
            "detected_by_step": by_step[_fkey(t.fpr)],
        }
    return out


def _evaluate_one(
    name: str, detector: Detector, events: pa.Table, accounts: pa.Table | None,
    labels: dict[str, dict[str, Any]], split: AccountSplit, fprs: Sequence[float],
    delay_steps: Sequence[int], log_progress: Callable[[str], None],
) -> DetectorResult:
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    log_progress(f"{name}: fitting on {len(split.reference)} reference accounts")
    detector.fit(_filter_orgs(events, split.reference), accounts)
    seconds["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log_progress(f"{name}: scoring {len(split.scored)} accounts")
    scored_events = _filter_orgs(events, split.scored)
    raw = detector.decision_function(scored_events, accounts)
    seconds["score"] = time.perf_counter() - t0
    cal, miss_c = _score_array(raw, split.calibration)
    ben, miss_b = _score_array(raw, split.test_benign)
    att, miss_a = _score_array(raw, split.attackers)
    finite_cal = cal[np.isfinite(cal)]
    floor = float(finite_cal.min()) if finite_cal.size else 0.0
    cal = np.where(np.isfinite(cal), cal, floor)
    thresholds = [calibrate_threshold(cal, f) for f in fprs]

    y = np.r_[np.zeros(ben.size), np.ones(att.size)]
    s_all = np.r_[ben, att]
    s_all = np.where(np.isfinite(s_all), s_all, floor - 1.0)
    auc = roc_auc(y, s_all)
    fpr_pts, tpr_pts = roc(y, s_all) if auc is not None else (np.zeros(0), np.zeros(0))

    recs = [labels[o] for o in split.attackers]
    groups = np.array([group_of(r) for r in recs])
    strategies = np.array([str(r.get("strategy") or "unknown") for r in recs])
    fractions = np.array([float(r.get("attacker_fraction") or 1.0) for r in recs])
    personas = np.array([str(labels[o].get("persona") or "") for o in split.test_benign])

    tpr, tpr_pure, bfpr, bacc, hydra_tpr = {}, {}, {}, {}, {}
    by_strategy: dict[str, dict[str, float]] = {}
    by_fraction: dict[str, dict[str, float]] = {}
    hard: dict[str, dict[str, int]] = {}
    for t in thresholds:
        key = _fkey(t.fpr)
        flag_a = att > t.value
        flag_b = ben > t.value
        tpr[key] = _rate(flag_a)
        tpr_pure[key] = _rate(flag_a[groups == "pure"])
        hydra_tpr[key] = _rate(flag_a[groups == "hydra"])
        bfpr[key] = _rate(flag_b)
        bacc[key] = 0.5 * (tpr[key] + (1.0 - bfpr[key]))
        for s in sorted(set(strategies[groups == "pure"])):
            by_strategy.setdefault(s, {})[key] = _rate(flag_a[(groups == "pure") &
                                                              (strategies == s)])
        for f in sorted(set(fractions[groups == "mixer"]), reverse=True):
            by_fraction.setdefault(f"{f:g}", {})[key] = _rate(
                flag_a[(groups == "mixer") & (fractions == f)])
        for p in HARD_NEGATIVE_PERSONAS:
            m = personas == p
            hard.setdefault(p, {"accounts": int(m.sum())})[key] = int(flag_b[m].sum())

    native = None
    thr = getattr(detector, "threshold_", None)
    if isinstance(thr, int | float) and np.isfinite(thr):
        native = {"threshold": float(thr), "tpr": _rate(att > thr),
                  "benign_fpr": _rate(ben > thr), "calibration_fpr": _rate(cal > thr)}

    t0 = time.perf_counter()
    log_progress(f"{name}: detection delay on {len(split.attackers)} attackers")
    att_events = _filter_orgs(events, split.attackers)
    delay = _delays(detector, att_events, accounts, split.attackers, thresholds, delay_steps)
    seconds["delay"] = time.perf_counter() - t0

    ari = ari_all = None
    if callable(getattr(detector, "clusters", None)):
        clusters = detector.clusters(scored_events, accounts)  # type: ignore[attr-defined]
        hydra_orgs = [o for o, g in zip(split.attackers, groups, strict=True) if g == "hydra"]
        ari = adjusted_rand([str(labels[o]["cluster"]) for o in hydra_orgs],
                            [clusters.get(o) for o in hydra_orgs])
        test_orgs = split.test_benign + split.attackers
        true_all = [str(labels[o].get("cluster") or f"__self_{o}") for o in test_orgs]
        ari_all = adjusted_rand(true_all, [clusters.get(o) for o in test_orgs])

    score_groups = {
        "benign": ben[np.isfinite(ben)].tolist(),
        "calibration": cal.tolist(),
        **{f"attacker:{g}": att[(groups == g) & np.isfinite(att)].tolist()
           for g in ("pure", "mixer", "hydra")},
    }
    return DetectorResult(
        name=name, roc_auc=auc, thresholds=thresholds, tpr=tpr, tpr_pure=tpr_pure,
        benign_fpr=bfpr, balanced_accuracy=bacc, tpr_by_strategy=by_strategy,
        tpr_by_fraction=by_fraction, tpr_hydra=hydra_tpr, hard_negatives=hard, delay=delay,
        cluster_ari=ari, cluster_ari_all=ari_all, native=native,
        unscored=miss_c + miss_b + miss_a, seconds={k: round(v, 2) for k, v in seconds.items()},
        roc_points={"fpr": fpr_pts.tolist(), "tpr": tpr_pts.tolist()}, scores=score_groups,
    )


def evaluate(
    detector: Detector | Mapping[str, Detector],
    dataset: Dataset | str | os.PathLike[str],
    *,
    fprs: Sequence[float] = (0.001, 0.01),
    windows: Sequence[int] = DEFAULT_DELAY_STEPS,
    columns: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvaluationReport:
    """Evaluate one detector (or several, by name) on ``dataset``.

    ``windows`` are the prefix lengths (queries) at which attackers are re-scored to measure
    time to detection. ``columns`` limits the event columns read (default: all; a detector
    may declare ``required_columns``).
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    detectors = dict(detector) if isinstance(detector, Mapping) else {
        type(detector).__name__: detector}
    labels = ds.labels()
    split = split_accounts(labels)
    say = progress or (lambda msg: log.info("%s", msg))
    wanted: set[str] | None = set(columns) if columns else None
    if wanted is None and all(hasattr(d, "required_columns") for d in detectors.values()):
        wanted = set().union(*(set(d.required_columns) for d in detectors.values()))  # type: ignore[attr-defined]
    if wanted is not None:
        wanted |= {"org_id", "ts", "event_id"}
    say(f"reading events of {ds.path}")
    events = ds.events(columns=sorted(wanted) if wanted else None)
    known = set(labels)
    event_orgs = set(pc.unique(events.column("org_id")).to_pylist())
    if event_orgs - known:
        log.warning("%d organizations in the events have no label; they are ignored",
                    len(event_orgs - known))
    accounts = ds.accounts()
    for d in detectors.values():
        if hasattr(d, "cache_dir") and getattr(d, "cache_dir", None) is None:
            d.cache_dir = ds.cache_dir()  # type: ignore[attr-defined]
    results = [
        _evaluate_one(n, d, events, accounts, labels, split, fprs, windows, say)
        for n, d in detectors.items()
    ]
    recs = [labels[o] for o in split.attackers]
    groups: dict[str, int] = {}
    for r in recs:
        groups[group_of(r)] = groups.get(group_of(r), 0) + 1
    return EvaluationReport(dataset=str(ds.path), split=split.sizes(), fprs=tuple(fprs),
                            results=results, attackers=groups)
