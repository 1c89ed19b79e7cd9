"""EventWriter: durability, rotation, recovery, rejection and retry."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillwarden.events import _spool
from distillwarden.events.reader import list_segments, read_events
from distillwarden.events.writer import EventLogError, EventWriter, write_segment

from .conftest import make_event


def _ids(directory: Path) -> list[str]:
    return sorted(read_events(directory, columns=["event_id"]).column("event_id").to_pylist())


def test_append_flush_read_back(events_dir: Path) -> None:
    with EventWriter(events_dir) as w:
        for i in range(25):
            w.append(make_event(i))
        assert w.queue_depth == 25
        w.flush()
        assert w.queue_depth == 0
        assert w.lag_s == 0.0
    table = read_events(events_dir)
    assert table.num_rows == 25
    row = table.sort_by("event_id").slice(3, 1).to_pylist()[0]
    assert row["event_id"] == "evt_test_00000003"
    assert row["prompt_text"] == "prompt 3"
    assert row["ts"].minute == 3
    assert w.events_written == 25
    assert w.segments_written == 1
    assert list((events_dir / "spool").iterdir()) == []


def test_defaults_event_id_and_ts(events_dir: Path) -> None:
    with EventWriter(events_dir) as w:
        before = time.time()
        w.append({"org_id": "o", "endpoint": "/v1/models", "status": 200})
    t = read_events(events_dir)
    assert t.num_rows == 1
    row = t.to_pylist()[0]
    assert row["event_id"].startswith("evt_")
    assert abs(row["ts"].timestamp() - before) < 5


def test_rotation_by_count(events_dir: Path) -> None:
    with EventWriter(events_dir, segment_max_events=10) as w:
        for i in range(35):
            w.append(make_event(i))
        deadline = time.time() + 10
        while (w.segments_written < 3 or w.queue_depth > 5) and time.time() < deadline:
            time.sleep(0.02)
        assert w.segments_written == 3  # 3 full spools converted in the background
        assert w.queue_depth == 5
    assert len(list_segments(events_dir)) == 4
    assert _ids(events_dir) == sorted(f"evt_test_{i:08d}" for i in range(35))


def test_rotation_by_age(events_dir: Path) -> None:
    with EventWriter(events_dir, segment_max_age_s=0.2) as w:
        w.append(make_event(1))
        assert w.lag_s >= 0.0
        deadline = time.time() + 10
        while (w.queue_depth or not list_segments(events_dir)) and time.time() < deadline:
            time.sleep(0.02)
        assert len(list_segments(events_dir)) == 1
        assert w.queue_depth == 0
        w.append(make_event(2))
        while len(list_segments(events_dir)) < 2 and time.time() < deadline:
            time.sleep(0.02)
        assert len(list_segments(events_dir)) == 2


def test_bad_events_go_to_rejected_not_blocking_others(events_dir: Path) -> None:
    with EventWriter(events_dir) as w:
        w.append(make_event(1))
        w.append(make_event(2, status="not-a-status"))
        w.append({"endpoint": "/v1/chat/completions", "status": 200})  # no org_id
        w.append(make_event(3))
    assert _ids(events_dir) == ["evt_test_00000001", "evt_test_00000003"]
    assert w.events_rejected == 2
    files = list((events_dir / "rejected").glob("*.jsonl"))
    assert len(files) == 1
    records = [orjson.loads(line) for line in files[0].read_bytes().splitlines()]
    reasons = sorted(r["reason"] for r in records)
    assert "missing required column 'org_id'" in reasons
    assert any("int16" in r for r in reasons)
    assert all("event" in r and "line" in r for r in records)


def test_unserialisable_event_raises_type_error(events_dir: Path) -> None:
    with EventWriter(events_dir) as w:
        with pytest.raises(TypeError, match="not JSON-serialisable"):
            w.append({"org_id": "o", "endpoint": "/x", "status": 200, "bad": object()})
        assert w.queue_depth == 0


def test_append_after_close_is_an_error(events_dir: Path) -> None:
    w = EventWriter(events_dir).start()
    w.close()
    with pytest.raises(EventLogError, match="after close"):
        w.append(make_event(1))


def _write_spool(events_dir: Path, name: str, events: list[dict], tail: bytes = b"") -> Path:
    spool_dir = events_dir / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)
    path = spool_dir / name
    body = b"".join(
        orjson.dumps(
            dict(e, ts=int(e["ts"].timestamp() * 1_000_000)), option=orjson.OPT_APPEND_NEWLINE
        )
        for e in events
    )
    path.write_bytes(body + tail)
    return path


def test_start_recovers_spool_with_torn_last_line(events_dir: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    _write_spool(
        events_dir,
        "20250101T000000000000Z-wdead-000001.jsonl",
        [make_event(i) for i in range(5)],
        tail=b'{"event_id": "evt_torn", "org',
    )
    with caplog.at_level("WARNING", logger="distillwarden.events"):
        w = EventWriter(events_dir).start()
    w.close()
    assert _ids(events_dir) == [f"evt_test_{i:08d}" for i in range(5)]
    assert "torn last line 6" in caplog.text
    assert list((events_dir / "spool").iterdir()) == []
    assert list_segments(events_dir)[0].name == "20250101T000000000000Z-wdead-000001.parquet"


def test_recovery_is_idempotent_after_crash_between_rename_and_delete(events_dir: Path) -> None:
    spool = _write_spool(
        events_dir, "20250101T000000000000Z-wdead-000001.jsonl", [make_event(i) for i in range(4)]
    )
    saved = spool.read_bytes()
    EventWriter(events_dir).start().close()
    spool.write_bytes(saved)  # the spool reappears: as if the process died before unlinking it
    EventWriter(events_dir).start().close()
    assert _ids(events_dir) == [f"evt_test_{i:08d}" for i in range(4)]
    assert len(list_segments(events_dir)) == 1
    assert not spool.exists()


def test_live_writers_spool_is_not_stolen(events_dir: Path) -> None:
    a = EventWriter(events_dir, writer_id="a").start()
    a.append(make_event(1))
    b = EventWriter(events_dir, writer_id="b").start()  # recovery must skip a's locked spool
    assert list_segments(events_dir) == []
    b.append(make_event(2))
    b.close()
    a.append(make_event(3))
    a.close()
    assert _ids(events_dir) == ["evt_test_00000001", "evt_test_00000002", "evt_test_00000003"]


def test_threads_share_one_writer(events_dir: Path) -> None:
    w = EventWriter(events_dir, segment_max_events=97).start()

    def worker(k: int) -> None:
        for i in range(250):
            w.append(make_event(k * 1000 + i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    ids = _ids(events_dir)
    assert len(ids) == 1000
    assert len(set(ids)) == 1000


def test_segment_failure_keeps_spool_and_retries(events_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = _spool.write_parquet_atomic
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(_spool, "write_parquet_atomic", flaky)
    w = EventWriter(events_dir).start()
    w.append(make_event(1))
    with pytest.raises(EventLogError, match="safe in"):
        w.flush()
    assert w.errors == 1
    assert w.queue_depth == 1
    assert len(list((events_dir / "spool").glob("*.jsonl"))) == 1
    deadline = time.time() + 10
    while w.queue_depth and time.time() < deadline:  # background retry with backoff
        time.sleep(0.05)
    assert w.queue_depth == 0
    assert w.errors == 2
    w.close()
    assert _ids(events_dir) == ["evt_test_00000001"]


def test_close_with_unconvertible_spool_leaves_it_for_recovery(
    events_dir: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_spool, "write_parquet_atomic", broken)
    w = EventWriter(events_dir).start()
    w.append(make_event(7))
    w.close()
    assert list_segments(events_dir) == []
    monkeypatch.undo()
    EventWriter(events_dir).start().close()
    assert _ids(events_dir) == ["evt_test_00000007"]


def test_fsync_mode_writes_the_same(events_dir: Path) -> None:
    with EventWriter(events_dir, fsync=True) as w:
        for i in range(3):
            w.append(make_event(i))
    assert len(_ids(events_dir)) == 3


def test_write_segment_conforms_and_is_atomic(events_dir: Path) -> None:
    table = pa.Table.from_pylist(
        [
            {
                "event_id": "e1",
                "ts": 1_700_000_000_000_000,
                "org_id": "o",
                "endpoint": "/x",
                "status": 201,
                "extra_column": "dropped",
            }
        ]
    )
    path = write_segment(events_dir, table, name="bulk-1")
    assert path.name == "bulk-1.parquet"
    out = read_events(events_dir)
    assert out.num_rows == 1
    assert out.column("status").to_pylist() == [201]
    assert out.column("model").to_pylist() == [None]
    assert not [p for p in os.listdir(events_dir) if p.startswith(".")]
    with pytest.raises(ValueError, match="not allowed"):
        write_segment(events_dir, table, name="../escape")
    with pytest.raises(ValueError, match="no rows"):
        write_segment(events_dir, table.slice(0, 0))


def test_fast_and_line_by_line_conversion_agree(events_dir: Path, tmp_path: Path,
                                                monkeypatch) -> None:  # type: ignore[no-untyped-def]
    events = [
        make_event(1, temperature=0.7, stream=True, has_tools=False, logprobs=None,
                   prompt_text="naïve ☃ \"quoted\"\nline", n=None, extra={"nested": [1, 2]}),
        make_event(2, temperature=None, latency_ms=12.25, ttfb_ms=1, status=503,
                   error_code="upstream_error", response_text=""),
        make_event(3, max_tokens=2**31 - 1, top_logprobs=5, n_messages=7),
    ]
    spool = _write_spool(tmp_path / "a", "s-1.jsonl", events)
    fast = _spool.convert_spool(spool, tmp_path / "a")
    assert fast.rows == 3

    def no_fast_path(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise _spool._NeedsSlowPath("test")

    monkeypatch.setattr(_spool, "_fast_batches", no_fast_path)
    spool_b = _write_spool(tmp_path / "b", "s-1.jsonl", events)
    slow = _spool.convert_spool(spool_b, tmp_path / "b")
    assert slow.rows == 3
    a = read_events(tmp_path / "a").sort_by("event_id")
    b = read_events(tmp_path / "b").sort_by("event_id")
    assert a.equals(b)
    assert a.column("prompt_text")[0].as_py() == "naïve ☃ \"quoted\"\nline"
    assert a.column("temperature")[0].as_py() == pytest.approx(0.7)


def test_partial_write_on_full_disk_does_not_corrupt_later_events(events_dir: Path,
                                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import distillwarden.events.writer as writer_mod

    real_write = os.write
    state = {"fail": 0}

    def half_then_enospc(fd: int, data) -> int:  # type: ignore[no-untyped-def]
        # What the kernel does when the disk fills mid-write: a short write, then ENOSPC.
        if state["fail"] == 2:
            state["fail"] = 1
            return real_write(fd, bytes(data[: len(data) // 2]))
        if state["fail"] == 1:
            state["fail"] = 0
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(writer_mod.os, "write", half_then_enospc)
    with EventWriter(events_dir) as w:
        w.append(make_event(1))
        state["fail"] = 2
        with pytest.raises(OSError, match="No space"):
            w.append(make_event(2))
        w.append(make_event(3))
    assert _ids(events_dir) == ["evt_test_00000001", "evt_test_00000003"]
    assert w.events_rejected == 0


_text = st.text(max_size=30)  # any unicode, control characters and quotes included
_event = st.fixed_dictionaries(
    {
        "org_id": st.text(min_size=1, max_size=10),
        "endpoint": _text,
        "status": st.integers(-(2**15), 2**15 - 1),
        "ts": st.integers(0, 4_102_444_800_000_000),
    },
    optional={
        "prompt_text": st.none() | _text,
        "temperature": st.none() | st.floats(width=32, allow_nan=False, allow_infinity=False),
        "latency_ms": st.none() | st.floats(-1e6, 1e6, width=32),
        "max_tokens": st.none() | st.integers(-(2**31), 2**31 - 1),
        "stream": st.none() | st.booleans(),
        "unknown_extra": st.none() | st.integers(-(2**63), 2**63 - 1) | _text,
    },
)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_event, min_size=1, max_size=20))
def test_any_valid_event_round_trips(tmp_path_factory, events) -> None:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("rt") / "events"
    with EventWriter(directory) as w:
        for i, e in enumerate(events):
            w.append(dict(e, event_id=f"e{i:04d}"))
    assert w.events_rejected == 0
    rows = read_events(directory).sort_by("event_id").to_pylist()
    assert len(rows) == len(events)
    for e, row in zip(events, rows, strict=True):
        for key, value in e.items():
            if key == "unknown_extra":
                continue
            got = row[key]
            if key == "ts":
                got = int(got.timestamp()) * 1_000_000 + got.microsecond
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-6, abs=1e-30), key
            else:
                assert got == value, key
