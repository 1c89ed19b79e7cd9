"""Running detection over the event log: one batch window, or incrementally as segments land.

Both modes score the same thing, the events of a window ``[since, until)``, with the same
detector, so they give the same findings on the same data: the incremental mode only caches
what it already read (request features per segment, prompt embeddings per event) and drops
segments that leave the window, so memory is bounded by the window, not by the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.events import spool_events
from distillwarden.events._segments import SEGMENT_SUFFIX, SPOOL_DIR, SPOOL_SUFFIX
from distillwarden.events.reader import ReadReport, inspect_segment, list_segments, read_events
from distillwarden.events.schema import EVENT_SCHEMA, SchemaError, conform
from distillwarden.store.errors import InvalidInput
from distillwarden.store.models import Licence, Organization
from distillwarden.store.validation import normalize_datetime

from .features import DETECT_COLUMNS, request_features, segment_columns
from .findings import FindingRecord, build_findings, write_findings
from .linkage import HydraCluster
from .scoring import AccountScores, DistillationDetector

__all__ = [
    "DETECTOR_NAME",
    "DetectionRun",
    "IncrementalDetection",
    "accounts_from_store",
    "read_ahead",
    "run_detection",
]

log = logging.getLogger(__name__)

DETECTOR_NAME = "distillation-v1"

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass
class DetectionRun:
    """What one detection pass looked at and found."""

    window_start: datetime | None
    window_end: datetime | None
    events: int
    accounts: int
    threshold: float
    fpr: float
    findings: list[FindingRecord]
    clusters: list[HydraCluster]
    skipped_segments: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        """A short JSON-ready summary."""
        return {
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "events": self.events, "accounts": self.accounts,
            "threshold": self.threshold, "fpr": self.fpr,
            "findings": len(self.findings), "clusters": len(self.clusters),
            "skipped_segments": self.skipped_segments, "seconds": round(self.seconds, 3),
        }


def accounts_from_store(session: Session) -> pa.Table:
    """What the store knows about each organization, in the accounts-table shape the
    signals read. A licence whose permitted uses include ``evaluation`` counts as an
    evaluation licence (benchmark and judge traffic are then its permitted use). The sign-up
    time (``created``, which linkage reads for sign-up bursts) is the organization's
    ``signed_up`` metadata (RFC 3339; imports set it from the accounts file), never the
    store's own creation time, which for a migrated or imported account is the day it
    entered the store."""
    lic_rows = session.execute(select(Licence).where(Licence.active.is_(True))).scalars().all()
    lic = {row.org_id: row for row in lic_rows}
    rows = []
    for org in session.execute(select(Organization)).scalars():
        licence = lic.get(org.id)
        name = licence.name if licence is not None else None
        uses = [str(u) for u in (licence.permitted_uses or [])] if licence is not None else []
        if "evaluation" in uses:
            name = "evaluation-permitted"
        elif "redteam" in uses:
            name = "redteam-permitted"
        rows.append(
            {
                "org_id": org.id,
                "licence": name,
                "channel": licence.channel if licence is not None else None,
                "home_region": org.home_region,
                "payment_fingerprint_hash": org.payment_fingerprint_hash,
                "created": _signed_up(org.metadata_),
            }
        )
    schema = pa.schema([*((k, pa.string()) for k in (
        "org_id", "licence", "channel", "home_region", "payment_fingerprint_hash")),
        ("created", pa.timestamp("us", tz="UTC"))])
    return pa.Table.from_pylist(rows, schema=schema)


def _signed_up(metadata: dict[str, Any] | None) -> datetime | None:
    """The ``signed_up`` time in an organization's metadata (None if absent or no time;
    the store validates it when it is set, so only a hand-edited row can hold no time)."""
    value = (metadata or {}).get("signed_up")
    if not isinstance(value, str):
        return None
    try:
        return normalize_datetime(value, "organization metadata signed_up")
    except InvalidInput as exc:
        log.warning("%s", exc)
        return None


def _score_and_write(
    detector: DistillationDetector,
    events: pa.Table,
    accounts: pa.Table | None,
    *,
    features: pa.Table | None,
    fpr: float,
    window_start: datetime | None,
    window_end: datetime | None,
    session_factory: sessionmaker[Session] | None,
) -> tuple[list[FindingRecord], list[HydraCluster], AccountScores | None, float]:
    threshold = detector.threshold_for_fpr(fpr)
    if events.num_rows == 0:
        log.info("detection window %s .. %s has no events; nothing to score",
                 window_start, window_end)
        return [], [], None, threshold
    scores = detector.score_accounts(events, accounts, features=features)
    findings = build_findings(
        scores, threshold=threshold, fpr=fpr, detector=DETECTOR_NAME,
        window_start=window_start, window_end=window_end,
    )
    if session_factory is not None:
        risks = dict(zip(scores.org_ids, (float(r) for r in scores.risk), strict=True))
        with session_factory() as session:
            write_findings(session, findings, scores.clusters, risks)
            session.commit()
    return findings, scores.clusters, scores, threshold


def run_detection(
    events_dir: str | Path,
    detector: DistillationDetector,
    *,
    session_factory: sessionmaker[Session] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    accounts: pa.Table | None = None,
    fpr: float = 0.001,
) -> DetectionRun:
    """Score every account active in ``[since, until)`` and store a finding for each whose
    risk crosses the threshold at benign false-positive rate ``fpr``.

    Corrupt or foreign segments are skipped with a logged reason (listed in the result).
    """
    start = time.perf_counter()
    since, until = normalize_datetime(since, "since"), normalize_datetime(until, "until")
    report = ReadReport()
    events = read_events(events_dir, since=since, until=until, columns=list(DETECT_COLUMNS),
                         report=report)
    if accounts is None and session_factory is not None:
        with session_factory() as session:
            accounts = accounts_from_store(session)
    ws = since or _min_ts(events)
    we = until or _max_ts(events)
    findings, clusters, scores, threshold = _score_and_write(
        detector, events, accounts, features=None, fpr=fpr, window_start=ws, window_end=we,
        session_factory=session_factory,
    )
    return DetectionRun(
        window_start=ws, window_end=we, events=events.num_rows,
        accounts=scores.signals.num_rows if scores is not None else 0,
        threshold=threshold, fpr=fpr, findings=findings, clusters=clusters,
        skipped_segments=[f"{s.path}: {s.reason}" for s in report.skipped],
        seconds=time.perf_counter() - start,
    )


def read_ahead(items: Iterable[_T], read: Callable[[_T], _R]) -> Iterator[tuple[_T, _R]]:
    """``(item, read(item))`` in order, reading the next item in a background thread while
    the caller works on the current one (reading and featurising then share the cores).
    An exception raised by ``read`` is raised here, at that item."""
    todo = list(items)
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(read, todo[0])
        for i, item in enumerate(todo):
            result = pending.result()
            if i + 1 < len(todo):
                pending = pool.submit(read, todo[i + 1])
            yield item, result


def _min_ts(events: pa.Table) -> datetime | None:
    return pc.min(events.column("ts")).as_py() if events.num_rows else None


def _max_ts(events: pa.Table) -> datetime | None:
    return pc.max(events.column("ts")).as_py() if events.num_rows else None


#: the event columns incremental detection keeps of a segment or spool
_READ_COLUMNS = [c for c in DETECT_COLUMNS if c in EVENT_SCHEMA.names]


@dataclass
class _Segment:
    events: pa.Table
    features: pa.Table
    ts_max: datetime | None


@dataclass
class _Spool:
    """What has been read of one writer spool not yet published as a segment."""

    offset: int = 0  # bytes read: always the end of a complete line
    parts: list[_Segment] = field(default_factory=list)


class IncrementalDetection:
    """Follows the event log: each :meth:`poll` reads the segments that landed since the
    last one (features computed once per segment), drops segments older than the window, and
    rescores the window. ``since`` fixes the window start (a growing window); ``window``
    instead keeps a sliding window of that length ending at the newest event.

    With ``spools`` (the default) it also reads the events writers have logged but not yet
    published: the lines appended to each spool (``<dir>/spool/<stem>.jsonl``) since the
    last poll, featurised once, until the segment ``<stem>.parquet`` that the spool becomes
    is published and takes their place. A finding then follows the events that trigger it
    by one poll, not by a writer's segment rotation (up to ``segment_max_age_s``, 60 s by
    default). Spool lines are read as conversion reads them: only complete lines, and not
    the events conversion will reject."""

    def __init__(
        self,
        events_dir: str | Path,
        detector: DistillationDetector,
        *,
        session_factory: sessionmaker[Session] | None = None,
        since: datetime | str | None = None,
        window: timedelta | None = None,
        accounts: pa.Table | Callable[[], pa.Table] | None = None,
        fpr: float = 0.001,
        spools: bool = True,
    ) -> None:
        self.events_dir = Path(events_dir)
        self.spools = spools
        self.pending: dict[str, _Spool] = {}
        self.detector = detector
        self.session_factory = session_factory
        self.since = normalize_datetime(since, "since")
        self.window = window
        self.accounts = accounts
        self.fpr = fpr
        self.segments: dict[Path, _Segment] = {}
        self.skipped: dict[Path, str] = {}
        #: segments that left the sliding window: never read again
        self.expired: set[Path] = set()

    def _read_segment(self, path: Path) -> pa.Table | None:
        cols = _READ_COLUMNS
        try:
            inspect_segment(path)
            # only the columns detection reads (not the responses): older segments lacking
            # some get nulls from conform()
            pf = pq.ParquetFile(path)
            # the last user turn is left unread (null) where nothing needs it
            embeds = bool(getattr(self.detector, "use_embeddings", True))
            wanted = set(segment_columns(pf, embeddings=embeds)) & set(pf.schema_arrow.names)
            table = conform(pf.read(columns=[c for c in cols if c in wanted]),
                            origin=str(path), columns=cols)
        except SchemaError:
            raise
        except Exception as exc:  # a corrupt or foreign file: skip it, say why
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("skipping segment %s: %s", path, reason)
            self.skipped[path] = reason
            return None
        return table.select(cols)

    def _accounts(self) -> pa.Table | None:
        if callable(self.accounts):
            return self.accounts()
        if self.accounts is None and self.session_factory is not None:
            with self.session_factory() as session:
                return accounts_from_store(session)
        return self.accounts

    def _featurise(self, table: pa.Table) -> _Segment:
        if self.since is not None:
            table = table.filter(pc.greater_equal(
                table.column("ts"), pa.scalar(self.since, EVENT_SCHEMA.field("ts").type)))
        feats = request_features(table, index=self.detector.benchmark_index)
        return _Segment(table, feats, _max_ts(table))

    def _read_spools(self) -> bool:
        """Read what was appended to each spool since the last poll; whether anything was."""
        spool_dir = self.events_dir / SPOOL_DIR
        paths = sorted(spool_dir.glob(f"*{SPOOL_SUFFIX}")) if spool_dir.is_dir() else []
        listed = {p.name[: -len(SPOOL_SUFFIX)] for p in paths if not p.name.startswith(".")}
        for stem in [s for s, st in self.pending.items() if s not in listed and not st.parts]:
            del self.pending[stem]  # gone with nothing read: nothing will replace it
        read = False
        for stem in sorted(listed):
            path = spool_dir / f"{stem}{SPOOL_SUFFIX}"
            state = self.pending.setdefault(stem, _Spool())
            try:
                with path.open("rb") as fh:
                    fh.seek(state.offset)
                    data = fh.read()
            except FileNotFoundError:  # converted and removed since it was listed
                continue
            end = data.rfind(b"\n") + 1  # a line still being written is read next time
            if end == 0:
                continue
            state.offset += end
            table = spool_events(data[:end])
            if table.num_rows:
                state.parts.append(self._featurise(table.select(_READ_COLUMNS)))
                read = True
        return read

    def poll(self) -> DetectionRun | None:
        """Process new segments (and, with ``spools``, new spool lines); returns the run, or
        None when nothing new landed."""
        start = time.perf_counter()
        # spools before segments: a spool converted in between is then in both (and its
        # segment wins below), never in neither
        fresh = self._read_spools() if self.spools else False
        new = [p for p in list_segments(self.events_dir)
               if p not in self.segments and p not in self.skipped and p not in self.expired]
        # the next segment is read (Arrow's decoding, off the GIL) while one is featurised
        for path, table in read_ahead(new, self._read_segment):
            if table is None:
                continue
            self.segments[path] = self._featurise(table)
        published = {p.name[: -len(SEGMENT_SUFFIX)] for p in self.segments}
        published |= {p.name[: -len(SEGMENT_SUFFIX)] for p in (*self.skipped, *self.expired)}
        for stem in [s for s in self.pending if s in published]:
            del self.pending[stem]
        if not new and not fresh:
            return None
        spooled = {Path(SPOOL_DIR) / f"{stem}{SPOOL_SUFFIX}#{i}": part
                   for stem, state in self.pending.items()
                   for i, part in enumerate(state.parts)}
        newest = max((s.ts_max for s in (*self.segments.values(), *spooled.values())
                      if s.ts_max), default=None)
        ws = self.since
        if self.window is not None and newest is not None:
            ws = newest - self.window
            for path in [p for p, s in self.segments.items()
                         if s.ts_max is not None and s.ts_max < ws]:
                del self.segments[path]
                self.expired.add(path)
        parts = [s for _p, s in sorted(self.segments.items())]
        parts += [s for _p, s in sorted(spooled.items(), key=lambda kv: str(kv[0]))]
        if not parts:
            return None
        events = pa.concat_tables([s.events for s in parts])
        feats = pa.concat_tables([s.features for s in parts])
        if self.window is not None and ws is not None:
            keep = pc.greater_equal(events.column("ts"),
                                    pa.scalar(ws, EVENT_SCHEMA.field("ts").type))
            events = events.filter(keep)
            feats = feats.filter(pc.is_in(feats.column("event_id"),
                                          value_set=events.column("event_id")))
        cache = getattr(self.detector, "embedding_cache_", None)
        if cache is not None:
            cache.keep_only(set(events.column("event_id").to_pylist()))
        findings, clusters, scores, threshold = _score_and_write(
            self.detector, events, self._accounts(), features=feats, fpr=self.fpr,
            window_start=ws or _min_ts(events), window_end=None,
            session_factory=self.session_factory,
        )
        return DetectionRun(
            window_start=ws or _min_ts(events), window_end=newest, events=events.num_rows,
            accounts=scores.signals.num_rows if scores is not None else 0,
            threshold=threshold, fpr=self.fpr, findings=findings, clusters=clusters,
            skipped_segments=[f"{p}: {r}" for p, r in self.skipped.items()],
            seconds=time.perf_counter() - start,
        )

    def follow(self, *, poll_s: float = 5.0, stop: Callable[[], bool] | None = None,
               on_run: Callable[[DetectionRun], None] | None = None) -> None:
        """Poll every ``poll_s`` seconds until ``stop()`` says so."""
        while stop is None or not stop():
            run = self.poll()
            if run is not None and on_run is not None:
                on_run(run)
            time.sleep(poll_s)
