"""Zero-copy views of an Arrow string array's bytes, and byte-level helpers shared by the
compiled text passes (``window.py``, ``words.py``)."""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa

__all__ = ["FNV_OFFSET", "fnv_step", "is_char_start", "last_chars_start", "utf8_buffers"]

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


@numba.njit(inline="always")
def is_char_start(b: np.uint8) -> bool:
    """Whether a UTF-8 byte starts a character (is not a continuation byte)."""
    return (b & 0xC0) != 0x80


@numba.njit(inline="always")
def last_chars_start(data: np.ndarray, start: int, end: int, chars: int) -> int:
    """Where the last ``chars`` characters of ``data[start:end]`` begin (``start`` when it
    holds fewer)."""
    i = end
    n = 0
    while i > start and n < chars:
        i -= 1
        n += is_char_start(data[i])
    return i


@numba.njit(inline="always")
def fnv_step(h: np.uint64, b: np.uint8) -> np.uint64:
    """One byte of FNV-1a (start from :data:`FNV_OFFSET`)."""
    return (h ^ np.uint64(b)) * _FNV_PRIME


def utf8_buffers(
    arr: pa.Array | pa.ChunkedArray, *, null_as_empty: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes and the int64 row offsets into them of a string array (the text is not
    copied unless it must be combined, narrowed from large offsets, or its nulls filled).
    Nulls read as empty strings with ``null_as_empty``, else they are an error."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    if arr.null_count:
        if not null_as_empty:
            raise ValueError("texts must not be null")
        arr = arr.fill_null("")
    n = len(arr)
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, np.int32, count=n + 1, offset=arr.offset * 4)
    data = (np.frombuffer(data_buf, np.uint8) if data_buf is not None
            else np.zeros(1, np.uint8))
    return data, offsets.astype(np.int64)
