"""Summary figures of an event directory (for ``distillwarden events stats`` and the console)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc

from ._segments import REJECTED_DIR, SPOOL_DIR
from ._spool import SPOOL_SUFFIX
from .reader import ReadReport, SkippedSegment, read_events, scan_segments

__all__ = ["EventLogStats", "event_log_stats"]


@dataclass(frozen=True)
class EventLogStats:
    """Segments, rows, bytes, time range, distinct organizations and what is still pending."""

    segments: int
    rows: int
    size_bytes: int
    ts_min: datetime | None
    ts_max: datetime | None
    orgs: int
    spools: int
    rejected_files: int
    skipped: list[SkippedSegment] = field(default_factory=list)


def event_log_stats(directory: str | os.PathLike[str]) -> EventLogStats:
    """Footer-level figures plus a distinct count of ``org_id`` (reads one column)."""
    report = ReadReport()
    infos = scan_segments(directory, report)
    mins = [i.ts_min for i in infos if i.ts_min is not None]
    maxs = [i.ts_max for i in infos if i.ts_max is not None]
    orgs = 0
    if infos:
        col = read_events(directory, columns=["org_id"], report=ReadReport()).column("org_id")
        orgs = int(pc.count_distinct(col).as_py())
    root = Path(os.fspath(directory).removeprefix("file://"))  # spools are local only
    spool_dir = root / SPOOL_DIR
    rejected_dir = root / REJECTED_DIR
    return EventLogStats(
        segments=len(infos),
        rows=sum(i.rows for i in infos),
        size_bytes=sum(i.size_bytes for i in infos),
        ts_min=min(mins) if mins else None,
        ts_max=max(maxs) if maxs else None,
        orgs=orgs,
        spools=len([p for p in spool_dir.glob(f"*{SPOOL_SUFFIX}") if not p.name.startswith(".")])
        if spool_dir.is_dir() else 0,
        rejected_files=len(list(rejected_dir.glob(f"*{SPOOL_SUFFIX}")))
        if rejected_dir.is_dir() else 0,
        skipped=report.skipped,
    )
