"""Embedding signals: topic-coverage breadth and distance to the benign reference.

Each account contributes a bounded, deterministic sample of its prompts (the ``per_account``
events with the smallest ``hash(event_id)``), so cost is bounded by the number of accounts,
not by the log, and batch and incremental runs embed the same prompts. Embeddings are the
offline MiniLM vectors of :func:`distillwarden.embeddings.embed_texts` (L2-normalised).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

__all__ = [
    "EMBEDDING_SIGNALS",
    "EmbeddingCache",
    "MMDReference",
    "embedding_signals",
    "sample_for_embedding",
]

EMBEDDING_SIGNALS = ("dispersion", "effective_rank", "mmd")

Embedder = Callable[[Sequence[str]], np.ndarray]


def sample_for_embedding(
    events: pa.Table, *, per_account: int = 64, rate: float = 1.0
) -> pa.Table:
    """The events to embed: per account the ``per_account`` events with the smallest hash of
    their id, after keeping a ``rate`` share of all events (also by hash). Columns
    ``event_id``, ``org_id``, ``text``."""
    con = duckdb.connect()
    text = (
        "coalesce(last_user_text, prompt_text, '')"
        if "last_user_text" in events.column_names
        else "coalesce(prompt_text, '')"
    )
    status = "status IS NULL OR status < 400" if "status" in events.column_names else "true"
    con.register("ev", events)
    out = con.sql(
        f"""
        SELECT event_id, org_id, text FROM (
            SELECT event_id, org_id, {text} AS text,
                   row_number() OVER (PARTITION BY org_id ORDER BY hash(event_id, 7), event_id)
                       AS r
            FROM ev
            WHERE ({status}) AND hash(event_id, 7) % 1000000 < {int(rate * 1_000_000)}
        ) WHERE r <= {int(per_account)} ORDER BY org_id, event_id
        """
    ).to_arrow_table()
    con.close()
    return out


@dataclass
class EmbeddingCache:
    """Embeddings by event id, so that incremental runs never embed a prompt twice."""

    embed: Embedder
    vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def get(self, event_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Embeddings of the given events (computing only the ones not cached)."""
        missing = [i for i, e in enumerate(event_ids) if e not in self.vectors]
        if missing:
            vecs = self.embed([texts[i] for i in missing])
            for i, v in zip(missing, vecs, strict=True):
                self.vectors[event_ids[i]] = np.asarray(v, dtype=np.float32)
        if not event_ids:
            return np.zeros((0, 384), np.float32)
        return np.stack([self.vectors[e] for e in event_ids])

    def keep_only(self, event_ids: set[str]) -> None:
        """Forget embeddings of events that left the window (bounded memory)."""
        for e in [e for e in self.vectors if e not in event_ids]:
            del self.vectors[e]


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


@dataclass
class MMDReference:
    """A benign reference sample and the multi-bandwidth RBF kernel fixed on it: the mean of
    four RBFs at 0.5, 1, 2 and 4 times the median-heuristic bandwidth (as in the published
    MMD detector for extraction traffic)."""

    sample: np.ndarray
    bandwidths: np.ndarray
    k_yy_mean: float

    @classmethod
    def fit(cls, reference: np.ndarray, *, size: int = 256, seed: int = 0) -> MMDReference:
        """Fix the reference sample (at most ``size`` rows) and the kernel bandwidths."""
        if len(reference) < 4:
            raise ValueError(
                "the MMD reference needs at least 4 benign prompt embeddings; fit the detector "
                "on more benign traffic or raise the embedding sample"
            )
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(reference), size=min(size, len(reference)), replace=False)
        y = np.asarray(reference[idx], dtype=np.float64)
        d = _sq_dists(y, y)
        med = float(np.median(np.sqrt(d[np.triu_indices(len(y), 1)])))
        med = med if med > 0 else 1.0
        bws = med * np.array([0.5, 1.0, 2.0, 4.0])
        kyy = cls._kernel(d, bws)
        m = len(y)
        k_yy_mean = float((kyy.sum() - np.trace(kyy)) / (m * (m - 1)))
        return cls(y, bws, k_yy_mean)

    @staticmethod
    def _kernel(sq: np.ndarray, bws: np.ndarray) -> np.ndarray:
        return np.mean([np.exp(-sq / (2.0 * b * b)) for b in bws], axis=0)

    def mmd2(self, x: np.ndarray) -> float:
        """Unbiased MMD² between ``x`` (one account's embeddings) and the reference."""
        m = len(x)
        if m < 2:
            return float("nan")
        x = np.asarray(x, dtype=np.float64)
        kxx = self._kernel(_sq_dists(x, x), self.bandwidths)
        kxy = self._kernel(_sq_dists(x, self.sample), self.bandwidths)
        return float(
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + self.k_yy_mean - 2.0 * kxy.mean()
        )


def _effective_rank(x: np.ndarray) -> float:
    """exp(entropy) of the normalised singular-value spectrum of the centred sample."""
    c = x - x.mean(0, keepdims=True)
    s = np.linalg.svd(c, compute_uv=False) ** 2
    total = s.sum()
    if total <= 0:
        return 1.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def embedding_signals(
    org_ids: np.ndarray, vectors: np.ndarray, reference: MMDReference | None
) -> pa.Table:
    """Per account: ``n_embedded``, ``dispersion`` (mean pairwise squared distance of its
    prompts: breadth of topic coverage), ``effective_rank`` and ``mmd`` (unbiased MMD² to
    the benign reference). Accounts with fewer than 2 sampled prompts get nulls."""
    orgs_out: list[str] = []
    n_out: list[int] = []
    disp: list[float] = []
    erank: list[float] = []
    mmd: list[float] = []
    if len(org_ids):
        order = np.argsort(org_ids, kind="stable")
        sorted_ids = org_ids[order]
        bounds = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
        for grp in np.split(order, bounds):
            x = vectors[grp].astype(np.float64)
            m = len(x)
            orgs_out.append(str(org_ids[grp[0]]))
            n_out.append(m)
            if m < 2:
                disp.append(float("nan"))
                erank.append(float("nan"))
                mmd.append(float("nan"))
                continue
            mean = x.mean(0)
            sq_norm = float((x * x).sum(1).mean())
            disp.append(2.0 * (sq_norm - float(mean @ mean)) * m / (m - 1))
            erank.append(_effective_rank(x))
            mmd.append(reference.mmd2(x) if reference is not None else float("nan"))
    def arr(v: list[float]) -> pa.Array:
        return pa.array(np.asarray(v, dtype=np.float64), from_pandas=True)

    return pa.table(
        {
            "org_id": pa.array(orgs_out, pa.string()),
            "n_embedded": pa.array(n_out, pa.int64()),
            "dispersion": arr(disp),
            "effective_rank": arr(erank),
            "mmd": arr(mmd),
        }
    )
