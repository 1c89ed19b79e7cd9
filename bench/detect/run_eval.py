"""Evaluate the distillwarden detector side by side with the MMD baseline.

Simulates the named scenarios (once; datasets are cached under --data), runs the evaluation
harness (``distillwarden.evaluate.harness.evaluate``) with both detectors, writes the
harness reports to docs/reports/<scenario>.json (+ .html when the harness can render it) and
the headline figures to bench/results/detection.json.

    python bench/detect/run_eval.py --scenarios standard hydra mixers

Headline keys (both detectors): pure_tpr_at_fpr_0_1pct, mixed10_tpr_at_fpr_1pct,
mixed5_tpr_at_fpr_1pct, benign_fpr (measured on held-out benign accounts at the 0.1%
threshold), hydra_ari, median_queries_to_detection (at the 1% threshold).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _dataset(name: str, data: Path, total_events: int | None) -> Path:
    from distillwarden.sim.scenario import load_scenario
    from distillwarden.sim.writers import write_dataset

    out = data / (name if total_events is None else f"{name}-{total_events}")
    if (out / "labels.jsonl").exists():
        return out
    scenario = load_scenario(name)
    if total_events is not None:
        scenario = scenario.model_copy(update={"total_events": total_events})
    t0 = time.perf_counter()
    summary = write_dataset(scenario, out)
    print(f"simulated {name}: {summary.events} events, {summary.accounts} accounts "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def _get(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, from one detector's harness result."""
    return {
        "pure_tpr_at_fpr_0_1pct": _get(result, "tpr_pure", "0.001"),
        "pure_tpr_at_fpr_1pct": _get(result, "tpr_pure", "0.01"),
        "mixed10_tpr_at_fpr_1pct": _get(result, "tpr_by_fraction", "0.1", "0.01"),
        "mixed5_tpr_at_fpr_1pct": _get(result, "tpr_by_fraction", "0.05", "0.01"),
        "benign_fpr": _get(result, "benign_fpr", "0.001"),
        "benign_fpr_at_1pct_threshold": _get(result, "benign_fpr", "0.01"),
        "hydra_ari": result.get("cluster_ari"),
        "hydra_tpr_at_fpr_1pct": _get(result, "tpr_hydra", "0.01"),
        "median_queries_to_detection": _get(result, "detection_delay", "0.01", "median_queries"),
        "roc_auc": result.get("roc_auc"),
        "hard_negatives_flagged_at_1pct": {
            k: v.get("0.01") for k, v in (result.get("hard_negatives_flagged") or {}).items()
        },
        "tpr_by_strategy_at_1pct": {
            k: v.get("0.01") for k, v in (result.get("tpr_by_strategy") or {}).items()
        },
        "seconds": result.get("seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenarios", nargs="+", default=["standard", "hydra", "mixers"])
    ap.add_argument("--data", type=Path, default=Path("/tmp/distillwarden-eval"))
    ap.add_argument("--total-events", type=int, default=None,
                    help="rescale every scenario to about this many events")
    ap.add_argument("--no-embeddings", action="store_true",
                    help="run our detector without embedding signals")
    ap.add_argument("--no-baseline", action="store_true", help="skip the MMD baseline")
    ap.add_argument("--baseline-window", type=int, default=1500)
    ap.add_argument("--baseline-max-chars", type=int, default=1000,
                    help="characters of each query the baseline embeds (CPU budget)")
    ap.add_argument("--exclude-signals", nargs="*", default=[],
                    help="signals our detector must not use (generalisation checks)")
    ap.add_argument("--extra-signals", nargs="*", default=[],
                    help="optional signals to score as well (e.g. bench_breadth)")
    ap.add_argument("--knn-metric", default="euclidean",
                    help="distance of the kNN novelty (euclidean, the default, or manhattan)")
    ap.add_argument("--knn-low", type=float, default=None,
                    help="floor of the normal scores in the kNN space (default: the "
                         "detector's; 0 keeps only the suspicious side of each signal)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/detection.json")
    ap.add_argument("--reports", type=Path, default=ROOT / "docs/reports")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from distillwarden.detect.scoring import DEFAULT_SIGNALS, DistillationDetector
    from distillwarden.evaluate.harness import evaluate

    results: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "scenarios": {},
    }
    args.reports.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios:
        path = _dataset(name, args.data, args.total_events)
        signals = [s for s in (*DEFAULT_SIGNALS, *args.extra_signals)
                   if s not in set(args.exclude_signals)]
        detectors: dict[str, Any] = {
            "distillwarden": DistillationDetector(
                use_embeddings=not args.no_embeddings, signals=signals,
                knn_metric=args.knn_metric,
                **({} if args.knn_low is None else {"knn_low": args.knn_low}),
            )
        }
        if not args.no_baseline:
            from distillwarden.evaluate.mmd_baseline import MMDBaselineDetector

            detectors["mmd_baseline"] = MMDBaselineDetector(
                window=args.baseline_window, max_chars=args.baseline_max_chars
            )
        t0 = time.perf_counter()
        report = evaluate(detectors, str(path), fprs=(0.001, 0.01),
                          progress=lambda m: print(m, flush=True))
        full = report.as_dict(with_curves=True)
        (args.reports / f"{name}.json").write_text(json.dumps(full, indent=1, default=str))
        from distillwarden.evaluate.report import render_html

        (args.reports / f"{name}.html").write_text(render_html(report), encoding="utf-8")
        entry: dict[str, Any] = {"dataset": str(path), "split": full["split"],
                                 "attackers": full["attackers"],
                                 "seconds": round(time.perf_counter() - t0, 1)}
        for det in full["detectors"]:
            entry[det["name"]] = headline(det)
        results["scenarios"][name] = entry
        print(json.dumps(entry, indent=1, default=str), flush=True)

    # top-level headline keys: from the standard scenario (hydra ARI from the hydra scenario
    # when it was run), ours at the top, the baseline under "mmd_baseline"
    main_s = "standard" if "standard" in results["scenarios"] else args.scenarios[0]
    for det, target in (("distillwarden", results), ("mmd_baseline", None)):
        src = results["scenarios"][main_s].get(det)
        if src is None:
            continue
        block = {k: src[k] for k in (
            "pure_tpr_at_fpr_0_1pct", "mixed10_tpr_at_fpr_1pct", "mixed5_tpr_at_fpr_1pct",
            "benign_fpr", "hydra_ari", "median_queries_to_detection")}
        for frac_name in ("mixers",):
            mix = results["scenarios"].get(frac_name, {}).get(det)
            if mix is not None:
                block["mixers_scenario_mixed10_tpr_at_fpr_1pct"] = mix["mixed10_tpr_at_fpr_1pct"]
                block["mixers_scenario_mixed5_tpr_at_fpr_1pct"] = mix["mixed5_tpr_at_fpr_1pct"]
        hyd = results["scenarios"].get("hydra", {}).get(det)
        if hyd is not None:
            block["hydra_scenario_ari"] = hyd["hydra_ari"]
        if target is None:
            results["mmd_baseline"] = block
        else:
            results.update(block)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
