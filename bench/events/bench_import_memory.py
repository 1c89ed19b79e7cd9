"""Peak memory of an interchange import vs. file size: is it bounded by the batch, not the file?

Run: ``python bench/events/bench_import_memory.py`` → ``bench/results/events_import_memory.json``.

Writes interchange files of growing size (~2.6 KB per line) and imports each one in a fresh
subprocess, recording the child's peak RSS. Bounded memory means the peak stays flat while
the file grows.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

WORDS = ["model", "data", "train", "answer", "reason", "step", "explain", "compare", "code",
         "python", "function", "value", "result", "because", "therefore", "example"]

CHILD = r"""
import resource, sys, time
from distillwarden.events.importers import import_interchange
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
r = import_interchange(sys.argv[1], sys.argv[2], b"bench", segment_rows=int(sys.argv[3]))
print(r.imported, time.perf_counter() - t, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n // 6))


def write_file(path: Path, lines: int, rng: random.Random) -> None:
    base = datetime(2025, 1, 17, tzinfo=UTC)
    with path.open("wb") as fh:
        for i in range(lines):
            fh.write(orjson.dumps({
                "ts": (base + timedelta(milliseconds=i)).isoformat(),
                "org": f"org_{i % 300}", "key": f"k{i % 700}", "ip": f"10.0.{i % 250}.{i % 7}",
                "user_agent": "python-httpx/0.27", "endpoint": "/v1/chat/completions",
                "request": {"model": "m", "messages": [{"role": "user", "content": _text(rng, 600)}]},
                "response": {"choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant",
                                                      "content": _text(rng, 1200)}}]},
                "status": 200, "latency_ms": 900,
            }) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    ap.add_argument("--segment-rows", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/events_import_memory.json"))
    args = ap.parse_args()
    rng = random.Random(3)
    runs = []
    with tempfile.TemporaryDirectory() as td:
        for n in args.sizes:
            src = Path(td) / f"t{n}.jsonl"
            write_file(src, n, rng)
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(src), str(Path(td) / f"ev{n}"),
                 str(args.segment_rows)],
                check=True, capture_output=True, text=True,
            ).stdout.split()
            wall = time.perf_counter() - t0
            runs.append({
                "lines": n,
                "file_mb": round(src.stat().st_size / 1e6, 1),
                "imported": int(out[0]),
                "import_s": round(float(out[1]), 2),
                "process_wall_s": round(wall, 2),
                "rss_mb_before_import": round(int(out[2]) / 1024, 1),
                "peak_rss_mb": round(int(out[3]) / 1024, 1),
            })
            src.unlink()
            print(runs[-1], flush=True)
    result = {"benchmark": "events_import_memory", "segment_rows": args.segment_rows,
              "when": datetime.now(UTC).isoformat(timespec="seconds"), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
