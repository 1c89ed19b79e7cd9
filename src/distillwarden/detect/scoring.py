"""The distillation detector: calibrated signals combined into one account risk.

Method (see docs/detection.md):

1. Request features (``features.py``) are aggregated per account into signals
   (``signals.py``, ``embedding_signals.py``). Share signals become a count statistic,
   ``-log10 P(X >= k)`` for ``X ~ Binomial(n, p0)`` with ``p0`` the pooled benign rate, so
   that 20 of 20 requests weigh more than 1 of 1.
2. Each signal is calibrated on benign reference accounts into an upper-tail probability
   (:class:`~.calibration.TailCalibrator`). No attacker label is ever used.
3. The tail probabilities are combined (``combination.py``): by default the union
   (Bonferroni) of two tests: the novelty of the account's calibrated-score vector among
   benign reference accounts (kNN distance, itself calibrated on benign accounts out of
   fold), and the Cauchy combination of the signals; ``risk = -log10(p_combined)``.
4. Thresholds: the risk distribution of benign accounts is estimated out of fold (two folds:
   calibrators fitted on one half score the other), so ``threshold_for_fpr(0.001)`` is a
   risk that about 0.1% of benign accounts exceed.
5. Hydra clusters (``linkage.py``) lift their members: the p-value of a member that is
   suspicious on its own (p <= ``lift_gate``, or p <= ``lift_gate_weak`` when at least
   ``lift_quorum`` of the members, and at least ``lift_quorum_min`` of them, are, unless
   the member hangs on the cluster by one edge within ``lift_single_edge_margin`` of the
   edge threshold: :func:`loosely_linked`) becomes
   the smaller of its own and the cluster's: the Cauchy combination of the members' p-values
   or, for clusters of at least ``pool_min_members``, its Bonferroni union with the
   cluster's requests pooled as one account's (:meth:`DistillationDetector._pooled_cluster_p`).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distillwarden.embeddings import cache_name

from .calibration import TailCalibrator, cauchy_combine
from .combination import (
    COMBINATIONS,
    KNN_METRICS,
    KnnCombiner,
    combine_marginal,
    either,
    normal_scores,
)
from .embedding_signals import (
    EMBEDDING_SIGNALS,
    EmbeddingCache,
    MMDReference,
    embedding_signals,
    sample_for_embedding,
)
from .features import (
    DETECT_COLUMNS,
    BenchmarkIndex,
    default_benchmark_index,
    request_features,
)
from .linkage import HydraCluster, HydraLinker
from .signals import (
    COUNT_SIGNALS,
    OPTIONAL_SIGNALS,
    TEXT_SIGNALS,
    account_signals,
    permitted_signals,
    signal_matrix,
)

__all__ = [
    "ALL_SIGNALS", "DEFAULT_SIGNALS", "AccountScores", "DistillationDetector",
    "NotFittedError", "lift_mask",
    "link_coincidence", "loosely_linked",
]

log = logging.getLogger(__name__)

ALL_SIGNALS: tuple[str, ...] = TEXT_SIGNALS + EMBEDDING_SIGNALS
#: the signals a detector scores unless told otherwise
DEFAULT_SIGNALS: tuple[str, ...] = tuple(s for s in ALL_SIGNALS if s not in OPTIONAL_SIGNALS)

#: smallest benign rate assumed for a feature (a rate never seen is not a rate of zero)
_MIN_RATE = 1e-3


class NotFittedError(RuntimeError):
    """The detector was used before ``fit``; fit it on benign reference traffic first."""


@dataclass
class AccountScores:
    """Everything the detector concluded about each account in one window."""

    signals: pa.Table
    statistics: np.ndarray
    pvalues: np.ndarray
    p_account: np.ndarray
    p_final: np.ndarray
    risk: np.ndarray
    cluster_of: dict[str, str]
    clusters: list[HydraCluster]
    signal_names: tuple[str, ...]
    #: the benchmark set of each ``bench_set`` label (names the sets in findings)
    benchmark_sets: tuple[str, ...] = ()

    @property
    def org_ids(self) -> list[str]:
        return [str(x) for x in self.signals.column("org_id").to_pylist()]


def _calibrator(name: str) -> TailCalibrator:
    """A signal's calibrator: count statistics get a scale floor of one unit."""
    return TailCalibrator(min_scale=1.0 if name in COUNT_SIGNALS else 0.0)


def lift_mask(
    p: np.ndarray, gate: float, weak_gate: float, quorum: float, min_quorum: int = 5
) -> np.ndarray:
    """Which members of one cluster its evidence may lift: those with ``p <= gate``, or, when
    at least ``quorum`` of the members, and at least ``min_quorum`` of them, have
    ``p <= weak_gate`` (the cluster is one suspicious operator's), all of those. A cluster
    mixing suspicious and ordinary accounts (a benign account wrongly linked) lifts only
    members with strong evidence of their own; so does a small one, where "all members are
    mildly suspicious" is one ordinary account at p 0.05 linked to one attacker."""
    weak = p <= weak_gate
    if len(p) and weak.mean() >= quorum and int(weak.sum()) >= min_quorum:
        return weak
    return p <= gate


def loosely_linked(cluster: HydraCluster, members: Sequence[str], margin: float) -> np.ndarray:
    """Which ``members`` hang on the cluster by one edge less than ``margin`` over its edge
    threshold. Under independence the threshold lets about 1% of accounts get one false
    edge, so such a member may be there by coincidence; the weak lift gate (a quorum of
    mildly suspicious members) does not apply to it, only strong evidence of its own does."""
    tau = float(cluster.evidence.get("edge_threshold", 0.0))
    return np.array([cluster.single_edge.get(m, np.inf) < tau + margin for m in members],
                    dtype=bool)


def link_coincidence(cluster: HydraCluster, members: Sequence[str]) -> np.ndarray:
    """For each of ``members``, the chance that what ties it to the cluster is a
    coincidence: for a member held by one edge of weight ``w`` (``-log10`` of the share of
    benign pairs that share such evidence), about ``size * 10**-w``, the chance that an
    unrelated account shares that much with one of the cluster's members; 0 for members held
    by more. A lifted p-value is never smaller than this: the cluster's evidence is only
    worth as much as the member's membership."""
    size = len(cluster.members)
    return np.array([
        min(1.0, size * 10.0 ** -cluster.single_edge[m]) if m in cluster.single_edge else 0.0
        for m in members
    ])


def _chernoff_stat(share: np.ndarray, n: np.ndarray, p0: float) -> np.ndarray:
    """``n * KL(share || p0) / ln 10``: the Chernoff bound on ``-log10 P(X >= k)`` for
    ``X ~ Binomial(n, p0)``; finite even where the exact tail underflows, 0 at or below
    the base rate."""
    q = np.clip(share, 0.0, 1.0)
    p0 = min(max(p0, 1e-12), 1.0 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / p0), 0.0)
        b = np.where(q < 1, (1 - q) * np.log(np.where(q < 1, 1 - q, 1.0) / (1 - p0)), 0.0)
    kl = a + b
    return np.where(q > p0, n * kl / np.log(10.0), 0.0)


_N_FOLDS = 5


def _stable_folds(org_ids: Sequence[str], k: int) -> np.ndarray:
    """Fold of each account, by a hash of its id (deterministic, balanced by rank)."""
    h = np.array([int.from_bytes(hashlib.blake2b(o.encode(), digest_size=4).digest(), "big")
                  for o in org_ids])
    folds = np.empty(len(h), np.int64)
    folds[np.argsort(h, kind="stable")] = np.arange(len(h)) % k
    return folds


_MAX_CHARS = 600  # about MAX_TOKENS word pieces of English


def _default_embedder(texts: Sequence[str]) -> np.ndarray:
    from distillwarden.embeddings import embed_texts

    return embed_texts(list(texts), max_chars=_MAX_CHARS)


def _persistent_embedder(directory: Path) -> Callable[[Sequence[str]], np.ndarray]:
    """MiniLM embeddings kept on disk by text (shared with the evaluation's MMD baseline,
    which embeds the same column with the same truncation)."""
    from distillwarden.evaluate.embedding_cache import EmbeddingCache as DiskCache

    disk = DiskCache(directory, _default_embedder, name=cache_name(_MAX_CHARS))

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(disk.embed(list(texts)), dtype=np.float32)

    return embed


class DistillationDetector:
    """Scores accounts for distillation / rival-evaluation traffic (estimator API).

    ``fit(events, accounts)`` on benign reference traffic; ``decision_function`` returns
    ``org_id -> risk`` (``-log10`` of the combined tail probability, higher is more
    suspicious); ``threshold_for_fpr(fpr)`` the risk that a share ``fpr`` of benign accounts
    exceed; ``clusters`` the hydra cluster of each account.
    """

    def __init__(
        self,
        *,
        signals: Sequence[str] | None = None,
        use_embeddings: bool = True,
        embed_per_account: int = 32,
        embedding_rate: float = 1.0,
        embedder: Callable[[Sequence[str]], np.ndarray] | None = None,
        combine: str = "knn+cauchy",
        knn_k: int = 5,
        knn_metric: str = "euclidean",
        knn_low: float = 0.0,
        link: bool = True,
        cluster_lift: bool = True,
        lift_gate: float = 0.01,
        lift_gate_weak: float = 0.05,
        lift_quorum: float = 0.9,
        lift_quorum_min: int = 5,
        pool_min_members: int = 10,
        lift_single_edge_margin: float = 1.0,
        linker: HydraLinker | None = None,
        benchmark_index: BenchmarkIndex | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.signals = signals
        self.use_embeddings = use_embeddings
        self.embed_per_account = embed_per_account
        self.embedding_rate = embedding_rate
        self.embedder = embedder
        self.combine = combine
        self.knn_k = knn_k
        self.knn_metric = knn_metric
        self.knn_low = knn_low
        self.link = link
        self.cluster_lift = cluster_lift
        self.lift_gate = lift_gate
        self.lift_gate_weak = lift_gate_weak
        self.lift_quorum = lift_quorum
        self.lift_quorum_min = lift_quorum_min
        self.pool_min_members = pool_min_members
        self.lift_single_edge_margin = lift_single_edge_margin
        self.linker = linker
        self.benchmark_index = benchmark_index
        self.cache_dir = cache_dir

    #: event columns the detector reads (the evaluation harness reads only these)
    required_columns: tuple[str, ...] = DETECT_COLUMNS

    def __getstate__(self) -> dict[str, Any]:
        # the embedding cache and last result are per-process working memory
        state = dict(self.__dict__)
        state.pop("embedding_cache_", None)
        state.pop("_last", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a detector pickled before a parameter existed gets that parameter's default
        params = inspect.signature(type(self).__init__).parameters.values()
        defaults = {p.name: p.default for p in params if p.default is not p.empty}
        self.__dict__.update({**defaults, **state})

    # ------------------------------------------------------------------ helpers
    def _signal_names(self) -> tuple[str, ...]:
        names = tuple(self.signals) if self.signals is not None else DEFAULT_SIGNALS
        if not self.use_embeddings:
            names = tuple(n for n in names if n not in EMBEDDING_SIGNALS)
        unknown = [n for n in names if n not in ALL_SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known signals: {list(ALL_SIGNALS)}")
        return names

    def _cache(self) -> EmbeddingCache:
        cache = getattr(self, "embedding_cache_", None)
        if cache is None:
            embedder = self.embedder or _default_embedder
            if self.cache_dir is not None and self.embedder is None:
                embedder = _persistent_embedder(Path(self.cache_dir))
            cache = EmbeddingCache(embedder)
            self.embedding_cache_ = cache
        return cache

    def compute_signals(
        self,
        events: pa.Table,
        accounts: pa.Table | None = None,
        *,
        features: pa.Table | None = None,
        fitting: bool = False,
    ) -> tuple[pa.Table, pa.Table, dict[str, np.ndarray]]:
        """Request features (unless given, e.g. cached per segment), account signals (with
        embedding signals joined in) and embedding centroids for ``events``."""
        feats = (
            features if features is not None
            else request_features(events, index=self.benchmark_index)
        )
        sig = account_signals(feats, accounts)
        centroids: dict[str, np.ndarray] = {}
        if self.use_embeddings and sig.num_rows:
            sample = sample_for_embedding(
                events, per_account=self.embed_per_account, rate=self.embedding_rate
            )
            ids = [str(x) for x in sample.column("event_id").to_pylist()]
            texts = [str(x) for x in sample.column("text").to_pylist()]
            vecs = self._cache().get(ids, texts)
            orgs = np.array([str(x) for x in sample.column("org_id").to_pylist()], dtype=object)
            if fitting:
                self._fit_reference(vecs)
            emb = embedding_signals(orgs, vecs, self.reference_)
            sig = _left_join(sig, emb)
            for org in np.unique(orgs) if len(orgs) else []:
                centroids[str(org)] = vecs[orgs == org].mean(0)
        return feats, sig, centroids

    def _fit_reference(self, vecs: np.ndarray) -> None:
        ref: MMDReference | None = MMDReference.fit(vecs) if len(vecs) >= 4 else None
        self.reference_ = ref

    def _statistics(
        self, sig: pa.Table, names: tuple[str, ...], *, cap_volume: bool = True
    ) -> np.ndarray:
        """Signal values, share signals as count statistics. The count statistic grows with
        the number of requests, so an account busier than every benign reference account
        would be judged where calibration has seen nothing: its requests are counted up to
        the busiest reference account's (``n_cap_``), never beyond (``cap_volume``)."""
        x = signal_matrix(sig, names)
        n = sig.column("n_requests").to_numpy(zero_copy_only=False).astype(np.float64)
        cap = getattr(self, "n_cap_", None)
        if cap_volume and cap is not None:
            n = np.minimum(n, cap)
        for j, name in enumerate(names):
            if name in COUNT_SIGNALS:
                share = np.nan_to_num(x[:, j])
                x[:, j] = _chernoff_stat(share, n, self.base_rates_.get(name, _MIN_RATE))
        return x

    # ------------------------------------------------------------------ estimator API
    def fit(self, events: pa.Table, accounts: pa.Table | None = None) -> DistillationDetector:
        """Learn benign base rates, per-signal calibrators, the MMD reference, the linkage
        null and the out-of-fold risk distribution from benign reference traffic."""
        names = self._signal_names()
        if self.combine not in COMBINATIONS:
            raise ValueError(f"unknown combination {self.combine!r}; use one of {COMBINATIONS}")
        if self.knn_metric not in KNN_METRICS:
            raise ValueError(f"unknown kNN metric {self.knn_metric!r}; use one of {KNN_METRICS}")
        if not (np.isfinite(self.knn_low) and self.knn_low >= 0):
            raise ValueError(f"knn_low must be a finite number >= 0 (normal-score units), "
                             f"got {self.knn_low!r}")
        self.reference_ = None
        feats, sig, centroids = self.compute_signals(events, accounts, fitting=True)
        if sig.num_rows < 10:
            raise ValueError(
                f"the benign reference has {sig.num_rows} accounts; fit on at least 10 (a few "
                "hundred give useful calibration)"
            )
        n = sig.column("n_requests").to_numpy(zero_copy_only=False).astype(np.float64)
        self.n_cap_ = float(n.max())
        self.base_rates_ = {}
        for name in COUNT_SIGNALS:
            share = np.nan_to_num(signal_matrix(sig, (name,))[:, 0])
            rate = float((share * n).sum() + 1.0) / float(n.sum() + 2.0)
            self.base_rates_[name] = max(rate, _MIN_RATE)
        stats = self._statistics(sig, names)
        self.calibrators_ = {
            name: _calibrator(name).fit(stats[:, j]) for j, name in enumerate(names)
        }
        self.signal_names_ = names
        # out of fold (5 folds): calibrators and kNN index fitted on 4/5 of the reference
        # score the rest, so the benign risk distribution is not optimistic
        folds = _stable_folds([str(o) for o in sig.column("org_id").to_pylist()], _N_FOLDS)
        # what a licence permits (an evaluation lab's scripted runs) is no evidence against its
        # holder (the signal is undefined when it is scored: left out of the combination, 0
        # in the kNN space), but it is how benign accounts behave: the calibrators and the
        # kNN reference keep every account's values, so the permission changes the scores of
        # its holders only
        permitted = permitted_signals(sig, names)
        oof_p = np.full((len(folds), len(names)), np.nan)
        oof_d = np.full(len(folds), np.nan)  # the reference's own spread, for calibration
        oof_d_scored = np.full(len(folds), np.nan)  # as the held-out accounts are scored
        for f in range(_N_FOLDS):
            part = folds == f
            if not part.any() or part.all():
                continue
            cals = [_calibrator(name).fit(stats[~part, j]) for j, name in enumerate(names)]
            p_in = np.column_stack([c.pvalue(stats[~part, j]) for j, c in enumerate(cals)])
            p_out = np.column_stack([c.pvalue(stats[part, j]) for j, c in enumerate(cals)])
            z_in = normal_scores(p_in, self.knn_low)
            oof_d[part] = KnnCombiner.knn_distances(
                z_in, normal_scores(p_out, self.knn_low), self.knn_k, self.knn_metric)
            oof_d_scored[part] = oof_d[part]
            if permitted[part].any():
                p_out[permitted[part]] = np.nan
                oof_d_scored[part] = KnnCombiner.knn_distances(
                    z_in, normal_scores(p_out, self.knn_low), self.knn_k, self.knn_metric)
            oof_p[part] = p_out
        z_all = normal_scores(self._pvalues(stats), self.knn_low)
        self.combiner_ = KnnCombiner(self.knn_k, self.knn_metric).fit(z_all, oof_d)
        oof = -np.log10(
            self._mix(oof_p, lambda: self.combiner_.calibrator_.pvalue(oof_d_scored)))
        self.benign_risk_ = np.sort(oof[np.isfinite(oof)])
        self.risk_calibrator_ = TailCalibrator(min_scale=0.1).fit(self.benign_risk_)
        if self.link:
            self.linker_ = (self.linker or HydraLinker()).fit(feats, accounts, centroids)
        self.n_reference_accounts_ = sig.num_rows
        self._last: tuple[Any, AccountScores] | None = None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrators_"):
            raise NotFittedError(
                "DistillationDetector is not fitted: call fit(benign_events, accounts) first, "
                "or use distillwarden.detect.reference.default_detector()"
            )

    def _pvalues(self, stats: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
        """Calibrated p-values of ``stats``, whose columns are ``names`` (default: every
        fitted signal)."""
        names = self.signal_names_ if names is None else names
        return np.column_stack(
            [self.calibrators_[name].pvalue(stats[:, j]) for j, name in enumerate(names)]
        ) if stats.shape[1] else np.ones((stats.shape[0], 0))

    def _combine(self, p: np.ndarray) -> np.ndarray:
        return self._mix(p, lambda: self.combiner_.pvalue(normal_scores(p, self.knn_low)))

    def _mix(self, p: np.ndarray, p_knn: Callable[[], np.ndarray]) -> np.ndarray:
        """The combined p-value of each row of per-signal p-values ``p``, given the kNN
        novelty p-values (computed only when the combination uses them)."""
        if self.combine == "knn":
            return p_knn()
        if self.combine == "knn+cauchy":
            return either(p_knn(), combine_marginal(p, "cauchy"))
        return combine_marginal(p, self.combine)

    def score_accounts(
        self,
        events: pa.Table,
        accounts: pa.Table | None = None,
        *,
        features: pa.Table | None = None,
    ) -> AccountScores:
        """Signals, per-signal p-values, combined p-values, clusters and risk per account.

        ``features`` may pass the request features of ``events`` when already computed."""
        self._check_fitted()
        # the cache holds the inputs themselves, so identity can't be confused by id reuse
        key = (events, accounts, features)
        last = getattr(self, "_last", None)
        if last is not None and all(a is b for a, b in zip(last[0], key, strict=True)):
            return last[1]
        if features is None:
            features = request_features(events, index=self.benchmark_index)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="linkage") as pool:
            # without embeddings linkage needs only the request features: it runs beside
            # the signal aggregation (DuckDB's, off the GIL)
            early = (pool.submit(self.linker_.link, features, accounts, {})
                     if self.link and not self.use_embeddings else None)
            feats, sig, centroids = self.compute_signals(events, accounts, features=features)
            linked = early.result() if early is not None else None
        stats = self._statistics(sig, self.signal_names_)
        p = self._pvalues(stats)
        p[permitted_signals(sig, self.signal_names_)] = np.nan
        p_acc = self._combine(p) if sig.num_rows else np.zeros(0)
        orgs = [str(o) for o in sig.column("org_id").to_pylist()]
        clusters: list[HydraCluster] = []
        cluster_of: dict[str, str] = {}
        p_final = p_acc.copy()
        if self.link and sig.num_rows >= 2:
            clusters = (linked if linked is not None
                        else self.linker_.link(feats, accounts, centroids))
            pos = {o: i for i, o in enumerate(orgs)}
            # pooling pays where many accounts each carry a little evidence; a small
            # cluster keeps the members' combination alone (no Bonferroni factor to pay)
            big = [c for c in clusters if len(c.members) >= self.pool_min_members]
            pooled = self._pooled_cluster_p(feats, big) if self.cluster_lift else {}
            for c in clusters:
                present = [m for m in c.members if m in pos]
                idx = np.array([pos[m] for m in present], dtype=np.int64)
                for m in c.members:
                    cluster_of[m] = c.cluster_id
                if self.cluster_lift and len(idx) >= 2:
                    # a cluster raises confidence in members that look suspicious on their
                    # own; it never flags an account with nothing suspicious of its own
                    p_c = float(cauchy_combine(p_acc[idx][None, :])[0])
                    if c.cluster_id in pooled:
                        p_c = min(1.0, 2.0 * min(p_c, pooled[c.cluster_id]))
                    gate = lift_mask(p_acc[idx], self.lift_gate, self.lift_gate_weak,
                                     self.lift_quorum, self.lift_quorum_min)
                    loose = loosely_linked(c, present, self.lift_single_edge_margin)
                    gate &= ~loose | (p_acc[idx] <= self.lift_gate)
                    floor = link_coincidence(c, present)
                    p_final[idx] = np.where(
                        gate, np.minimum(p_acc[idx], np.maximum(p_c, floor)), p_acc[idx])
        risk = -np.log10(np.clip(p_final, 1e-300, 1.0))
        scores = AccountScores(
            signals=sig, statistics=stats, pvalues=p, p_account=p_acc, p_final=p_final,
            risk=risk, cluster_of=cluster_of, clusters=clusters,
            signal_names=self.signal_names_,
            benchmark_sets=(self.benchmark_index or default_benchmark_index()).set_names,
        )
        self._last = (key, scores)
        return scores

    def _pooled_cluster_p(
        self, feats: pa.Table, clusters: Sequence[HydraCluster]
    ) -> dict[str, float]:
        """Each cluster's traffic taken as one operator's: the shares of request features
        over all its members' requests pooled, calibrated like one account's (volume not
        capped: adding up the members' requests is the point) and combined (Cauchy). The
        members' own p-values cannot add up (linked accounts are dependent, and Cauchy is
        valid under any dependence), but their pooled requests can: 2,000 accounts that each
        send a slightly raised share of benchmark items send, together, a share no benign
        account's volume would show."""
        # shares of request features only: timing (pacing mix) means nothing once
        # several accounts' requests are interleaved
        names = [n for n in self.signal_names_ if n in COUNT_SIGNALS and n != "pacing_mix"]
        member_of = {m: c.cluster_id for c in clusters for m in c.members}
        if not names or not member_of:
            return {}
        org = feats.column("org_id")
        keep = pc.is_in(org, value_set=pa.array(list(member_of), org.type))
        sub = feats.filter(keep)
        if sub.num_rows == 0:
            return {}
        mapped = pa.array([member_of[str(o)] for o in sub.column("org_id").to_pylist()],
                          pa.string())
        sub = sub.set_column(sub.schema.get_field_index("org_id"), "org_id", mapped)
        sig = account_signals(sub, None)
        stats = self._statistics(sig, tuple(names), cap_volume=False)
        p_pool = cauchy_combine(self._pvalues(stats, names))
        return {str(c): float(v) for c, v in
                zip(sig.column("org_id").to_pylist(), p_pool, strict=True)}

    def decision_function(
        self, events: pa.Table, accounts: pa.Table | None = None
    ) -> dict[str, float]:
        """``org_id -> risk`` (higher is more suspicious)."""
        s = self.score_accounts(events, accounts)
        return {o: float(r) for o, r in zip(s.org_ids, s.risk, strict=True)}

    def score_samples(
        self, events: pa.Table, accounts: pa.Table | None = None
    ) -> dict[str, float]:
        """Alias of :meth:`decision_function` (scikit-learn's outlier-detector name)."""
        return self.decision_function(events, accounts)

    def threshold_for_fpr(self, fpr: float) -> float:
        """The risk above which a share ``fpr`` of benign accounts fall (out-of-fold
        estimate; beyond the reference's resolution, from the fitted exponential tail)."""
        self._check_fitted()
        if not 0.0 < fpr < 1.0:
            raise ValueError(f"fpr must be in (0, 1), got {fpr}")
        r = self.benign_risk_
        if len(r) == 0:
            return float("inf")
        k = int(np.floor(fpr * (len(r) + 1)))
        if k >= 1:
            return float(r[len(r) - k])
        cal = self.risk_calibrator_
        if cal.tail_shape > 0:
            z = ((cal.p_u_ / fpr) ** cal.tail_shape - 1.0) / cal.tail_shape
        else:
            z = float(np.log(cal.p_u_ / fpr))
        return float(cal.u_ + cal.scale_ * z)

    def clusters(
        self, events: pa.Table, accounts: pa.Table | None = None
    ) -> dict[str, str | None]:
        """``org_id -> hydra cluster id`` (None for accounts linked to no other)."""
        s = self.score_accounts(events, accounts)
        return {o: s.cluster_of.get(o) for o in s.org_ids}


def _left_join(left: pa.Table, right: pa.Table) -> pa.Table:
    """Join ``right``'s columns onto ``left`` by org_id (nulls where absent)."""
    pos = {o: i for i, o in enumerate(right.column("org_id").to_pylist())}
    idx = pa.array([pos.get(o) for o in left.column("org_id").to_pylist()], pa.int64())
    out = left
    for name in right.column_names:
        if name == "org_id":
            continue
        out = out.append_column(name, right.column(name).take(idx))
    return out
