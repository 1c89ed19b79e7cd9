"""Import traffic recorded by other gateways into the event log, and export it back out.

* :func:`import_interchange` streams a traffic interchange JSONL file (bounded memory: one
  batch of ``segment_rows`` events at a time) into Parquet segments; bad lines are reported
  with their line number and skipped. Segment names are derived from the content of each
  batch, so importing the same file again replaces the same segments instead of duplicating
  events (and an interrupted import can simply be re-run).
* :func:`import_dataset` does the same into a dataset directory (``events/``,
  ``accounts.parquet``, ``labels.jsonl``) as the simulator writes.
* :func:`export_interchange` writes the event log back out in the interchange format.
* :func:`read_accounts` / :func:`read_labels` read the side files.

LiteLLM spend logs are in :mod:`distillwarden.events.litellm`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ._segments import fsync_dir, write_parquet_atomic
from .interchange import ACCOUNT_COLUMNS, LineError, account_record, interchange_line, label_record
from .reader import ReadReport, TimeLike, _micros_to_dt, iter_batches
from .schema import EVENT_SCHEMA

__all__ = [
    "ACCOUNTS_SCHEMA",
    "ExportReport",
    "ImportFormatError",
    "ImportReport",
    "ProgressCallback",
    "export_interchange",
    "import_dataset",
    "import_interchange",
    "read_accounts",
    "read_labels",
    "sync_accounts_to_store",
    "write_accounts_for_orgs",
]

log = logging.getLogger("distillwarden.events")

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_read, total_bytes)`` while a file is imported."""

ACCOUNTS_SCHEMA = pa.schema(
    [
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("licence", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("home_region", pa.string()),
        pa.field("payment_fingerprint_hash", pa.string()),
        pa.field("created", pa.timestamp("us", tz="UTC")),
        pa.field("tier", pa.string()),
    ]
)
assert tuple(ACCOUNTS_SCHEMA.names) == ACCOUNT_COLUMNS

_MAX_REPORTED = 1000
_CHUNK_ROWS = 2_000


class ImportFormatError(ValueError):
    """An input file cannot be imported at all; the message says what to fix."""


@dataclass
class ImportReport:
    """What an import did: lines read, events written, and each skipped line with its reason."""

    source: str
    lines: int = 0
    imported: int = 0
    skipped: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)
    orgs: set[str] = field(default_factory=set)
    ts_min: datetime | None = None
    ts_max: datetime | None = None
    accounts: int = 0
    accounts_skipped: int = 0
    labels: int = 0
    store_orgs_created: int = 0
    store_errors: list[str] = field(default_factory=list)

    def bad(self, lineno: int, reason: str, *, what: str = "line") -> None:
        """Record a skipped input line."""
        self.skipped += 1
        if len(self.bad_lines) < _MAX_REPORTED:
            self.bad_lines.append((lineno, reason))
        if self.skipped <= 5:
            log.warning("%s %s %d skipped: %s", self.source, what, lineno, reason)

    def summary(self) -> str:
        """One human sentence."""
        span = ""
        if self.ts_min and self.ts_max:
            span = f", {self.ts_min:%Y-%m-%d %H:%M} to {self.ts_max:%Y-%m-%d %H:%M} UTC"
        return (
            f"imported {self.imported} event(s) from {self.lines} line(s) of {self.source} "
            f"for {len(self.orgs)} organization(s){span}; skipped {self.skipped} bad traffic line(s)"
        )


@dataclass
class ExportReport:
    """What an export wrote."""

    path: Path
    events: int = 0
    read: ReadReport = field(default_factory=ReadReport)


def _open_input(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise ImportFormatError(f"cannot open {path}: {exc.strerror}; check the path") from exc


def iter_jsonl(
    path: Path, report: ImportReport, progress: ProgressCallback | None = None,
    *, what: str = "line",
) -> Iterator[tuple[int, bytes, Any]]:
    """``(line number, raw bytes, parsed value)`` for each non-blank line that is valid JSON;
    invalid ones are recorded in ``report`` and skipped."""
    total = path.stat().st_size
    done = 0
    with _open_input(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            done += len(raw)
            if progress is not None and lineno % 2048 == 0:
                progress(done, total)
            if not raw.strip():
                continue
            report.lines += 1
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                report.bad(lineno, f"not valid JSON: {exc}", what=what)
                continue
            yield lineno, raw, obj
    if progress is not None:
        progress(total, total)


def _load_accounts_jsonl(
    path: Path, secret: bytes, report: ImportReport
) -> dict[str, dict[str, Any]]:
    sub = ImportReport(source=str(path))
    out: dict[str, dict[str, Any]] = {}
    for lineno, _raw, obj in iter_jsonl(path, sub, what="account line"):
        try:
            rec = account_record(obj, secret)
        except LineError as exc:
            sub.bad(lineno, str(exc), what="account line")
            continue
        out[rec["org_id"]] = rec
    report.accounts = len(out)
    report.accounts_skipped = sub.skipped
    report.bad_lines.extend((n, f"accounts file: {r}") for n, r in sub.bad_lines)
    return out


def _accounts_table(accounts: dict[str, dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(accounts.values()), schema=ACCOUNTS_SCHEMA)


def _write_table_atomic(table: pa.Table, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{target.name}")
    pq.write_table(table, tmp, compression="zstd")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    fsync_dir(target.parent)


def _publish(tables: list[pa.Table], digest: Any, events_dir: Path,
             kind: str, report: ImportReport) -> None:
    target = events_dir / f"import-{kind}-{digest.hexdigest()[:20]}.parquet"
    report.imported += write_parquet_atomic(target, tables)
    report.segments.append(target)


def _track(report: ImportReport, row: dict[str, Any]) -> None:
    report.orgs.add(row["org_id"])
    ts = row["ts"]
    dt = _micros_to_dt(ts) if isinstance(ts, int) else ts
    if report.ts_min is None or dt < report.ts_min:
        report.ts_min = dt
    if report.ts_max is None or dt > report.ts_max:
        report.ts_max = dt


def import_rows(
    rows: Iterator[tuple[int, bytes, dict[str, Any]]],
    events_dir: Path,
    report: ImportReport,
    *,
    kind: str,
    segment_rows: int,
) -> ImportReport:
    """Write ``(line number, raw bytes, event row)`` items as content-named segments."""
    events_dir.mkdir(parents=True, exist_ok=True)
    chunk: list[dict[str, Any]] = []  # Python rows are bulky: turn them into Arrow often
    tables: list[pa.Table] = []
    in_segment = 0
    digest = hashlib.sha256(kind.encode())
    for lineno, raw, row in rows:
        chunk.append(row)
        in_segment += 1
        digest.update(b"%d:" % lineno)
        digest.update(raw)
        _track(report, row)
        if len(chunk) >= _CHUNK_ROWS:
            tables.append(pa.Table.from_pylist(chunk, schema=EVENT_SCHEMA))
            chunk = []
        if in_segment >= segment_rows:
            if chunk:
                tables.append(pa.Table.from_pylist(chunk, schema=EVENT_SCHEMA))
            _publish(tables, digest, events_dir, kind, report)
            chunk, tables, in_segment = [], [], 0
            digest = hashlib.sha256(kind.encode())
    if chunk:
        tables.append(pa.Table.from_pylist(chunk, schema=EVENT_SCHEMA))
    if tables:
        _publish(tables, digest, events_dir, kind, report)
    return report


def _import_interchange(
    path: Path,
    events_dir: Path,
    secret: bytes,
    accounts_path: Path | None,
    progress: ProgressCallback | None,
    segment_rows: int,
) -> tuple[ImportReport, dict[str, dict[str, Any]]]:
    from .interchange import traffic_event

    report = ImportReport(source=str(path))
    accounts = _load_accounts_jsonl(accounts_path, secret, report) if accounts_path else {}

    def rows() -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        for lineno, raw, obj in iter_jsonl(path, report, progress):
            try:
                yield lineno, raw, traffic_event(
                    obj, secret, lineno=lineno, raw=raw, accounts=accounts
                )
            except LineError as exc:
                report.bad(lineno, str(exc))

    import_rows(rows(), events_dir, report, kind="jsonl", segment_rows=segment_rows)
    return report, accounts


def import_interchange(
    traffic_path: str | os.PathLike[str],
    events_dir: str | os.PathLike[str],
    secret: bytes,
    *,
    accounts_path: str | os.PathLike[str] | None = None,
    session: Any = None,
    progress: ProgressCallback | None = None,
    segment_rows: int = 50_000,
    actor: str = "import",
) -> ImportReport:
    """Import a traffic interchange JSONL file into the event log at ``events_dir``.

    With ``accounts_path`` each event gets its organization's licence and channel; with a
    SQLAlchemy ``session`` the organizations (and their licences) are created in the store
    when missing (the caller commits). Returns the :class:`ImportReport`.
    """
    report, accounts = _import_interchange(
        Path(traffic_path), Path(events_dir), secret,
        Path(accounts_path) if accounts_path else None, progress, segment_rows,
    )
    if session is not None:
        sync_accounts_to_store(session, accounts, report.orgs, report, actor=actor)
    return report


def import_dataset(
    traffic_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    secret: bytes,
    *,
    accounts_path: str | os.PathLike[str] | None = None,
    labels_path: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    segment_rows: int = 50_000,
) -> ImportReport:
    """Import interchange traffic (+ accounts, + labels) as a dataset directory.

    Writes ``<out>/events/``, ``<out>/accounts.parquet`` (always: organizations seen only in
    the traffic get a row with unknown licence) and ``<out>/labels.jsonl`` (normalised) when
    a labels file is given. Labels are checked first, so a bad labels file fails fast.
    """
    out = Path(out_dir)
    labels = read_labels(labels_path) if labels_path is not None else None
    report, accounts = _import_interchange(
        Path(traffic_path), out / "events", secret,
        Path(accounts_path) if accounts_path else None, progress, segment_rows,
    )
    for org in sorted(report.orgs - accounts.keys()):
        accounts[org] = {name: None for name in ACCOUNT_COLUMNS} | {"org_id": org}
    _write_table_atomic(_accounts_table(accounts), out / "accounts.parquet")
    if labels is not None:
        report.labels = len(labels)
        body = b"".join(orjson.dumps(v, option=orjson.OPT_APPEND_NEWLINE) for v in labels.values())
        tmp = out / ".tmp-labels.jsonl"
        tmp.write_bytes(body)
        os.replace(tmp, out / "labels.jsonl")
    return report


def write_accounts_for_orgs(target: str | os.PathLike[str], orgs: set[str]) -> Path:
    """Write an ``accounts.parquet`` listing ``orgs`` with unknown licence (for imports that
    come without an accounts file, so that a dataset directory is complete)."""
    accounts = {o: {name: None for name in ACCOUNT_COLUMNS} | {"org_id": o} for o in sorted(orgs)}
    path = Path(target)
    _write_table_atomic(_accounts_table(accounts), path)
    return path


def read_labels(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Ground-truth labels by org id, normalised (see
    :func:`~distillwarden.events.interchange.label_record`).

    Raises :class:`ImportFormatError` listing the bad lines: evaluation on partly read labels
    would silently give wrong numbers.
    """
    p = Path(path)
    report = ImportReport(source=str(p))
    out: dict[str, dict[str, Any]] = {}
    for lineno, _raw, obj in iter_jsonl(p, report, what="label line"):
        try:
            rec = label_record(obj)
        except LineError as exc:
            report.bad(lineno, str(exc), what="label line")
            continue
        if rec["org"] in out:
            report.bad(lineno, f"organization {rec['org']!r} is labelled twice", what="label line")
            continue
        out[rec["org"]] = rec
    if report.skipped:
        shown = "; ".join(f"line {n}: {r}" for n, r in report.bad_lines[:5])
        raise ImportFormatError(f"{p}: {report.skipped} bad label line(s) ({shown}); fix the file")
    return out


def read_accounts(path: str | os.PathLike[str], *, secret: bytes | None = None) -> pa.Table:
    """The accounts table (:data:`ACCOUNTS_SCHEMA`) from ``accounts.parquet`` or an accounts
    JSONL file (which needs ``secret`` to hash payment fingerprints)."""
    p = Path(path)
    if p.suffix == ".parquet":
        try:
            table = pq.read_table(p)
        except (pa.ArrowException, OSError) as exc:
            raise ImportFormatError(f"{p}: not a readable accounts Parquet file: {exc}") from exc
        missing = [n for n in ("org_id",) if n not in table.column_names]
        if missing:
            raise ImportFormatError(f"{p}: not an accounts table (no org_id column)")
        cols = []
        for f in ACCOUNTS_SCHEMA:
            cols.append(table.column(f.name).cast(f.type) if f.name in table.column_names
                        else pa.nulls(table.num_rows, f.type))
        return pa.Table.from_arrays(cols, schema=ACCOUNTS_SCHEMA)
    if secret is None:
        raise ImportFormatError(
            f"{p}: reading an accounts JSONL file needs the installation secret to hash "
            "payment fingerprints; pass secret=settings.secret_bytes()"
        )
    report = ImportReport(source=str(p))
    return _accounts_table(_load_accounts_jsonl(p, secret, report))


def sync_accounts_to_store(
    session: Any,
    accounts: dict[str, dict[str, Any]],
    orgs: set[str],
    report: ImportReport,
    *,
    actor: str = "import",
) -> None:
    """Create the organizations (and licences from the accounts file) missing in the store.

    Existing organizations are left untouched. Problems (an org id the store does not accept,
    an unknown channel...) are collected in ``report.store_errors``, not raised.
    """
    from distillwarden.store import services
    from distillwarden.store.errors import NotFound, StoreError

    for org_id in sorted(orgs | accounts.keys()):
        try:
            services.get_org(session, org_id)
            continue
        except NotFound:
            pass
        acc = accounts.get(org_id, {})
        try:
            with session.begin_nested():
                services.create_org(
                    session, name=org_id, org_id=org_id, tier=acc.get("tier") or "standard",
                    home_region=acc.get("home_region"),
                    payment_fingerprint_hash=acc.get("payment_fingerprint_hash"),
                    # the sign-up time the source recorded (linkage weighs sign-up bursts);
                    # the store's own creation time here is only the import's
                    metadata={"signed_up": acc["created"].isoformat()}
                    if acc.get("created") is not None else None,
                    actor=actor, reason=f"imported from {report.source}",
                )
                if acc.get("licence") or acc.get("channel"):
                    services.set_licence(
                        session, org_id, name=acc.get("licence") or "standard",
                        channel=acc.get("channel") or "direct",
                        regions=(acc["home_region"],) if acc.get("home_region") else (),
                        actor=actor, reason=f"imported from {report.source}",
                    )
            report.store_orgs_created += 1
        except StoreError as exc:
            report.store_errors.append(f"{org_id}: {exc}")


def export_interchange(
    events_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    since: TimeLike = None,
    until: TimeLike = None,
    orgs: list[str] | None = None,
) -> ExportReport:
    """Write the event log (optionally a time range / some orgs) as interchange JSONL.

    Streams in batches; the file appears under ``out_path`` only when complete.
    """
    out = Path(out_path)
    report = ExportReport(path=out)
    tmp = out.with_name(f".tmp-{out.name}")
    with tmp.open("wb") as fh:
        for batch in iter_batches(events_dir, since=since, until=until, orgs=orgs,
                                  batch_size=8192, report=report.read):
            lines = [orjson.dumps(interchange_line(r), option=orjson.OPT_APPEND_NEWLINE)
                     for r in batch.to_pylist()]
            fh.writelines(lines)
            report.events += len(lines)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    return report
