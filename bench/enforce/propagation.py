"""Measure how fast a suspension reaches every gateway replica; write bench/results/enforce.json.

Runs tests/enforce/test_propagation.py (two real ``distillwarden serve`` processes per
deployment: one SQLite store with change-feed polling every 0.5 s, and PostgreSQL + Redis
push) with more rounds, and records the per-replica delay distribution from the moment the
status change commits until the replica answers ``403 account_suspended`` (suspend) and
until it admits the account again (reinstate).

    python bench/enforce/propagation.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "results" / "enforce.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    tmp = OUT.with_suffix(".partial.json")
    tmp.unlink(missing_ok=True)
    env = {**os.environ, "DW_PROPAGATION_ROUNDS": str(args.rounds),
           "DW_PROPAGATION_OUT": str(tmp)}
    load_before = os.getloadavg()
    t0 = time.monotonic()
    rc = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-m", "", "-p", "no:cacheprovider",
         "tests/enforce/test_propagation.py"], cwd=ROOT, env=env)
    if not tmp.exists():
        print("no measurements recorded", file=sys.stderr)
        return rc or 1
    doc = json.loads(tmp.read_text())
    tmp.unlink()
    doc["meta"] = {
        "script": "bench/enforce/propagation.py",
        "rounds": args.rounds,
        "replicas": 2,
        "status_poll_s": 0.5,
        "probe": "GET /v1/models every 5 ms per replica, from commit of the status change; "
                 "changes at a random phase of the 0.5 s poll; one unrecorded warm-up round",
        "tests_passed": rc == 0,
        "wall_s": round(time.monotonic() - t0, 1),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "note": "CPU shared with other jobs; delays include scheduling under that load",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for variant, res in sorted(doc["propagation"].items()):
        s = res["suspend"]
        print(f"{variant}: suspend n={s['n']} p50={s['p50']*1000:.0f} ms "
              f"p90={s['p90']*1000:.0f} ms max={s['max']*1000:.0f} ms")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
