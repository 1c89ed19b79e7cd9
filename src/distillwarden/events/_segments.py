"""Segment files: names, atomic Parquet writes and the metadata every segment carries.

A segment is one immutable Parquet file in :data:`~distillwarden.events.schema.EVENT_SCHEMA`,
zstd-compressed, published with write-to-temp + fsync + ``os.replace`` + directory fsync so
that a reader never sees a half-written file and a crash never leaves one under a real name.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# Arrow is imported where Parquet is written, not here: the gateway uses the names and
# directory helpers of this module and, converting spools in a child process, never loads it.

__all__ = [
    "REJECTED_DIR",
    "SEGMENT_SUFFIX",
    "SPOOL_DIR",
    "SPOOL_SUFFIX",
    "TMP_PREFIX",
    "fsync_dir",
    "new_stem",
    "write_parquet_atomic",
]

SEGMENT_SUFFIX = ".parquet"
SPOOL_DIR = "spool"
SPOOL_SUFFIX = ".jsonl"
REJECTED_DIR = "rejected"
TMP_PREFIX = ".tmp-"
COMPRESSION = "zstd"
ROW_GROUP_ROWS = 10_000  # small enough for time pruning, large enough for compression

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]{0,200}$")

META_TS_MIN = b"distillwarden.ts_min_us"
META_TS_MAX = b"distillwarden.ts_max_us"
META_ROWS = b"distillwarden.rows"


def new_stem(writer_id: str, seq: int, when: datetime | None = None) -> str:
    """A segment/spool file stem that sorts by creation time and is unique per writer."""
    when = when or datetime.now(UTC)
    return f"{when:%Y%m%dT%H%M%S%f}Z-{writer_id}-{seq:06d}"


def check_name(name: str) -> str:
    """Validate a caller-supplied segment stem (no paths, no hidden files)."""
    if not _SAFE_NAME.match(name):
        raise ValueError(
            f"segment name {name!r} is not allowed: use letters, digits, '.', '_', '=' or '-', "
            "starting with a letter or digit"
        )
    return name


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(
    target: Path,
    batches: Iterable[pa.Table],
    *,
    before_publish: Callable[[], None] | None = None,
) -> int:
    """Write tables (already in EVENT_SCHEMA) as one Parquet segment at ``target``, atomically.

    Returns the number of rows written. Nothing is written (and 0 returned) when the tables
    hold no rows. The file appears under its final name only once complete and fsynced.
    ``before_publish`` runs after all batches are consumed and before the rename (also when
    there were no rows), so side files can be made durable before the segment exists.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .schema import EVENT_SCHEMA, SCHEMA_VERSION

    directory = target.parent
    tmp = directory / f"{TMP_PREFIX}{target.stem}-{secrets.token_hex(4)}{SEGMENT_SUFFIX}"
    rows = 0
    ts_min: int | None = None
    ts_max: int | None = None
    writer: pq.ParquetWriter | None = None
    try:
        for table in batches:
            if table.num_rows == 0:
                continue
            if writer is None:
                writer = pq.ParquetWriter(tmp, EVENT_SCHEMA, compression=COMPRESSION)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows += table.num_rows
            bounds = pc.min_max(table.column("ts").cast(pa.int64()))
            lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
            ts_min = lo if ts_min is None else min(ts_min, lo)
            ts_max = hi if ts_max is None else max(ts_max, hi)
        if before_publish is not None:
            before_publish()
        if writer is None:
            return 0
        writer.add_key_value_metadata(
            {
                META_TS_MIN: str(ts_min).encode(),
                META_TS_MAX: str(ts_max).encode(),
                META_ROWS: str(rows).encode(),
                b"distillwarden.schema_version": str(SCHEMA_VERSION).encode(),
            }
        )
        writer.close()
        writer = None
        _fsync_path(tmp)
        os.replace(tmp, target)
        fsync_dir(directory)
        return rows
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
