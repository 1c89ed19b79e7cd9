"""The text window request features read: each prompt lower-cased, cut to its first and
last characters.

Per row, the text is the prompt (or, without one, the last user turn; else empty). A text of
at most ``head + tail`` characters is kept whole; a longer one becomes its first ``head``
characters, ``" … "`` and its last ``tail`` characters (instructions sit at either end of a
long prompt). Lower-casing is Arrow's ``utf8_lower``. One compiled pass (Numba, releasing the
GIL) cuts the windows straight from the Arrow buffers and lower-cases ASCII on the way; only
the rows holding non-ASCII text go through ``utf8_lower`` afterwards.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._utf8 import is_char_start, utf8_buffers

__all__ = ["SEPARATOR", "text_window"]

#: what joins the head and the tail of a cut text
SEPARATOR = " … "
_SEP = np.frombuffer(SEPARATOR.encode(), np.uint8)


@numba.njit(nogil=True, cache=True)
def _plan(
    offsets: np.ndarray, data: np.ndarray, head: int, tail: int,
    head_end: np.ndarray, tail_start: np.ndarray, out_len: np.ndarray, sep_len: int,
) -> None:
    """Per row: where its head ends and its tail starts (equal when kept whole)."""
    for r in range(len(offsets) - 1):
        s = offsets[r]
        e = offsets[r + 1]
        whole = e - s <= head + tail  # bytes bound characters from above
        if not whole:
            n = 0
            i = s
            while i < e and n <= head + tail:
                n += is_char_start(data[i])
                i += 1
            whole = n <= head + tail
        if whole:
            head_end[r] = e
            tail_start[r] = e
            out_len[r] = e - s
            continue
        n = 0
        i = s
        while i < e:
            if is_char_start(data[i]):
                if n == head:
                    break
                n += 1
            i += 1
        head_end[r] = i
        n = 0
        j = e
        while j > s and n < tail:
            j -= 1
            n += is_char_start(data[j])
        tail_start[r] = j
        out_len[r] = (i - s) + sep_len + (e - j)


@numba.njit(inline="always")
def _lower_ascii(out: np.ndarray, a: int, b: int) -> bool:
    """Lower-case ASCII letters in ``out[a:b]`` in place; whether any byte is non-ASCII.
    Written without branches so that LLVM vectorises it."""
    seen = np.int32(0)
    for k in range(a, b):
        c = np.int32(out[k])
        seen |= c
        out[k] = c + 32 * ((c >= 65) & (c <= 90))
    return bool(seen >= 0x80)


@numba.njit(nogil=True, cache=True)
def _copy(
    offsets: np.ndarray, data: np.ndarray, head_end: np.ndarray, tail_start: np.ndarray,
    out_offsets: np.ndarray, out: np.ndarray, sep: np.ndarray, non_ascii: np.ndarray,
) -> None:
    """Copy each row's window, ASCII lower-cased, noting rows with non-ASCII bytes."""
    for r in range(len(offsets) - 1):
        s, e, o = offsets[r], offsets[r + 1], out_offsets[r]
        h = head_end[r] - s
        out[o : o + h] = data[s : head_end[r]]
        if head_end[r] != tail_start[r]:
            out[o + h : o + h + len(sep)] = sep
            out[o + h + len(sep) : out_offsets[r + 1]] = data[tail_start[r] : e]
        # the separator is not ASCII: only the text decides whether the row is
        wide = _lower_ascii(out, o, o + h)
        if head_end[r] != tail_start[r]:
            wide = _lower_ascii(out, o + h + len(sep), out_offsets[r + 1]) or wide
        non_ascii[r] = wide


def text_window(
    prompt: pa.Array, fallback: pa.Array | None = None, *, head: int = 2000, tail: int = 1000
) -> pa.Array:
    """The lower-cased window of each row of ``prompt`` (``fallback`` where it is null; the
    empty string where both are). See the module docstring."""
    text = prompt
    if fallback is not None and prompt.null_count:
        text = pc.if_else(prompt.is_valid(), prompt, fallback)
    data, offsets = utf8_buffers(text, null_as_empty=True)
    n = len(offsets) - 1
    head_end = np.empty(n, np.int64)
    tail_start = np.empty(n, np.int64)
    out_len = np.empty(n, np.int64)
    _plan(offsets, data, head, tail, head_end, tail_start, out_len, len(_SEP))
    out_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(out_len, out=out_offsets[1:])
    if out_offsets[-1] >= 2**31:
        raise ValueError("text windows exceed 2 GiB: featurise fewer rows at once")
    out = np.empty(max(int(out_offsets[-1]), 1), np.uint8)
    non_ascii = np.zeros(n, np.bool_)
    _copy(offsets, data, head_end, tail_start, out_offsets, out, _SEP, non_ascii)
    window = pa.Array.from_buffers(
        pa.string(), n,
        [None, pa.py_buffer(out_offsets.astype(np.int32)), pa.py_buffer(out)],
    )
    if non_ascii.any():
        mask = pa.array(non_ascii)
        lowered = pc.utf8_lower(pc.take(window, pa.array(np.flatnonzero(non_ascii))))
        window = pc.replace_with_mask(window, mask, lowered)
    return window
