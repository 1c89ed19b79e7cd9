"""Resident memory of the gateway process while the event writer converts one spool of 50,000
gateway-sized events to Parquet (what happens every ~12 s at 4,000 rps), in both conversion
modes of ``EventWriter``:

* ``process`` (what ``distillwarden serve`` uses): the spool is converted by a short-lived
  child (``python -m distillwarden.events._convert``); the serving process never loads Arrow.
* ``thread`` (the in-process option for library users, and the gateway's mode before): Arrow's
  JSON reader and the Parquet writer run in the serving process.

Each mode runs in a fresh subprocess with the serving process's environment
(MALLOC_ARENA_MAX=2, ARROW_DEFAULT_MEMORY_POOL=system) after importing the gateway, samples the
process's RSS every 5 ms while a writer started on the directory recovers and converts the spool,
and records the child's peak RSS (VmHWM) and CPU time as the writer reports them.

usage: python bench/gateway/conversion_memory.py [--events 50000] [--repeat 3]
writes bench/results/gateway_conversion_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, resource, sys, threading, time
from pathlib import Path
def rss(): return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
peak = [0.0]
def sample():
    while True:
        peak[0] = max(peak[0], rss()); time.sleep(0.005)
import distillwarden.gateway.app  # the serving process's imports
from distillwarden.events.writer import EventWriter
threading.Thread(target=sample, daemon=True).start()
time.sleep(0.1); base = rss(); peak[0] = 0.0
mode, directory = sys.argv[1], Path(sys.argv[2])
cpu0 = time.process_time(); t0 = time.perf_counter()
w = EventWriter(directory, conversion=mode).start()  # recovers and converts the spool
wall = time.perf_counter() - t0; cpu = time.process_time() - cpu0
time.sleep(0.05)
w.close()
print(json.dumps({"rss_before_mb": round(base, 1), "rss_peak_mb": round(peak[0], 1),
                  "rss_after_mb": round(rss(), 1), "events": w.events_written,
                  "wall_s": round(wall, 3), "own_cpu_s": round(cpu, 3),
                  "child_cpu_s": round(w.conversion_cpu_s, 3),
                  "child_peak_rss_mb": w.conversion_peak_rss_mb,
                  "arrow_loaded": "pyarrow" in sys.modules}))
""".replace("import os,", "import json, os,")


def _make_spool(directory: Path, n: int) -> Path:
    from distillwarden.events.record import new_event_id
    from distillwarden.events.writer import EventWriter

    body = (
        '{"model": "fake-model", "messages": [{"role": "user", "content": '
        '"Say hello in one short sentence."}], "max_tokens": 32}'
    )
    event = {
        "org_id": "org_bench",
        "key_id": "key_bench",
        "key_prefix": "sk-dw-abcd",
        "channel": "direct",
        "licence": "standard",
        "region": "unknown",
        "ip_hash": "a" * 32,
        "ip_net_hash": "b" * 32,
        "ua_hash": "c" * 32,
        "endpoint": "/v1/chat/completions",
        "model": "fake-model",
        "request_json": body,
        "prompt_text": "Say hello in one short sentence.",
        "last_user_text": "Say hello in one short sentence.",
        "n_messages": 1,
        "max_tokens": 32,
        "stream": False,
        "has_tools": False,
        "response_text": "Hello! This is a fake upstream answer.",
        "finish_reason": "stop",
        "prompt_tokens": 8,
        "completion_tokens": 9,
        "status": 200,
        "latency_ms": 0.5,
        "ttfb_ms": 0.5,
        "upstream": "fake",
        "source": "gateway",
    }
    writer = EventWriter(directory, segment_max_events=10**9, segment_max_age_s=10**6).start()
    for _ in range(n):
        e = dict(event)
        e["event_id"] = new_event_id()
        e["ts"] = time.time_ns() // 1000
        writer.append(e)
    spool = next((directory / "spool").glob("*.jsonl"))
    copy = directory / "bench-spool.jsonl"
    copy.write_bytes(spool.read_bytes())
    writer.close()
    return copy


def _run(mode: str, spool: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    directory = work / "events"
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "spool").mkdir(parents=True)
    shutil.copy(spool, directory / "spool" / "20260101T000000000000Z-bench-000001.jsonl")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(directory)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--out", type=Path, default=Path("bench/results/gateway_conversion_memory.json")
    )
    a = ap.parse_args()
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        spool = _make_spool(Path(tmp) / "make", a.events)
        spool_mb = round(spool.stat().st_size / 2**20, 1)
        for mode in ("process", "thread"):
            runs = [_run(mode, spool, Path(tmp), env) for _ in range(a.repeat)]
            assert all(r["events"] == a.events for r in runs), runs
            summary: dict[str, object] = {
                k: statistics.median(float(r[k]) for r in runs)
                for k in runs[0]
                if k not in ("events", "arrow_loaded")
            }
            summary["serving_process_peak_over_before_mb"] = round(
                float(summary["rss_peak_mb"]) - float(summary["rss_before_mb"]), 1
            )
            conv_cpu = float(summary["child_cpu_s"]) + (
                float(summary["own_cpu_s"]) if mode == "thread" else 0.0
            )
            summary["conversion_cpu_ms_per_event"] = round(1000 * conv_cpu / a.events, 4)
            summary["arrow_loaded_in_serving_process"] = any(r["arrow_loaded"] for r in runs)
            summary["runs"] = runs
            results[mode] = summary
    report = {
        "benchmark": "gateway-process RSS while converting one event spool (median of runs)",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "events": a.events,
        "spool_mb": spool_mb,
        "repeat": a.repeat,
        "note": "process: the serving process only waits; the child's peak is a separate, "
        "short-lived process. thread: own_cpu_s includes Arrow's conversion work.",
        "results": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({m: {k: v for k, v in r.items() if k != "runs"}
                      for m, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
