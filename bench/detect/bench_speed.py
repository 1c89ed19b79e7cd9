"""Detection throughput and memory.

Simulates a scenario into an event log (once), then measures, in separate processes:

* ``events_per_s_no_embeddings``: request features + account signals (+ linkage, which runs
  beside the signals as in the detector) over the whole log, streamed segment by segment
  for features (the per-account aggregation runs once over the window; the next segment
  read while one is featurised, as the engine does), no embeddings, each segment read for
  the columns the incremental engine reads for such a detector (``segment_columns``: the
  last user turn only where a prompt may be missing); the median of ``--repeats`` runs
  (each is in the JSON);
* ``events_per_hour_full``: the full detector (features, signals, sampled MiniLM embeddings
  with the default 32 prompts per account, MMD, linkage, scoring) fitted on the benign part,
  on the ``standard`` scenario at its own size (the JSON records the events, the active
  accounts and the prompts embedded); ``full_with_embeddings_small_log`` repeats it on a
  small log (``--full-events``) where accounts have so few events that nearly every prompt
  is embedded: the worst case for this measure;
* ``peak_rss_mb``: the most of the featurisation run and the small-log run (each run's own is
  in its section), and the featurisation measured on half the log, to show memory follows
  the window rather than the log (features are computed per segment; only the per-request
  feature columns, not the text, are kept for the window).

    python bench/detect/bench_speed.py --events 100000 --full-events 5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_eval import _dataset  # noqa: E402


def _features_only(dataset: Path, fraction: float) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillwarden.detect.engine import read_ahead
    from distillwarden.detect.features import (
        default_benchmark_index,
        request_features,
        segment_columns,
    )
    from distillwarden.detect.linkage import HydraLinker
    from distillwarden.detect.signals import account_signals
    from distillwarden.events.reader import list_segments

    index = default_benchmark_index()
    segments = list_segments(dataset / "events")
    segments = segments[: max(1, int(len(segments) * fraction))]
    accounts = pq.read_table(dataset / "accounts.parquet")
    # one-time costs of a process (compiling the lexicon set, loading the compiled kernels,
    # DuckDB's first query), paid once by a long-running engine: on a few requests, before
    # the clock starts, and reported apart
    t_warm = time.perf_counter()
    first = next(pq.ParquetFile(segments[0]).iter_batches(batch_size=50))
    warm = request_features(pa.Table.from_batches([first]), index=index)
    account_signals(warm, accounts)
    HydraLinker().link(warm, accounts)
    warmup = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    parts = []
    n = 0
    def read(seg: Path) -> pa.Table:
        # what the incremental engine reads for a detector without embeddings
        pf = pq.ParquetFile(seg)
        return pf.read(columns=segment_columns(pf, embeddings=False))

    # as the engine does: the next segment is read while one is featurised
    for _seg, table in read_ahead(segments, read):
        n += table.num_rows
        parts.append(request_features(table, index=index))
        del table
    feats = pa.concat_tables(parts)
    t_feat = time.perf_counter() - t0
    # as the detector runs them without embeddings: linkage beside the signal aggregation
    with ThreadPoolExecutor(max_workers=1) as pool:
        linked = pool.submit(HydraLinker().link, feats, accounts)
        sig = account_signals(feats, accounts)
        t_sig = time.perf_counter() - t0 - t_feat
        linked.result()
    total = time.perf_counter() - t0
    return {
        "events": n, "accounts": sig.num_rows, "seconds": round(total, 2),
        "seconds_features": round(t_feat, 2), "seconds_signals": round(t_sig, 2),
        "seconds_linkage_beyond_signals": round(total - t_feat - t_sig, 2),
        "events_per_s": round(n / total, 1),
        "warmup_seconds_excluded": round(warmup, 2),
        "events_per_s_features_signals": round(n / (t_feat + t_sig), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _full(dataset: Path, fraction: float) -> dict[str, Any]:
    import json as _json

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from distillwarden.detect.engine import DETECT_COLUMNS
    from distillwarden.detect.scoring import DistillationDetector
    from distillwarden.embeddings import embedding_precision
    from distillwarden.events.reader import list_segments

    segments = list_segments(dataset / "events")
    segments = segments[: max(1, int(len(segments) * fraction))]
    events = pa.concat_tables([pq.read_table(s, columns=list(DETECT_COLUMNS)) for s in segments])
    accounts = pq.read_table(dataset / "accounts.parquet")
    labels = [_json.loads(x) for x in (dataset / "labels.jsonl").read_text().splitlines()]
    ref = [r["org"] for r in labels if r.get("split") == "reference"]
    ref_ev = events.filter(pc.is_in(events.column("org_id"), value_set=pa.array(ref)))
    det = DistillationDetector(cache_dir=None)
    t0 = time.perf_counter()
    det.fit(ref_ev, accounts)
    t_fit = time.perf_counter() - t0
    det.decision_function(events, accounts)
    total = time.perf_counter() - t0
    n = events.num_rows + ref_ev.num_rows
    return {
        "events_scored": events.num_rows, "events_fitted": ref_ev.num_rows,
        "seconds_fit": round(t_fit, 2), "seconds_total": round(total, 2),
        "embedded_prompts": len(det.embedding_cache_.vectors),
        "active_accounts": pc.count_distinct(events.column("org_id")).as_py(),
        "embedding_precision": embedding_precision("cpu"),
        "events_per_hour": round(n / total * 3600.0),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _child(mode: str, dataset: Path, fraction: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--dataset", str(dataset),
           "--fraction", str(fraction)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--full-events", type=int, default=5_000,
                    help="log size for the small-log (worst case) run with embeddings")
    ap.add_argument("--repeats", type=int, default=3,
                    help="featurisation runs on the whole log (the median is reported)")
    ap.add_argument("--no-natural", action="store_true",
                    help="skip the end-to-end run on the scenario at its own size")
    ap.add_argument("--data", type=Path, default=Path("/tmp/distillwarden-bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/detection_speed.json")
    ap.add_argument("--child", choices=["features", "full"])
    ap.add_argument("--dataset", type=Path)
    ap.add_argument("--fraction", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.child:
        fn = _features_only if args.child == "features" else _full
        print(json.dumps(fn(args.dataset, args.fraction)))
        return 0
    # the logs run_eval.py simulates (and caches) under the same names
    big = _dataset("standard", args.data, args.events)
    small = _dataset("standard", args.data, args.full_events)
    natural = None if args.no_natural else _dataset("standard", args.data, None)
    load_at_start = os.getloadavg()
    # the featurisation run is short and the machine shared: the median of several runs
    runs = [_child("features", big, 1.0) for _ in range(max(1, args.repeats))]
    feats_full = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
    feats_full = {**feats_full, "events_per_s_runs": [r["events_per_s"] for r in runs]}
    feats_half = _child("features", big, 0.5)
    small_full = _child("full", small, 1.0)
    full = small_full if natural is None else _child("full", natural, 1.0)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "load_avg_at_start": load_at_start},
        "events_per_s_no_embeddings": feats_full["events_per_s"],
        "events_per_hour_full": full["events_per_hour"],
        "events_per_hour_full_small_log": small_full["events_per_hour"],
        # the streamed featurisation and the small-log end-to-end run; the run on the whole
        # scenario holds all its events with their text in memory and is reported apart
        "peak_rss_mb": max(feats_full["peak_rss_mb"], small_full["peak_rss_mb"]),
        "no_embeddings": feats_full,
        "no_embeddings_half_log": feats_half,
        "full_with_embeddings": full,
        "full_with_embeddings_small_log": small_full,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
