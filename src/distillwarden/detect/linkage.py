"""Cross-account linkage: hydra clusters of accounts run by one operator.

Each account is summarised by *evidence tokens*: the IP networks and user agents it mostly
uses, its payment fingerprint, the templates it repeats, MinHash bands of its set of active
hours (synchronised timing), SimHash bands of its prompt-embedding centroid and its sign-up
day. Accounts
that share a token are candidate pairs (blocking, never all pairs). A pair's edge weight is
the sum over evidence kinds it shares of ``-log10 q_kind``, where ``q_kind`` is how often two
*benign* accounts share that kind of evidence (the calibrated null, learned in :meth:`fit`).
Timing and embedding evidence is graded: sharing more of an account's MinHash / SimHash bands
is rarer among benign pairs and weighs more (the weight per number of bands shared is learned
like the others). The reseller channel is supporting evidence capped at ``channel_cap``;
so is the sign-up day, which counts only against a cluster that signed up in a burst (at
least ``BURST_SHARE`` of its members on that day) and never between two accounts.
Accounts left alone after linking are attached to a cluster when their evidence against the
cluster's pooled tokens reaches the threshold, and clusters whose pooled tokens link them are
merged (``attach=True`` does both). Two clusters that already share a token also weigh their
shared schedule (``synchrony=True``): the hours in which two or more members of each were
active, against the schedules of random groups of the window's other accounts. One
operator's accounts each work a random part of its shifts, so no two of them share a timing
band, but its groups together keep the same shifts. Pooled evidence is discounted by how many distinct tokens
of a kind the pool holds (a stranger matches one of a big cluster's many client versions or
timing bands by chance more often than one account's), identity tokens (network, client,
card, template, fingerprint) weigh at least their own rarity among benign reference
accounts, and between two clusters the channel stays capped (one reseller serves many
operators). Content evidence (shared templates,
near-duplicate fingerprints, embedding centroids) is
correlated with itself and is shared by unrelated operators who copy the same public
template, so together it counts as one kind capped at ``content_cap``: content supports a
link but never makes one alone. Edges at or above ``threshold`` (default
``log10(n_accounts) + 2``: under independence, fewer than 1% of accounts get a false edge)
are kept, and clusters are connected components.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["DEFAULT_WEIGHTS", "HydraCluster", "HydraLinker", "evidence_tokens"]

log = logging.getLogger(__name__)

#: prior weights (-log10 of the benign sharing rate) used before :meth:`HydraLinker.fit`
DEFAULT_WEIGHTS: dict[str, float] = {
    "net": 4.0, "ua": 1.0, "pay": 6.0, "chan": 1.0, "tpl": 2.0, "fp": 2.0, "time": 1.0,
    "emb": 1.0, "signup": 2.0,
}
KINDS = tuple(DEFAULT_WEIGHTS)
#: sharing 1..MAX_GRADE distinct tokens of a kind (e.g. timing bands) is graded evidence
MAX_GRADE = 4

#: each kind's code (its index in ``KINDS``)
KIND_CODE = {k: c for c, k in enumerate(KINDS)}

CONTENT_KINDS = ("tpl", "fp", "emb")
#: supporting evidence: capped between accounts and between clusters (one reseller serves
#: many operators; many people sign up on any day), counted in full only when a lone account
#: is weighed against a cluster whose members share it
SUPPORT_KINDS = ("chan", "signup")
#: a cluster holds a sign-up day when at least this share of its members signed up on it
BURST_SHARE = 0.1
#: when more than this share of the accounts (of at least _SIGNUP_MIN_ACCOUNTS) have one
#: sign-up day, the table's times are not sign-up times and are not used
_SIGNUP_MAX_DAY_SHARE = 0.5
_SIGNUP_MIN_ACCOUNTS = 20
#: kinds whose tokens are identities (not similarity hashes): against a cluster's pooled
#: tokens, a token rare among benign reference accounts weighs by its own rarity
IDENTITY_KINDS = ("net", "ua", "pay", "tpl", "fp")

_TOKEN_SCHEMA = pa.schema(
    [("org_id", pa.string()), ("kind", pa.string()), ("value", pa.string())])
_TIME_HASHES = 16
_TIME_BAND = 4
#: a group's schedule: the hours in which at least this many of its members were active
_SCHEDULE_QUORUM = 2
#: a cluster's schedule counts as evidence from this many hours on
_MIN_POOLED_HOURS = 3
#: random groups of accounts drawn as the null of a shared schedule
_SYNC_DRAWS = 199
_EMB_BITS = 12
_EMB_BANDS = 4


@dataclass(frozen=True)
class HydraCluster:
    """Linked accounts and the evidence that links them."""

    cluster_id: str
    members: tuple[str, ...]
    evidence: dict[str, Any]
    min_edge_weight: float
    #: members tied to the cluster by one edge only (no second edge, not attached against
    #: the cluster's pooled evidence), with that edge's weight (in the units of
    #: ``evidence["edge_threshold"]``): one edge near the threshold can be a coincidence
    single_edge: dict[str, float] = field(default_factory=dict)


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


def _time_sql() -> str:
    """MinHash bands of each account's set of active hours (accounts active >= 3 hours),
    as tokens ``band:m1:m2:...``."""
    hashes = ", ".join(f"min(hash(h, {s})) AS m{s}" for s in range(_TIME_HASHES))
    bands = " UNION ALL ".join(
        f"SELECT org_id, 'time' AS kind, '{b}:' || "
        + " || ':' || ".join(f"CAST(m{s} AS VARCHAR)" for s in range(b, b + _TIME_BAND))
        + " AS v FROM mins"
        for b in range(0, _TIME_HASHES, _TIME_BAND)
    )
    return f"""
    WITH mins AS (
        SELECT org_id, {hashes} FROM (
            SELECT DISTINCT org_id, date_trunc('hour', ts) AS h FROM feats
        ) GROUP BY org_id HAVING count(*) >= 3
    )
    {bands}
    """


#: the channel of each account seen in the window: the account table's (its last row) where
#: it names one, else the last request's that does; a reseller's, not ``direct``
_CHANNEL_SQL = """
WITH seen AS (
    SELECT org_id, last(channel ORDER BY i) AS c FROM feats_chan
    WHERE channel IS NOT NULL AND channel <> '' GROUP BY org_id
),
listed AS (
    SELECT org_id, last(channel ORDER BY i) AS c FROM acc_chan
    WHERE channel IS NOT NULL AND channel <> '' GROUP BY org_id
),
present AS (SELECT DISTINCT org_id FROM feats_chan)
SELECT present.org_id, 'chan' AS kind, coalesce(listed.c, seen.c) AS v
FROM present LEFT JOIN seen ON present.org_id = seen.org_id
     LEFT JOIN listed ON present.org_id = listed.org_id
WHERE coalesce(listed.c, seen.c) IS NOT NULL AND coalesce(listed.c, seen.c) <> 'direct'
"""

#: the payment fingerprint of each account seen in the window (every account-table row)
_PAY_SQL = """
SELECT org_id, 'pay' AS kind, CAST(pay AS VARCHAR) AS v FROM acc_pay
WHERE pay IS NOT NULL AND CAST(pay AS VARCHAR) <> ''
  AND org_id IN (SELECT org_id FROM feats_chan)
"""


def _signup_tokens(accounts: pa.Table | None, present: pa.Array) -> pa.Table | None:
    """Sign-up day bands of the accounts seen in the window, from the accounts table's
    ``created`` (sign-up time): the UTC day (``d:2026-02-13``) and the day counted from noon
    (``n:2026-02-13``, noon of the day before to noon), so that two accounts created less
    than 12 hours apart share at least one band and accounts created a day or more apart
    share none. None when the table has no usable sign-up time."""
    if accounts is None or "created" not in accounts.column_names:
        return None
    created = accounts.column("created")
    typ = created.type
    try:
        if not (pa.types.is_timestamp(typ) or pa.types.is_date(typ)
                or pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            raise pa.ArrowInvalid(f"a column of {typ}")
        if pa.types.is_timestamp(typ) and typ.tz is None:  # naive: UTC, as the log's
            created = pc.assume_timezone(created, "UTC")
        created = pc.cast(created, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        log.warning("linkage: the accounts table's 'created' is not a sign-up time (%s); "
                    "sign-up evidence skipped", exc)
        return None
    keep = pc.and_(pc.is_valid(created), pc.is_in(accounts.column("org_id"), value_set=present))
    orgs = pc.filter(accounts.column("org_id"), keep)
    created = pc.filter(created, keep)
    if not len(orgs):
        return None
    half_day = pa.scalar(12 * 3600 * 1_000_000, pa.duration("us"))
    day = pc.binary_join_element_wise("d:", pc.strftime(created, format="%Y-%m-%d"), "")
    top = int(pc.max(pc.value_counts(day).field("counts")).as_py() or 0)
    if len(day) >= _SIGNUP_MIN_ACCOUNTS and top > _SIGNUP_MAX_DAY_SHARE * len(day):
        # no operator's burst: the day the accounts entered some system (a migration, an
        # import); as sign-up times they would link everyone through any cluster
        log.warning("linkage: %d of %d accounts 'signed up' on one day; the accounts table's "
                    "'created' is not a sign-up time, sign-up evidence skipped", top, len(day))
        return None
    noon = pc.binary_join_element_wise(
        "n:", pc.strftime(pc.add(created, half_day), format="%Y-%m-%d"), "")
    table = pa.table({
        "org_id": pa.concat_arrays([orgs.combine_chunks(), orgs.combine_chunks()]).cast(
            pa.string()),
        "kind": pa.array(["signup"] * (2 * len(orgs)), pa.string()),
        "value": pa.concat_arrays([day.combine_chunks(), noon.combine_chunks()]),
    })
    return table.group_by(["org_id", "kind", "value"]).aggregate([]).cast(_TOKEN_SCHEMA)


def _pool_holders(
    signup: np.ndarray | bool, sizes: np.ndarray, least: np.ndarray | int
) -> np.ndarray:
    """How many of a cluster's members must hold a token for the cluster to hold it: ``least``,
    and for a sign-up day a burst, ``BURST_SHARE`` of the members (a cluster whose members
    signed up over months shares some day by chance with any other; one that signed up in
    a few days holds each of those days with a good share of its members)."""
    least = np.asarray(least, np.float64)
    return np.where(signup, np.maximum(least, np.ceil(BURST_SHARE * sizes)), least)


def _active_hours(features: pa.Table, orgs: list[str]) -> csr_matrix:
    """Accounts (in ``orgs`` order) by hours of the window: 1 where the account sent a
    request in that hour."""
    org = features.column("org_id").cast(pa.string())
    idx = pc.index_in(org, value_set=pa.array(orgs, pa.string()))
    known = pc.is_valid(idx)
    row = idx.filter(known).to_numpy(zero_copy_only=False).astype(np.int64)
    ts = features.column("ts").filter(known)
    per_hour = 3600 * {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[ts.type.unit]
    hour = ts.cast(pa.int64()).to_numpy(zero_copy_only=False) // per_hour
    if not len(hour):
        return csr_matrix((len(orgs), 1))
    hour = hour - hour.min()
    m = csr_matrix((np.ones(len(row)), (row, hour)), shape=(len(orgs), int(hour.max()) + 1))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _schedules(hours: csr_matrix, members: np.ndarray) -> np.ndarray:
    """Each group's schedule: the hours (columns of ``hours``) in which at least
    ``_SCHEDULE_QUORUM`` of its members were active. ``members`` holds one row of account
    indices (rows of ``hours``) per group."""
    members = np.atleast_2d(members)
    groups, size = members.shape
    indicator = csr_matrix(
        (np.ones(members.size), (np.repeat(np.arange(groups), size), members.ravel())),
        shape=(groups, hours.shape[0]))
    return np.asarray((indicator @ hours).toarray() >= _SCHEDULE_QUORUM)


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
    """Evidence tokens per account: a table ``org_id, kind, value`` (one query per kind of
    evidence, straight to Arrow)."""
    con = duckdb.connect()
    try:
        con.register("feats", features)
        n = features.num_rows
        con.register("feats_chan", pa.table({
            "org_id": features.column("org_id"), "channel": features.column("channel"),
            "i": pa.array(np.arange(n, dtype=np.int64))}))
        queries = [_token_sql(min_share, min_repeat), _time_sql(), _CHANNEL_SQL]
        if accounts is not None and "channel" in accounts.column_names:
            con.register("acc_chan", pa.table({
                "org_id": accounts.column("org_id"),
                "channel": accounts.column("channel").cast(pa.string()),
                "i": pa.array(np.arange(accounts.num_rows, dtype=np.int64))}))
        else:
            con.register("acc_chan", pa.table({
                "org_id": pa.array([], pa.string()), "channel": pa.array([], pa.string()),
                "i": pa.array([], pa.int64())}))
        if accounts is not None and "payment_fingerprint_hash" in accounts.column_names:
            con.register("acc_pay", pa.table({
                "org_id": accounts.column("org_id"),
                "pay": accounts.column("payment_fingerprint_hash")}))
            queries.append(_PAY_SQL)
        parts = [con.sql(q).to_arrow_table().rename_columns(["org_id", "kind", "value"])
                 .cast(_TOKEN_SCHEMA) for q in queries]
    finally:
        con.close()
    signup = _signup_tokens(accounts, pc.unique(features.column("org_id")))
    if signup is not None:
        parts.append(signup)
    emb = _emb_tokens(centroids or {}, seed)
    if emb:
        parts.append(pa.table({
            "org_id": pa.array([r[0] for r in emb], pa.string()),
            "kind": pa.array([r[1] for r in emb], pa.string()),
            "value": pa.array([r[2] for r in emb], pa.string()),
        }))
    return pa.concat_tables(parts).combine_chunks()


@numba.njit(cache=True)
def _pair_keys(
    members: np.ndarray, sizes: np.ndarray, kinds: np.ndarray, n: int, n_kinds: int
) -> np.ndarray:
    """``(i * n + j) * n_kinds + kind`` for every pair ``i < j`` of accounts in each group
    (``members`` holds the groups' sorted account indices one after another)."""
    total = 0
    for g in range(len(sizes)):
        total += sizes[g] * (sizes[g] - 1) // 2
    out = np.empty(total, np.int64)
    o = 0
    start = 0
    for g in range(len(sizes)):
        for a in range(start, start + sizes[g]):
            base = members[a] * n
            for b in range(a + 1, start + sizes[g]):
                out[o] = (base + members[b]) * n_kinds + kinds[g]
                o += 1
        start += sizes[g]
    return out


def _groups(tokens: pa.Table) -> tuple[list[str], list[tuple[str, str, np.ndarray]]]:
    """Account index and, per distinct token held by two or more accounts, the sorted
    indices of the accounts holding it (vectorised: one sort over the token rows)."""
    org_col = tokens.column("org_id").combine_chunks()
    orgs = sorted(pc.unique(org_col).to_pylist())
    if not len(tokens):
        return orgs, []
    org_idx = pc.index_in(org_col, value_set=pa.array(orgs, pa.string())).to_numpy(
        zero_copy_only=False).astype(np.int64)
    key = pc.binary_join_element_wise(tokens.column("kind"), tokens.column("value"), "\x1f")
    codes = key.combine_chunks().dictionary_encode()
    tok = codes.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    # distinct (token, account) pairs, sorted by token then account
    pairs = np.unique(tok * max(len(orgs), 1) + org_idx)
    tok_of, acc_of = np.divmod(pairs, max(len(orgs), 1))
    starts = np.flatnonzero(np.r_[True, tok_of[1:] != tok_of[:-1]])
    sizes = np.diff(np.r_[starts, len(pairs)])
    names = codes.dictionary.to_pylist()
    groups = []
    for st, size in zip(starts[sizes >= 2].tolist(), sizes[sizes >= 2].tolist(), strict=True):
        kind, value = names[int(tok_of[st])].split("\x1f", 1)
        groups.append((kind, value, acc_of[st : st + size]))
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
        channel_cap: float = 2.0,
        signup_cap: float = 2.0,
        attach: bool = True,
        synchrony: bool = True,
        margin: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.threshold = threshold
        self.max_block = max_block
        self.min_share = min_share
        self.min_repeat = min_repeat
        self.max_weight = max_weight
        self.content_cap = content_cap
        self.channel_cap = channel_cap
        self.signup_cap = signup_cap
        self.attach = attach
        self.synchrony = synchrony
        self.margin = margin
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

    def _pairs(
        self, groups: list[tuple[str, str, np.ndarray]], n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[str, np.ndarray]]]:
        """Candidate pairs from tokens held by at most ``max_block`` accounts: ``(pair key
        i*n+j, kind code, number of distinct tokens of that kind shared)`` and the big
        blocks left out."""
        big = [(kind, members) for kind, _v, members in groups if len(members) > self.max_block]
        small = [(kind, members) for kind, _v, members in groups
                 if len(members) <= self.max_block]
        if not small:
            z = np.zeros(0, np.int64)
            return z, z, z, big
        sizes = np.array([len(m) for _k, m in small], np.int64)
        members = np.concatenate([m for _k, m in small]).astype(np.int64)
        kinds = np.array([KIND_CODE[k] for k, _m in small], np.int64)
        key = _pair_keys(members, sizes, kinds, n, len(KINDS))
        uniq, counts = np.unique(key, return_counts=True)
        return uniq // len(KINDS), uniq % len(KINDS), counts, big

    def fit(
        self,
        features: pa.Table,
        accounts: pa.Table | None = None,
        centroids: dict[str, np.ndarray] | None = None,
    ) -> HydraLinker:
        """Learn, per kind of evidence and per number of distinct tokens shared, the share of
        benign account pairs that share it (+1 smoothed): ``weights_[kind][b] = -log10 q``."""
        tokens = self._tokens(features, accounts, centroids)
        n_acc = len(set(features.column("org_id").to_pylist()))
        pairs_total = max(n_acc * (n_acc - 1) / 2.0, 1.0)
        orgs, groups = _groups(tokens)
        pair, kind, count, big = self._pairs(groups, max(len(orgs), 1))
        self.null_rate_: dict[str, list[float]] = {}
        self.weights_: dict[str, list[float]] = {}
        for c, k in enumerate(KINDS):
            extra = sum(len(m) * (len(m) - 1) / 2.0 for kk, m in big if kk == k)
            rates = []
            for b in range(1, MAX_GRADE + 1):
                shared = float(((kind == c) & (count >= b)).sum()) + (extra if b == 1 else 0.0)
                rates.append((shared + 1.0) / (pairs_total + 1.0))
            self.null_rate_[k] = rates
            self.weights_[k] = [float(min(-np.log10(q), self.max_weight)) for q in rates]
        self.n_reference_accounts_ = n_acc
        held = set(zip(tokens.column("org_id").to_pylist(), tokens.column("kind").to_pylist(),
                       tokens.column("value").to_pylist(), strict=True))
        self.token_holders_: dict[tuple[str, str], int] = dict(
            Counter((k, v) for _o, k, v in held if k in IDENTITY_KINDS))
        # evidence kinds are not independent among benign accounts (one product's users
        # share a client library, its templates and its working hours), so the threshold
        # is also set above the strongest evidence any benign reference pair has
        self.benign_max_pair_weight_ = 0.0
        if len(pair):
            uniq, inv = np.unique(pair, return_inverse=True)
            self.benign_max_pair_weight_ = float(
                self._pair_weight(kind, count, inv, len(uniq)).max()
            )
        return self

    def _token_weight(self, kind: str, value: str) -> float:
        """``-log10`` of the share of benign reference accounts holding this very token
        (+1 smoothed); 0 for similarity hashes and before ``fit``."""
        holders = getattr(self, "token_holders_", None)
        if holders is None or kind not in IDENTITY_KINDS:
            return 0.0
        n_ref = float(getattr(self, "n_reference_accounts_", 0))
        q = (holders.get((kind, value), 0) + 1.0) / (n_ref + 1.0)
        return float(min(-np.log10(q), self.max_weight))

    def threshold_for(self, n_accounts: int) -> float:
        """The edge threshold for a graph of ``n_accounts`` accounts: at least
        ``log10(n) + 2`` (under independence, fewer than 1% of accounts get a false edge)
        and above the strongest benign reference pair by ``margin``."""
        if self.threshold is not None:
            return float(self.threshold)
        base = float(np.log10(max(n_accounts, 10)) + 2.0)
        return max(base, getattr(self, "benign_max_pair_weight_", 0.0) + self.margin)

    def _weights(self) -> dict[str, list[float]]:
        fitted = getattr(self, "weights_", None)
        if fitted is not None:
            return fitted
        return {k: [w] * MAX_GRADE for k, w in DEFAULT_WEIGHTS.items()}

    def _support_caps(self, between: str) -> dict[str, float]:
        """The cap on each supporting kind for a pair of ``between`` (see
        :meth:`_pair_weight`)."""
        return {
            "accounts": {"chan": self.channel_cap, "signup": 0.0},
            "clusters": {"chan": self.channel_cap, "signup": self.signup_cap},
            "attach": {"chan": np.inf, "signup": np.inf},
        }[between]

    def _pair_weight(self, kind: np.ndarray, count: np.ndarray, inv: np.ndarray,
                     n_pairs: int, *, cap_content: bool = True, between: str = "accounts",
                     floor: np.ndarray | None = None) -> np.ndarray:
        """Total evidence per pair: infrastructure kinds add up; content kinds count once
        (their maximum) capped at ``content_cap``; the channel and the sign-up day are
        supporting evidence, each counted once and capped by what the pair is
        (``between``): two ``"accounts"``, the channel at ``channel_cap`` and the sign-up
        day not at all (many people sign up on any day: a day is evidence only as a
        cluster's burst); two ``"clusters"``, the channel at ``channel_cap`` and the
        sign-up day at ``signup_cap`` (one reseller serves many operators); a lone account
        and the cluster it may join (``"attach"``), neither capped."""
        weights = self._weights()
        table = np.array([weights[k] for k in KINDS])  # (kinds, grades)
        w = table[kind, np.minimum(count, MAX_GRADE) - 1]
        if floor is not None:
            w = np.maximum(w, floor)
        is_content = np.isin(kind, [KIND_CODE[k] for k in CONTENT_KINDS])
        caps = self._support_caps(between)
        is_support = np.isin(kind, [KIND_CODE[k] for k in SUPPORT_KINDS])
        plain = np.where(is_content | is_support, 0.0, w)
        total = np.bincount(inv, weights=plain, minlength=n_pairs).astype(np.float64)
        content = np.zeros(n_pairs)
        np.maximum.at(content, inv, np.where(is_content, w, 0.0))
        if cap_content:
            content = np.minimum(content, self.content_cap)
        total += content
        for k, cap in caps.items():
            part = np.zeros(n_pairs)
            np.maximum.at(part, inv, np.where(kind == KIND_CODE[k], w, 0.0))
            total += np.minimum(part, cap)
        return np.asarray(total)

    def link(
        self,
        features: pa.Table,
        accounts: pa.Table | None = None,
        centroids: dict[str, np.ndarray] | None = None,
    ) -> list[HydraCluster]:
        """Clusters (of two or more accounts) in this traffic, each with its evidence."""
        tokens = self._tokens(features, accounts, centroids)
        orgs, groups = _groups(tokens)
        n = len(orgs)
        if n < 2:
            return []
        tau = self.threshold_for(n)
        # a kind that weighs nothing between two accounts (the sign-up day) is not enumerated
        # in pairs (a popular day's holders, squared); it counts against clusters below
        pairless = {k for k, cap in self._support_caps("accounts").items() if cap <= 0}
        pair, kind, count, big = self._pairs([g for g in groups if g[0] not in pairless], n)
        weights = self._weights()
        edges_i: list[np.ndarray] = []
        edges_j: list[np.ndarray] = []
        # a big block's token links its holders on its own only if it is an identity strong
        # enough by itself (never content, never the channel)
        linking = [members for k, members in big
                   if weights[k][0] >= tau and k not in CONTENT_KINDS and k not in SUPPORT_KINDS]
        for members in linking:
            edges_i.append(members[:-1])
            edges_j.append(members[1:])
        skipped = len(big) - len(linking)
        if skipped:
            log.info("linkage: %d weak evidence tokens shared by > %d accounts skipped",
                     skipped, self.max_block)
        edge_w: dict[tuple[int, int], float] = {}
        if len(pair):
            uniq, inv = np.unique(pair, return_inverse=True)
            total = self._pair_weight(kind, count, inv, len(uniq))
            strong = total >= tau
            edges_i.append(uniq[strong] // n)
            edges_j.append(uniq[strong] % n)
            edge_w = {
                (int(a // n), int(a % n)): float(t)
                for a, t in zip(uniq[strong], total[strong], strict=True)
            }
        ei = np.concatenate(edges_i) if edges_i else np.zeros(0, np.int64)
        ej = np.concatenate(edges_j) if edges_j else np.zeros(0, np.int64)
        if len(ei) == 0:
            return []
        # ties per account: edges to others (a token shared by a whole big block ties its
        # holders to many) and the heaviest edge's weight
        ties = np.zeros(n, np.int64)
        heaviest = np.zeros(n)
        for members in linking:
            ties[members] += 2
        for (a, b), w in edge_w.items():
            ties[a] += 1
            ties[b] += 1
            heaviest[a] = max(heaviest[a], w)
            heaviest[b] = max(heaviest[b], w)
        graph = coo_matrix((np.ones(len(ei)), (ei, ej)), shape=(n, n))
        _ncomp, labels = connected_components(graph, directed=False)
        schedule: dict[int, dict[str, Any]] = {}
        if self.attach:
            attached = self._attach(labels, groups, n, tau)
            ties[attached != labels] += 2  # pooled evidence: at least two members' tokens
            hours = _active_hours(features, orgs) if self.synchrony else None
            labels, joined = self._merge(attached, groups, n, tau, hours)
            if hours is not None:
                for lab, w in joined.items():
                    kept = _schedules(hours, np.flatnonzero(labels == lab))[0]
                    schedule[lab] = {"hours": int(kept.sum()), "weight": round(w, 3)}
        sizes = np.bincount(labels)
        single = {int(i): float(heaviest[i]) for i in np.flatnonzero(ties == 1)}
        return self._clusters(orgs, labels, sizes, tokens, edge_w, tau, single, schedule)

    def _attach(
        self, labels: np.ndarray, groups: list[tuple[str, str, np.ndarray]], n: int, tau: float
    ) -> np.ndarray:
        """Attach each unlinked account to the cluster (>= 3 members) with which it shares
        the most evidence, when that evidence (counted against the cluster's pooled tokens,
        each token needing at least two holders in the cluster, content and channel not
        capped) reaches ``tau``."""
        sizes = np.bincount(labels, minlength=n)
        in_cluster = sizes[labels] >= 3
        lone = sizes[labels] == 1
        if not in_cluster.any() or not lone.any():
            return labels
        rows_a: list[np.ndarray] = []
        rows_c: list[np.ndarray] = []
        rows_k: list[np.ndarray] = []
        rows_w: list[np.ndarray] = []
        for kind, value, members in groups:
            labs = labels[members]
            clustered = in_cluster[members]
            if not clustered.any() or not lone[members].any():
                continue
            cl_ids, cl_counts = np.unique(labs[clustered], return_counts=True)
            cl_ids = cl_ids[cl_counts >= _pool_holders(kind == "signup", sizes[cl_ids], 2)]
            if not len(cl_ids):
                continue
            singles = members[lone[members]]
            a = np.repeat(singles, len(cl_ids))
            c = np.tile(cl_ids, len(singles))
            rows_a.append(a)
            rows_c.append(c)
            rows_k.append(np.full(len(a), KIND_CODE[kind], np.int64))
            rows_w.append(np.full(len(a), self._token_weight(kind, value)))
        if not rows_a:
            return labels
        acct, pool, typical = self._token_counts(groups, labels, n, np.full(n, 2))
        upair, total = self._pooled(rows_a, rows_c, rows_k, rows_w, n, acct, pool, typical,
                                    between="attach")
        out = labels.copy()
        best: dict[int, tuple[float, int]] = {}
        for pk, t in zip(upair.tolist(), total.tolist(), strict=True):
            acc_i, cl_i = divmod(int(pk), n)
            if t >= tau and t > best.get(acc_i, (-1.0, -1))[0]:
                best[acc_i] = (float(t), cl_i)
        for acc_i, (_t, cl_i) in best.items():
            out[acc_i] = cl_i
        return out

    def _pooled(
        self, rows_a: list[np.ndarray], rows_b: list[np.ndarray], rows_k: list[np.ndarray],
        rows_w: list[np.ndarray], n: int, pool_a: np.ndarray, pool_b: np.ndarray,
        typical: np.ndarray, *, between: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Evidence between (account or cluster ``a``, cluster ``b``) from one row per shared
        token: pair keys ``a * n + b`` and their total weight. Against a whole cluster, shared
        templates are specific evidence, so content is not capped; the supporting kinds
        are capped as :meth:`_pair_weight` says for ``between``.
        An identity token (``rows_w``, :meth:`_token_weight`) weighs at least its own rarity
        among benign reference accounts: one template held by hundreds of a cluster's
        members and by no benign account says more than "shares a template".

        The null rates were learned on pairs of single accounts, each holding about
        ``typical[k]`` shared tokens of kind ``k``. A pooled side holding ``pool[., k]``
        distinct tokens offers a stranger that many more chances to match, so each kind
        weighs ``log10(pool_a · pool_b / typical²)`` less (never more): a big cluster's
        dozens of timing bands and client versions are not each as telling as one
        account's, while one reseller channel shared by every member stays one token."""
        a_all = np.concatenate(rows_a)
        b_all = np.concatenate(rows_b)
        k_all = np.concatenate(rows_k)
        key = (a_all * n + b_all) * len(KINDS) + k_all
        uniq, row_inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        token_w = np.zeros(len(uniq))
        np.maximum.at(token_w, row_inv, np.concatenate(rows_w))
        pair, kind = np.divmod(uniq, len(KINDS))
        upair, inv = np.unique(pair, return_inverse=True)
        total = self._pair_weight(kind, counts, inv, len(upair), cap_content=False,
                                  between=between, floor=token_w)
        ratio = pool_a[pair // n, kind] * pool_b[pair % n, kind] / typical[kind] ** 2
        penalty = np.bincount(inv, weights=np.log10(np.maximum(ratio, 1.0)),
                              minlength=len(upair))
        return upair, total - penalty

    @staticmethod
    def _token_counts(
        groups: list[tuple[str, str, np.ndarray]], labels: np.ndarray, n: int,
        min_holders: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per account and per label (cluster), the number of distinct shared tokens of each
        kind (a label counts a token held by at least ``min_holders[label]`` of its
        members), and the typical count per account holding any of that kind."""
        acct = np.zeros((n, len(KINDS)))
        pool = np.zeros((n, len(KINDS)))
        if groups:
            members = np.concatenate([m for _k, _v, m in groups])
            sizes = np.array([len(m) for _k, _v, m in groups], np.int64)
            kind_of = np.array([KIND_CODE[k] for k, _v, _m in groups], np.int64)
            group = np.repeat(np.arange(len(groups), dtype=np.int64), sizes)
            np.add.at(acct, (members, kind_of[group]), 1.0)
            # (token, label) pairs: how many of the label's members hold the token
            key, cnt = np.unique(group * n + labels[members], return_counts=True)
            g, lab = np.divmod(key, n)
            keep = cnt >= _pool_holders(kind_of[g] == KIND_CODE["signup"],
                                        np.bincount(labels, minlength=n)[lab], min_holders[lab])
            np.add.at(pool, (lab[keep], kind_of[g[keep]]), 1.0)
        held = acct > 0
        typical = np.maximum(acct.sum(0) / np.maximum(held.sum(0), 1), 1.0)
        return np.maximum(acct, 1.0), np.maximum(pool, 1.0), typical

    def _merge(
        self, labels: np.ndarray, groups: list[tuple[str, str, np.ndarray]], n: int, tau: float,
        hours: csr_matrix | None = None,
    ) -> tuple[np.ndarray, dict[int, float]]:
        """Merge clusters whose pooled evidence links them: the tokens held by at least two
        members of each (one for a two-member cluster), weighed like ``_attach`` does, and,
        given each account's active ``hours`` (:func:`_active_hours`), the clusters'
        shared schedule (:meth:`_synchrony`). One operator's accounts often form several
        components that no single pair of accounts joins, though the groups plainly share a
        payment card, a network, a channel or their working hours. Returns the labels and,
        per merged label, the largest schedule weight a merge into it needed."""
        sizes = np.bincount(labels, minlength=n)
        if (np.bincount(labels[sizes[labels] >= 2]) > 0).sum() < 2:
            return labels, {}
        rows_a: list[np.ndarray] = []
        rows_b: list[np.ndarray] = []
        rows_k: list[np.ndarray] = []
        rows_w: list[np.ndarray] = []
        for kind, value, members in groups:
            labs = labels[members]
            keep = sizes[labs] >= 2
            if keep.sum() < 2:
                continue
            cl_ids, cl_counts = np.unique(labs[keep], return_counts=True)
            cl_ids = cl_ids[cl_counts >= _pool_holders(kind == "signup", sizes[cl_ids],
                                                       np.minimum(2, sizes[cl_ids]))]
            if len(cl_ids) < 2:
                continue
            i, j = np.triu_indices(len(cl_ids), 1)
            rows_a.append(cl_ids[i])
            rows_b.append(cl_ids[j])
            rows_k.append(np.full(len(i), KIND_CODE[kind], np.int64))
            rows_w.append(np.full(len(i), self._token_weight(kind, value)))
        if not rows_a:
            return labels, {}
        _acct, pool, typical = self._token_counts(groups, labels, n, np.minimum(2, sizes))
        upair, total = self._pooled(rows_a, rows_b, rows_k, rows_w, n, pool, pool, typical,
                                    between="clusters")
        sync = np.zeros(len(upair))
        if hours is not None:
            # only where the schedule can decide: short of the threshold by at most its cap
            near = (total < tau) & (total >= tau - self._weights()["time"][-1])
            if near.any():
                sync[near] = self._synchrony(hours, labels, sizes, *np.divmod(upair[near], n))
        strong = total + sync >= tau
        if not strong.any():
            return labels, {}
        pairs = upair[strong]
        graph = coo_matrix((np.ones(len(pairs)), (pairs // n, pairs % n)), shape=(n, n))
        _ncomp, merged = connected_components(graph, directed=False)
        joined: dict[int, float] = {}
        for key, w in zip(upair[strong & (total < tau)].tolist(),
                          sync[strong & (total < tau)].tolist(), strict=True):
            lab = int(merged[key // n])
            joined[lab] = max(joined.get(lab, 0.0), float(w))
        return np.asarray(merged[labels]), joined

    def _synchrony(
        self, hours: csr_matrix, labels: np.ndarray, sizes: np.ndarray, a: np.ndarray,
        b: np.ndarray,
    ) -> np.ndarray:
        """Evidence that clusters ``a[i]`` and ``b[i]`` keep one operator's schedule.

        A group's schedule is the hours in which at least two of its members were active
        (:func:`_schedules`; clusters of three or more members, with at least
        ``_MIN_POOLED_HOURS`` such hours; ``sizes`` counts each label's members).
        Two clusters' schedules have Jaccard similarity ``J``. The null is the window's
        other accounts drawn at random in groups of the other cluster's size
        (``_SYNC_DRAWS`` groups, seeded by the pair): ``q`` is the (+1 smoothed) share of those groups
        whose schedule is at least ``J`` similar to the cluster's. The pair weighs ``-log10``
        of the larger ``q`` of the two directions: where the window's accounts keep the
        same hours (office hours, all day), any group of them matches, and the shared
        schedule says little. Capped at the strongest timing evidence of the benign null
        (every MinHash band shared)."""
        out = np.zeros(len(a))
        cap = self._weights()["time"][-1]
        schedules: dict[int, np.ndarray] = {}
        for c in np.unique(np.concatenate([a, b])).tolist():
            if sizes[c] >= 3:
                schedule = _schedules(hours, np.flatnonzero(labels == c))[0]
                if schedule.sum() >= _MIN_POOLED_HOURS:
                    schedules[c] = schedule
        for i, (ca, cb) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            if ca not in schedules or cb not in schedules:
                continue
            sa, sb = schedules[ca], schedules[cb]
            j_obs = float((sa & sb).sum()) / float((sa | sb).sum())
            others = np.flatnonzero((labels != ca) & (labels != cb))
            if j_obs <= 0.0 or len(others) < max(sizes[ca], sizes[cb]):
                continue
            q = 0.0
            # seeded by the pair: its draws do not depend on which other pairs are weighed
            rng = np.random.default_rng([self.seed, ca, cb])
            for target, size in ((sa, int(sizes[cb])), (sb, int(sizes[ca]))):
                draws = np.stack([rng.choice(others, size, replace=False)
                                  for _ in range(_SYNC_DRAWS)])
                pooled = _schedules(hours, draws)
                inter = (pooled & target).sum(axis=1)
                union = (pooled | target).sum(axis=1)
                j = inter / np.maximum(union, 1)
                q = max(q, (float((j >= j_obs).sum()) + 1.0) / (_SYNC_DRAWS + 1.0))
            out[i] = min(-np.log10(q), cap)
        return out

    def _clusters(
        self,
        orgs: list[str],
        labels: np.ndarray,
        sizes: np.ndarray,
        tokens: pa.Table,
        edge_w: dict[tuple[int, int], float],
        tau: float,
        single: dict[int, float],
        schedule: dict[int, dict[str, Any]] | None = None,
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
            if schedule and lab in schedule:
                # groups joined by keeping one schedule: its hours and the largest weight
                # a join needed
                shared["schedule"] = schedule[lab]
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
                    single_edge={orgs[i]: single[i] for i in idxs if i in single},
                )
            )
        return out
