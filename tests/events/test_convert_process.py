"""Spool conversion in a child process (``conversion="process"``, the gateway's mode): another
pid does the Arrow work, the writer never loads Arrow, and killing the child or the writer at
any point loses no event and duplicates none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from distillwarden.events import _spool
from distillwarden.events.reader import read_events
from distillwarden.events.writer import EventLogError, EventWriter

from .conftest import make_event


def _ids(directory: Path) -> list[str]:
    return read_events(directory, columns=["event_id"]).column("event_id").to_pylist()


def _big_event(i: int) -> dict[str, object]:
    # ~1 KB per event: a 30,000-event spool takes the child a few hundred ms to convert.
    return make_event(i, response_text=f"answer {i} " + "lorem ipsum " * 80)


def _converter_pids(directory: Path) -> list[int]:
    """Live (not zombie) conversion processes working on ``directory``'s spools."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"distillwarden.events._convert" in cmd and any(
            str(directory).encode() in part for part in cmd
        ):
            found.append(int(entry))
    return found


def _wait_gone(directory: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _converter_pids(directory):
        assert time.monotonic() < deadline, "conversion process did not finish"
        time.sleep(0.02)


def test_conversion_runs_in_another_process(
    events_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("converted in the writer's own process")

    monkeypatch.setattr(_spool, "convert_spool", not_here)
    with EventWriter(events_dir, conversion="process") as w:
        for i in range(300):
            w.append(make_event(i))
        w.flush()
        assert w.conversions_in_child == 1
        assert w.last_conversion_pid is not None and w.last_conversion_pid != os.getpid()
        m = w.metrics()
        assert m.events_written == 300 and m.segments_written == 1
        assert m.conversion_cpu_s > 0
        assert 10 < m.conversion_peak_rss_mb < 1000
    assert sorted(_ids(events_dir)) == sorted(make_event(i)["event_id"] for i in range(300))
    assert list((events_dir / "spool").iterdir()) == []


def test_writer_process_never_loads_arrow(tmp_path: Path) -> None:
    script = r"""
import sys
import distillwarden.gateway.app  # everything the serving process imports
from distillwarden.events.writer import EventWriter
w = EventWriter(sys.argv[1], conversion="process", segment_max_events=500).start()
for i in range(2000):
    w.append({"org_id": "o", "endpoint": "/v1/chat/completions", "status": 200})
w.flush()
w.close()
print(w.events_written, w.conversions_in_child, sorted(m for m in ("pyarrow", "numpy", "duckdb")
                                                        if m in sys.modules))
"""
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ev")],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout.split("\n")[-2]
    assert out == "2000 4 []"
    assert len(_ids(tmp_path / "ev")) == 2000


def test_child_killed_mid_conversion_loses_and_duplicates_nothing(events_dir: Path) -> None:
    n = 30_000
    w = EventWriter(events_dir, conversion="process", segment_max_events=10**9,
                    segment_max_age_s=3600).start()
    for i in range(n):
        w.append(_big_event(i))
    outcome: list[BaseException | None] = []

    def flush() -> None:
        try:
            w.flush()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=flush)
    t.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and t.is_alive() and time.monotonic() < deadline:
        pids = _converter_pids(events_dir)
        # mid-write: the child has started the segment's temporary file
        if pids and list(events_dir.glob(".tmp-*.parquet")):
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.001)
    t.join(60)
    assert killed is not None, "the conversion finished before it could be killed"
    assert isinstance(outcome[0], EventLogError)
    assert w.errors == 1
    assert not list(events_dir.glob("[!.]*.parquet")), "a killed child published a segment"
    assert not list(events_dir.glob(".tmp-*")), "the killed child's partial file was left"
    assert len(list((events_dir / "spool").glob("*.jsonl"))) == 1  # the events are still there
    assert w.queue_depth == n
    w.flush()  # the retry converts the same spool from the start
    w.close()
    ids = _ids(events_dir)
    assert len(ids) == n and len(set(ids)) == n
    assert list((events_dir / "spool").glob("*.jsonl")) == []


WRITER = r"""
import sys
from distillwarden.events.writer import EventWriter
w = EventWriter(sys.argv[1], conversion="process", segment_max_events=10**9,
                segment_max_age_s=3600).start()
for i in range(int(sys.argv[2])):
    w.append({"event_id": f"e{i}", "org_id": "o", "endpoint": "/v1/chat/completions",
              "status": 200, "response_text": "lorem ipsum " * 80})
print("appended", flush=True)
w.flush()
print("flushed", flush=True)
"""


def test_writer_killed_while_its_child_converts(events_dir: Path) -> None:
    n = 30_000
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(events_dir), str(n)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "appended"
    deadline = time.monotonic() + 60
    while not _converter_pids(events_dir):
        assert proc.poll() is None, "the writer finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # A writer starting now must not convert a spool its dead owner's child still holds.
    late = EventWriter(events_dir).start()
    late.close()
    _wait_gone(events_dir)
    EventWriter(events_dir).start().close()  # recovers whatever the child did not finish
    ids = _ids(events_dir)
    assert len(ids) == n and set(ids) == {f"e{i}" for i in range(n)}
    assert list((events_dir / "spool").glob("*.jsonl")) == []


def test_child_rejects_bad_events_and_skips_torn_line(events_dir: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    spool_dir = events_dir / "spool"
    spool_dir.mkdir(parents=True)
    good = [make_event(i) for i in range(5)]
    lines = [orjson.dumps(dict(e, ts=int(e["ts"].timestamp() * 1e6))) for e in good]
    lines.insert(2, b'{"event_id": "bad", "status": "not a number", "org_id": "o"}')
    (spool_dir / "20250101T000000000000Z-dead-000001.jsonl").write_bytes(
        b"\n".join(lines) + b'\n{"event_id": "torn", "org'
    )
    with caplog.at_level("WARNING", logger="distillwarden.events"):
        w = EventWriter(events_dir, conversion="process").start()
        w.close()
    assert w.conversions_in_child == 1
    assert w.events_written == 5 and w.events_rejected == 1
    assert sorted(_ids(events_dir)) == sorted(e["event_id"] for e in good)
    rejected = list((events_dir / "rejected").glob("*.jsonl"))
    assert len(rejected) == 1 and b'bad' in rejected[0].read_bytes()
    assert "torn last line" in caplog.text  # the child's warnings reach the writer's log


def test_conversion_timeout_keeps_the_spool_for_a_retry(events_dir: Path) -> None:
    w = EventWriter(events_dir, conversion="process", conversion_timeout_s=0.001).start()
    for i in range(10):
        w.append(make_event(i))
    with pytest.raises(EventLogError, match="could not be written"):
        w.flush()
    assert w.queue_depth == 10 and not list(events_dir.glob("*.parquet"))
    assert not list(events_dir.glob(".tmp-*"))
    w.conversion_timeout_s = 120
    w.flush()
    w.close()
    assert len(_ids(events_dir)) == 10


def test_falls_back_to_the_thread_when_no_child_can_start(
    events_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    with EventWriter(events_dir, conversion="process") as w:
        for i in range(10):
            w.append(make_event(i))
        w.flush()
        assert w.conversions_in_child == 0
    assert len(_ids(events_dir)) == 10


def test_rejects_an_unknown_conversion_mode(events_dir: Path) -> None:
    with pytest.raises(ValueError, match="conversion"):
        EventWriter(events_dir, conversion="fork")  # type: ignore[arg-type]
