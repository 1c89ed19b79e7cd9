"""Cross-account linkage: hydra clusters of accounts run by one operator.

Each account is summarised by *evidence tokens*: the IP networks and user agents it mostly
uses, its payment fingerprint, the templates it repeats, MinHash bands of its set of active
hours (synchronised timing) and SimHash bands of its prompt-embedding centroid. Accounts
that share a token are candidate pairs (blocking, never all pairs). A pair's edge weight is
the sum over evidence kinds it shares of ``-log10 q_kind``, where ``q_kind`` is how often two
*benign* accounts share that kind of evidence (the calibrated null, learned in :meth:`fit`).
Content evidence (shared templates, near-duplicate fingerprints, embedding centroids) is
correlated with itself and is shared by unrelated operators who copy the same public
template, so together it counts as one kind capped at ``content_cap``: content supports a
link but never makes one alone. Edges at or above ``threshold`` (default
``log10(n_accounts) + 2``: under independence, fewer than 1% of accounts get a false edge)
are kept, and clusters are connected components.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["DEFAULT_WEIGHTS", "HydraCluster", "HydraLinker", "evidence_tokens"]

log = logging.getLogger(__name__)

#: prior weights (-log10 of the benign sharing rate) used before :meth:`HydraLinker.fit`
DEFAULT_WEIGHTS: dict[str, float] = {
    "net": 4.0, "ua": 1.0, "pay": 6.0, "tpl": 2.0, "fp": 2.0, "time": 1.0, "emb": 1.0,
}

CONTENT_KINDS = ("tpl", "fp", "emb")

_TIME_HASHES = 8
_TIME_BAND = 2
_EMB_BITS = 12
_EMB_BANDS = 4


@dataclass(frozen=True)
class HydraCluster:
    """Linked accounts and the evidence that links them."""

    cluster_id: str
    members: tuple[str, ...]
    evidence: dict[str, Any]
    min_edge_weight: float


def _token_sql(min_share: float, min_repeat: int) -> str:
    return f"""
    WITH n AS (SELECT org_id, count(*) AS n FROM feats GROUP BY org_id),
    infra AS (
        SELECT f.org_id, k.kind, k.v, count(*) AS c, any_value(n.n) AS n
        FROM feats f JOIN n ON f.org_id = n.org_id,
        LATERAL (VALUES ('net', f.ip_net_hash), ('ua', f.ua_hash)) k(kind, v)
        WHERE k.v IS NOT NULL
        GROUP BY f.org_id, k.kind, k.v
    ),
    tpl AS (
        SELECT f.org_id, k.kind, k.v, count(*) AS c, any_value(n.n) AS n
        FROM feats f JOIN n ON f.org_id = n.org_id,
        LATERAL (VALUES ('tpl', CAST(f.tpl_prefix AS VARCHAR)),
                        ('fp', CAST(f.fp_a AS VARCHAR))) k(kind, v)
        WHERE k.v IS NOT NULL AND k.v <> '0'
        GROUP BY f.org_id, k.kind, k.v
    )
    SELECT org_id, kind, v FROM infra WHERE c >= {min_share} * n
    UNION
    SELECT org_id, kind, v FROM tpl WHERE c >= {min_repeat} AND c >= {min_share} * n
    """


def _time_tokens(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """MinHash bands of each account's set of active hours (accounts active >= 3 hours)."""
    hashes = ", ".join(
        f"min(hash(h, {s})) AS m{s}" for s in range(_TIME_HASHES)
    )
    rows = con.sql(
        f"""
        SELECT org_id, {hashes} FROM (
            SELECT DISTINCT org_id, date_trunc('hour', ts) AS h FROM feats
        ) GROUP BY org_id HAVING count(*) >= 3
        """
    ).fetchall()
    out = []
    for row in rows:
        org, mins = row[0], row[1:]
        for b in range(0, _TIME_HASHES, _TIME_BAND):
            out.append((org, "time", f"{b}:" + ":".join(str(m) for m in mins[b : b + _TIME_BAND])))
    return out


def _emb_tokens(centroids: dict[str, np.ndarray], seed: int) -> list[tuple[str, str, str]]:
    """SimHash bands of embedding centroids (centred on the mean centroid)."""
    if len(centroids) < 2:
        return []
    orgs = sorted(centroids)
    c = np.stack([centroids[o] for o in orgs]).astype(np.float64)
    c = c - c.mean(0, keepdims=True)
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((c.shape[1], _EMB_BITS * _EMB_BANDS))
    bits = (c @ planes) > 0
    out = []
    for i, org in enumerate(orgs):
        for b in range(_EMB_BANDS):
            band = bits[i, b * _EMB_BITS : (b + 1) * _EMB_BITS]
            out.append((org, "emb", f"{b}:" + "".join("1" if x else "0" for x in band)))
    return out


def evidence_tokens(
    features: pa.Table,
    accounts: pa.Table | None = None,
    centroids: dict[str, np.ndarray] | None = None,
    *,
    min_share: float = 0.05,
    min_repeat: int = 3,
    seed: int = 0,
) -> pa.Table:
    """Evidence tokens per account: a table ``org_id, kind, value``."""
    con = duckdb.connect()
    con.register("feats", features)
    rows = con.sql(_token_sql(min_share, min_repeat)).fetchall()
    rows += _time_tokens(con)
    con.close()
    if accounts is not None and "payment_fingerprint_hash" in accounts.column_names:
        present = set(features.column("org_id").to_pylist())
        for org, pay in zip(
            accounts.column("org_id").to_pylist(),
            accounts.column("payment_fingerprint_hash").to_pylist(),
            strict=True,
        ):
            if pay and org in present:
                rows.append((org, "pay", str(pay)))
    rows += _emb_tokens(centroids or {}, seed)
    return pa.table(
        {
            "org_id": pa.array([r[0] for r in rows], pa.string()),
            "kind": pa.array([r[1] for r in rows], pa.string()),
            "value": pa.array([r[2] for r in rows], pa.string()),
        }
    )


def _groups(tokens: pa.Table) -> tuple[list[str], list[tuple[str, str, np.ndarray]]]:
    """Account index and, per distinct token, the sorted indices of accounts holding it."""
    orgs = sorted(set(tokens.column("org_id").to_pylist()))
    index = {o: i for i, o in enumerate(orgs)}
    by_token: dict[tuple[str, str], set[int]] = {}
    for org, kind, value in zip(
        tokens.column("org_id").to_pylist(),
        tokens.column("kind").to_pylist(),
        tokens.column("value").to_pylist(),
        strict=True,
    ):
        by_token.setdefault((kind, value), set()).add(index[org])
    groups = [
        (k, v, np.array(sorted(members), dtype=np.int64))
        for (k, v), members in by_token.items()
        if len(members) >= 2
    ]
    return orgs, groups


class HydraLinker:
    """Links accounts into hydra clusters (scikit-learn style: ``fit`` on benign traffic
    learns how often benign accounts share each kind of evidence)."""

    def __init__(
        self,
        *,
        threshold: float | None = None,
        max_block: int = 2500,
        min_share: float = 0.05,
        min_repeat: int = 3,
        max_weight: float = 8.0,
        content_cap: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.threshold = threshold
        self.max_block = max_block
        self.min_share = min_share
        self.min_repeat = min_repeat
        self.max_weight = max_weight
        self.content_cap = content_cap
        self.seed = seed

    def _tokens(
        self,
        features: pa.Table,
        accounts: pa.Table | None,
        centroids: dict[str, np.ndarray] | None,
    ) -> pa.Table:
        return evidence_tokens(
            features, accounts, centroids,
            min_share=self.min_share, min_repeat=self.min_repeat, seed=self.seed,
        )

    def fit(
        self,
        features: pa.Table,
        accounts: pa.Table | None = None,
        centroids: dict[str, np.ndarray] | None = None,
    ) -> HydraLinker:
        """Learn ``q_kind``: the share of benign account pairs that share a token of each kind
        (+1 smoothed), and the weights ``-log10 q_kind``."""
        tokens = self._tokens(features, accounts, centroids)
        n = len(set(features.column("org_id").to_pylist()))
        pairs_total = max(n * (n - 1) / 2.0, 1.0)
        orgs, groups = _groups(tokens)
        shared: dict[str, set[tuple[int, int]]] = {k: set() for k in DEFAULT_WEIGHTS}
        for kind, _v, members in groups:
            if len(members) > 2000:  # a huge benign block: count it without enumerating
                shared.setdefault(kind + "#big", set()).add((len(members), 0))
                continue
            i, j = np.triu_indices(len(members), 1)
            shared.setdefault(kind, set()).update(zip(members[i].tolist(), members[j].tolist(), strict=True))
        self.null_rate_ = {}
        self.weights_ = {}
        for kind in DEFAULT_WEIGHTS:
            count = float(len(shared.get(kind, ())))
            count += sum(k * (k - 1) / 2.0 for k, _ in shared.get(kind + "#big", ()))
            q = (count + 1.0) / (pairs_total + 1.0)
            self.null_rate_[kind] = q
            self.weights_[kind] = float(min(-np.log10(q), self.max_weight))
        self.n_reference_accounts_ = n
        return self

    def link(
        self,
        features: pa.Table,
        accounts: pa.Table | None = None,
        centroids: dict[str, np.ndarray] | None = None,
    ) -> list[HydraCluster]:
        """Clusters (of two or more accounts) in this traffic, each with its evidence."""
        weights = getattr(self, "weights_", DEFAULT_WEIGHTS)
        tokens = self._tokens(features, accounts, centroids)
        orgs, groups = _groups(tokens)
        n = len(orgs)
        if n < 2:
            return []
        tau = self.threshold if self.threshold is not None else float(np.log10(max(n, 10)) + 2.0)
        pair_i: list[np.ndarray] = []
        pair_j: list[np.ndarray] = []
        pair_kind: list[np.ndarray] = []
        chain_i: list[np.ndarray] = []
        chain_j: list[np.ndarray] = []
        kinds = sorted(weights)
        kind_code = {k: c for c, k in enumerate(kinds)}
        skipped = 0
        for kind, _v, members in groups:
            w = weights.get(kind, 0.0)
            if len(members) <= self.max_block:
                i, j = np.triu_indices(len(members), 1)
                pair_i.append(members[i])
                pair_j.append(members[j])
                pair_kind.append(np.full(len(i), kind_code[kind], np.int64))
            elif w >= tau:
                chain_i.append(members[:-1])
                chain_j.append(members[1:])
            else:
                skipped += 1
        if skipped:
            log.info("linkage: %d weak evidence tokens shared by > %d accounts skipped",
                     skipped, self.max_block)
        edges_i: list[np.ndarray] = list(chain_i)
        edges_j: list[np.ndarray] = list(chain_j)
        edge_w: dict[tuple[int, int], float] = {}
        if pair_i:
            pi = np.concatenate(pair_i)
            pj = np.concatenate(pair_j)
            pk = np.concatenate(pair_kind)
            # one contribution per (pair, kind), then sum the kinds' weights per pair
            key = (pi * n + pj) * len(kinds) + pk
            key = np.unique(key)
            pk = key % len(kinds)
            pair = key // len(kinds)
            wvec = np.array([weights[k] for k in kinds])[pk]
            is_content = np.isin(pk, [kind_code[k] for k in CONTENT_KINDS if k in kind_code])
            uniq, inv = np.unique(pair, return_inverse=True)
            total = np.bincount(inv, weights=np.where(is_content, 0.0, wvec))
            content = np.zeros(len(uniq))
            np.maximum.at(content, inv, np.where(is_content, wvec, 0.0))
            total += np.minimum(content, self.content_cap)
            strong = total >= tau
            edges_i.append(uniq[strong] // n)
            edges_j.append(uniq[strong] % n)
            edge_w = {
                (int(a // n), int(a % n)): float(t)
                for a, t in zip(uniq[strong], total[strong], strict=True)
            }
        if not edges_i:
            return []
        ei = np.concatenate(edges_i) if edges_i else np.zeros(0, np.int64)
        ej = np.concatenate(edges_j) if edges_j else np.zeros(0, np.int64)
        if len(ei) == 0:
            return []
        graph = coo_matrix((np.ones(len(ei)), (ei, ej)), shape=(n, n))
        _ncomp, labels = connected_components(graph, directed=False)
        sizes = np.bincount(labels)
        return self._clusters(orgs, labels, sizes, tokens, edge_w, tau)

    def _clusters(
        self,
        orgs: list[str],
        labels: np.ndarray,
        sizes: np.ndarray,
        tokens: pa.Table,
        edge_w: dict[tuple[int, int], float],
        tau: float,
    ) -> list[HydraCluster]:
        comp_members: dict[int, list[int]] = {}
        for idx, lab in enumerate(labels):
            if sizes[lab] >= 2:
                comp_members.setdefault(int(lab), []).append(idx)
        org_kinds: dict[str, list[tuple[str, str]]] = {}
        for org, kind, value in zip(
            tokens.column("org_id").to_pylist(),
            tokens.column("kind").to_pylist(),
            tokens.column("value").to_pylist(),
            strict=True,
        ):
            org_kinds.setdefault(org, []).append((kind, value))
        min_w: dict[int, float] = {}
        for (a, _b), w in edge_w.items():
            lab = int(labels[a])
            min_w[lab] = min(min_w.get(lab, np.inf), w)
        out = []
        for lab, idxs in sorted(comp_members.items(), key=lambda kv: -len(kv[1])):
            members = tuple(sorted(orgs[i] for i in idxs))
            counts: dict[tuple[str, str], int] = {}
            for m in members:
                for kv in set(org_kinds.get(m, ())):
                    counts[kv] = counts.get(kv, 0) + 1
            shared: dict[str, dict[str, Any]] = {}
            for (kind, value), c in sorted(counts.items(), key=lambda kv: -kv[1]):
                if c >= 2 and kind not in shared:
                    shared[kind] = {
                        "value": value[:16], "members_sharing": c, "share": c / len(members)
                    }
            cid = "hyd_" + hashlib.sha1("\n".join(members).encode()).hexdigest()[:12]
            out.append(
                HydraCluster(
                    cluster_id=cid,
                    members=members,
                    evidence={
                        "size": len(members),
                        "shared": shared,
                        "edge_threshold": tau,
                        "weights": dict(getattr(self, "weights_", DEFAULT_WEIGHTS)),
                    },
                    min_edge_weight=float(min_w.get(lab, tau)),
                )
            )
        return out
