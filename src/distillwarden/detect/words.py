"""Words of each prompt and what is derived from them, in one compiled pass per row.

A prompt's *word window* is its first ``max_chars`` characters (code points) with quoted
spans blanked (``"…"`` or ``“…”`` of at most 200 characters on one line: the slots of a
template). Its *words* are the maximal runs of ``a-z`` and non-ASCII characters in the window
(the text is lower-cased before), the first ``max_words`` of them. From the words of a row
this module computes, over the UTF-8 bytes of an Arrow string array and without Python per
row (Numba, releasing the GIL so that chunks run on all cores):

* the template prefix hash (first eight words) and the hash of all the words (exact matches);
* the template suffix hash (the row's last characters after their first space);
* the hashes of its 4-word shingles, two MinHash fingerprints of them;
* benchmark hits: shingles found in a sorted array of benchmark shingle hashes, behind a
  one-hash Bloom filter and a bucket table of that array; and which benchmark set the row
  matches (the set of an exactly matched item, else the set most of its hits belong to).

Hash values are only compared with each other within a process (the benchmark index is built
with the same functions); none is stored.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

from ._utf8 import FNV_OFFSET, fnv_step, is_char_start, last_chars_start, utf8_buffers

__all__ = [
    "BITMAP_BITS", "BUCKET_BITS", "MIXED_SET", "QUOTED_PATTERN", "WordHashes", "bitmap", "buckets",
    "row_words", "shingle_table", "word_hashes",
]

BITMAP_BITS = 24  # bits of the benchmark-shingle Bloom filter (2 MiB)
BUCKET_BITS = 20  # the sorted shingles are bucketed by their top bits (4 MiB of offsets)
_QUOTE_CHARS = 200  # at most this many characters between a template slot's quotes
#: the quoted spans the window blanks, as a regex (the kernels scan for them by hand)
QUOTED_PATTERN = r'"[^"\n]{0,200}"|“[^”\n]{0,200}”'
SHINGLE = 4  # words per shingle
#: the set label of a shingle found in items of several benchmark sets (not counted for any)
MIXED_SET = 255

MIX = np.uint64(0x9E3779B97F4A7C15)
_MH_MUL = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))
_MH_ADD = (np.uint64(0x165667B19E3779F9), np.uint64(0x27D4EB2F165667C5))
_SEQ_SEED = np.uint64(0x84222325CBF29CE4)


@numba.njit(inline="always")
def _avalanche(h: np.uint64) -> np.uint64:
    """splitmix64's finaliser: every input bit reaches every output bit."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@numba.njit(inline="always")
def _char_len(b: np.uint8) -> int:
    if b < 0x80:
        return 1
    if b >= 0xF0:
        return 4
    if b >= 0xE0:
        return 3
    if b >= 0xC0:
        return 2
    return 1


@numba.njit(inline="always")
def _is_curly(data: np.ndarray, i: int, end: int, last: int) -> bool:
    """``data[i:i+3]`` is “ (``last`` 0x9C) or ” (0x9D), inside ``end``."""
    return (i + 2 < end and data[i] == 0xE2 and data[i + 1] == 0x80
            and data[i + 2] == last)


@numba.njit(inline="always")
def _quote_end(data: np.ndarray, i: int, end: int, room: int) -> tuple[int, int]:
    """If a quoted span starts at ``i`` and closes within the next ``room`` characters, the
    index just past it and the characters it holds after the opening quote; else (-1, 0).

    Mirrors the regex ``"[^"\\n]{0,200}"|“[^”\\n]{0,200}”`` at position ``i``."""
    curly = _is_curly(data, i, end, 0x9C)
    j = i + 3 if curly else i + 1
    n = 0  # characters after the opening quote, before j
    while j < end and n <= _QUOTE_CHARS and n < room:
        if curly:
            if _is_curly(data, j, end, 0x9D):
                return j + 3, n + 1
        elif data[j] == 0x22:
            return j + 1, n + 1
        if data[j] == 0x0A:
            return -1, 0
        j += _char_len(data[j])
        n += 1
    return -1, 0


@numba.njit(inline="always")
def _close_word(
    starts: np.ndarray, ends: np.ndarray, wh: np.ndarray, count: int, w0: int, i: int,
    h: np.uint64,
) -> int:
    """Record the word ``data[w0:i]`` (running hash ``h``) as word ``count``."""
    starts[count] = w0
    ends[count] = i
    wh[count] = _avalanche(h)
    return count + 1


@numba.njit(nogil=True, cache=True)
def _row_words(
    data: np.ndarray, start: int, end: int, max_chars: int, max_words: int,
    starts: np.ndarray, ends: np.ndarray, wh: np.ndarray,
) -> int:
    """Byte spans and hashes of a row's words (see the module docstring) into ``starts``,
    ``ends`` and ``wh``; returns how many. One pass over the window's bytes."""
    count = 0
    chars = 0  # characters started before or at i
    i = start
    w0 = -1
    h = FNV_OFFSET
    while i < end:
        b = data[i]
        if is_char_start(b):
            if chars >= max_chars:
                break
            chars += 1
            if b == 0x22 or (b == 0xE2 and _is_curly(data, i, end, 0x9C)):
                q, used = _quote_end(data, i, end, max_chars - chars)
                if q >= 0:
                    if w0 >= 0:
                        count = _close_word(starts, ends, wh, count, w0, i, h)
                        w0 = -1
                        if count == max_words:
                            return count
                    chars += used
                    i = q
                    continue
        if (b >= 97 and b <= 122) or b >= 0x80:
            if w0 < 0:
                w0 = i
                h = FNV_OFFSET
            h = fnv_step(h, b)
        elif w0 >= 0:
            count = _close_word(starts, ends, wh, count, w0, i, h)
            w0 = -1
            if count == max_words:
                return count
        i += 1
    if w0 >= 0:
        count = _close_word(starts, ends, wh, count, w0, i, h)
    return count


@numba.njit(inline="always")
def _seq_hash(wh: np.ndarray, n: int) -> np.uint64:
    """Hash of a word sequence (order and length matter)."""
    h = _SEQ_SEED
    for k in range(n):
        h = h * MIX + wh[k]
    return _avalanche(h + np.uint64(n))


@numba.njit(inline="always")
def _shingle(wh: np.ndarray, k: int) -> np.uint64:
    """Hash of the ``SHINGLE``-word shingle starting at word ``k``."""
    acc = wh[k]
    for j in range(1, SHINGLE):
        acc = acc * MIX + wh[k + j]
    return _avalanche(acc)


@numba.njit(inline="always")
def _suffix_hash(data: np.ndarray, start: int, end: int, chars: int) -> np.uint64:
    """Hash of the row's last ``chars`` characters after their first space (the tail of a
    template, its first word likely cut); of nothing when they hold no space."""
    i = last_chars_start(data, start, end, chars)
    while i < end and data[i] != 0x20:
        i += 1
    h = FNV_OFFSET
    for k in range(i + 1, end):
        h = fnv_step(h, data[k])
    return _avalanche(h)


@numba.njit(nogil=True, cache=True)
def _hash_kernel(
    data: np.ndarray, offsets: np.ndarray, max_chars: int, max_words: int, suffix_chars: int,
    bits: np.ndarray, buckets: np.ndarray, shingles: np.ndarray, items: np.ndarray,
    shingle_sets: np.ndarray, item_sets: np.ndarray,
    tpl: np.ndarray, suffix: np.ndarray, whole: np.ndarray, n_shingles: np.ndarray,
    hits: np.ndarray, exact: np.ndarray, fp_a: np.ndarray, fp_b: np.ndarray,
    match_set: np.ndarray,
) -> None:
    starts = np.empty(max_words, np.int64)
    ends = np.empty(max_words, np.int64)
    wh = np.empty(max_words, np.uint64)
    per_set = np.zeros(MIXED_SET + 1, np.int64)
    touched = np.empty(max_words, np.int64)
    n_sh = len(shingles)
    n_it = len(items)
    shift = np.uint64(64 - BITMAP_BITS)
    b_shift = np.uint64(64 - BUCKET_BITS)
    for r in range(len(offsets) - 1):
        nw = _row_words(data, offsets[r], offsets[r + 1], max_chars, max_words, starts, ends,
                        wh)
        tpl[r] = _seq_hash(wh, min(nw, 8))
        suffix[r] = _suffix_hash(data, offsets[r], offsets[r + 1], suffix_chars)
        whole[r] = _seq_hash(wh, nw)
        exact_set = np.int64(MIXED_SET)
        if n_it:
            pos = np.searchsorted(items, whole[r])
            exact[r] = pos < n_it and items[pos] == whole[r]
            if exact[r]:
                exact_set = np.int64(item_sets[pos])
        m = max(nw - SHINGLE + 1, 0)
        n_shingles[r] = m
        ha = np.uint64(0xFFFFFFFFFFFFFFFF)
        hb = ha
        h_count = 0
        n_touched = 0
        for k in range(m):
            s = _shingle(wh, k)
            a = s * _MH_MUL[0] + _MH_ADD[0]
            b = s * _MH_MUL[1] + _MH_ADD[1]
            ha = min(ha, a)
            hb = min(hb, b)
            if n_sh:
                top = np.int64(s >> shift)
                if (bits[top >> 3] >> (top & 7)) & 1:
                    bucket = np.int64(s >> b_shift)
                    for pos in range(buckets[bucket], buckets[bucket + 1]):
                        if shingles[pos] == s:
                            h_count += 1
                            label = np.int64(shingle_sets[pos])
                            if per_set[label] == 0:
                                touched[n_touched] = label
                                n_touched += 1
                            per_set[label] += 1
                            break
        # the set with the most hits (the smaller label on a tie); a mixed shingle names none
        best = 0
        best_label = -1
        for t in range(n_touched):
            label = touched[t]
            c = per_set[label]
            per_set[label] = 0
            if label != MIXED_SET and (c > best or (c == best and label < best_label)):
                best = c
                best_label = label
        # an exactly matched item names its set, unless that text is in several sets
        match_set[r] = exact_set if exact_set != MIXED_SET else best_label
        hits[r] = h_count
        fp_a[r] = ha if m else np.uint64(0)
        fp_b[r] = hb if m else np.uint64(0)


@numba.njit(nogil=True, cache=True)
def _shingle_kernel(
    data: np.ndarray, offsets: np.ndarray, max_chars: int, max_words: int,
    out: np.ndarray, counts: np.ndarray, whole: np.ndarray,
) -> int:
    starts = np.empty(max_words, np.int64)
    ends = np.empty(max_words, np.int64)
    wh = np.empty(max_words, np.uint64)
    o = 0
    for r in range(len(offsets) - 1):
        nw = _row_words(data, offsets[r], offsets[r + 1], max_chars, max_words, starts, ends,
                        wh)
        whole[r] = _seq_hash(wh, nw)
        m = max(nw - SHINGLE + 1, 0)
        counts[r] = m
        for k in range(m):
            out[o] = _shingle(wh, k)
            o += 1
    return o


class WordHashes(dict[str, np.ndarray]):
    """Per-row columns of :func:`word_hashes` (``tpl_prefix``, ``tpl_suffix``, ``whole``,
    ``n_shingles``, ``bench_hits``, ``exact``, ``fp_a``, ``fp_b``, ``match_set``)."""


def bitmap(shingles: np.ndarray) -> np.ndarray:
    """A bit-packed one-hash Bloom filter over sorted shingle hashes (their top bits)."""
    bits = np.zeros(1 << (BITMAP_BITS - 3), np.uint8)
    top = (np.asarray(shingles, np.uint64) >> np.uint64(64 - BITMAP_BITS)).astype(np.int64)
    np.bitwise_or.at(bits, top >> 3, (1 << (top & 7)).astype(np.uint8))
    return bits


def buckets(shingles: np.ndarray) -> np.ndarray:
    """Where each bucket of sorted ``shingles`` (by their top ``BUCKET_BITS`` bits) starts
    and ends: bucket ``b`` is ``shingles[buckets[b]:buckets[b + 1]]``."""
    top = np.asarray(shingles, np.uint64) >> np.uint64(64 - BUCKET_BITS)
    edges = np.arange((1 << BUCKET_BITS) + 1, dtype=np.uint64)
    return np.searchsorted(top, edges).astype(np.int32)


def word_hashes(
    texts: pa.Array | pa.ChunkedArray, *, max_chars: int, max_words: int, suffix_chars: int,
    shingles: np.ndarray, items: np.ndarray, bits: np.ndarray | None = None,
    bucket_index: np.ndarray | None = None, shingle_sets: np.ndarray | None = None,
    item_sets: np.ndarray | None = None,
) -> WordHashes:
    """Per row of ``texts`` (lower-cased): template prefix, template suffix (the last
    ``suffix_chars`` characters after their first space) and whole-text hashes, shingle
    count, benchmark hits against ``shingles`` (sorted; their :func:`bitmap` ``bits`` and
    :func:`buckets` ``bucket_index`` are built when not given),
    exact match of the whole against ``items`` (sorted), two MinHash fingerprints, and
    ``match_set``: the benchmark set label (``item_sets`` beside ``items``, ``shingle_sets``
    beside ``shingles``; default all 0) of the exactly matched item, else the label most of
    the row's hits carry (:data:`MIXED_SET` labels are skipped), -1 with neither."""
    data, offsets = utf8_buffers(texts)
    n = len(offsets) - 1
    out = WordHashes(
        tpl_prefix=np.zeros(n, np.uint64), tpl_suffix=np.zeros(n, np.uint64),
        whole=np.zeros(n, np.uint64),
        n_shingles=np.zeros(n, np.int64), bench_hits=np.zeros(n, np.int64),
        exact=np.zeros(n, np.bool_), fp_a=np.zeros(n, np.uint64), fp_b=np.zeros(n, np.uint64),
        match_set=np.zeros(n, np.int16),
    )
    bits = bitmap(shingles) if bits is None else bits
    bucket_index = buckets(shingles) if bucket_index is None else bucket_index
    shingle_sets = np.zeros(len(shingles), np.uint8) if shingle_sets is None else shingle_sets
    item_sets = np.zeros(len(items), np.uint8) if item_sets is None else item_sets
    if len(shingle_sets) != len(shingles) or len(item_sets) != len(items):
        raise ValueError("shingle_sets and item_sets must label every shingle and item")
    _hash_kernel(
        data, offsets, max_chars, max_words, suffix_chars, bits, bucket_index, shingles, items,
        np.asarray(shingle_sets, np.uint8), np.asarray(item_sets, np.uint8),
        out["tpl_prefix"], out["tpl_suffix"], out["whole"], out["n_shingles"],
        out["bench_hits"], out["exact"], out["fp_a"], out["fp_b"], out["match_set"],
    )
    return out


def shingle_table(
    texts: pa.Array | pa.ChunkedArray, *, max_chars: int, max_words: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``texts``: shingle counts, the flat shingle hashes (row after row) and the
    whole-text hash, for building a benchmark index."""
    data, offsets = utf8_buffers(texts)
    n = len(offsets) - 1
    counts = np.zeros(n, np.int64)
    whole = np.zeros(n, np.uint64)
    flat = np.zeros(n * max(max_words - SHINGLE + 1, 0), np.uint64)
    used = _shingle_kernel(data, offsets, max_chars, max_words, flat, counts, whole)
    return counts, flat[:used], whole


def row_words(texts: pa.Array, *, max_chars: int, max_words: int) -> list[list[str]]:
    """The words of each row (for tests and debugging; the kernels never build strings)."""
    data, offsets = utf8_buffers(texts)
    starts = np.empty(max_words, np.int64)
    ends = np.empty(max_words, np.int64)
    wh = np.empty(max_words, np.uint64)
    raw = data.tobytes()
    rows = []
    for r in range(len(offsets) - 1):
        nw = _row_words(data, offsets[r], offsets[r + 1], max_chars, max_words, starts, ends,
                        wh)
        rows.append([raw[s:e].decode() for s, e in zip(starts[:nw], ends[:nw], strict=True)])
    return rows
