"""Time from logging to finding in incremental detection (``distillwarden detect --follow``).

A real :class:`~distillwarden.events.writer.EventWriter` (its defaults: a segment at least
every 60 s) holds a simulated log's benign traffic, published as segments; an
:class:`~distillwarden.detect.engine.IncrementalDetection` follows it, polling every
``--poll`` seconds in a thread, with the default detector settings but no embeddings, fitted
on the log's benign reference accounts. Then attackers start, one every ``--gap`` seconds:
each one's requests are appended to the writer in one burst (as fast as ``append`` returns).
The latency of an attacker is the time from the return of its last ``append`` (every one of
its events is logged) to the end of the first detection run whose findings name it.

Measured twice, on fresh logs: following the writers' spools as well as the segments (the
default) and following published segments only (``--segments-only``). The attackers are the
pure attackers (one per strategy first) that a batch run over the same events flags at the
same false-positive rate, so each is found in both modes sooner or later.

    python bench/detect/bench_latency.py --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_eval import _dataset  # noqa: E402


def _setup(dataset: Path, fpr: float, attackers: int) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from distillwarden.detect.scoring import DistillationDetector
    from distillwarden.evaluate.splits import split_accounts
    from distillwarden.sim.dataset import Dataset

    ds = Dataset.open(dataset)
    labels = ds.labels()
    split = split_accounts(labels)
    events = ds.events()
    events = events.take(pa.array(np.argsort(events.column("ts").to_numpy(), kind="stable")))
    accounts = ds.accounts()

    def of(orgs: list[str]) -> pa.Table:
        return events.filter(pc.is_in(events.column("org_id"), value_set=pa.array(orgs)))

    detector = DistillationDetector(use_embeddings=False).fit(of(split.reference), accounts)
    background = [o for o in split.calibration + split.test_benign]
    pure = [o for o in split.attackers
            if not labels[o].get("cluster") and float(labels[o].get("attacker_fraction") or 1) >= 1]
    # attackers a batch run over the background and all of them flags, one per strategy
    risk = detector.decision_function(of(background + pure), accounts)
    threshold = detector.threshold_for_fpr(fpr)
    flagged = [o for o in sorted(pure) if risk.get(o, 0.0) > threshold]
    # one per strategy first, then the rest in a fixed order
    firsts = {str(labels[o].get("strategy")): o for o in reversed(flagged)}
    picked = (sorted(firsts.values()) + [o for o in flagged if o not in firsts.values()])
    picked = picked[:attackers]
    return {"detector": detector, "accounts": accounts, "background": of(background),
            "attackers": {o: of([o]) for o in picked}, "threshold": threshold,
            "strategies": {o: labels[o].get("strategy") for o in picked}}


def _measure(setup: dict[str, Any], *, spools: bool, poll_s: float, gap_s: float,
             timeout_s: float, fpr: float) -> dict[str, Any]:
    from distillwarden.detect.engine import IncrementalDetection
    from distillwarden.events.writer import EventWriter

    with tempfile.TemporaryDirectory(prefix="dw-latency-") as tmp:
        log_dir = Path(tmp) / "events"
        writer = EventWriter(log_dir).start()
        for row in setup["background"].to_pylist():
            writer.append(row)
        writer.flush()  # the history is published; the writer keeps its default rotation
        follower = IncrementalDetection(log_dir, setup["detector"], accounts=setup["accounts"],
                                        fpr=fpr, spools=spools)
        found: dict[str, float] = {}
        runs: list[float] = []
        stop = threading.Event()
        ready = threading.Event()

        def follow() -> None:
            while not stop.is_set():
                run = follower.poll()
                if run is not None:
                    runs.append(run.seconds)
                    now = time.monotonic()
                    for f in run.findings:
                        found.setdefault(f.org_id, now)
                    ready.set()
                stop.wait(poll_s)

        thread = threading.Thread(target=follow, daemon=True)
        thread.start()
        ready.wait()
        logged: dict[str, float] = {}
        try:
            for org, table in setup["attackers"].items():
                for row in table.to_pylist():
                    writer.append(row)
                logged[org] = time.monotonic()
                time.sleep(gap_s)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not set(logged) <= set(found):
                time.sleep(0.2)
        finally:
            stop.set()
            thread.join()
            writer.close()
    latency = {o: round(found[o] - t, 2) for o, t in logged.items() if o in found}
    values = sorted(latency.values())
    return {
        "spools": spools, "attackers": len(logged), "found": len(latency),
        "latency_s": latency,
        "median_s": values[len(values) // 2] if values else None,
        "max_s": values[-1] if values else None,
        "rescoring_runs": len(runs),
        "rescoring_median_s": round(sorted(runs)[len(runs) // 2], 2) if runs else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000,
                    help="size of the simulated standard log (the background)")
    ap.add_argument("--data", type=Path, default=Path("/tmp/distillwarden-bench"))
    ap.add_argument("--attackers", type=int, default=6)
    ap.add_argument("--poll", type=float, default=5.0, help="seconds between polls (the CLI's)")
    ap.add_argument("--gap", type=float, default=13.0, help="seconds between attackers")
    ap.add_argument("--timeout", type=float, default=150.0,
                    help="seconds to wait for the last findings")
    ap.add_argument("--fpr", type=float, default=0.001)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/detection_latency.json")
    args = ap.parse_args(argv)
    dataset = _dataset("standard", args.data, args.events)
    t0 = time.perf_counter()
    setup = _setup(dataset, args.fpr, args.attackers)
    print(f"fitted and picked {len(setup['attackers'])} attackers in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    modes = {}
    for spools in (True, False):
        name = "spools_and_segments" if spools else "segments_only"
        modes[name] = _measure(setup, spools=spools, poll_s=args.poll, gap_s=args.gap,
                               timeout_s=args.timeout, fpr=args.fpr)
        print(name, json.dumps(modes[name]), flush=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "load_avg_at_start": os.getloadavg()},
        "dataset": str(dataset), "background_events": setup["background"].num_rows,
        "attacker_events": {o: t.num_rows for o, t in setup["attackers"].items()},
        "strategies": setup["strategies"], "fpr": args.fpr, "threshold": setup["threshold"],
        "poll_s": args.poll, "gap_s": args.gap, "segment_max_age_s": 60.0,
        **modes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: (v["median_s"], v["max_s"], v["found"]) for k, v in modes.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
