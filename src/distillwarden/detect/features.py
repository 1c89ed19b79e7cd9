"""Per-request features: pure, vectorised functions over Arrow tables of events.

Each prompt's lower-cased text window is cut by a compiled pass
(:mod:`~distillwarden.detect.window`); one RE2 set matches every lexicon and the
placeholder pattern in it in a single scan (:mod:`~distillwarden.detect.lexmatch`; a call
into the binding per window is the one per-row loop); words, template hashes, shingle
fingerprints and benchmark matching are one compiled pass per row
(:mod:`~distillwarden.detect.words`). Text work runs in chunks on all cores; the metadata
features are Arrow and NumPy column arithmetic. The output is one row per event with the
columns in :data:`FEATURE_COLUMNS`;
account signals (``signals.py``) aggregate them over windows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .benchmarks import load_benchmark_items
from .lexmatch import match_lexicons
from .window import window_and_spaces
from .words import MIXED_SET, bitmap, buckets, shingle_table, word_hashes

__all__ = [
    "BOOL_FEATURES",
    "DETECT_COLUMNS",
    "FEATURE_COLUMNS",
    "BenchmarkIndex",
    "embedding_sample_mask",
    "prompts_may_be_null",
    "request_features",
    "segment_columns",
]

#: event columns the features read (others are ignored; missing nullable ones are nulls)
INPUT_COLUMNS = (
    "event_id", "ts", "org_id", "channel", "licence", "region", "ip_net_hash", "ua_hash",
    "prompt_text", "last_user_text", "n_messages", "n", "logprobs", "top_logprobs",
    "has_tools", "prompt_tokens", "completion_tokens", "status",
)

#: event columns detection reads: the feature inputs and the text it embeds
DETECT_COLUMNS = tuple(dict.fromkeys((*INPUT_COLUMNS, "last_user_text", "prompt_text")))


def prompts_may_be_null(segment: pq.ParquetFile) -> bool:
    """Whether a Parquet segment may hold a null ``prompt_text`` (its statistics say so, or
    it has no statistics to tell, or no such column)."""
    paths = [segment.schema.column(i).path for i in range(len(segment.schema))]
    if "prompt_text" not in paths:
        return True
    col = paths.index("prompt_text")
    meta = segment.metadata
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(col).statistics
        if stats is None or not stats.has_null_count or stats.null_count > 0:
            return True
    return False


def segment_columns(segment: pq.ParquetFile, *, embeddings: bool) -> list[str]:
    """The event columns detection reads from a segment: :data:`DETECT_COLUMNS`, less the
    last user turn where nothing needs it. The embeddings read it; the request features only
    fall back on it for a missing prompt; and text is most of a segment's bytes."""
    if embeddings or prompts_may_be_null(segment):
        return list(DETECT_COLUMNS)
    return [c for c in DETECT_COLUMNS if c != "last_user_text"]


#: boolean request features; each becomes an account "share" signal
BOOL_FEATURES = (
    "f_cot", "f_dataset", "f_judge", "f_identity", "f_agent", "f_desens", "f_bench",
    "f_multiturn", "f_logprobs", "f_multi_n",
)

FEATURE_COLUMNS = (
    "event_id", "ts", "org_id", "channel", "licence", "region", "ip_net_hash", "ua_hash",
    *BOOL_FEATURES,
    "placeholders", "words", "bench_hits", "bench_set", "tpl_prefix", "tpl_suffix", "fp_a", "fp_b",
    "prompt_tokens", "completion_tokens", "out_in_ratio",
)

_TEXT_CHARS = 3000  # features read the first 2,000 and the last 1,000 characters of a prompt
_TAIL_CHARS = 1000
_MAX_COMMON = 20  # a shingle found in more benchmark items than this is not evidence
_MAX_WORDS = 100  # fingerprints and benchmark matching read the first 100 words
_WORD_CHARS = 800  # ... of the first 800 characters (100 words are ~600)
_SUFFIX_CHARS = 80  # the template suffix: the last 80 characters, from their first space



@dataclass(frozen=True)
class BenchmarkIndex:
    """Sorted hashes of benchmark-item word shingles and of whole normalised items, each
    labelled with the benchmark set it comes from (``set_names[label]``; a shingle found in
    items of several sets is labelled :data:`~.words.MIXED_SET`)."""

    shingles: np.ndarray
    items: np.ndarray
    n_items: int
    shingle_sets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    item_sets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    set_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # an index built without labels puts everything in one unnamed set
        if len(self.shingle_sets) != len(self.shingles):
            object.__setattr__(self, "shingle_sets", np.zeros(len(self.shingles), np.uint8))
        if len(self.item_sets) != len(self.items):
            object.__setattr__(self, "item_sets", np.zeros(len(self.items), np.uint8))

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
    def build(
        cls, texts: list[str] | None = None, sets: list[str] | None = None
    ) -> BenchmarkIndex:
        """Index ``texts`` labelled by ``sets`` (the name of each text's benchmark set;
        default: every benchmark item of the installed packages, with its set)."""
        if texts is None:
            loaded = load_benchmark_items()
            texts = [it.text for it in loaded]
            sets = [it.set for it in loaded] if sets is None else sets
        sets = ["benchmark"] * len(texts) if sets is None else list(sets)
        if len(sets) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(sets)} set names")
        names = tuple(sorted(set(sets)))
        if len(names) >= MIXED_SET:
            raise ValueError(f"at most {MIXED_SET - 1} benchmark sets, got {len(names)}")
        if not texts:
            return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint64), 0, set_names=names)
        label = {n: i for i, n in enumerate(names)}
        text_set = np.array([label[x] for x in sets], np.uint64)
        low = pc.utf8_lower(pa.array(texts, pa.string()))
        counts, flat, whole = shingle_table(
            low, max_chars=_WORD_CHARS, max_words=_MAX_WORDS)
        item = np.repeat(np.arange(len(counts)), counts)
        # a shingle found in many items is common phrasing, not evidence of any one item
        pairs = np.unique(np.stack([flat, item.astype(np.uint64)], 1), axis=0)
        uniq, n_items, shingle_sets = _label_by_key(
            pairs[:, 0], text_set[pairs[:, 1].astype(np.int64)])
        keep = n_items <= _MAX_COMMON
        # whole items: sorted unique hashes, each with its set
        order = np.argsort(whole, kind="stable")
        items, _n, item_sets = _label_by_key(whole[order], text_set[order])
        return cls(
            np.asarray(uniq[keep]).view(np.uint64),
            items,
            len(texts),
            shingle_sets=shingle_sets[keep],
            item_sets=item_sets,
            set_names=names,
        )

    def set_name(self, label: int) -> str | None:
        """The benchmark set a ``match_set`` label names (None for -1 or a mixed label)."""
        return self.set_names[label] if 0 <= label < len(self.set_names) else None


def _label_by_key(
    keys: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted ``keys`` (repeats allowed) and a label per key row: the distinct keys, how
    often each occurs, and each key's label, :data:`~.words.MIXED_SET` where its rows
    carry several."""
    uniq, first, counts = np.unique(keys, return_index=True, return_counts=True)
    lo = np.minimum.reduceat(labels, first)
    hi = np.maximum.reduceat(labels, first)
    return uniq, counts, np.where(lo == hi, lo, MIXED_SET).astype(np.uint8)


_default_index: BenchmarkIndex | None = None
_index_lock = threading.Lock()


def default_benchmark_index() -> BenchmarkIndex:
    """The process-wide index over the installed benchmark packages (built once)."""
    global _default_index
    with _index_lock:
        if _default_index is None:
            _default_index = BenchmarkIndex.build()
        return _default_index


_BLOCK_ROWS = 131_072  # rows featurised at once (their text windows: at most ~400 MB)
_REJECTED_COPY_SHARE = 0.25  # above this share of rejected rows, they are dropped first
_TEXT_CHUNK = 4096  # rows per task of the text features (the compiled passes release the GIL)


def _text_features_chunk(
    prompt: pa.Array, fallback: pa.Array, index: BenchmarkIndex
) -> dict[str, np.ndarray]:
    """Word count, lexicon flags, placeholder count and word-derived columns of a chunk of
    requests, from their text window."""
    out: dict[str, np.ndarray] = {}
    t, spaces = window_and_spaces(
        prompt, fallback, head=_TEXT_CHARS - _TAIL_CHARS, tail=_TAIL_CHARS)
    # whitespace words of the whole text (the prompt, or the last user turn without one)
    out["words"] = spaces + 1
    out.update(match_lexicons(t))
    out.update(word_hashes(
        t, max_chars=_WORD_CHARS, max_words=_MAX_WORDS, suffix_chars=_SUFFIX_CHARS,
        shingles=index.shingles, items=index.items, bits=index.bitmap,
        bucket_index=index.buckets, shingle_sets=index.shingle_sets, item_sets=index.item_sets,
    ))
    return out


def _text_features(texts: pa.Table, index: BenchmarkIndex) -> dict[str, np.ndarray]:
    """Per row of ``texts`` (columns ``prompt_text``, ``last_user_text``): ``words``, each
    lexicon flag ``f_<name>``, ``placeholders`` (matches of the placeholder pattern) and the
    columns of :func:`~distillwarden.detect.words.word_hashes`, in chunks on all cores."""
    prompts: list[pa.Array] = []
    fallbacks: list[pa.Array] = []
    for batch in texts.to_batches():
        for i in range(0, batch.num_rows, _TEXT_CHUNK):
            part = batch.slice(i, _TEXT_CHUNK)
            prompts.append(part.column(0))
            fallbacks.append(part.column(1))
    if not prompts:
        prompts, fallbacks = [pa.array([], pa.string())], [pa.array([], pa.string())]
    index.bitmap, index.buckets  # noqa: B018 - built once here, not by each thread
    with ThreadPoolExecutor(max_workers=min(len(prompts), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(_text_features_chunk, prompts, fallbacks,
                              [index] * len(prompts)))
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


def request_features(events: pa.Table, *, index: BenchmarkIndex | None = None) -> pa.Table:
    """One row of request features per event (columns :data:`FEATURE_COLUMNS`).

    Only successful requests (HTTP status < 400, or status unknown) are featurised: a
    rejected request returned nothing to learn from.
    """
    index = index if index is not None else default_benchmark_index()
    ev = _select_inputs(events)
    status = ev.column("status")
    keep = None
    if status.null_count < len(status):
        keep = pc.or_kleene(pc.is_null(status), pc.less(status, 400))
        rejected = len(keep) - pc.sum(keep).as_py() if len(keep) else 0
        if rejected == 0:
            keep = None
        elif rejected > len(keep) * _REJECTED_COPY_SHARE:
            # mostly rejected (a throttled flood): copying the kept text is cheaper than
            # featurising the rejected
            ev, keep = ev.filter(keep), None
    if ev.num_rows <= _BLOCK_ROWS:
        feats = _features_block(ev, index)
    else:
        # bounded blocks: the text windows of one block stay well inside 32-bit offsets
        feats = pa.concat_tables([
            _features_block(ev.slice(i, _BLOCK_ROWS), index)
            for i in range(0, ev.num_rows, _BLOCK_ROWS)
        ])
    # a few rejected rows are featurised and dropped here: filtering the events first would
    # copy every prompt's text, which costs more than the text features of the few
    return feats if keep is None else feats.filter(keep)


def _np(column: pa.ChunkedArray | pa.Array, fill: Any) -> np.ndarray:
    return np.asarray(column.fill_null(fill).to_numpy(zero_copy_only=False))


def _features_block(ev: pa.Table, index: BenchmarkIndex) -> pa.Table:
    text = _text_features(ev.select(["prompt_text", "last_user_text"]), index)
    desens = _desens(text["placeholders"], text["words"], text["desens_note"])
    bench_hits = text["bench_hits"]
    share = bench_hits / np.maximum(text["n_shingles"], 1)
    f_bench = text["exact"] | ((bench_hits >= 6) & (share >= 0.3))
    prompt_tokens = _np(ev.column("prompt_tokens"), 0).astype(np.float64)
    completion_tokens = _np(ev.column("completion_tokens"), 0).astype(np.float64)
    computed: dict[str, Any] = {
        "f_agent": _np(ev.column("has_tools"), False).astype(bool) | text["f_agent"],
        "f_multiturn": _np(ev.column("n_messages"), 1) >= 3,
        "f_logprobs": (_np(ev.column("logprobs"), False).astype(bool)
                       | (_np(ev.column("top_logprobs"), 0) > 0)),
        "f_multi_n": _np(ev.column("n"), 1) > 1,
        "f_bench": f_bench,
        "bench_hits": bench_hits.astype(np.int32),
        "bench_set": np.where(f_bench, text["match_set"], -1).astype(np.int16),
        "f_desens": desens,
        "words": text["words"].astype(np.int64),
        "out_in_ratio": completion_tokens / np.maximum(prompt_tokens, 1.0),
    }
    cols = {}
    for name in FEATURE_COLUMNS:
        if name in computed:
            cols[name] = pa.array(computed[name])
        elif name in text:
            cols[name] = pa.array(text[name])
        else:
            cols[name] = ev.column(name)
    return pa.table(cols)


def _desens(placeholders: np.ndarray, words: np.ndarray, note: np.ndarray) -> np.ndarray:
    """Desensitised text: several placeholders, a dense run of them, or one in a text that
    says it was anonymised."""
    ph = placeholders.astype(np.float64)
    words = np.maximum(words, 1)
    return (ph >= 3) | ((ph >= 2) & (ph / words >= 0.02)) | (note & (ph >= 1))


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
