"""Per-request features: pure, vectorised functions over Arrow tables of events.

DuckDB cuts and lower-cases each prompt's text window and computes the metadata features;
Arrow's compute kernels (RE2) match the lexicons and count placeholders; words, template
hashes, shingle fingerprints and benchmark matching are one compiled pass per row
(:mod:`~distillwarden.detect.words`). Text work runs in chunks on all cores. No per-row Python. The output is one row per
event with the columns in :data:`FEATURE_COLUMNS`; account signals (``signals.py``) aggregate
them over windows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .benchmarks import load_benchmark_items
from .lexicons import LEXICONS, PLACEHOLDER_PATTERN
from .words import bitmap, buckets, shingle_table, space_counts, word_hashes

__all__ = [
    "BOOL_FEATURES",
    "DETECT_COLUMNS",
    "FEATURE_COLUMNS",
    "BenchmarkIndex",
    "embedding_sample_mask",
    "request_features",
]

#: event columns the features read (others are ignored; missing nullable ones are nulls)
INPUT_COLUMNS = (
    "event_id", "ts", "org_id", "channel", "licence", "region", "ip_net_hash", "ua_hash",
    "prompt_text", "last_user_text", "n_messages", "n", "logprobs", "top_logprobs",
    "has_tools", "prompt_tokens", "completion_tokens", "status",
)

#: event columns detection reads: the feature inputs and the text it embeds
DETECT_COLUMNS = tuple(dict.fromkeys((*INPUT_COLUMNS, "last_user_text", "prompt_text")))

#: boolean request features; each becomes an account "share" signal
BOOL_FEATURES = (
    "f_cot", "f_dataset", "f_judge", "f_identity", "f_agent", "f_desens", "f_bench",
    "f_multiturn", "f_logprobs", "f_multi_n",
)

FEATURE_COLUMNS = (
    "event_id", "ts", "org_id", "channel", "licence", "region", "ip_net_hash", "ua_hash",
    *BOOL_FEATURES,
    "placeholders", "words", "bench_hits", "tpl_prefix", "tpl_suffix", "fp_a", "fp_b",
    "prompt_tokens", "completion_tokens", "out_in_ratio",
)

_TEXT_CHARS = 3000  # features read the first 2,000 and the last 1,000 characters of a prompt
_TAIL_CHARS = 1000
_MAX_COMMON = 20  # a shingle found in more benchmark items than this is not evidence
_MAX_WORDS = 100  # fingerprints and benchmark matching read the first 100 words
_WORD_CHARS = 800  # ... of the first 800 characters (100 words are ~600)
_SUFFIX_CHARS = 80  # the template suffix: the last 80 characters, from their first space


def _sql_str(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


_BATCH_ROWS = 4096  # DuckDB scans an Arrow table in parallel by record batch

@dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted hashes of benchmark-item word shingles and of whole normalised items."""

    shingles: np.ndarray
    items: np.ndarray
    n_items: int

    @property
    def bitmap(self) -> np.ndarray:
        """A bit-packed one-hash Bloom filter over ``shingles``, to skip most lookups."""
        return self._derived("_bitmap", bitmap)

    @property
    def buckets(self) -> np.ndarray:
        """Offsets of the buckets of ``shingles`` by their top bits (one probe per lookup)."""
        return self._derived("_buckets", buckets)

    def _derived(self, key: str, build: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        value = self.__dict__.get(key)
        if value is None:
            value = build(self.shingles)
            object.__setattr__(self, key, value)
        return value

    @classmethod
    def build(cls, texts: list[str] | None = None) -> BenchmarkIndex:
        """Index ``texts`` (default: every benchmark item of the installed packages)."""
        if texts is None:
            texts = [it.text for it in load_benchmark_items()]
        if not texts:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64), 0)
        con = duckdb.connect()
        con.register("items", pa.table({"t": pa.array(texts, pa.string())}))
        low = con.sql("SELECT lower(t) AS t FROM items").to_arrow_table().column("t")
        con.close()
        counts, flat, whole = shingle_table(
            low, max_chars=_WORD_CHARS, max_words=_MAX_WORDS)
        item = np.repeat(np.arange(len(counts)), counts)
        # a shingle found in many items is common phrasing, not evidence of any one item
        pairs = np.unique(np.stack([flat, item.astype(np.uint64)], 1), axis=0)
        uniq, n_items = np.unique(pairs[:, 0], return_counts=True)
        rows = uniq[n_items <= _MAX_COMMON]
        return cls(
            np.sort(np.asarray(rows).view(np.uint64)),
            np.unique(whole),
            len(texts),
        )


_default_index: BenchmarkIndex | None = None
_index_lock = threading.Lock()


def default_benchmark_index() -> BenchmarkIndex:
    """The process-wide index over the installed benchmark packages (built once)."""
    global _default_index
    with _index_lock:
        if _default_index is None:
            _default_index = BenchmarkIndex.build()
        return _default_index


#: one pass of the union of all lexicons first (RE2 runs an alternation in one linear scan);
#: only the prompts that hit anything are matched against each lexicon. (The placeholder
#: pattern stays out: with it the union outgrows RE2's DFA memory and runs slower than the
#: two passes apart.)
_LEXICON_UNION = "(?:" + "|".join(LEXICONS.values()) + ")"
_BLOCK_ROWS = 131_072  # rows featurised at once (their text windows: at most ~400 MB)
_TEXT_CHUNK = 8192  # rows per task of the text features (Arrow's RE2 kernels release the GIL)

#: everything but the text patterns, and the lower-cased text window ``t`` they read
_BASE_SQL = f"""
    WITH raw AS (
        SELECT *, coalesce(prompt_text, last_user_text, '') AS raw_t FROM ev
    ),
    base AS (
        SELECT *,
            lower(CASE WHEN strlen(raw_t) <= {_TEXT_CHARS} THEN raw_t
                       WHEN length(raw_t) <= {_TEXT_CHARS} THEN raw_t
                       ELSE left(raw_t, {_TEXT_CHARS - _TAIL_CHARS}) || ' … '
                            || right(raw_t, {_TAIL_CHARS}) END) AS t,
            dw_spaces + 1 AS n_words
        FROM raw
    )
    SELECT
        event_id, ts, org_id, channel, licence, region, ip_net_hash, ua_hash, t,
        n_words AS words,
        coalesce(has_tools, false) AS has_tools,
        coalesce(n_messages, 1) >= 3 AS f_multiturn,
        coalesce(logprobs, false) OR coalesce(top_logprobs, 0) > 0 AS f_logprobs,
        coalesce(n, 1) > 1 AS f_multi_n,
        prompt_tokens, completion_tokens,
        CAST(coalesce(completion_tokens, 0) AS DOUBLE)
            / greatest(coalesce(prompt_tokens, 0), 1) AS out_in_ratio
    FROM base
"""


def _text_features_chunk(t: pa.Array, index: BenchmarkIndex) -> dict[str, np.ndarray]:
    """Lexicon flags, placeholder count and word-derived columns of a chunk of windows."""
    out: dict[str, np.ndarray] = {}
    hit_rows = pc.indices_nonzero(pc.match_substring_regex(t, _LEXICON_UNION))
    hits = pc.take(t, hit_rows)
    rows = hit_rows.to_numpy(zero_copy_only=False)
    for name, pattern in LEXICONS.items():
        flag = np.zeros(len(t), bool)
        if len(rows):
            flag[rows] = pc.match_substring_regex(hits, pattern).to_numpy(zero_copy_only=False)
        out[f"f_{name}"] = flag
    out["placeholders"] = pc.count_substring_regex(t, PLACEHOLDER_PATTERN).to_numpy(
        zero_copy_only=False
    ).astype(np.int64)
    out.update(word_hashes(
        t, max_chars=_WORD_CHARS, max_words=_MAX_WORDS, suffix_chars=_SUFFIX_CHARS,
        shingles=index.shingles,
        items=index.items, bits=index.bitmap, bucket_index=index.buckets,
    ))
    return out


def _text_features(t: pa.Array | pa.ChunkedArray, index: BenchmarkIndex) -> dict[str, np.ndarray]:
    """Per row of ``t``: each lexicon flag ``f_<name>``, ``placeholders`` (matches of the
    placeholder pattern) and the columns of :func:`~distillwarden.detect.words.word_hashes`."""
    arrays = t.chunks if isinstance(t, pa.ChunkedArray) else [t]
    chunks = [a.slice(i, _TEXT_CHUNK) for a in arrays for i in range(0, len(a), _TEXT_CHUNK)]
    chunks = chunks or [pa.array([], pa.string())]
    index.bitmap, index.buckets  # noqa: B018 - built once here, not by each thread
    with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(_text_features_chunk, chunks, [index] * len(chunks)))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _select_inputs(events: pa.Table) -> pa.Table:
    missing = [c for c in ("event_id", "ts", "org_id") if c not in events.column_names]
    if missing:
        raise ValueError(
            f"events table lacks required column(s) {missing}; pass a table in the event "
            "schema (distillwarden.events.schema.EVENT_SCHEMA)"
        )
    from distillwarden.events.schema import EVENT_SCHEMA

    cols = {}
    for name in INPUT_COLUMNS:
        if name in events.column_names:
            cols[name] = events.column(name)
        else:
            cols[name] = pa.nulls(events.num_rows, EVENT_SCHEMA.field(name).type)
    return pa.table(cols)


def request_features(
    events: pa.Table,
    *,
    index: BenchmarkIndex | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """One row of request features per event (columns :data:`FEATURE_COLUMNS`).

    Only successful requests (HTTP status < 400, or status unknown) are featurised: a
    rejected request returned nothing to learn from.
    """
    index = index if index is not None else default_benchmark_index()
    ev = _select_inputs(events)
    if ev.num_rows <= _BLOCK_ROWS:
        return _features_block(ev, index, con)
    # bounded blocks: the text windows of one block stay well inside 32-bit Arrow offsets
    return pa.concat_tables([
        _features_block(ev.slice(i, _BLOCK_ROWS), index, con)
        for i in range(0, ev.num_rows, _BLOCK_ROWS)
    ])


def _features_block(
    ev: pa.Table, index: BenchmarkIndex, con: duckdb.DuckDBPyConnection | None
) -> pa.Table:
    # whitespace words of the whole prompt (the first non-null of the two texts)
    spaces = space_counts(ev.column("prompt_text"))
    missing = spaces < 0
    if missing.any():
        spaces[missing] = np.maximum(space_counts(ev.column("last_user_text"))[missing], 0)
    ev = ev.append_column("dw_spaces", pa.array(spaces))
    own = con is None
    con = con or duckdb.connect()
    try:
        # small record batches: DuckDB scans an Arrow table in parallel by batch
        con.register("ev_all", pa.Table.from_batches(
            ev.to_batches(max_chunksize=_BATCH_ROWS), schema=ev.schema))
        con.execute(
            "CREATE OR REPLACE TEMP VIEW ev AS SELECT * FROM ev_all "
            "WHERE status IS NULL OR status < 400"
        )
        out = con.sql(_BASE_SQL).to_arrow_table()
        con.unregister("ev_all")
    finally:
        if own:
            con.close()
    text = _text_features(out.column("t"), index)
    out = out.drop_columns(["t"])
    desens = _desens(text["placeholders"], out.column("words").to_numpy(zero_copy_only=False))
    bench_hits = text["bench_hits"]
    share = bench_hits / np.maximum(text["n_shingles"], 1)
    f_bench = text["exact"] | ((bench_hits >= 6) & (share >= 0.3))
    cols = {}
    for name in FEATURE_COLUMNS:
        if name == "f_agent":
            cols[name] = pa.array(
                out.column("has_tools").to_numpy(zero_copy_only=False) | text["f_agent"]
            )
        elif name == "f_bench":
            cols[name] = pa.array(f_bench)
        elif name == "bench_hits":
            cols[name] = pa.array(bench_hits.astype(np.int32))
        elif name == "f_desens":
            cols[name] = pa.array(desens)
        elif name in text:
            cols[name] = pa.array(text[name])
        else:
            cols[name] = out.column(name)
    return pa.table(cols)


def _desens(placeholders: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Desensitised text: several placeholders, or a dense run of them."""
    ph = placeholders.astype(np.float64)
    words = np.maximum(words, 1)
    return (ph >= 3) | ((ph >= 2) & (ph / words >= 0.02))


def embedding_sample_mask(event_ids: pa.Array | pa.ChunkedArray, rate: float) -> np.ndarray:
    """Deterministic sample of events to embed: the same event is always in or out, so batch
    and incremental runs embed the same prompts."""
    if rate >= 1.0:
        return np.ones(len(event_ids), bool)
    con = duckdb.connect()
    con.register("ids", pa.table({"e": event_ids}))
    h = con.execute("SELECT hash(e, 7) % 1000000 AS h FROM ids").fetchnumpy()["h"]
    con.close()
    return np.asarray(h, dtype=np.int64) < int(rate * 1_000_000)
