"""Zero-copy views of an Arrow string array's bytes, for the compiled text passes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["utf8_buffers"]


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
