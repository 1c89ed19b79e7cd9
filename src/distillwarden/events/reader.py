"""Reading the event log: Arrow tables, bounded-memory batches and a DuckDB view.

Every reader goes through the same segment check: a file that is not readable Parquet, or
that lacks the event schema's required columns (a foreign file), is skipped with a logged
reason and listed in the :class:`ReadReport`; a segment written by a *newer* schema version
raises :class:`~distillwarden.events.schema.SchemaError` (reading it partially would give a
silently wrong answer). Older segments are conformed: columns they lack read as nulls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._segments import META_ROWS, META_TS_MAX, META_TS_MIN, REJECTED_DIR, SEGMENT_SUFFIX, SPOOL_DIR
from .schema import EVENT_SCHEMA, SCHEMA_VERSION, SchemaError, conform, schema_for

__all__ = [
    "ReadReport",
    "SegmentError",
    "SegmentInfo",
    "SkippedSegment",
    "inspect_segment",
    "iter_batches",
    "list_segments",
    "read_events",
    "register_events",
    "scan_segments",
    "verify_segments",
]

log = logging.getLogger("distillwarden.events")

TimeLike = datetime | str | int | None
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REQUIRED = [f.name for f in EVENT_SCHEMA if not f.nullable]
_VERSION_KEY = b"distillwarden.schema_version"


@dataclass(frozen=True)
class SegmentInfo:
    """One valid segment: where it is, its size and the time range it covers."""

    path: Path
    rows: int
    size_bytes: int
    ts_min: datetime | None
    ts_max: datetime | None
    schema_version: int | None
    row_groups: int


@dataclass(frozen=True)
class SkippedSegment:
    """A file in the event directory that was not read, and why."""

    path: Path
    reason: str


@dataclass
class ReadReport:
    """What a read looked at: segments read, pruned by time, and skipped with a reason."""

    segments_read: int = 0
    segments_pruned: int = 0
    rows: int = 0
    skipped: list[SkippedSegment] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no segment had to be skipped."""
        return not self.skipped

    def skip(self, path: Path, reason: str) -> None:
        """Record (and log) a skipped segment."""
        log.warning("event log: skipping segment %s: %s", path, reason)
        self.skipped.append(SkippedSegment(path, reason))


class SegmentError(ValueError):
    """A file is not a readable event segment (corrupt, or not written in the event schema)."""


@dataclass(frozen=True)
class _Location:
    """Where an event directory lives: a local path, or a path inside an fsspec filesystem."""

    root: Path
    fs: Any = None  # pyarrow FileSystem wrapping the fsspec one; None means local
    fsspec_fs: Any = None

    def url(self, path: Path) -> str:
        """A URL DuckDB (with the filesystem registered) and users understand."""
        return str(self.fsspec_fs.unstrip_protocol(path.as_posix())) if self.fs else str(path)


def _location(directory: str | os.PathLike[str]) -> _Location:
    text = os.fspath(directory)
    if text.startswith("file://"):
        return _Location(Path(text[len("file://"):]))
    if "://" not in text:
        return _Location(Path(text))
    try:
        import fsspec
        import pyarrow.fs as pafs

        fs, inner = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise ValueError(
            f"{text}: cannot open this URL ({exc}); install fsspec and the backend for its "
            "scheme (e.g. s3fs for s3://, gcsfs for gs://)"
        ) from exc
    return _Location(Path(inner), pafs.PyFileSystem(pafs.FSSpecHandler(fs)), fs)


def _is_segment(rel: tuple[str, ...]) -> bool:
    return bool(rel) and rel[-1].endswith(SEGMENT_SUFFIX) and not (
        any(p.startswith(".") for p in rel) or rel[0] in (SPOOL_DIR, REJECTED_DIR)
    )


def _list(loc: _Location) -> list[Path]:
    root = loc.root
    out: list[Path] = []
    if loc.fs is None:
        if not root.is_dir():
            return []
        for path in root.rglob(f"*{SEGMENT_SUFFIX}"):
            if _is_segment(path.relative_to(root).parts) and path.is_file():
                out.append(path)
    else:
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(root.as_posix(), recursive=True, allow_not_found=True)
        for info in loc.fs.get_file_info(selector):
            path = Path(info.path)
            if info.type == pafs.FileType.File and _is_segment(path.relative_to(root).parts):
                out.append(path)
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def list_segments(directory: str | os.PathLike[str]) -> list[Path]:
    """Paths of the published segment files under ``directory``, oldest name first.

    Hidden files (temp files of writes in progress), ``spool/`` and ``rejected/`` are not
    segments. Subdirectories (e.g. ``date=2025-01-17/``) are searched. ``directory`` may be
    an fsspec URL (``s3://bucket/events``, ``memory://…``); the paths returned are then paths
    inside that filesystem.
    """
    return _list(_location(directory))


def _micros_to_dt(v: int) -> datetime:
    return datetime.fromtimestamp(v // 1_000_000, UTC).replace(microsecond=v % 1_000_000)


def _dt_micros(dt: datetime) -> int:
    """Epoch microseconds in integer arithmetic (no float rounding)."""
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _to_dt(value: TimeLike) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int):
        return _micros_to_dt(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(
                f"cannot read time {value!r}: use ISO 8601, e.g. 2025-01-17T09:30:00Z"
            ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _type_ok(actual: pa.DataType, expected: pa.DataType) -> bool:
    if actual.equals(expected):
        return True
    t = pa.types
    if t.is_integer(expected):
        return bool(t.is_integer(actual))
    if t.is_floating(expected):
        return bool(t.is_floating(actual) or t.is_integer(actual))
    if t.is_string(expected):
        return bool(t.is_string(actual) or t.is_large_string(actual) or t.is_dictionary(actual))
    if t.is_timestamp(expected):
        return bool(t.is_timestamp(actual))
    if t.is_boolean(expected):
        return bool(t.is_boolean(actual))
    return False


def _check_schema(path: Path, schema: pa.Schema) -> int | None:
    meta = schema.metadata or {}
    version: int | None = None
    raw = meta.get(_VERSION_KEY)
    if raw is not None:
        try:
            version = int(raw)
        except ValueError as exc:
            raise SegmentError(f"unreadable schema version {raw!r}") from exc
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"{path}: written with event schema v{version}, this distillwarden reads up to "
                f"v{SCHEMA_VERSION}; upgrade distillwarden to read this event log"
            )
    names = set(schema.names)
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise SegmentError(
            f"not an event segment: missing required column(s) {', '.join(missing)}"
        )
    for f in EVENT_SCHEMA:
        if f.name in names:
            actual = schema.field(f.name).type
            if not _type_ok(actual, f.type):
                raise SegmentError(f"column {f.name!r} has type {actual}, expected {f.type}")
    return version


def _ts_bounds(pf: pq.ParquetFile) -> tuple[int | None, int | None]:
    meta = pf.metadata.metadata or {}
    if META_TS_MIN in meta and META_TS_MAX in meta:
        return int(meta[META_TS_MIN]), int(meta[META_TS_MAX])
    lo: int | None = None
    hi: int | None = None
    for i in range(pf.metadata.num_row_groups):
        b = _rg_bounds(pf, i)
        if b is None:
            return None, None
        lo = b[0] if lo is None else min(lo, b[0])
        hi = b[1] if hi is None else max(hi, b[1])
    return lo, hi


def _rg_bounds(pf: pq.ParquetFile, i: int) -> tuple[int, int] | None:
    rg = pf.metadata.row_group(i)
    idx = pf.schema_arrow.get_field_index("ts")
    stats = rg.column(idx).statistics if idx >= 0 else None
    if stats is None or not stats.has_min_max:
        return None
    lo, hi = stats.min, stats.max
    if isinstance(lo, datetime) and isinstance(hi, datetime):
        lo_dt = lo if lo.tzinfo else lo.replace(tzinfo=UTC)
        hi_dt = hi if hi.tzinfo else hi.replace(tzinfo=UTC)
        return _dt_micros(lo_dt), _dt_micros(hi_dt)
    if isinstance(lo, int) and isinstance(hi, int):
        return lo, hi
    return None


def _open(path: Path, fs: Any = None) -> tuple[pq.ParquetFile, int | None]:
    try:
        pf = pq.ParquetFile(path.as_posix(), filesystem=fs) if fs else pq.ParquetFile(path)
        schema = pf.schema_arrow
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise SegmentError(f"not a readable Parquet file: {exc}") from exc
    return pf, _check_schema(path, schema)


def inspect_segment(path: str | os.PathLike[str], *, filesystem: Any = None) -> SegmentInfo:
    """Footer-level facts about one segment; raises :class:`SegmentError` if it is not one.

    ``filesystem`` is a pyarrow FileSystem when ``path`` lies in one (not local).
    """
    p = Path(path)
    pf, version = _open(p, filesystem)
    meta = pf.metadata.metadata or {}
    rows = int(meta[META_ROWS]) if META_ROWS in meta else pf.metadata.num_rows
    lo, hi = _ts_bounds(pf)
    size = filesystem.get_file_info(p.as_posix()).size if filesystem else p.stat().st_size
    return SegmentInfo(
        path=p,
        rows=rows,
        size_bytes=int(size),
        ts_min=_micros_to_dt(lo) if lo is not None else None,
        ts_max=_micros_to_dt(hi) if hi is not None else None,
        schema_version=version,
        row_groups=pf.metadata.num_row_groups,
    )


def scan_segments(
    directory: str | os.PathLike[str], report: ReadReport | None = None
) -> list[SegmentInfo]:
    """Inspect every segment's footer; invalid ones are skipped into ``report``."""
    report = report if report is not None else ReadReport()
    loc = _location(directory)
    infos = []
    for path in _list(loc):
        try:
            infos.append(inspect_segment(path, filesystem=loc.fs))
        except SegmentError as exc:
            report.skip(path, str(exc))
    return infos


@dataclass(frozen=True)
class _Filter:
    since_us: int | None
    until_us: int | None
    orgs: pa.Array | None

    @classmethod
    def make(cls, since: TimeLike, until: TimeLike, orgs: Iterable[str] | None) -> _Filter:
        s, u = _to_dt(since), _to_dt(until)
        return cls(
            since_us=_dt_micros(s) if s else None,
            until_us=_dt_micros(u) if u else None,
            orgs=pa.array(sorted(set(orgs)), pa.string()) if orgs is not None else None,
        )

    def overlaps(self, lo: int | None, hi: int | None) -> bool:
        if lo is None or hi is None:
            return True
        if self.since_us is not None and hi < self.since_us:
            return False
        return not (self.until_us is not None and lo >= self.until_us)

    @property
    def active(self) -> bool:
        return self.since_us is not None or self.until_us is not None or self.orgs is not None

    def mask(self, table: pa.Table) -> pa.ChunkedArray | None:
        conds = []
        if self.since_us is not None or self.until_us is not None:
            ts = table.column("ts").cast(pa.int64())
            if self.since_us is not None:
                conds.append(pc.greater_equal(ts, self.since_us))
            if self.until_us is not None:
                conds.append(pc.less(ts, self.until_us))
        if self.orgs is not None:
            conds.append(pc.is_in(table.column("org_id"), value_set=self.orgs))
        if not conds:
            return None
        out = conds[0]
        for c in conds[1:]:
            out = pc.and_(out, c)
        return out


def _segment_tables(
    directory: str | os.PathLike[str],
    flt: _Filter,
    columns: Sequence[str] | None,
    report: ReadReport,
    batch_size: int | None,
) -> Iterator[tuple[Path, Iterator[pa.Table]]]:
    want = list(columns) if columns is not None else list(EVENT_SCHEMA.names)
    schema_for(want)  # validates the names
    need = list(want)
    for extra in ("ts", "org_id"):
        if flt.active and extra not in need:
            need.append(extra)
    loc = _location(directory)
    for path in _list(loc):
        try:
            pf, _ = _open(path, loc.fs)
        except SegmentError as exc:
            report.skip(path, str(exc))
            continue
        groups = []
        for i in range(pf.metadata.num_row_groups):
            b = _rg_bounds(pf, i)
            if b is None or flt.overlaps(*b):
                groups.append(i)
        if not groups:
            report.segments_pruned += 1
            continue
        present = [c for c in need if c in pf.schema_arrow.names]

        def tables(pf: pq.ParquetFile = pf, groups: list[int] = groups,
                   present: list[str] = present, path: Path = path) -> Iterator[pa.Table]:
            if batch_size is None:
                raw: Iterable[Any] = [pf.read_row_groups(groups, columns=present)]
            else:
                raw = pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=present)
            for chunk in raw:
                t = chunk if isinstance(chunk, pa.Table) else pa.Table.from_batches([chunk])
                t = conform(t, origin=str(path), columns=need)
                m = flt.mask(t)
                if m is not None:
                    t = t.filter(m)
                if need != want:
                    t = t.select(want)
                yield t

        yield path, tables()


def read_events(
    directory: str | os.PathLike[str],
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    orgs: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
    report: ReadReport | None = None,
) -> pa.Table:
    """All events in ``[since, until)`` (for ``orgs`` if given) as one Arrow table.

    ``columns`` projects (and orders) the result; times are datetimes (naive = UTC), ISO
    strings or epoch microseconds. Rows are in segment order, not sorted by ``ts``. Skipped
    segments are logged and recorded in ``report`` when one is passed.
    """
    report = report if report is not None else ReadReport()
    flt = _Filter.make(since, until, orgs)
    parts: list[pa.Table] = []
    for path, tables in _segment_tables(directory, flt, columns, report, None):
        try:
            got = list(tables)
        except (pa.ArrowException, OSError, SchemaError) as exc:
            report.skip(path, f"unreadable data: {exc}")
            continue
        report.segments_read += 1
        parts.extend(got)
    target = schema_for(list(columns) if columns is not None else None)
    if not parts:
        return target.empty_table()
    out = pa.concat_tables(parts)
    report.rows += out.num_rows
    return out


def iter_batches(
    directory: str | os.PathLike[str],
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    orgs: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
    batch_size: int = 65_536,
    report: ReadReport | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream events as record batches of at most ``batch_size`` rows (bounded memory).

    Same filters as :func:`read_events`. A segment that turns out unreadable part-way is
    reported in ``report`` (batches already yielded from it stay yielded).
    """
    report = report if report is not None else ReadReport()
    flt = _Filter.make(since, until, orgs)
    for path, tables in _segment_tables(directory, flt, columns, report, batch_size):
        try:
            for t in tables:
                report.rows += t.num_rows
                yield from t.to_batches()
        except (pa.ArrowException, OSError, SchemaError) as exc:
            report.skip(path, f"unreadable data part-way: {exc}")
            continue
        report.segments_read += 1


def verify_segments(directory: str | os.PathLike[str]) -> tuple[list[SegmentInfo], ReadReport]:
    """Decode every row of every segment; returns the good segments and a report of bad ones."""
    report = ReadReport()
    good = []
    loc = _location(directory)
    for path in _list(loc):
        try:
            info = inspect_segment(path, filesystem=loc.fs)
            pf, _ = _open(path, loc.fs)
            rows = 0
            for batch in pf.iter_batches(batch_size=65_536):
                conform(pa.Table.from_batches([batch]), origin=str(path))
                rows += batch.num_rows
            if rows != info.rows:
                raise SegmentError(f"footer says {info.rows} rows, data has {rows}")
        except (SegmentError, pa.ArrowException, OSError) as exc:
            report.skip(path, str(exc))
            continue
        report.segments_read += 1
        report.rows += rows
        good.append(info)
    return good, report


_DUCK_TYPES = {
    "string": "VARCHAR",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    "int32": "INTEGER",
    "int16": "SMALLINT",
    "float": "FLOAT",
    "bool": "BOOLEAN",
}


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _has_filesystem(con: Any, fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    registered = set(con.list_filesystems())
    return any(p in registered for p in protocols)


def register_events(
    con: Any, directory: str | os.PathLike[str], name: str = "events"
) -> ReadReport:
    """Create (or replace) the DuckDB view ``name`` over the valid segments of ``directory``.

    Every EVENT_SCHEMA column is present with its type even when old segments lack it; the
    view covers the segments present now (call again to pick up new ones). Returns the report
    of skipped segments.
    """
    report = ReadReport()
    loc = _location(directory)
    infos = scan_segments(directory, report)
    present: set[str] = set()
    for info in infos:
        present.update(_open(info.path, loc.fs)[0].schema_arrow.names)
    report.segments_read = len(infos)
    report.rows = sum(i.rows for i in infos)
    cols = []
    for f in EVENT_SCHEMA:
        duck = _DUCK_TYPES[str(f.type)]
        src = _quote_ident(f.name) if f.name in present else "NULL"
        cols.append(f"CAST({src} AS {duck}) AS {_quote_ident(f.name)}")
    if infos:
        if loc.fsspec_fs is not None and not _has_filesystem(con, loc.fsspec_fs):
            con.register_filesystem(loc.fsspec_fs)
        files = ", ".join(_quote_str(loc.url(i.path)) for i in infos)
        source = f"read_parquet([{files}], union_by_name = true)"
        sql = f"SELECT {', '.join(cols)} FROM {source}"
    else:
        sql = f"SELECT {', '.join(cols)} WHERE false"
    con.execute(f"CREATE OR REPLACE VIEW {_quote_ident(name)} AS {sql}")
    return report
