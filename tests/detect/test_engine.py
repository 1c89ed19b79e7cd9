"""Batch and incremental detection over the event log, findings in the store, bad input."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from distillwarden.detect.engine import IncrementalDetection, run_detection
from distillwarden.detect.scoring import DistillationDetector
from distillwarden.events.schema import SCHEMA_VERSION
from distillwarden.events.writer import EventWriter, write_segment
from distillwarden.store.errors import InvalidInput
from distillwarden.store.models import Cluster, Finding

from .conftest import TrafficBuilder, attack_prompts, hash_embedder


@pytest.fixture(scope="module")
def detector(benign_prompts: list[str]) -> DistillationDetector:
    ref = TrafficBuilder(21)
    for i in range(80):
        ref.account(f"ref{i}", benign_prompts[::2], n=int(15 + ref.rng.integers(50)))
    return DistillationDetector(embedder=hash_embedder).fit(ref.events(), ref.accounts_table())


@pytest.fixture(scope="module")
def fast_detector(benign_prompts: list[str]) -> DistillationDetector:
    """Without embedding signals: for the bad-input tests, where only reading matters."""
    ref = TrafficBuilder(23)
    for i in range(40):
        ref.account(f"ref{i}", benign_prompts[::2], n=int(10 + ref.rng.integers(30)))
    return DistillationDetector(use_embeddings=False).fit(ref.events(), ref.accounts_table())


def _small_traffic(benign: list[str]) -> TrafficBuilder:
    t = TrafficBuilder(24)
    for i in range(8):
        t.account(f"ben{i}", benign[::2], n=15)
    t.account("att_dataset", attack_prompts("dataset", benign[1::2]), n=40, mean_gap_s=60)
    return t


def _traffic(benign: list[str]) -> TrafficBuilder:
    t = TrafficBuilder(22)
    for i in range(20):
        t.account(f"ben{i}", benign[::2], n=int(15 + t.rng.integers(50)))
    t.account("att_dataset", attack_prompts("dataset", benign[1::2]), n=120, mean_gap_s=60)
    t.account("att_judge", attack_prompts("judge", benign[1::2]), n=120, mean_gap_s=60)
    for j in range(6):
        t.account(f"hyd{j}", attack_prompts("dataset", benign[1::2]), n=20, ip_net="net_h",
                  ua="ua_h", payment="pay_h", channel="reseller:proxy")
    return t


def _segments(events: pa.Table, directory: Path, parts: int) -> list[Path]:
    order = np.argsort(events.column("ts").to_numpy())
    events = events.take(pa.array(order))
    size = -(-events.num_rows // parts)
    return [write_segment(directory, events.slice(i * size, size), name=f"seg-{i:03d}")
            for i in range(parts)]


def test_batch_equals_incremental_and_findings_stored(
    detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
    session_factory,  # type: ignore[no-untyped-def]
) -> None:
    t = _traffic(benign_prompts)
    events, accounts = t.events(), t.accounts_table()
    inc_dir = tmp_path / "inc"
    inc = IncrementalDetection(inc_dir, detector, accounts=accounts, fpr=0.01)
    order = np.argsort(events.column("ts").to_numpy())
    ordered = events.take(pa.array(order))
    size = -(-ordered.num_rows // 4)
    for i in range(4):
        write_segment(inc_dir, ordered.slice(i * size, size), name=f"seg-{i:03d}")
        run = inc.poll()
        assert run is not None
    assert inc.poll() is None  # nothing new
    batch = run_detection(inc_dir, detector, accounts=accounts, fpr=0.01,
                          session_factory=session_factory)
    assert run.events == batch.events == events.num_rows
    inc_f = {f.org_id: f for f in run.findings}
    bat_f = {f.org_id: f for f in batch.findings}
    assert set(inc_f) == set(bat_f)
    for org, f in bat_f.items():
        assert inc_f[org].risk == pytest.approx(f.risk, rel=1e-6, abs=1e-9)
        assert inc_f[org].id == f.id
    assert {"att_dataset", "att_judge"} <= set(bat_f)
    with session_factory() as s:
        stored = {f.org_id: f for f in s.execute(select(Finding)).scalars()}
        clusters = s.execute(select(Cluster)).scalars().all()
    assert set(stored) == set(bat_f)
    f = stored["att_dataset"]
    assert f.threshold_fpr == 0.01 and f.p_value is not None and f.p_value < 0.01
    assert f.evidence["requests"] == 120 and f.evidence["first_request"]
    top = f.signals["share_dataset"]
    assert top["requests"] > 0 and top["example_request_ids"][0].startswith("evt_att_dataset")
    assert any(set(c.members) >= {f"hyd{j}" for j in range(6)} for c in clusters)
    # re-running the same window updates, never duplicates
    run_detection(inc_dir, detector, accounts=accounts, fpr=0.01, session_factory=session_factory)
    with session_factory() as s:
        assert len(s.execute(select(Finding)).scalars().all()) == len(stored)


def test_corrupt_and_foreign_segments_are_skipped_with_reason(
    fast_detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = _small_traffic(benign_prompts)
    events, accounts = t.events(), t.accounts_table()
    d = tmp_path / "ev"
    _segments(events, d, 2)
    clean = run_detection(d, fast_detector, accounts=accounts, fpr=0.01)
    (d / "garbage.parquet").write_bytes(b"not parquet at all")
    pq.write_table(pa.table({"x": [1, 2, 3]}), d / "foreign.parquet")
    with caplog.at_level(logging.WARNING):
        dirty = run_detection(d, fast_detector, accounts=accounts, fpr=0.01)
        inc = IncrementalDetection(d, fast_detector, accounts=accounts, fpr=0.01).poll()
    assert len(dirty.skipped_segments) == 2
    assert {f.org_id: round(f.risk, 9) for f in dirty.findings} == {
        f.org_id: round(f.risk, 9) for f in clean.findings
    }
    assert inc is not None and len(inc.skipped_segments) == 2
    assert any("garbage.parquet" in s for s in inc.skipped_segments)


def test_newer_schema_version_is_an_error_not_a_silent_score(
    fast_detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
) -> None:
    t = _small_traffic(benign_prompts)
    table = t.events()
    meta = {b"distillwarden.schema_version": str(SCHEMA_VERSION + 1).encode()}
    d = tmp_path / "ev"
    d.mkdir()
    pq.write_table(table.replace_schema_metadata(meta), d / "future.parquet")
    from distillwarden.events.schema import SchemaError

    with pytest.raises(SchemaError, match="upgrade"):
        run_detection(d, fast_detector, fpr=0.01)


def test_schema_drift_missing_optional_columns_still_scores(
    fast_detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
) -> None:
    t = _small_traffic(benign_prompts)
    table = t.events().drop_columns(["n", "logprobs", "top_logprobs", "completion_tokens"])
    d = tmp_path / "ev"
    d.mkdir()
    pq.write_table(table, d / "old.parquet")
    run = run_detection(d, fast_detector, fpr=0.01)
    assert run.events == table.num_rows and run.accounts == 9


def test_empty_window_gives_no_findings(fast_detector: DistillationDetector, tmp_path: Path) -> None:
    run = run_detection(tmp_path / "nothing", fast_detector, fpr=0.01)
    assert run.events == 0 and run.findings == [] and run.accounts == 0


def test_window_bounds_are_parsed_to_utc_and_bad_ones_named(
    fast_detector: DistillationDetector, tmp_path: Path
) -> None:
    run = run_detection(tmp_path / "nothing", fast_detector, fpr=0.01,
                        since="2026-03-02T02:00:00+02:00", until="2026-03-03")
    assert run.window_start is not None and run.window_end is not None
    assert run.window_start.isoformat() == "2026-03-02T00:00:00+00:00"
    assert run.window_end.isoformat() == "2026-03-03T00:00:00+00:00"
    with pytest.raises(InvalidInput, match="until 'yesterday' is not an ISO-8601 date"):
        run_detection(tmp_path / "nothing", fast_detector, fpr=0.01, until="yesterday")


def test_last_user_turn_read_only_where_needed(
    fast_detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path
) -> None:
    """Without embeddings the last user turn is read only from segments where a prompt may
    be missing; scores equal the batch run's, which reads every column."""
    from distillwarden.detect.features import DETECT_COLUMNS, segment_columns

    events = _small_traffic(benign_prompts).events()
    paths = _segments(events, tmp_path, 2)
    # the second segment lost some prompts: their last user turn stands in
    second = pq.read_table(paths[1])
    lost = pa.array(np.arange(second.num_rows) % 3 == 0)
    prompts = pc.if_else(lost, pa.nulls(second.num_rows, pa.string()), second["prompt_text"])
    paths[1].unlink()
    write_segment(tmp_path, second.set_column(
        second.schema.get_field_index("prompt_text"), "prompt_text", prompts), name="seg-001")
    first, second_file = (pq.ParquetFile(p) for p in sorted(tmp_path.glob("*.parquet")))
    assert "last_user_text" not in segment_columns(first, embeddings=False)
    assert segment_columns(second_file, embeddings=False) == list(DETECT_COLUMNS)
    assert segment_columns(first, embeddings=True) == list(DETECT_COLUMNS)
    # a lax threshold, so that many accounts get findings whose risks can be compared
    inc = IncrementalDetection(tmp_path, fast_detector, fpr=0.5)
    run = inc.poll()
    batch = run_detection(tmp_path, fast_detector, fpr=0.5)
    assert run is not None and run.events == batch.events == events.num_rows
    risks = {f.org_id: f.risk for f in batch.findings}
    assert len(risks) >= 3
    assert {f.org_id: f.risk for f in run.findings} == pytest.approx(risks, rel=1e-9)


def test_read_ahead_keeps_order_reads_one_ahead_and_raises_at_the_failing_item() -> None:
    """Items come back in order with their reads; the next read runs while the caller holds
    the current one; a failing read raises when its item is reached, not before."""
    import threading

    from distillwarden.detect.engine import read_ahead

    started: list[int] = []
    second_started = threading.Event()

    def read(i: int) -> int:
        started.append(i)
        if i == 1:
            second_started.set()
        if i == 3:
            raise ValueError("bad segment 3")
        return i * 10

    it = read_ahead(range(5), read)
    assert next(it) == (0, 0)
    # while the caller works on item 0, item 1 is read in the background
    assert second_started.wait(5.0)
    assert next(it) == (1, 10)
    assert next(it) == (2, 20)
    with pytest.raises(ValueError, match="bad segment 3"):
        next(it)
    assert list(read_ahead([], read)) == []


def test_events_still_in_a_writers_spool_are_scored_then_replaced_by_their_segment(
    detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
) -> None:
    t = _traffic(benign_prompts)
    events, accounts = t.events(), t.accounts_table()
    rows = events.take(pa.array(np.argsort(events.column("ts").to_numpy()))).to_pylist()
    log_dir = tmp_path / "log"
    waiting = IncrementalDetection(log_dir, detector, accounts=accounts, fpr=0.01,
                                   spools=False)
    following = IncrementalDetection(log_dir, detector, accounts=accounts, fpr=0.01)
    writer = EventWriter(log_dir, segment_max_age_s=3600).start()
    try:
        for row in rows:
            writer.append(row)
        assert not list(log_dir.glob("*.parquet"))  # nothing published yet
        assert waiting.poll() is None
        run = following.poll()
        assert run is not None and run.events == len(rows)
        assert {"att_dataset", "att_judge"} <= {f.org_id for f in run.findings}
        assert following.poll() is None  # nothing new
    finally:
        writer.close()
    # the spool became a segment: its events are counted once, from the segment
    run = following.poll()
    assert run is not None and run.events == len(rows) and not following.pending
    batch = run_detection(log_dir, detector, accounts=accounts, fpr=0.01)
    assert {f.org_id: f.id for f in run.findings} == {f.org_id: f.id for f in batch.findings}
    for inc_f, bat_f in zip(sorted(run.findings, key=lambda f: f.org_id),
                            sorted(batch.findings, key=lambda f: f.org_id), strict=True):
        assert inc_f.risk == pytest.approx(bat_f.risk, rel=1e-6, abs=1e-9)


def test_a_spool_line_still_being_written_is_read_once_complete(
    fast_detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
) -> None:
    t = _small_traffic(benign_prompts)
    rows = t.events().to_pylist()
    spool = tmp_path / "log" / "spool" / "20260101T000000000000Z-wtest-000001.jsonl"
    spool.parent.mkdir(parents=True)

    def line(row: dict[str, object]) -> bytes:
        ts = row["ts"]
        assert isinstance(ts, datetime)
        return orjson.dumps({**row, "ts": int(ts.timestamp() * 1_000_000)}) + b"\n"

    whole = [line(r) for r in rows[:10]]
    last = line(rows[10])
    bad = b'{"event_id": "evt_bad", "org_id": "x"}\n'  # no ts: conversion rejects it
    spool.write_bytes(b"".join(whole) + bad + last[:25])
    inc = IncrementalDetection(tmp_path / "log", fast_detector, fpr=0.01)
    run = inc.poll()
    assert run is not None and run.events == 10
    with spool.open("ab") as fh:
        fh.write(last[25:])
    run = inc.poll()
    assert run is not None and run.events == 11
    assert inc.poll() is None


def test_a_segment_that_left_the_sliding_window_is_not_read_again(
    fast_detector: DistillationDetector, benign_prompts: list[str], tmp_path: Path,
) -> None:
    t = _small_traffic(benign_prompts)
    events = t.events()
    order = np.argsort(events.column("ts").to_numpy())
    events = events.take(pa.array(order))
    ts = events.column("ts").to_numpy()
    span = (ts[-1] - ts[0]) / np.timedelta64(1, "s")
    inc = IncrementalDetection(tmp_path / "log", fast_detector, fpr=0.01,
                               window=timedelta(seconds=span / 4))
    half = events.num_rows // 2
    write_segment(tmp_path / "log", events.slice(0, half), name="seg-000")
    assert inc.poll() is not None
    write_segment(tmp_path / "log", events.slice(half), name="seg-001")
    run = inc.poll()
    assert run is not None and run.events < events.num_rows - half + 1  # the first one left
    reads: list[Path] = []
    original = inc._read_segment

    def counting(path: Path) -> pa.Table | None:
        reads.append(path)
        return original(path)

    inc._read_segment = counting  # type: ignore[method-assign]
    assert inc.poll() is None  # nothing new: the expired segment is not read and rescored
    assert reads == []
