"""Benchmark: the MMD baseline (arXiv 2606.05725) through the evaluation harness.

Simulates a tiny scenario sized for CPU embedding (every query of every scored account is
embedded with MiniLM once, cached in the dataset's .cache), then evaluates the baseline at
several window sizes side by side, with the harness's calibrated thresholds and with the
paper's own rule (MMD² above the 95th percentile of benign-vs-benign draws). Writes the
figures under "mmd_baseline_small" in bench/results/sim.json and the HTML/JSON report to
--report. The paper's windows are 1,500 queries; 1,500-query windows for thousands of
accounts need a GPU for the embeddings, so this run uses shorter windows and says so.

    python bench/sim/bench_mmd_baseline.py [--windows 50 20] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from distillwarden.evaluate.harness import evaluate
from distillwarden.evaluate.mmd_baseline import MMDBaselineDetector
from distillwarden.evaluate.report import write_report
from distillwarden.sim.scenario import parse_scenario
from distillwarden.sim.writers import write_dataset

RESULTS = Path(__file__).resolve().parents[1] / "results" / "sim.json"

SCENARIO = """
name: mmd-small
description: small scenario for the CPU-bound MMD baseline benchmark
seed: 2606
start: 2026-03-02T00:00:00Z
days: 7
models: [dw-large]
reference_fraction: 0.2
benign:
  - {persona: chat_app, count: 60, volume_per_day: {median: 2, sigma: 0.5}}
  - {persona: coding_assistant, count: 25, volume_per_day: {median: 2, sigma: 0.5}}
  - {persona: support_bot, count: 15, volume_per_day: {median: 2, sigma: 0.5}}
  - {persona: translation_pipeline, count: 3, volume_per_day: {median: 6, sigma: 0.3}}
  - {persona: evaluation_lab, count: 3, volume_per_day: {median: 6, sigma: 0.3}}
  - {persona: education, count: 25, volume_per_day: {median: 2, sigma: 0.5}}
attackers:
  - {strategy: harvester, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
  - {strategy: cot_extractor, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
  - {strategy: dataset_formatter, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
  - {strategy: rival_evaluator, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
  - {strategy: desensitised_harvester, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
  - {strategy: logprob_harvester, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
  - {strategy: slow_and_low, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
hydras:
  - {strategy: cot_extractor, size: 8, reseller: apexgate, volume_per_day: {median: 3, sigma: 0.2}}
mixers:
  - {host: chat_app, strategy: harvester, count: 2, volume_per_day: {median: 10, sigma: 0.2}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--windows", type=int, nargs="+", default=[50, 20])
    ap.add_argument("--data", type=Path, default=Path("/tmp/dw-bench-mmd2"))
    ap.add_argument("--report", type=Path, default=Path("/tmp/dw-bench-mmd-report"))
    args = ap.parse_args()
    if not (args.data / "labels.jsonl").exists():
        write_dataset(parse_scenario(SCENARIO, "mmd-small"), args.data)
    detectors = {f"mmd-window-{w}": MMDBaselineDetector(window=w, max_reference=400, max_chars=300)
                 for w in sorted(args.windows, reverse=True)}
    t0 = time.perf_counter()
    report = evaluate(detectors, args.data, windows=(5, 10, 20, 50),
                      progress=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
    wall = time.perf_counter() - t0
    write_report(report, args.report)
    out = {"scenario": "mmd-small (inline in this script)", "split": report.split,
           "attackers": report.attackers, "wall_s": round(wall, 1),
           "embedding_model": "all-MiniLM-L6-v2 (paper: bge-small-en-v1.5)",
           "deviations": "windows of 50 and 20 queries (paper: 1,500), 400 reference "
                         "queries, queries cut to 300 characters: the shared 2-core machine "
                         "embedded only a few queries per second while this ran",
           "loadavg": [round(x, 2) for x in os.getloadavg()],
           "detectors": [r.as_dict() for r in report.results]}
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["mmd_baseline_small"] = out
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps({r.name: {"auc": r.roc_auc, "tpr": r.tpr, "fpr": r.benign_fpr,
                               "by_fraction": r.tpr_by_fraction, "native": r.native}
                      for r in report.results}, indent=1))


if __name__ == "__main__":
    main()
