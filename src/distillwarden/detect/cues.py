"""Word-level lexicon cues (:data:`~.lexicons.CUE_PHRASES`, :data:`~.lexicons.CUE_RULES`)
matched in one compiled pass over each text window.

People ask for the same thing in their own words: "walk me through your derivation", "lay
out the whole thought process", "rank these five replies". A rule pairs a left word with a
right word at most a few words on in the same clause; a phrase (one word or two) is a hit by
itself. Regular expressions with word gaps would say the same, but inside the one automaton
that scans every window they multiply its states (a set with them ran several times slower),
so words are hashed instead: a multiplicative hash per word, a mixed hash per pair of
adjacent words, and one probe of an open-addressing table gives the roles of each. The pass
releases the GIL.

Words are maximal runs of ASCII letters and digits, apostrophes and non-ASCII bytes (so a
word in another script is one word that no English cue matches); a clause ends at ``.``,
``!``, ``?``, ``;`` or a line break. The text is expected lower-cased (text windows are).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
import pyarrow as pa

from ._utf8 import utf8_buffers
from .lexicons import CUE_PHRASES, CUE_RULES, LEXICONS

__all__ = ["match_cues", "words_of"]

# the hash constants, read by the Python reference and the compiled pass alike
_MASK64 = (1 << 64) - 1
_SEED = 5381
_MIX = 0xFF51AFD7ED558CCD
_PAIR_MUL = 0x9E3779B97F4A7C15
_DEBRUIJN = 0x03F79D71B4CA8B09
_SLOT_SHIFT = 29  # a key's first slot: (h ^ h >> 29) masked to the table
_FLAGS = tuple(LEXICONS)


def words_of(text: str) -> list[str]:
    """The words of ``text`` as the compiled pass cuts them (clause ends dropped)."""
    out: list[str] = []
    cur = bytearray()
    for b in text.encode("utf-8"):
        if _is_word_byte(b):
            cur.append(b)
        elif cur:
            out.append(cur.decode("utf-8", "replace"))
            cur = bytearray()
    if cur:
        out.append(cur.decode("utf-8", "replace"))
    return out


def _is_word_byte(b: int) -> bool:
    return bool(_CLASS[b] == 1)


def _word_hash(word: str) -> int:
    """``h = 33 h + byte`` over the word's bytes (a short dependency chain per byte), then
    one multiply-xorshift mix (the compiled pass computes the same)."""
    h = _SEED
    for b in word.encode("utf-8"):
        h = (h * 33 + b) & _MASK64
    return _mix(h)


def _mix(h: int) -> int:
    h ^= h >> 33
    h = (h * _MIX) & _MASK64
    return h ^ (h >> 33)


def _pair_hash(h1: int, h2: int) -> int:
    return (h1 * _PAIR_MUL + h2) & _MASK64


def _cue_hash(cue: str) -> int:
    words = words_of(cue)
    if not 1 <= len(words) <= 2:
        raise ValueError(f"a cue is one word or two, got {cue!r}")
    h = _word_hash(words[0])
    return h if len(words) == 1 else _pair_hash(h, _word_hash(words[1]))


@functools.cache
def _build() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hash table (keys; per key the bit sets of the lexicons it is a phrase of, the
    rules it is a left word of and those it is a right word of) and the rules' gaps, order
    flags and lexicons."""
    if len(CUE_RULES) > 64 or len(_FLAGS) > 64:
        raise ValueError("at most 64 cue rules and 64 lexicons")
    roles: dict[int, list[int]] = {}

    def add(cue: str, column: int, bit: int) -> None:
        roles.setdefault(_cue_hash(cue), [0, 0, 0, 0])[column] |= bit
        words = words_of(cue)
        if len(words) == 2:  # its first word must be kept to look the pair up
            roles.setdefault(_word_hash(words[0]), [0, 0, 0, 0])[3] = 1

    for flag, phrases in CUE_PHRASES.items():
        for cue in phrases:
            add(cue, 0, 1 << _FLAGS.index(flag))
    for r, (_flag, left, right, _gap, _either) in enumerate(CUE_RULES):
        for column, cues in ((1, left), (2, right)):
            for cue in cues:
                add(cue, column, 1 << r)
    size = 1 << max(8, (4 * len(roles) - 1).bit_length())
    keys = np.zeros(size, np.uint64)
    vals = np.zeros((size, 4), np.uint64)
    for h, bits in roles.items():
        i = _slot(h, size)
        while keys[i] != 0:
            i = (i + 1) & (size - 1)
        keys[i] = h
        vals[i] = bits
    gaps = np.array([g for *_x, g, _e in CUE_RULES], np.int64)
    either = np.array([e for *_x, e in CUE_RULES], np.bool_)
    flag_of = np.array([_FLAGS.index(f) for f, *_x in CUE_RULES], np.int64)
    return keys, vals, gaps, either, flag_of


#: byte classes: 0 separates words, 1 is part of a word, 2 ends a clause
_CLASS = np.zeros(256, np.uint8)
_CLASS[ord("a") : ord("z") + 1] = 1
_CLASS[ord("0") : ord("9") + 1] = 1
_CLASS[ord("'")] = 1
_CLASS[128:] = 1
_CLASS[[ord(c) for c in ".!?;\n"]] = 2


def _slot(h: int, size: int) -> int:
    return ((h ^ (h >> _SLOT_SHIFT)) & _MASK64) & (size - 1)


#: the pass reads a text's first and last bytes: instructions sit at either end of a prompt,
#: and the middle of a long one is mostly material (a document to summarise, code to fix)
HEAD_BYTES = 600
TAIL_BYTES = 600

_LOWEST = np.zeros(64, np.int64)  # de Bruijn table: index of a word's lowest set bit
for _i in range(64):
    _LOWEST[(((1 << _i) * _DEBRUIJN) & _MASK64) >> 58] = _i


@numba.njit(inline="always")
def _lookup(keys: np.ndarray, h: np.uint64) -> np.int64:
    """The slot of ``h`` in the table, or -1."""
    mask = np.uint64(len(keys) - 1)
    i = (h ^ (h >> np.uint64(_SLOT_SHIFT))) & mask
    while keys[i] != np.uint64(0):
        if keys[i] == h:
            return np.int64(i)
        i = (i + np.uint64(1)) & mask
    return np.int64(-1)


@numba.njit(nogil=True, cache=True)
def _words(
    data: np.ndarray, s: int, e: int, classes: np.ndarray, hashes: np.ndarray,
    clauses: np.ndarray,
) -> int:
    """The words of ``data[s:e]``: each one's (unmixed) hash and clause number, in order;
    how many. Written without branches on the bytes (word boundaries are unpredictable),
    each step stores unconditionally and advances the count by the boundary flag."""
    seed = np.uint64(_SEED)
    h = seed
    m = 0
    clause = 0
    was_word = False
    for k in range(s, e):
        b = data[k]
        c = classes[b]
        w = c == 1
        hashes[m] = h
        clauses[m] = clause
        m += was_word and not w
        clause += c == 2
        h = h * np.uint64(33) + np.uint64(b) if w else seed
        was_word = w
    hashes[m] = h
    clauses[m] = clause
    m += was_word
    return m


@numba.njit(nogil=True, cache=True)
def _scan(
    offsets: np.ndarray, data: np.ndarray, classes: np.ndarray, keys: np.ndarray,
    vals: np.ndarray, gaps: np.ndarray, either: np.ndarray, flag_of: np.ndarray,
    lowest: np.ndarray, head: int, tail: int, out: np.ndarray,
) -> None:
    n_rules = len(gaps)
    never = np.int64(-(1 << 40))
    last_left = np.full(n_rules, never, np.int64)
    last_right = np.full(n_rules, never, np.int64)
    pair_mul = np.uint64(_PAIR_MUL)
    mix = np.uint64(_MIX)
    debruijn = np.uint64(_DEBRUIJN)
    longest = head + tail
    hashes = np.empty(longest // 2 + 2, np.uint64)
    clauses = np.empty(longest // 2 + 2, np.int64)
    base = np.int64(0)  # words before this part: positions never repeat between parts
    for part in range(2 * (len(offsets) - 1)):
        r = part // 2
        s = offsets[r]
        e = offsets[r + 1]
        if e - s <= head + tail:  # the whole text, as the first part
            if part % 2:
                continue
        elif part % 2:
            s = e - tail
        else:
            e = s + head
        m = _words(data, s, e, classes, hashes, clauses)
        prev = np.uint64(0)  # the previous word, where it starts a two-word cue
        clause_start = base
        for i in range(m):
            pos = base + i
            if i > 0 and clauses[i] != clauses[i - 1]:
                clause_start = pos
                prev = np.uint64(0)
            h = hashes[i]
            h ^= h >> np.uint64(33)
            h *= mix
            h ^= h >> np.uint64(33)
            slot = _lookup(keys, h)
            pair = _lookup(keys, prev * pair_mul + h) if prev != np.uint64(0) else np.int64(-1)
            prev = h if slot >= 0 and vals[slot, 3] != np.uint64(0) else np.uint64(0)
            if slot < 0 and pair < 0:
                continue
            phrase = np.uint64(0)
            left = np.uint64(0)
            right = np.uint64(0)
            if slot >= 0:
                phrase = vals[slot, 0]
                left = vals[slot, 1]
                right = vals[slot, 2]
            if pair >= 0:
                phrase |= vals[pair, 0]
                left |= vals[pair, 1]
                right |= vals[pair, 2]
            while phrase != np.uint64(0):
                low = phrase & (~phrase + np.uint64(1))
                out[r, lowest[(low * debruijn) >> np.uint64(58)]] = True
                phrase ^= low
            todo = left | right
            while todo != np.uint64(0):
                low = todo & (~todo + np.uint64(1))
                q = lowest[(low * debruijn) >> np.uint64(58)]
                todo ^= low
                is_left = (left & low) != np.uint64(0)
                is_right = (right & low) != np.uint64(0)
                if (is_right and last_left[q] >= clause_start
                        and pos - last_left[q] <= gaps[q] + 1):
                    out[r, flag_of[q]] = True
                if (is_left and either[q] and last_right[q] >= clause_start
                        and pos - last_right[q] <= gaps[q] + 1):
                    out[r, flag_of[q]] = True
                if is_left:
                    last_left[q] = pos
                if is_right:
                    last_right[q] = pos
        base += m + 1


def match_cues(window: pa.Array) -> np.ndarray:
    """Per row of ``window`` (lower-cased text, no nulls), which lexicons its cues hit: a
    boolean array of shape ``(rows, len(LEXICONS))``, columns in the order of
    :data:`~.lexicons.LEXICONS`."""
    keys, vals, gaps, either, flag_of = _build()
    data, offsets = utf8_buffers(window)
    out = np.zeros((len(offsets) - 1, len(_FLAGS)), np.bool_)
    _scan(offsets, data, _CLASS, keys, vals, gaps, either, flag_of, _LOWEST, HEAD_BYTES,
          TAIL_BYTES, out)
    return out
