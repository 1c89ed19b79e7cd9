"""The text window request features read: each prompt lower-cased, cut to its first and
last characters.

Per row, the text is the prompt (or, without one, the last user turn; else empty). A text of
at most ``head + tail`` characters is kept whole; a longer one becomes its first ``head``
characters, ``" … "`` and its last ``tail`` characters (instructions sit at either end of a
long prompt). Lower-casing is Arrow's ``utf8_lower``. One compiled pass (Numba, releasing the
GIL) counts the spaces of each text, cuts the windows straight from the Arrow buffers and
lower-cases ASCII on the way; only the rows holding a non-ASCII character that has a lower
case go through ``utf8_lower`` afterwards.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._utf8 import is_char_start, last_chars_start, utf8_buffers

__all__ = ["SEPARATOR", "text_window", "window_and_spaces"]

#: what joins the head and the tail of a cut text
SEPARATOR = " … "
_SEP = np.frombuffer(SEPARATOR.encode(), np.uint8)


@numba.njit(nogil=True, cache=True)
def _plan(
    offsets: np.ndarray, data: np.ndarray, head: int, tail: int,
    head_end: np.ndarray, tail_start: np.ndarray, out_len: np.ndarray, sep_len: int,
    spaces: np.ndarray,
) -> None:
    """Per row: its ASCII spaces, where its head ends and its tail starts (equal when kept
    whole)."""
    for r in range(len(offsets) - 1):
        s = offsets[r]
        e = offsets[r + 1]
        text = data[s:e]
        n_space = np.uint32(0)  # unsigned, branch-free: LLVM vectorises the count
        for k in range(text.shape[0]):
            n_space += np.uint32(text[k] == np.uint8(0x20))
        spaces[r] = n_space
        whole = e - s <= head + tail  # bytes bound characters from above
        i = s  # where the head ends: at the start of character number ``head``
        if not whole:
            n = 0
            k = s
            while k < e and n <= head + tail:
                if is_char_start(data[k]):
                    if n == head:
                        i = k
                    n += 1
                k += 1
            whole = n <= head + tail
        if whole:
            head_end[r] = e
            tail_start[r] = e
            out_len[r] = e - s
            continue
        head_end[r] = i
        j = last_chars_start(data, s, e, tail)
        tail_start[r] = j
        out_len[r] = (i - s) + sep_len + (e - j)


@numba.njit(inline="always")
def _lower_ascii(out: np.ndarray, a: int, b: int) -> bool:
    """Lower-case ASCII letters in ``out[a:b]`` in place; whether any byte is non-ASCII.
    Written without branches, in bytes, so that LLVM vectorises it."""
    text = out[a:b]
    seen = np.uint8(0)
    for k in range(text.shape[0]):
        c = text[k]
        seen |= c
        text[k] = c + np.uint8(32) * np.uint8((c >= np.uint8(65)) & (c <= np.uint8(90)))
    return bool(seen >= 0x80)


@numba.njit(inline="always")
def _cased(out: np.ndarray, a: int, b: int, cased_pairs: np.ndarray) -> bool:
    """Whether ``out[a:b]`` holds a non-ASCII character that lower-casing may change: one
    whose first two UTF-8 bytes are marked in ``cased_pairs``."""
    for k in range(a, b - 1):
        c = out[k]
        if c >= 0xC0 and cased_pairs[(np.int64(c) << 8) | np.int64(out[k + 1])]:
            return True
    return False


@numba.njit(nogil=True, cache=True)
def _copy(
    offsets: np.ndarray, data: np.ndarray, head_end: np.ndarray, tail_start: np.ndarray,
    out_offsets: np.ndarray, out: np.ndarray, sep: np.ndarray, cased_pairs: np.ndarray,
    needs_lower: np.ndarray,
) -> None:
    """Copy each row's window, ASCII lower-cased, noting rows with non-ASCII characters
    that have a lower case."""
    for r in range(len(offsets) - 1):
        s, e, o = offsets[r], offsets[r + 1], out_offsets[r]
        h = head_end[r] - s
        out[o : o + h] = data[s : head_end[r]]
        if head_end[r] != tail_start[r]:
            out[o + h : o + h + len(sep)] = sep
            out[o + h + len(sep) : out_offsets[r + 1]] = data[tail_start[r] : e]
        # the separator is not ASCII (and has no case): only the text decides
        wide = _lower_ascii(out, o, o + h)
        if head_end[r] != tail_start[r]:
            wide = _lower_ascii(out, o + h + len(sep), out_offsets[r + 1]) or wide
        needs_lower[r] = wide and _cased(out, o, out_offsets[r + 1], cased_pairs)


_cased_table: np.ndarray | None = None


def _cased_pairs() -> np.ndarray:
    """Which (first, second) UTF-8 byte pairs start a character that ``utf8_lower`` changes,
    as a flat table of 65,536 flags; derived once from Arrow's own ``utf8_lower`` over every
    non-ASCII code point of Unicode's first two planes, so the shortcut never disagrees with
    it. (Planes 2 to 16 hold ideographs, tags and private use: no character there has a
    case. The tests check sampled code points of every plane.)"""
    global _cased_table
    if _cased_table is None:
        cp = np.concatenate([np.arange(0x80, 0xD800), np.arange(0xE000, 0x20000)])
        n_bytes = 2 + (cp >= 0x800) + (cp >= 0x10000)
        enc = np.zeros((len(cp), 4), np.uint8)
        lead = np.array([0, 0, 0xC0, 0xE0, 0xF0])[n_bytes]
        for k in range(1, 4):  # continuation byte k holds bits 6 * (n - 1 - k) and up
            enc[:, k] = 0x80 | ((cp >> np.maximum(6 * (n_bytes - 1 - k), 0)) & 0x3F)
        enc[:, 0] = lead | (cp >> (6 * (n_bytes - 1)))
        data = enc[np.arange(4) < n_bytes[:, None]]
        offsets = np.zeros(len(cp) + 1, np.int32)
        np.cumsum(n_bytes, out=offsets[1:])
        chars = pa.Array.from_buffers(
            pa.string(), len(cp), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        changed = pc.not_equal(chars, pc.utf8_lower(chars)).to_numpy(zero_copy_only=False)
        table = np.zeros(1 << 16, np.bool_)
        table[(enc[changed, 0].astype(np.int64) << 8) | enc[changed, 1]] = True
        _cased_table = table
    return _cased_table


def window_and_spaces(
    prompt: pa.Array, fallback: pa.Array | None = None, *, head: int = 2000, tail: int = 1000
) -> tuple[pa.Array, np.ndarray]:
    """The lower-cased window of each row of ``prompt`` (``fallback`` where it is null; the
    empty string where both are), and how many ASCII spaces the whole of that text holds.
    See the module docstring."""
    text = prompt
    if fallback is not None and prompt.null_count:
        text = pc.if_else(prompt.is_valid(), prompt, fallback)
    data, offsets = utf8_buffers(text, null_as_empty=True)
    n = len(offsets) - 1
    head_end = np.empty(n, np.int64)
    tail_start = np.empty(n, np.int64)
    out_len = np.empty(n, np.int64)
    spaces = np.empty(n, np.int64)
    _plan(offsets, data, head, tail, head_end, tail_start, out_len, len(_SEP), spaces)
    out_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(out_len, out=out_offsets[1:])
    if out_offsets[-1] >= 2**31:
        raise ValueError("text windows exceed 2 GiB: featurise fewer rows at once")
    out = np.empty(max(int(out_offsets[-1]), 1), np.uint8)
    needs_lower = np.zeros(n, np.bool_)
    _copy(offsets, data, head_end, tail_start, out_offsets, out, _SEP, _cased_pairs(),
          needs_lower)
    window = pa.Array.from_buffers(
        pa.string(), n,
        [None, pa.py_buffer(out_offsets.astype(np.int32)), pa.py_buffer(out)],
    )
    if needs_lower.any():
        mask = pa.array(needs_lower)
        lowered = pc.utf8_lower(pc.take(window, pa.array(np.flatnonzero(needs_lower))))
        window = pc.replace_with_mask(window, mask, lowered)
    return window, spaces


def text_window(
    prompt: pa.Array, fallback: pa.Array | None = None, *, head: int = 2000, tail: int = 1000
) -> pa.Array:
    """The lower-cased window of each row of ``prompt`` (see :func:`window_and_spaces`)."""
    return window_and_spaces(prompt, fallback, head=head, tail=tail)[0]
