"""Benchmark: simulate the `scale` scenario (1M events) straight into the event log.

Measures wall time, CPU time and peak RSS of the whole run (parent + worker processes) and
writes bench/results/sim.json (merging with the keys other sim benchmarks wrote). Run:

    python bench/sim/bench_generate.py [--workers 2] [--scenario scale] [--out DIR]

The machine's load is recorded too: on a shared machine wall time exceeds CPU time / workers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from distillwarden.events.reader import read_events
from distillwarden.sim.scenario import load_scenario
from distillwarden.sim.writers import write_dataset

RESULTS = Path(__file__).resolve().parents[1] / "results" / "sim.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="scale")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="keep the dataset here")
    args = ap.parse_args()

    scenario = load_scenario(args.scenario)
    out = args.out or Path(tempfile.mkdtemp(prefix="dw-bench-sim-")) / "data"
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    c0 = os.times()
    summary = write_dataset(scenario, out, workers=args.workers)
    wall = time.perf_counter() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system) + (c1.children_user - c0.children_user) \
        + (c1.children_system - c0.children_system)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = read_events(out / "events", columns=["event_id"]).num_rows
    size = sum(p.stat().st_size for p in (out / "events").glob("*.parquet"))
    result = {
        "scenario": scenario.name,
        "events": summary.events,
        "events_read_back": rows,
        "accounts": summary.accounts,
        "segments": len(summary.segments),
        "workers": args.workers,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "events_per_s_wall": round(summary.events / wall),
        "events_per_cpu_s": round(summary.events / cpu),
        "projected_wall_s_on_idle_2_cores": round(cpu / min(2, args.workers), 1),
        "peak_rss_mb_parent": round(rss_self),
        "peak_rss_mb_largest_worker": round(rss_children),
        "parquet_mb": round(size / 2**20),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[f"generate_{scenario.name}"] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    if args.out is None:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
