"""The durable event writer: append is a single ``os.write``; Parquet happens in the background.

Layout of an event directory::

    <dir>/<stem>.parquet          published segments (immutable, zstd, EVENT_SCHEMA)
    <dir>/spool/<stem>.jsonl      spools being appended to or awaiting conversion
    <dir>/rejected/<stem>.jsonl   events that did not fit the schema, with the reason

``<stem>`` is ``<UTC time the spool was opened>-<writer id>-<sequence>``; each writer holds an
exclusive ``flock`` on its spools until they are converted, so several writers (gateway
replicas) can share one directory and a starting writer only recovers spools whose owner
died. Guarantees:

* once :meth:`EventWriter.append` returns, the event is in the spool file in the kernel's
  page cache: a ``kill -9`` of the process loses nothing. With ``fsync=True`` each append is
  also fsynced, which survives power loss at the price of a disk flush per event.
* a segment appears under its final name only when complete and fsynced (temp + rename).
* converting a spool twice yields the same segment name, so recovery never duplicates events.
* a Parquet failure (disk full, a bad event) never drops events: the spool is kept and
  retried with exponential backoff; events that cannot fit the schema go to ``rejected/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ._convert import ConversionFailed, ConversionOutcome, convert_in_child
from ._segments import (
    SEGMENT_SUFFIX,
    SPOOL_DIR,
    SPOOL_SUFFIX,
    TMP_PREFIX,
    check_name,
    fsync_dir,
    new_stem,
    write_parquet_atomic,
)
from .record import new_event_id

if TYPE_CHECKING:
    import pyarrow as pa

    from ._spool import SpoolConversion

__all__ = [
    "Conversion", "EventLogError", "EventWriter", "WriterMetrics", "check_conversion",
    "write_segment",
]

log = logging.getLogger("distillwarden.events")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DUMP_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
_MAX_BACKOFF_S = 30.0
_STALE_TMP_S = 3600.0

#: Where spools become Parquet: ``"thread"`` in the writer's background thread (Arrow in this
#: process), ``"process"`` in a short-lived child per spool (this process never loads Arrow
#: and its memory stays flat; the gateway's mode).
Conversion = Literal["thread", "process"]


def check_conversion(value: str, *, name: str = "conversion") -> Conversion:
    """``value`` as a :data:`Conversion`, or a ValueError naming the parameter ``name``."""
    if value not in ("thread", "process"):
        raise ValueError(f"{name} must be 'thread' or 'process', not {value!r}")
    return value  # type: ignore[return-value]


class EventLogError(RuntimeError):
    """The event log cannot do what was asked; the message says what to do next."""


@dataclass(frozen=True)
class WriterMetrics:
    """A snapshot of an :class:`EventWriter`'s counters (for ``/metrics``)."""

    queue_depth: int
    lag_s: float
    segments_written: int
    events_written: int
    events_rejected: int
    errors: int
    pending_spools: int
    conversions_in_child: int = 0
    conversion_cpu_s: float = 0.0
    conversion_peak_rss_mb: float = 0.0


@dataclass
class _Spool:
    path: Path
    fd: int
    count: int = 0
    first_append: float | None = None  # wall clock of the first event
    opened: float = 0.0  # monotonic
    retry_at: float = 0.0
    backoff: float = 0.0


def _ts_micros(value: Any) -> int:
    if value is None:
        return time.time_ns() // 1000
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(f"event ts must be a datetime or epoch microseconds, got {type(value).__name__}")


def _lock_nb(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class EventWriter:
    """Appends events to a crash-safe spool and publishes them as rotating Parquet segments.

    ``append`` is thread-safe and costs one ``orjson.dumps`` plus one ``os.write``; a
    background thread rotates spools at ``segment_max_events`` events or
    ``segment_max_age_s`` seconds and converts them into segments, in this process
    (``conversion="thread"``, the default) or in a short-lived child process per spool
    (``conversion="process"``: the caller's resident memory stays flat and it never loads
    Arrow; a child killed mid-way loses nothing, the spool is retried). A child that cannot
    be started at all (no interpreter path, out of memory) falls back to the thread.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_max_events: int = 50_000,
        segment_max_age_s: float = 60.0,
        fsync: bool = False,
        writer_id: str | None = None,
        conversion: Conversion = "thread",
        conversion_timeout_s: float = 600.0,
    ) -> None:
        check_conversion(conversion)
        if conversion_timeout_s <= 0:
            raise ValueError("conversion_timeout_s must be positive")
        if segment_max_events < 1:
            raise ValueError("segment_max_events must be at least 1")
        if segment_max_age_s <= 0:
            raise ValueError("segment_max_age_s must be positive")
        self.directory = Path(directory)
        self.segment_max_events = segment_max_events
        self.segment_max_age_s = segment_max_age_s
        self.fsync = fsync
        self.conversion: Conversion = conversion
        self.conversion_timeout_s = conversion_timeout_s
        self.writer_id = check_name(writer_id or f"w{os.getpid()}x{secrets.token_hex(3)}")
        self._spool_dir = self.directory / SPOOL_DIR
        self._lock = threading.Lock()
        self._convert_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: _Spool | None = None
        self._pending: list[_Spool] = []
        self._seq = 0
        self._closed = False
        self.segments_written = 0
        self.events_written = 0
        self.events_rejected = 0
        self.errors = 0
        self.conversions_in_child = 0
        self.conversion_cpu_s = 0.0
        self.conversion_peak_rss_mb = 0.0
        self.last_conversion_pid: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EventWriter:
        """Create the directories, recover spools left by dead writers, start the flusher."""
        if self._thread is not None:
            return self
        if self._closed:
            raise EventLogError("this EventWriter was closed; create a new one")
        try:
            self._spool_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EventLogError(
                f"cannot create the event log directory {self._spool_dir}: {exc.strerror}; "
                "check the path and its permissions (setting `events_dir`)"
            ) from exc
        self._remove_stale_tmp()
        self._adopt_orphans()
        self._convert_due(force=True)
        self._thread = threading.Thread(
            target=self._run, name=f"event-writer-{self.writer_id}", daemon=True
        )
        self._thread.start()
        return self

    def __enter__(self) -> EventWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the flusher and convert everything spooled; unconvertible spools stay on disk
        (the next ``start`` in this directory recovers them)."""
        if self._closed:
            return
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            self._rotate_locked()
            self._closed = True
        try:
            self._convert_due(force=True)
        finally:
            for spool in self._pending:
                with contextlib.suppress(OSError):
                    os.close(spool.fd)
            if self._pending:
                log.error(
                    "event writer %s closed with %d spool(s) not yet converted; they stay in "
                    "%s and are recovered by the next writer started on this directory",
                    self.writer_id, len(self._pending), self._spool_dir)
            self._pending = []

    # -- hot path ----------------------------------------------------------------------------

    def append(self, event: dict[str, Any]) -> None:
        """Durably enqueue one event (keys are EVENT_SCHEMA columns).

        ``ts`` may be a datetime (naive means UTC), epoch microseconds or absent (now);
        ``event_id`` is generated when absent. When this returns the event survives a
        ``kill -9``; it reaches a segment within ``segment_max_age_s``. Raises ``OSError``
        (e.g. disk full) when the event could not be spooled: it was not recorded.
        """
        ts = event.get("ts")
        if type(ts) is not int or "event_id" not in event:
            event = dict(event)
            event["ts"] = _ts_micros(ts)
            if not event.get("event_id"):
                event["event_id"] = new_event_id()
        try:
            line = orjson.dumps(event, option=_DUMP_OPTS)
        except TypeError as exc:
            raise TypeError(f"event is not JSON-serialisable: {exc}") from exc
        rotated = False
        with self._lock:
            if self._closed:
                raise EventLogError("append after close(): the event was not recorded")
            spool = self._current or self._open_spool_locked()
            view = memoryview(line)
            try:
                while view:
                    written = os.write(spool.fd, view)
                    view = view[written:]
                if self.fsync:
                    os.fsync(spool.fd)
            except OSError:
                # Part of the line may be on disk (disk full): retire this spool so that any
                # fragment stays its torn last line and cannot corrupt the next event.
                self._rotate_locked()
                raise
            spool.count += 1
            if spool.first_append is None:
                spool.first_append = time.time()
            if spool.count >= self.segment_max_events:
                self._rotate_locked()
                rotated = True
        if rotated:
            self._wake.set()

    # -- control -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Publish every event appended so far as segments now (blocking).

        Raises :class:`EventLogError` if a spool cannot be converted (it is kept and retried).
        """
        with self._lock:
            self._rotate_locked()
        failed = self._convert_due(force=True)
        if failed:
            raise EventLogError(
                f"{failed} spool(s) could not be written as Parquet segments (see the log); "
                f"their events are safe in {self._spool_dir} and will be retried"
            )

    @property
    def queue_depth(self) -> int:
        """Events accepted but not yet in a published segment."""
        with self._lock:
            cur = self._current.count if self._current else 0
            return cur + sum(s.count for s in self._pending)

    @property
    def lag_s(self) -> float:
        """Age in seconds of the oldest event not yet in a published segment (0 when none)."""
        with self._lock:
            firsts = [s.first_append for s in self._pending if s.first_append is not None]
            if self._current is not None and self._current.first_append is not None:
                firsts.append(self._current.first_append)
        return max(0.0, time.time() - min(firsts)) if firsts else 0.0

    def metrics(self) -> WriterMetrics:
        """All counters at once."""
        with self._lock:
            pending = len(self._pending)
        return WriterMetrics(
            queue_depth=self.queue_depth,
            lag_s=self.lag_s,
            segments_written=self.segments_written,
            events_written=self.events_written,
            events_rejected=self.events_rejected,
            errors=self.errors,
            pending_spools=pending,
            conversions_in_child=self.conversions_in_child,
            conversion_cpu_s=self.conversion_cpu_s,
            conversion_peak_rss_mb=self.conversion_peak_rss_mb,
        )

    # -- internals ---------------------------------------------------------------------------

    def _open_spool_locked(self) -> _Spool:
        self._seq += 1
        name = f"{new_stem(self.writer_id, self._seq)}{SPOOL_SUFFIX}"
        path = self._spool_dir / name
        # Lock before the file is visible under its real name, so that a writer starting
        # meanwhile can never mistake this live spool for an orphan.
        tmp = self._spool_dir / f"{TMP_PREFIX}{name}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o640)
        except FileNotFoundError:  # append before start(), or the directory was removed
            self._spool_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, flags, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(tmp, path)
        if self.fsync:
            fsync_dir(self._spool_dir)
        spool = _Spool(path=path, fd=fd, opened=time.monotonic())
        self._current = spool
        return spool

    def _rotate_locked(self) -> None:
        if self._current is not None:
            self._pending.append(self._current)
            self._current = None

    def _run(self) -> None:
        tick = min(0.25, self.segment_max_age_s / 4)
        while not self._stop.is_set():
            self._wake.wait(tick)
            self._wake.clear()
            if self._stop.is_set():
                break
            with self._lock:
                cur = self._current
                if cur is not None and time.monotonic() - cur.opened >= self.segment_max_age_s:
                    self._rotate_locked()
            try:
                self._convert_due(force=False)
            except Exception:  # the flusher must survive anything; the spool is kept
                self.errors += 1
                log.exception("event writer %s: unexpected error in the flusher", self.writer_id)

    def _convert_due(self, *, force: bool) -> int:
        """Convert pending spools whose retry time has come; returns how many failed."""
        failed = 0
        with self._convert_lock:
            with self._lock:
                todo = list(self._pending)
            now = time.monotonic()
            for spool in todo:
                if not force and spool.retry_at > now:
                    continue
                if self._convert_one(spool):
                    with self._lock:
                        self._pending.remove(spool)
                else:
                    failed += 1
        return failed

    def _convert_one(self, spool: _Spool) -> bool:
        try:
            result = self._convert(spool)
        except Exception as exc:  # disk full, permissions, a bug: keep the spool, retry later
            self.errors += 1
            spool.backoff = min(_MAX_BACKOFF_S, spool.backoff * 2 if spool.backoff else 0.5)
            spool.retry_at = time.monotonic() + spool.backoff
            log.error(
                "event writer %s: cannot write segment for %s (%s); events stay in the spool, "
                "retrying in %.1f s", self.writer_id, spool.path.name, exc, spool.backoff)
            return False
        if result.segment is not None and not result.already_converted:
            self.segments_written += 1
        self.events_written += result.rows
        self.events_rejected += result.rejected
        with contextlib.suppress(FileNotFoundError):
            spool.path.unlink()
        fsync_dir(self._spool_dir)
        with contextlib.suppress(OSError):
            os.close(spool.fd)
        return True

    def _convert(self, spool: _Spool) -> SpoolConversion | ConversionOutcome:
        if self.conversion == "process":
            try:
                outcome = convert_in_child(
                    spool.path, self.directory, hold_fd=spool.fd,
                    timeout_s=self.conversion_timeout_s,
                )
            except ConversionFailed:
                self._remove_partial_files(spool)
                raise
            except OSError as exc:  # no child at all: convert here rather than never
                log.warning(
                    "event writer %s: cannot start a conversion process (%s); converting %s "
                    "in this process", self.writer_id, exc, spool.path.name)
            else:
                self.conversions_in_child += 1
                self.conversion_cpu_s += outcome.cpu_s
                self.conversion_peak_rss_mb = max(self.conversion_peak_rss_mb,
                                                  outcome.peak_rss_mb)
                self.last_conversion_pid = outcome.pid
                return outcome
        from ._spool import convert_spool

        return convert_spool(spool.path, self.directory)

    def _remove_partial_files(self, spool: _Spool) -> None:
        """A killed child leaves its temporary segment; we hold the spool's lock, so no other
        process is writing one for this spool."""
        stem = spool.path.name[: -len(SPOOL_SUFFIX)]
        for path in self.directory.glob(f"{TMP_PREFIX}{stem}-*{SEGMENT_SUFFIX}"):
            with contextlib.suppress(OSError):
                path.unlink()

    def _adopt_orphans(self) -> None:
        """Take over spools whose writer is gone (their lock is free)."""
        for path in sorted(self._spool_dir.glob(f"{TMP_PREFIX}*{SPOOL_SUFFIX}")):
            self._remove_unborn_spool(path)
        for path in sorted(self._spool_dir.glob(f"*{SPOOL_SUFFIX}")):
            if path.name.startswith(TMP_PREFIX):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            if not _lock_nb(fd):
                os.close(fd)  # a live writer owns it
                continue
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # converted and deleted by its owner meanwhile
                os.close(fd)
                continue
            log.info("event writer %s: recovering spool %s", self.writer_id, path.name)
            self._pending.append(_Spool(path=path, fd=fd, opened=time.monotonic()))

    @staticmethod
    def _remove_unborn_spool(path: Path) -> None:
        """A spool that crashed between creation and rename never received an event."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            st = os.fstat(fd)
            old = st.st_mtime < time.time() - 60  # not one being created right now
            if old and st.st_size == 0 and _lock_nb(fd):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        finally:
            os.close(fd)

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - _STALE_TMP_S
        for path in self.directory.glob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def write_segment(
    directory: str | os.PathLike[str], table: pa.Table, *, name: str | None = None
) -> Path:
    """Write ``table`` as one published segment in ``directory`` (atomic; for bulk writers).

    The table is conformed to EVENT_SCHEMA first (missing nullable columns become nulls).
    ``name`` fixes the segment stem, which makes re-running the same bulk write idempotent;
    by default a fresh unique name is used. Returns the segment's path.
    """
    target_dir = Path(directory)
    target_dir.mkdir(parents=True, exist_ok=True)
    stem = check_name(name) if name else new_stem(f"bulk{secrets.token_hex(3)}", 0)
    target = target_dir / f"{stem}{SEGMENT_SUFFIX}"
    from .schema import conform

    conformed = conform(table, origin="write_segment")
    if conformed.num_rows == 0:
        raise ValueError("write_segment: the table has no rows; nothing to write")
    write_parquet_atomic(target, [conformed])
    return target
