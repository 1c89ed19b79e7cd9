"""Spool files: one JSON event per line, appended by :class:`EventWriter`, turned into segments.

Conversion streams the spool in bounded batches, sends events that do not fit the schema to
``rejected/<stem>.jsonl`` with the reason, skips a torn last line (a write cut short by a crash:
never acknowledged), and publishes the segment ``<stem>.parquet`` atomically. The segment
name is derived from the spool name, so converting the same spool twice (a crash between the
rename and the spool's deletion) cannot duplicate events.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from ._segments import (
    REJECTED_DIR,
    SEGMENT_SUFFIX,
    SPOOL_SUFFIX,
    TMP_PREFIX,
    fsync_dir,
    write_parquet_atomic,
)
from .schema import EVENT_SCHEMA

__all__ = ["SPOOL_SUFFIX", "SpoolConversion", "convert_spool", "spool_events"]

log = logging.getLogger("distillwarden.events")

REQUIRED = tuple(f.name for f in EVENT_SCHEMA if not f.nullable)
# The spool stores ts as epoch microseconds; Arrow's JSON reader parses it as int64.
_SPOOL_SCHEMA = pa.schema(
    [pa.field("ts", pa.int64()) if f.name == "ts" else f.with_nullable(True) for f in EVENT_SCHEMA]
)
_TS_TYPE = EVENT_SCHEMA.field("ts").type


class _NeedsSlowPath(Exception):
    """The spool has something the fast reader cannot take (a bad event): go line by line."""
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
                 ValueError, OverflowError)


@dataclass
class SpoolConversion:
    """What converting one spool produced."""

    spool: Path
    segment: Path | None
    rows: int = 0
    rejected: int = 0
    torn_line: int | None = None
    already_converted: bool = False
    reasons: list[str] = field(default_factory=list)


def _first_error(row: dict[str, Any]) -> str | None:
    for name in REQUIRED:
        if row.get(name) is None:
            return f"missing required column {name!r}"
    try:
        pa.Table.from_pylist([row], schema=EVENT_SCHEMA)
    except _ARROW_ERRORS as exc:
        return f"does not fit the event schema: {exc}"
    return None


def _build(rows: list[dict[str, Any]], lines: list[tuple[int, bytes]],
           reject: Any) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    except _ARROW_ERRORS:
        good = []
        for row, (lineno, raw) in zip(rows, lines, strict=True):
            reason = _first_error(row)
            if reason is None:
                good.append(row)
            else:
                reject(lineno, reason, raw)
        return pa.Table.from_pylist(good, schema=EVENT_SCHEMA)


def _tables(
    lines: Iterable[tuple[int, bytes]], reject: Callable[[int, str, bytes], None],
    batch_rows: int,
) -> Iterator[pa.Table]:
    """The events of complete spool ``lines`` (numbered), in tables of at most
    ``batch_rows``; a line that is not an event fitting the schema goes to ``reject``."""
    rows: list[dict[str, Any]] = []
    kept: list[tuple[int, bytes]] = []
    for lineno, raw in lines:
        if raw.strip() == b"":
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reject(lineno, f"not valid JSON: {exc}", raw)
            continue
        if not isinstance(obj, dict):
            reject(lineno, "not a JSON object", raw)
            continue
        missing = next((n for n in REQUIRED if obj.get(n) is None), None)
        if missing is not None:
            reject(lineno, f"missing required column {missing!r}", raw)
            continue
        rows.append(obj)
        kept.append((lineno, raw))
        if len(rows) >= batch_rows:
            yield _build(rows, kept, reject)
            rows, kept = [], []
    if rows:
        yield _build(rows, kept, reject)


def spool_events(data: bytes, *, batch_rows: int = 10_000) -> pa.Table:
    """The events in ``data``, complete lines of a spool (from the start of a line through
    a newline), as a table in the event schema: what conversion will publish of them. Lines
    that conversion rejects are left out here too, with no record (conversion keeps it)."""
    # split as conversion reads the file: at each b"\n" only
    lines = enumerate(io.BytesIO(data), start=1)
    tables = list(_tables(lines, lambda _n, _r, _raw: None, batch_rows))
    return pa.concat_tables(tables) if tables else EVENT_SCHEMA.empty_table()


def convert_spool(
    spool: Path, segment_dir: Path, *, batch_rows: int = 10_000, block_bytes: int = 4 << 20
) -> SpoolConversion:
    """Turn ``spool`` into ``segment_dir/<stem>.parquet`` (and a rejected file if needed).

    Memory is bounded by ``batch_rows`` events per Arrow table and ``block_bytes`` of JSON per
    parse block, not by the spool's size. The spool itself is not deleted here; the caller
    deletes it once this returns.
    """
    stem = spool.name[: -len(SPOOL_SUFFIX)] if spool.name.endswith(SPOOL_SUFFIX) else spool.stem
    target = segment_dir / f"{stem}{SEGMENT_SUFFIX}"
    result = SpoolConversion(spool=spool, segment=target)
    if target.exists():
        result.already_converted = True
        return result
    rejected: list[bytes] = []

    def reject(lineno: int, reason: str, raw: bytes) -> None:
        result.rejected += 1
        if len(result.reasons) < 20:
            result.reasons.append(f"line {lineno}: {reason}")
        rejected.append(
            orjson.dumps(
                {"spool": spool.name, "line": lineno, "reason": reason,
                 "event": raw.decode("utf-8", "replace").rstrip("\n")},
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )

    def complete_lines() -> Iterator[tuple[int, bytes]]:
        with spool.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    result.torn_line = lineno
                    log.warning(
                        "spool %s: skipping torn last line %d (%d bytes): a write cut short by "
                        "a crash, never acknowledged", spool.name, lineno, len(raw))
                    break
                yield lineno, raw

    def batches() -> Iterator[pa.Table]:
        return _tables(complete_lines(), reject, batch_rows)

    def publish_rejected() -> None:
        if not rejected:
            return
        rdir = segment_dir / REJECTED_DIR
        rdir.mkdir(exist_ok=True)
        final = rdir / f"{stem}{SPOOL_SUFFIX}"
        tmp = rdir / f"{TMP_PREFIX}{stem}{SPOOL_SUFFIX}"
        with tmp.open("wb") as fh:
            fh.writelines(rejected)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(rdir)
        log.warning("spool %s: %d event(s) rejected, kept in %s (%s)", spool.name,
                    result.rejected, final, "; ".join(result.reasons[:3]))

    try:
        result.rows = write_parquet_atomic(target, _fast_batches(spool, batch_rows, block_bytes))
    except _NeedsSlowPath:
        result.rows = write_parquet_atomic(target, batches(), before_publish=publish_rejected)
    if result.rows == 0:
        result.segment = None
    return result


def _fast_batches(spool: Path, batch_rows: int, block_bytes: int) -> Iterator[pa.Table]:
    """Arrow's C++ JSON reader: several times less CPU than parsing in Python and it releases
    the GIL, so conversion barely competes with the gateway's request handling. Only for
    spools that end on a complete line and whose every event fits the schema."""
    with spool.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            raise _NeedsSlowPath("torn last line")
    try:
        reader = pa_json.open_json(
            spool,
            read_options=pa_json.ReadOptions(use_threads=False, block_size=block_bytes),
            parse_options=pa_json.ParseOptions(
                explicit_schema=_SPOOL_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= batch_rows:
                yield _fast_table(pending)
                pending, rows = [], 0
        if pending:
            yield _fast_table(pending)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise _NeedsSlowPath(str(exc)) from exc


def _fast_table(batches: list[pa.RecordBatch]) -> pa.Table:
    table = pa.Table.from_batches(batches)
    arrays = []
    for f in EVENT_SCHEMA:
        col = table.column(f.name)
        if f.name == "ts":
            col = col.cast(_TS_TYPE)
        if not f.nullable and col.null_count:
            raise _NeedsSlowPath(f"an event lacks {f.name!r}")
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
