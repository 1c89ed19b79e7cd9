"""Readers: filters, projection, schema drift, corrupt and foreign segments, the DuckDB view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillwarden.events.reader import (
    ReadReport,
    inspect_segment,
    iter_batches,
    list_segments,
    read_events,
    register_events,
    scan_segments,
    verify_segments,
)
from distillwarden.events.schema import EVENT_SCHEMA, SchemaError
from distillwarden.events.writer import EventWriter, write_segment

from .conftest import BASE_TS, make_event


@pytest.fixture
def log_dir(events_dir: Path) -> Path:
    """120 events (one a minute from BASE_TS, orgs org_0..org_2) in 4 segments."""
    with EventWriter(events_dir, segment_max_events=30) as w:
        for i in range(120):
            w.append(make_event(i))
    assert len(list_segments(events_dir)) == 4
    return events_dir


def test_time_and_org_filters(log_dir: Path) -> None:
    report = ReadReport()
    t = read_events(log_dir, since=BASE_TS + timedelta(minutes=30),
                    until="2025-01-17T10:30:00Z", orgs=["org_1"], report=report)
    expected = {i for i in range(30, 90) if i % 3 == 1}
    got = {int(e.split("_")[-1]) for e in t.column("event_id").to_pylist()}
    assert got == expected
    assert report.segments_pruned == 2  # the first and last segments lie outside the range
    assert report.segments_read == 2


def test_projection_keeps_order_and_types(log_dir: Path) -> None:
    t = read_events(log_dir, columns=["prompt_tokens", "org_id"], orgs=["org_2"])
    assert t.schema.names == ["prompt_tokens", "org_id"]
    assert t.schema.field("prompt_tokens").type == pa.int32()
    assert t.num_rows == 40
    with pytest.raises(SchemaError, match="unknown event column"):
        read_events(log_dir, columns=["nope"])


def test_iter_batches_bounded_and_complete(log_dir: Path) -> None:
    sizes = [b.num_rows for b in iter_batches(log_dir, batch_size=7)]
    assert max(sizes) <= 7
    assert sum(sizes) == 120


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    t = read_events(tmp_path / "nothing")
    assert t.num_rows == 0
    assert t.schema.equals(EVENT_SCHEMA)
    con = duckdb.connect()
    register_events(con, tmp_path / "nothing")
    assert con.execute("select count(*) from events").fetchone() == (0,)


def test_corrupt_and_foreign_segments_are_skipped_with_reason(log_dir: Path) -> None:
    good = list_segments(log_dir)[0]
    truncated = log_dir / "zz-truncated.parquet"
    truncated.write_bytes(good.read_bytes()[:500])
    foreign = log_dir / "zz-foreign.parquet"
    pq.write_table(pa.table({"user": ["a"], "amount": [3]}), foreign)
    wrong_type = log_dir / "zz-wrongtype.parquet"
    pq.write_table(pa.table({"event_id": ["e"], "ts": ["yesterday"], "org_id": ["o"],
                             "endpoint": ["/x"], "status": [200]}), wrong_type)
    report = ReadReport()
    t = read_events(log_dir, report=report)
    assert t.num_rows == 120
    reasons = {s.path.name: s.reason for s in report.skipped}
    assert set(reasons) == {truncated.name, foreign.name, wrong_type.name}
    assert "not a readable Parquet file" in reasons[truncated.name]
    assert "missing required column" in reasons[foreign.name]
    assert "column 'ts' has type string" in reasons[wrong_type.name]
    good_infos, vreport = verify_segments(log_dir)
    assert len(good_infos) == 4
    assert len(vreport.skipped) == 3
    con = duckdb.connect()
    dreport = register_events(con, log_dir)
    assert len(dreport.skipped) == 3
    assert con.execute("select count(*) from events").fetchone() == (120,)


def test_newer_schema_version_is_a_clear_error(events_dir: Path) -> None:
    write_segment(events_dir, pa.Table.from_pylist([make_event(1)]))
    newer = EVENT_SCHEMA.with_metadata({b"distillwarden.schema_version": b"99"})
    table = pa.Table.from_pylist([dict(make_event(2))], schema=newer)
    pq.write_table(table, events_dir / "from-the-future.parquet")
    with pytest.raises(SchemaError, match="v99.*upgrade distillwarden"):
        read_events(events_dir)
    with pytest.raises(SchemaError, match="upgrade distillwarden"):
        register_events(duckdb.connect(), events_dir)


def test_older_segments_read_with_nulls_for_new_columns(events_dir: Path) -> None:
    old = pa.table({
        "event_id": ["old1"], "ts": pa.array([BASE_TS], pa.timestamp("ms")),
        "org_id": ["o"], "endpoint": ["/v1/completions"], "status": pa.array([200], pa.int64()),
        "prompt_text": pa.array(["hi"], pa.large_string()),
    }).replace_schema_metadata({b"distillwarden.schema_version": b"0"})
    pq.write_table(old, events_dir.mkdir(parents=True) or events_dir / "old.parquet")
    write_segment(events_dir, pa.Table.from_pylist([make_event(5)]), name="new")
    t = read_events(events_dir).sort_by("event_id")
    assert t.schema.equals(EVENT_SCHEMA)
    rows = t.to_pylist()
    assert rows[1]["event_id"] == "old1"
    assert rows[1]["ts"] == BASE_TS
    assert rows[1]["model"] is None and rows[1]["prompt_text"] == "hi"
    assert inspect_segment(events_dir / "old.parquet").schema_version == 0
    con = duckdb.connect()
    register_events(con, events_dir)
    assert con.execute("select count(*), count(model) from events").fetchone() == (2, 1)


def test_duckdb_view_matches_read_events(log_dir: Path) -> None:
    con = duckdb.connect()
    report = register_events(con, log_dir, name="ev")
    assert report.rows == 120
    via_duck = con.sql("select * from ev order by event_id").to_arrow_table()
    via_arrow = read_events(log_dir).sort_by("event_id")
    assert via_duck.column_names == via_arrow.column_names
    for name in via_arrow.column_names:
        assert via_duck.column(name).to_pylist() == via_arrow.column(name).to_pylist(), name
    per_org = dict(con.execute("select org_id, count(*) from ev group by 1").fetchall())
    assert per_org == {"org_0": 40, "org_1": 40, "org_2": 40}


def test_spool_rejected_and_temp_files_are_not_segments(events_dir: Path) -> None:
    write_segment(events_dir, pa.Table.from_pylist([make_event(1)]), name="real")
    for rel in ("spool/x.parquet", "rejected/y.parquet", ".tmp-z.parquet", "sub/.hidden.parquet"):
        p = events_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"junk")
    nested = events_dir / "date=2025-01-17"
    write_segment(nested, pa.Table.from_pylist([make_event(2)]), name="part")
    names = [p.relative_to(events_dir).as_posix() for p in list_segments(events_dir)]
    assert names == ["date=2025-01-17/part.parquet", "real.parquet"]
    assert read_events(events_dir).num_rows == 2


def test_fsspec_urls_read_like_local_directories(log_dir: Path) -> None:
    import fsspec

    assert read_events(f"file://{log_dir}").num_rows == 120
    fs = fsspec.filesystem("memory")
    for seg in list_segments(log_dir):
        fs.pipe(f"/bucket/events/{seg.name}", seg.read_bytes())
    fs.pipe("/bucket/events/zz-broken.parquet", b"PAR1 not really")
    fs.pipe("/bucket/events/spool/x.jsonl", b"{}")
    url = "memory://bucket/events"
    assert [p.name for p in list_segments(url)] == [p.name for p in list_segments(log_dir)] + [
        "zz-broken.parquet"]
    report = ReadReport()
    remote = read_events(url, orgs=["org_1"], report=report).sort_by("event_id")
    assert remote.equals(read_events(log_dir, orgs=["org_1"]).sort_by("event_id"))
    assert [s.path.name for s in report.skipped] == ["zz-broken.parquet"]
    assert sum(b.num_rows for b in iter_batches(url, batch_size=16)) == 120
    assert sum(i.rows for i in scan_segments(url)) == 120
    con = duckdb.connect()
    for _ in range(2):  # registering again reuses the filesystem
        register_events(con, url)
    assert con.execute("select count(*) from events").fetchone() == (120,)
    with pytest.raises(ValueError, match="cannot open this URL"):
        read_events("nosuchscheme://bucket/events")


def test_time_bounds_are_exact_to_the_microsecond(events_dir: Path) -> None:
    # since is inclusive and until exclusive, at microsecond precision.
    base = 1_735_689_600_123_457  # 2025-01-01T00:00:00.123457Z
    rows = [dict(make_event(i), ts=base + i, event_id=f"e{i}") for i in range(3)]
    with EventWriter(events_dir) as w:
        for r in rows:
            w.append(r)
    since = datetime(2025, 1, 1, 0, 0, 0, 123_458, tzinfo=UTC)
    got = read_events(events_dir, since=since, until=base + 2, columns=["event_id"])
    assert got.column("event_id").to_pylist() == ["e1"]
    assert read_events(events_dir, since=base + 2).num_rows == 1
