"""Event log benchmark: append cost, Parquet segment throughput, read and import speed.

Run: ``python bench/events/bench_writer.py [--events 50000]`` → ``bench/results/events.json``.

Events are gateway-shaped (a chat request of ~600 characters and a ~1,200-character
response, hashes, timings), so sizes and costs resemble real traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow

from distillwarden.events import _spool
from distillwarden.events.importers import export_interchange, import_interchange
from distillwarden.events.reader import read_events, register_events
from distillwarden.events.record import new_event_id
from distillwarden.events.writer import EventWriter

WORDS = [
    "model",
    "data",
    "train",
    "answer",
    "reason",
    "step",
    "explain",
    "compare",
    "table",
    "list",
    "code",
    "python",
    "function",
    "value",
    "result",
    "first",
    "second",
    "because",
    "therefore",
    "example",
    "summary",
]


def _text(rng: random.Random, n_chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < n_chars:
        w = rng.choice(WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def make_event(rng: random.Random, i: int) -> dict[str, Any]:
    prompt = _text(rng, 600)
    request = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0.7,
        "max_tokens": 512,
    }
    return {
        "event_id": new_event_id(),
        "ts": datetime.now(UTC),
        "org_id": f"org_{i % 500}",
        "key_id": f"key_{i % 900}",
        "key_prefix": "sk-dw-abcd",
        "channel": "direct",
        "licence": "standard",
        "region": "SG",
        "ip_hash": f"{rng.getrandbits(128):032x}",
        "ip_net_hash": f"{rng.getrandbits(128):032x}",
        "ua_hash": f"{rng.getrandbits(128):032x}",
        "endpoint": "/v1/chat/completions",
        "model": "smollm2",
        "request_json": orjson.dumps(request).decode(),
        "prompt_text": prompt,
        "last_user_text": prompt,
        "n_messages": 1,
        "temperature": 0.7,
        "max_tokens": 512,
        "stream": False,
        "has_tools": False,
        "response_text": _text(rng, 1200),
        "finish_reason": "stop",
        "prompt_tokens": 150,
        "completion_tokens": 300,
        "status": 200,
        "latency_ms": 812.5,
        "ttfb_ms": 95.0,
        "upstream": "local",
        "source": "gateway",
    }


def bench_append(directory: Path, events: list[dict[str, Any]], *, fsync: bool) -> dict[str, Any]:
    """Append cost (wall per call, and process CPU per event), then one big conversion."""
    w = EventWriter(directory, segment_max_events=10**9, segment_max_age_s=3600, fsync=fsync)
    w.start()
    samples = []
    cpu0 = time.process_time()
    t_all = time.perf_counter()
    for e in events:
        t_ns = time.perf_counter_ns()
        w.append(e)
        samples.append(time.perf_counter_ns() - t_ns)
    total = time.perf_counter() - t_all
    cpu = time.process_time() - cpu0
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    w.flush()  # converts the one big spool into a segment: the segment throughput
    convert_s = time.perf_counter() - t0
    convert_cpu = time.process_time() - cpu0
    w.close()
    samples.sort()
    n = len(samples)
    return {
        "events": n,
        "append_cpu_us_mean": round(cpu / n * 1e6, 2),
        "append_wall_us_mean": round(total / n * 1e6, 2),
        "append_wall_us_p50": round(samples[n // 2] / 1000, 2),
        "append_wall_us_p99": round(samples[int(n * 0.99)] / 1000, 2),
        "append_wall_us_max": round(samples[-1] / 1000, 1),
        "segment_convert_wall_s": round(convert_s, 3),
        "segment_events_per_cpu_s": round(n / convert_cpu),
        "segment_events_per_wall_s": round(n / convert_s),
    }


def bench_conversion_paths(directory: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU per event of the Arrow JSON fast path vs. the line-by-line path (bad events)."""
    out: dict[str, Any] = {}
    for label, fast in (("fast_arrow_json", True), ("line_by_line", False)):
        d = directory / label
        w = EventWriter(d, segment_max_events=10**9, segment_max_age_s=3600)
        for e in events:
            w.append(e)
        w._rotate_locked()  # noqa: SLF001 - benchmark the conversion alone
        spool = w._pending[0].path  # noqa: SLF001
        real = _spool._fast_batches  # noqa: SLF001
        if not fast:
            def slow(*a: Any, **k: Any) -> Any:
                raise _spool._NeedsSlowPath("benchmark")  # noqa: SLF001

            _spool._fast_batches = slow  # type: ignore[assignment]  # noqa: SLF001
        try:
            cpu0 = time.process_time()
            res = _spool.convert_spool(spool, d)
            cpu = time.process_time() - cpu0
        finally:
            _spool._fast_batches = real  # type: ignore[assignment]  # noqa: SLF001
        assert res.rows == len(events)
        out[f"{label}_cpu_us_per_event"] = round(cpu / len(events) * 1e6, 1)
    return out


def bench_background(directory: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Appends with the background flusher rotating every 10,000 events (the real setup)."""
    w = EventWriter(directory, segment_max_events=10_000, segment_max_age_s=60).start()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for e in events:
        w.append(e)
    append_s = time.perf_counter() - t0
    w.close()
    total_s = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return {
        "events": len(events),
        "append_wall_us_mean_with_flusher": round(append_s / len(events) * 1e6, 2),
        "end_to_end_events_per_wall_s": round(len(events) / total_s),
        "end_to_end_cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
        "segments": w.segments_written,
        "bytes_on_disk": sum(p.stat().st_size for p in directory.glob("*.parquet")),
    }


def bench_read(directory: Path) -> dict[str, Any]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    table = read_events(directory)
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cpu0, t0 = time.process_time(), time.perf_counter()
    read_events(directory, columns=["ts", "org_id", "prompt_tokens"])
    narrow_s, narrow_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    con = duckdb.connect()
    register_events(con, directory)
    t0 = time.perf_counter()
    con.execute("select org_id, count(*), sum(completion_tokens) from events group by 1").fetchall()
    duck_s = time.perf_counter() - t0
    n = table.num_rows
    return {
        "rows": n,
        "read_all_columns_events_per_wall_s": round(n / full_s),
        "read_all_columns_events_per_cpu_s": round(n / full_cpu),
        "read_3_columns_events_per_wall_s": round(n / narrow_s),
        "read_3_columns_events_per_cpu_s": round(n / max(narrow_cpu, 1e-3)),
        "duckdb_group_by_org_wall_s": round(duck_s, 3),
    }


def bench_import(directory: Path, tmp: Path) -> dict[str, Any]:
    out = tmp / "export.jsonl"
    t0 = time.perf_counter()
    exp = export_interchange(directory, out)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = import_interchange(out, tmp / "imported", b"bench-secret")
    import_s = time.perf_counter() - t0
    return {
        "events": exp.events,
        "interchange_bytes": out.stat().st_size,
        "export_events_per_s": round(exp.events / export_s),
        "import_events_per_s": round(rep.imported / import_s),
        "import_mb_per_s": round(out.stat().st_size / import_s / 1e6, 1),
    }


LOAD_AT_START = os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--fsync-events", type=int, default=2_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/events.json"))
    args = ap.parse_args()
    rng = random.Random(7)
    events = [make_event(rng, i) for i in range(args.events)]
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        append = bench_append(tmp / "a", events, fsync=False)
        append_fsync = bench_append(tmp / "b", events[: args.fsync_events], fsync=True)
        paths = bench_conversion_paths(tmp / "p", events[:10_000])
        background = bench_background(tmp / "c", events)
        read = bench_read(tmp / "c")
        imp = bench_import(tmp / "c", tmp)
    result = {
        "benchmark": "events",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pyarrow": pyarrow.__version__,
            "duckdb": duckdb.__version__,
            "orjson": orjson.__version__,
            "load_avg_1m_at_start": LOAD_AT_START,
            "note": "2 cores shared with other jobs: wall-clock figures vary with load; "
            "*_cpu_* figures are process CPU time and more stable",
        },
        "event_bytes_json_mean": round(
            statistics.mean(len(orjson.dumps(dict(e, ts=0))) for e in events[:1000])
        ),
        "append": append,
        "append_fsync": append_fsync,
        "conversion_paths": paths,
        "background": background,
        "read": read,
        "interchange": imp,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
