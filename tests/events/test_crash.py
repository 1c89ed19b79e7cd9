"""Crash safety across processes: kill -9 loses no acknowledged event; writers share a dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distillwarden.events.reader import read_events
from distillwarden.events.writer import EventWriter

APPENDER = r"""
import sys, time
from distillwarden.events.writer import EventWriter
directory, prefix, max_events, conversion = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
w = EventWriter(directory, segment_max_events=max_events, segment_max_age_s=0.05,
                conversion=conversion).start()
i = 0
while True:
    w.append({"event_id": f"{prefix}-{i}", "org_id": "o", "endpoint": "/v1/chat/completions",
              "status": 200, "prompt_text": "x" * (i % 300)})
    print(f"acked {i}", flush=True)
    i += 1
    if len(sys.argv) > 5 and i >= int(sys.argv[5]):
        w.close()
        print("closed", flush=True)
        break
"""


def _spawn(
    directory: Path, prefix: str, max_events: int, conversion: str, count: int | None = None
) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", APPENDER, str(directory), prefix, str(max_events), conversion]
    if count is not None:
        args.append(str(count))
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )


def _wait_for_orphaned_converters(directory: Path, timeout: float = 60.0) -> None:
    """Conversion children of a killed writer finish their spool on their own."""
    deadline = time.monotonic() + timeout
    while True:
        busy = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and b"events._convert" in cmd and str(directory).encode() in cmd:
                busy = True
        if not busy:
            return
        assert time.monotonic() < deadline, "an orphaned conversion process did not finish"
        time.sleep(0.02)


@pytest.mark.parametrize("conversion", ["thread", "process"])
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, conversion: str) -> None:
    directory = tmp_path / "events"
    acked: set[str] = set()
    for round_ in range(2):
        proc = _spawn(directory, f"r{round_}", max_events=37, conversion=conversion)
        assert proc.stdout is not None
        deadline = time.time() + 30
        while len(acked) < 400 * (round_ + 1) and time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("acked "):
                acked.add(f"r{round_}-{line.split()[1]}")
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: spools half converted, half written
        for line in proc.stdout:  # anything printed before the kill was acknowledged too
            if line.startswith("acked "):
                acked.add(f"r{round_}-{line.split()[1]}")
        proc.wait()
        _wait_for_orphaned_converters(directory)
    assert len(acked) >= 800
    EventWriter(directory).start().close()  # restart + recovery
    ids = read_events(directory, columns=["event_id"]).column("event_id").to_pylist()
    assert len(ids) == len(set(ids)), "an event was recovered twice"
    missing = acked - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    left = list((directory / "spool").glob("*.jsonl"))
    # Only spools killed between creation and rename may remain (hidden, empty, never used).
    assert all(p.name.startswith(".tmp-") and p.stat().st_size == 0 for p in left), left


@pytest.mark.parametrize("conversion", ["thread", "process"])
def test_two_processes_share_one_directory(tmp_path: Path, conversion: str) -> None:
    directory = tmp_path / "events"
    procs = [
        _spawn(directory, f"p{k}", max_events=50, conversion=conversion, count=600)
        for k in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        assert out.rstrip().endswith("closed")
    ids = read_events(directory, columns=["event_id"]).column("event_id").to_pylist()
    assert len(ids) == 1200
    assert set(ids) == {f"p{k}-{i}" for k in range(2) for i in range(600)}
