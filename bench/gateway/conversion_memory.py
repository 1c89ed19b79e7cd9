"""Resident memory of a process shaped like the gateway while the event writer converts one
spool of 50,000 gateway-sized events to Parquet (what happens every ~12 s at 4,000 rps).

Each measurement runs in a fresh subprocess with the serving process's environment
(MALLOC_ARENA_MAX=2, ARROW_DEFAULT_MEMORY_POOL=system), after importing the gateway, and
samples RSS every 5 ms: ``convert_spool`` as the event writer calls it, and Arrow's streaming
JSON reader alone with 4 MB and 1 MB blocks (to locate the peak).

usage: python bench/gateway/conversion_memory.py [--events 50000]
writes bench/results/gateway_conversion_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import os, sys, threading, time
from pathlib import Path
def rss(): return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
peak = [0.0]
def sample():
    while True:
        peak[0] = max(peak[0], rss()); time.sleep(0.005)
import pyarrow.json as pj
import distillwarden.gateway.app  # the serving process's imports
from distillwarden.events import _spool
threading.Thread(target=sample, daemon=True).start()
time.sleep(0.1); base = rss(); peak[0] = 0.0
mode, spool, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if mode == "convert_spool":
    _spool.convert_spool(spool, out)
else:
    block = int(mode.split(":")[1])
    reader = pj.open_json(spool, read_options=pj.ReadOptions(use_threads=False, block_size=block << 20),
                          parse_options=pj.ParseOptions(explicit_schema=_spool._SPOOL_SCHEMA,
                                                        unexpected_field_behavior="ignore"))
    for _ in reader:
        pass
time.sleep(0.05)
print(round(base, 1), round(peak[0], 1), round(rss(), 1))
"""


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument(
        "--out", type=Path, default=Path("bench/results/gateway_conversion_memory.json")
    )
    a = ap.parse_args()
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        spool = _make_spool(Path(tmp) / "events", a.events)
        for mode in ("convert_spool", "json_reader_block_mb:4", "json_reader_block_mb:1"):
            out = Path(tmp) / mode.replace(":", "_")
            out.mkdir()
            line = subprocess.run(
                [sys.executable, "-c", CHILD, mode, str(spool), str(out)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            base, peak, end = (float(x) for x in line.split())
            results[mode] = {
                "rss_before_mb": base,
                "rss_peak_mb": peak,
                "rss_after_mb": end,
                "peak_over_before_mb": round(peak - base, 1),
            }
        spool_mb = round(spool.stat().st_size / 2**20, 1)
    report = {
        "benchmark": "gateway-process RSS while converting one event spool",
        "events": a.events,
        "spool_mb": spool_mb,
        "results": results,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
