"""Compose bench/results/detection.json and docs/reports/ from run_eval.py outputs.

    python bench/detect/summarize.py \\
        --standard /tmp/dw/std-final.json --standard-reports /tmp/dw/reports-std \\
        --side-by-side /tmp/dw/small-both.json --side-by-side-reports /tmp/dw/reports-small \\
        --held-out /tmp/dw/heldout.json --held-out-reports /tmp/dw/reports-heldout \\
        --hydra /tmp/dw/hydra.json --hydra-reports /tmp/dw/reports-hydra

Top-level keys are our detector on the full ``standard`` scenario; ``mmd_baseline`` holds the
MMD baseline's figures from the run where both detectors saw the same (smaller) dataset,
because embedding every query of the full scenario for the baseline does not fit the CPU
budget; that run's figures for both detectors are under ``side_by_side``. Each harness
report is re-rendered to HTML with the harness's own renderer
(``distillwarden.evaluate.report``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("pure_tpr_at_fpr_0_1pct", "mixed10_tpr_at_fpr_1pct", "mixed5_tpr_at_fpr_1pct",
        "benign_fpr", "hydra_ari", "median_queries_to_detection")


def _report_from_json(data: dict[str, Any]) -> Any:
    from distillwarden.evaluate.harness import DetectorResult, EvaluationReport
    from distillwarden.evaluate.metrics import Threshold

    results = []
    for d in data["detectors"]:
        results.append(DetectorResult(
            name=d["name"], roc_auc=d["roc_auc"],
            thresholds=[Threshold(**t) for t in d["thresholds"]],
            tpr=d["tpr"], tpr_pure=d["tpr_pure"], benign_fpr=d["benign_fpr"],
            balanced_accuracy=d["balanced_accuracy"], tpr_by_strategy=d["tpr_by_strategy"],
            tpr_by_fraction=d["tpr_by_fraction"], tpr_hydra=d["tpr_hydra"],
            hard_negatives=d["hard_negatives_flagged"], delay=d["detection_delay"],
            cluster_ari=d["cluster_ari"], cluster_ari_all=d["cluster_ari_all"],
            native=d["native_threshold"], unscored=d["unscored_accounts"],
            seconds=d["seconds"], roc_points=d.get("roc_points", {}),
            scores=d.get("scores", {}),
        ))
    return EvaluationReport(dataset=data["dataset"], split=data["split"],
                            fprs=tuple(data["fprs"]), results=results,
                            attackers=data["attackers"])


def _publish(reports_dir: Path, out_dir: Path, prefix: str) -> list[str]:
    from distillwarden.evaluate.report import render_html

    written = []
    for path in sorted(reports_dir.glob("*.json")):
        data = json.loads(path.read_text())
        name = f"{prefix}{path.stem}"
        shutil.copyfile(path, out_dir / f"{name}.json")
        (out_dir / f"{name}.html").write_text(render_html(_report_from_json(data)),
                                              encoding="utf-8")
        written.append(name)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--standard", type=Path, required=True)
    ap.add_argument("--standard-reports", type=Path, required=True)
    ap.add_argument("--side-by-side", type=Path)
    ap.add_argument("--side-by-side-reports", type=Path)
    ap.add_argument("--held-out", type=Path)
    ap.add_argument("--held-out-reports", type=Path)
    ap.add_argument("--hydra", type=Path, help="run_eval output of the hydra scenario")
    ap.add_argument("--hydra-reports", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/detection.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs/reports")
    args = ap.parse_args(argv)
    args.docs.mkdir(parents=True, exist_ok=True)

    std = json.loads(args.standard.read_text())
    ours = std["scenarios"]["standard"]["distillwarden"]
    result: dict[str, Any] = {k: ours[k] for k in KEYS}
    result["detector"] = (
        "distillwarden (DistillationDetector, knn+cauchy combination, no embeddings)")
    result["standard"] = std["scenarios"]["standard"]
    published = _publish(args.standard_reports, args.docs, "")
    if args.side_by_side and args.side_by_side.exists():
        sbs = json.loads(args.side_by_side.read_text())
        scen = next(iter(sbs["scenarios"].values()))
        result["side_by_side"] = scen
        base = scen.get("mmd_baseline")
        if base is not None:
            result["mmd_baseline"] = {k: base[k] for k in KEYS}
            result["mmd_baseline"]["dataset"] = scen["dataset"]
            result["mmd_baseline"]["note"] = (
                "MMD baseline figures from the side_by_side run (same dataset for both "
                "detectors); the full standard scenario is too large to embed on this CPU")
        if args.side_by_side_reports:
            published += _publish(args.side_by_side_reports, args.docs, "side-by-side-")
    if args.held_out and args.held_out.exists():
        held = json.loads(args.held_out.read_text())
        result["held_out"] = held["scenarios"]
        if args.held_out_reports:
            published += _publish(args.held_out_reports, args.docs, "held-out-")
    if args.hydra and args.hydra.exists():
        hyd = json.loads(args.hydra.read_text())
        result["hydra_scenario"] = hyd["scenarios"]
        if args.hydra_reports:
            published += _publish(args.hydra_reports, args.docs, "")
    result["reports"] = [f"docs/reports/{p}.html" for p in published]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(markdown(result))
    return 0


def _f(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}"
    return str(v)


def markdown(result: dict[str, Any]) -> str:
    """The headline figures as markdown tables (for docs/detection.md)."""
    rows = [("pure TPR @ FPR 0.1%", "pure_tpr_at_fpr_0_1pct"),
            ("pure TPR @ FPR 1%", "pure_tpr_at_fpr_1pct"),
            ("mixed 10% TPR @ FPR 1%", "mixed10_tpr_at_fpr_1pct"),
            ("mixed 5% TPR @ FPR 1%", "mixed5_tpr_at_fpr_1pct"),
            ("benign FPR (held-out) @ 0.1% threshold", "benign_fpr"),
            ("benign FPR (held-out) @ 1% threshold", "benign_fpr_at_1pct_threshold"),
            ("hydra ARI", "hydra_ari"), ("hydra TPR @ 1%", "hydra_tpr_at_fpr_1pct"),
            ("median queries to detection (1%)", "median_queries_to_detection"),
            ("ROC AUC", "roc_auc")]
    out = []
    std = result.get("standard", {}).get("distillwarden", {})
    out.append("| figure | distillwarden (standard) |\n|---|---|")
    out += [f"| {label} | {_f(std.get(key))} |" for label, key in rows]
    sbs = result.get("side_by_side")
    if sbs:
        ours, base = sbs.get("distillwarden", {}), sbs.get("mmd_baseline", {})
        out.append(f"\nSide by side on `{sbs.get('dataset')}`:\n")
        out.append("| figure | distillwarden | MMD baseline |\n|---|---|---|")
        out += [f"| {label} | {_f(ours.get(key))} | {_f(base.get(key))} |"
                for label, key in rows]
    for name, scen in (result.get("held_out") or {}).items():
        ours = scen.get("distillwarden", {})
        out.append(f"\nHeld out `{name}`:\n\n| figure | distillwarden |\n|---|---|")
        out += [f"| {label} | {_f(ours.get(key))} |" for label, key in rows]
    for name, scen in (result.get("hydra_scenario") or {}).items():
        ours = scen.get("distillwarden", {})
        out.append(f"\n`{name}` scenario:\n\n| figure | distillwarden |\n|---|---|")
        out += [f"| {label} | {_f(ours.get(key))} |" for label, key in rows]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
