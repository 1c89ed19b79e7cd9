"""Per-request features: pure, vectorised functions over Arrow tables of events.

DuckDB cuts and lower-cases each prompt's text window and computes the metadata features and
the hashes; Arrow's compute kernels (RE2) match the lexicons and count placeholders, on both
cores; words are split in NumPy over the UTF-8 bytes; shingles, fingerprints and benchmark
matching (one sorted-array lookup) are NumPy. No per-row Python. The output is one row per
event with the columns in :data:`FEATURE_COLUMNS`; account signals (``signals.py``) aggregate
them over windows.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .benchmarks import load_benchmark_items
from .lexicons import LEXICONS, PLACEHOLDER_PATTERN

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
_SHINGLE = 4  # words per shingle for benchmark matching
_MAX_COMMON = 20  # a shingle found in more benchmark items than this is not evidence
_MAX_WORDS = 100  # fingerprints and benchmark matching read the first 100 words
_WORD_CHARS = 800  # ... of the first 800 characters (100 words are ~600)
_BITMAP_BITS = 24


def _sql_str(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


_QUOTED = r'"[^"\n]{0,200}"|“[^”\n]{0,200}”'
_BATCH_ROWS = 4096  # DuckDB scans an Arrow table in parallel by record batch

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _avalanche_inplace(h: np.ndarray) -> None:
    """A 64-bit finaliser (splitmix64), in place: spreads every input bit over the output."""
    tmp = np.empty_like(h)
    with np.errstate(over="ignore"):
        for shift, mul in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(h, np.uint64(shift), out=tmp)
            np.bitwise_xor(h, tmp, out=h)
            np.multiply(h, np.uint64(mul), out=h)
        np.right_shift(h, np.uint64(31), out=tmp)
        np.bitwise_xor(h, tmp, out=h)


def shingle_hashes(lengths: np.ndarray, flat: np.ndarray, k: int = _SHINGLE) -> np.ndarray:
    """Hashes of the k-word shingles of each row, from per-row word hashes.

    ``flat`` holds the word hashes of all rows end to end and ``lengths`` the words per row;
    row ``i`` contributes ``max(lengths[i] - k + 1, 0)`` shingle hashes, in order.
    Vectorised: k shifted multiply-adds over the flat array, no per-row Python.
    """
    n = len(flat)
    if n < k:
        return np.zeros(0, np.uint64)
    m = n - k + 1
    acc = flat[:m].copy()
    with np.errstate(over="ignore"):
        for j in range(1, k):
            np.multiply(acc, _MIX, out=acc)
            np.add(acc, flat[j : j + m], out=acc)
    _avalanche_inplace(acc)
    # drop the windows that run past the end of their row: those starting in a row's last
    # k - 1 words
    lengths = np.asarray(lengths, np.int64)
    ends = np.cumsum(lengths)
    valid = np.ones(m, bool)
    for d in range(1, k):
        pos = ends - d
        valid[pos[(lengths >= d) & (pos < m)]] = False
    return acc[valid]


def _shingle_counts(lengths: np.ndarray, k: int = _SHINGLE) -> np.ndarray:
    return np.maximum(np.asarray(lengths, np.int64) - k + 1, 0)


@dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted hashes of benchmark-item word shingles and of whole normalised items."""

    shingles: np.ndarray
    items: np.ndarray
    n_items: int

    @property
    def bitmap(self) -> np.ndarray:
        """A one-hash Bloom filter over ``shingles`` (top bits), to skip most lookups."""
        bm = self.__dict__.get("_bitmap")
        if bm is None:
            bm = np.zeros(1 << _BITMAP_BITS, bool)
            bm[(self.shingles >> np.uint64(64 - _BITMAP_BITS)).astype(np.int64)] = True
            object.__setattr__(self, "_bitmap", bm)
        return bm

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
        out = _word_columns(con, _join_words(_word_window(low.combine_chunks())))
        con.close()
        counts, flat = _shingle_arrays(out)
        item = np.repeat(np.arange(len(counts)), counts)
        # a shingle found in many items is common phrasing, not evidence of any one item
        pairs = np.unique(np.stack([flat, item.astype(np.uint64)], 1), axis=0)
        uniq, n_items = np.unique(pairs[:, 0], return_counts=True)
        rows = uniq[n_items <= _MAX_COMMON]
        whole = np.unique(out.column("uwhole").to_numpy(zero_copy_only=False).view(np.uint64))
        return cls(
            np.sort(np.asarray(rows).view(np.uint64)),
            np.sort(np.asarray(whole).view(np.uint64)),
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


def _word_window(t: pa.Array) -> pa.Array:
    """The first ``_WORD_CHARS`` characters with quoted spans blanked (template slots).

    The regex runs only on texts holding a quote mark: every match starts with one."""
    head = pc.utf8_slice_codeunits(t, 0, _WORD_CHARS)
    quoted = pc.or_(pc.match_substring(head, '"'), pc.match_substring(head, "“"))
    rows = pc.indices_nonzero(quoted)
    if len(rows) == 0:
        return head
    blanked = pc.replace_substring_regex(pc.take(head, rows), _QUOTED, " ")
    return pc.replace_with_mask(head, quoted, blanked)


_WORDS_CHUNK = 16_384  # rows per numpy pass: bounds the per-byte temporaries


def _join_words(
    texts: pa.Array | pa.ChunkedArray, *, chunk_rows: int = _WORDS_CHUNK
) -> pa.Array:
    r"""Each text's words (maximal runs of word bytes) joined by single spaces (one may lead).

    After ``trim()``, equal to ``trim(regexp_replace(text, '[^a-z\x{80}-\x{10ffff}]+', ' ',
    'g'))`` on lower-cased text; computed over the UTF-8 bytes with NumPy, which is cheaper
    than the regex (``bench/detect/bench_speed.py``).
    """
    arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    arr = arr.cast(pa.string())
    if arr.null_count:
        raise ValueError("word texts must not be null")
    # request features call this per chunk of their own thread pool; the benchmark index,
    # built once, needs no threads of its own
    parts = [_join_words_chunk(arr.slice(i, chunk_rows)) for i in range(0, len(arr), chunk_rows)]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def _join_words_chunk(arr: pa.Array) -> pa.Array:
    n = len(arr)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int32, count=n + 1, offset=arr.offset * 4)
    data = (
        np.frombuffer(data_buf, np.uint8)[offsets[0] : offsets[-1]]
        if data_buf is not None
        else np.zeros(0, np.uint8)
    )
    rel = (offsets - offsets[0]).astype(np.int64)
    row_start = np.zeros(len(data) + 1, bool)
    row_start[rel[:-1]] = True
    # word bytes: a-z, and every byte of a non-ASCII UTF-8 sequence (the same set as the
    # regex class [a-z\x{80}-\x{10ffff}] over code points)
    is_word = ((data - np.uint8(97)) < np.uint8(26)) | (data >= np.uint8(0x80))
    prev = np.zeros(len(data), bool)
    prev[1:] = is_word[:-1]
    starts = np.flatnonzero(is_word & ~prev)
    # the (non-word) byte before each word becomes its one space; before a row's first word
    # that is a leading space, which the SQL's trim() removes
    sep = starts[~row_start[starts]] - 1
    keep = is_word
    keep[sep] = True
    out = data.copy()
    out[sep] = 0x20
    # new offsets: the running total of the bytes each row keeps
    per_row = _per_row_sum(keep, np.diff(rel))
    new_offsets = np.zeros(n + 1, np.int32)
    np.cumsum(per_row, out=new_offsets[1:])
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(new_offsets), pa.py_buffer(out[keep])]
    )


def _word_columns_sql(words: str) -> str:
    """Per row from its joined words: the first ``_MAX_WORDS`` word hashes, the hash of the
    first eight words (template prefix) and of all of them (the whole, for exact matches)."""
    # trim() also strips Unicode spaces (U+00A0 ...) at either end, as it always did here
    tw = f"string_split(trim({words}), ' ')[1:{_MAX_WORDS}]"
    return f"""
    SELECT list_transform(tw, lambda w: hash(w)) AS wh,
           hash(array_to_string(tw[1:8], ' ')) AS tpl_prefix,
           hash(array_to_string(tw, ' ')) AS uwhole
    FROM (SELECT {tw} AS tw FROM dw_joined_words)
    """


def _word_columns(con: duckdb.DuckDBPyConnection, words: pa.Array) -> pa.Table:
    table = pa.table({"w": words})
    con.register("dw_joined_words", pa.Table.from_batches(
        table.to_batches(max_chunksize=_BATCH_ROWS), schema=table.schema))
    try:
        return con.sql(_word_columns_sql("w")).to_arrow_table()
    finally:
        con.unregister("dw_joined_words")


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
            lower(CASE WHEN length(raw_t) <= {_TEXT_CHARS} THEN raw_t
                       ELSE left(raw_t, {_TEXT_CHARS - _TAIL_CHARS}) || ' … '
                            || right(raw_t, {_TAIL_CHARS}) END) AS t,
            length(raw_t) - length(replace(raw_t, ' ', '')) + 1 AS n_words
        FROM raw
    )
    SELECT
        event_id, ts, org_id, channel, licence, region, ip_net_hash, ua_hash, t,
        n_words AS words,
        coalesce(has_tools, false) AS has_tools,
        coalesce(n_messages, 1) >= 3 AS f_multiturn,
        coalesce(logprobs, false) OR coalesce(top_logprobs, 0) > 0 AS f_logprobs,
        coalesce(n, 1) > 1 AS f_multi_n,
        hash(array_to_string(string_split(right(t, 80), ' ')[2:], ' ')) AS tpl_suffix,
        prompt_tokens, completion_tokens,
        CAST(coalesce(completion_tokens, 0) AS DOUBLE)
            / greatest(coalesce(prompt_tokens, 0), 1) AS out_in_ratio
    FROM base
"""


def _text_features_chunk(t: pa.Array) -> dict[str, Any]:
    """Lexicon flags, placeholder count and joined words of one chunk of text windows."""
    out: dict[str, Any] = {}
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
    out["joined"] = _join_words(_word_window(t), chunk_rows=len(t) or 1)
    return out


def _text_features(t: pa.Array | pa.ChunkedArray) -> dict[str, Any]:
    """Per row of ``t``: each lexicon flag ``f_<name>``, ``placeholders`` (matches of the
    placeholder pattern) and ``joined`` (its words, see :func:`_join_words`)."""
    arrays = t.chunks if isinstance(t, pa.ChunkedArray) else [t]
    chunks = [a.slice(i, _TEXT_CHUNK) for a in arrays for i in range(0, len(a), _TEXT_CHUNK)]
    chunks = chunks or [pa.array([], pa.string())]
    with ThreadPoolExecutor(max_workers=min(len(chunks), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(_text_features_chunk, chunks))
    out: dict[str, Any] = {
        k: np.concatenate([p[k] for p in parts]) for k in parts[0] if k != "joined"
    }
    out["joined"] = pa.concat_arrays([p["joined"] for p in parts])
    return out


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
        text = _text_features(out.column("t"))
        wcols = _word_columns(con, text["joined"])
    finally:
        if own:
            con.close()
    out = out.drop_columns(["t"])
    for name in wcols.column_names:
        out = out.append_column(name, wcols.column(name))
    lengths, flat = _shingle_arrays(out)
    whole = out.column("uwhole").to_numpy(zero_copy_only=False).view(np.uint64)
    bench = _bench_hits(lengths, flat, whole, index)
    desens = _desens(text["placeholders"], out.column("words").to_numpy(zero_copy_only=False))
    cols = {}
    for name in FEATURE_COLUMNS:
        if name == "f_agent":
            cols[name] = pa.array(
                out.column("has_tools").to_numpy(zero_copy_only=False) | text["f_agent"]
            )
        elif name in text:
            cols[name] = pa.array(text[name])
        elif name == "f_bench":
            cols[name] = pa.array(bench[1])
        elif name == "bench_hits":
            cols[name] = pa.array(bench[0].astype(np.int32))
        elif name == "f_desens":
            cols[name] = pa.array(desens)
        elif name in ("fp_a", "fp_b"):
            cols[name] = pa.array(_minhash(lengths, flat, 0 if name == "fp_a" else 1))
        elif name in ("tpl_prefix", "tpl_suffix"):
            cols[name] = out.column(name).cast(pa.uint64())
        else:
            cols[name] = out.column(name)
    return pa.table(cols)


_MH_MUL = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
_MH_ADD = (np.uint64(0x165667B19E3779F9), np.uint64(0x27D4EB2F165667C5))


def _shingle_arrays(out: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Per-row shingle counts and the flat shingle hashes of the ``wh`` word-hash lists."""
    wh = out.column("wh").combine_chunks()
    words = wh.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = wh.flatten().to_numpy(zero_copy_only=False).view(np.uint64)
    return _shingle_counts(words), shingle_hashes(words, flat)


def _minhash(lengths: np.ndarray, flat: np.ndarray, which: int) -> np.ndarray:
    """Per row, the minimum of a universal hash of its shingles (0 for rows without any)."""
    n = len(lengths)
    out = np.zeros(n, np.uint64)
    if len(flat) == 0:
        return out
    with np.errstate(over="ignore"):
        h = flat * _MH_MUL[which] + _MH_ADD[which]
    return _per_row_reduce(np.minimum, h, lengths, out)


def _per_row_reduce(
    ufunc: np.ufunc, values: np.ndarray, lengths: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``out[i]`` = ``ufunc`` reduced over row ``i``'s ``lengths[i]`` consecutive entries of
    ``values``; rows without entries keep their ``out`` value."""
    lengths = np.asarray(lengths, np.int64)
    nonempty = lengths > 0
    if nonempty.any():
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        out[nonempty] = ufunc.reduceat(values, starts[nonempty], dtype=out.dtype)
    return out


def _per_row_sum(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per row, the sum of its ``lengths[i]`` consecutive entries of ``values``."""
    vals = values.view(np.uint8) if values.dtype == bool else values
    return _per_row_reduce(np.add, vals, lengths, np.zeros(len(lengths), np.int64))


def _bench_hits(
    lengths: np.ndarray, flat: np.ndarray, whole: np.ndarray, index: BenchmarkIndex
) -> tuple[np.ndarray, np.ndarray]:
    """Per request: benchmark shingles hit, and whether it carries a benchmark item."""
    n = len(lengths)
    if n == 0 or index.n_items == 0:
        return np.zeros(n, np.int64), np.zeros(n, bool)
    cand = index.bitmap[(flat >> np.uint64(64 - _BITMAP_BITS)).astype(np.int64)]
    hit = np.zeros(len(flat), bool)
    if cand.any():
        sub = flat[cand]
        pos = np.minimum(np.searchsorted(index.shingles, sub), len(index.shingles) - 1)
        hit[cand] = index.shingles[pos] == sub
    hits = _per_row_sum(hit, lengths)
    wpos = np.minimum(np.searchsorted(index.items, whole), len(index.items) - 1)
    exact = index.items[wpos] == whole
    share = hits / np.maximum(lengths, 1)
    near = (hits >= 6) & (share >= 0.3)
    return hits, exact | near


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
