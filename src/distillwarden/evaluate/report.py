"""Evaluation reports: JSON and one self-contained HTML page with embedded plots.

The HTML shows every detector side by side (the MMD baseline next to distillwarden's own):
a metrics table, ROC curves, score distributions and detection delay, as base64 PNGs made
with matplotlib, so the page can be mailed or attached to a case without its folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .harness import DetectorResult, EvaluationReport  # noqa: E402

__all__ = ["render_html", "write_report"]


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _roc_plot(results: list[DetectorResult]) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for r in results:
        pts = r.roc_points
        if pts.get("fpr"):
            ax.plot(pts["fpr"], pts["tpr"], label=f"{r.name} (AUC {r.roc_auc:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("false-positive rate (test benign accounts)")
    ax.set_ylabel("true-positive rate (attackers)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC")
    return _png(fig)


def _score_plot(r: DetectorResult) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    groups = {k: np.asarray(v, dtype=float) for k, v in r.scores.items() if v}
    all_vals = np.concatenate(list(groups.values())) if groups else np.zeros(1)
    lo, hi = np.percentile(all_vals, 0.5), np.percentile(all_vals, 99.5)
    bins = np.linspace(lo, hi if hi > lo else lo + 1, 50)
    for name, vals in groups.items():
        ax.hist(np.clip(vals, lo, hi), bins=bins.tolist(), alpha=0.45, density=True, label=name)
    for t in r.thresholds:
        ax.axvline(t.value, ls="--", c="k", lw=0.8)
        ax.text(t.value, ax.get_ylim()[1] * 0.9, f" FPR {t.fpr:g}", fontsize=7)
    ax.set_xlabel("score")
    ax.set_title(f"score distributions: {r.name}")
    ax.legend(fontsize=7)
    return _png(fig)


def _delay_plot(results: list[DetectorResult], fpr_key: str) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for r in results:
        d = r.delay.get(fpr_key)
        if not d:
            continue
        steps = d["steps"]
        curve = d.get("detected_by_step") or []
        if curve:
            ax.step(steps[: len(curve)], curve, where="post", label=r.name)
    ax.set_xscale("log")
    ax.set_xlabel("queries seen")
    ax.set_ylabel("share of attackers detected")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"detection delay at FPR {fpr_key}")
    ax.legend(fontsize=8)
    return _png(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if np.isnan(v):
            return "–"
        return f"{v:.3f}"
    return html.escape(str(v))


def _rows(report: EvaluationReport) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = [("ROC AUC", [_fmt(r.roc_auc) for r in report.results])]
    for f in report.fprs:
        k = f"{f:g}"
        rows += [
            (f"TPR @ FPR {k}", [_fmt(r.tpr.get(k)) for r in report.results]),
            (f"TPR pure attackers @ {k}", [_fmt(r.tpr_pure.get(k)) for r in report.results]),
            (f"TPR hydra members @ {k}", [_fmt(r.tpr_hydra.get(k)) for r in report.results]),
            (f"measured benign FPR @ {k}", [_fmt(r.benign_fpr.get(k)) for r in report.results]),
            (f"balanced accuracy @ {k}",
             [_fmt(r.balanced_accuracy.get(k)) for r in report.results]),
            (f"median queries to detection @ {k}",
             [_fmt((r.delay.get(k) or {}).get("median_queries")) for r in report.results]),
            (f"median hours to detection @ {k}",
             [_fmt((r.delay.get(k) or {}).get("median_hours")) for r in report.results]),
        ]
    strategies = sorted({s for r in report.results for s in r.tpr_by_strategy})
    last = f"{report.fprs[-1]:g}"
    for s in strategies:
        rows.append((f"TPR {s} @ {last}",
                     [_fmt(r.tpr_by_strategy.get(s, {}).get(last)) for r in report.results]))
    fractions = sorted({f for r in report.results for f in r.tpr_by_fraction}, key=float,
                       reverse=True)
    for fr in fractions:
        rows.append((f"TPR mixed at {fr} @ {last}",
                     [_fmt(r.tpr_by_fraction.get(fr, {}).get(last)) for r in report.results]))
    rows.append(("hydra ARI", [_fmt(r.cluster_ari) for r in report.results]))
    for p in sorted({p for r in report.results for p in r.hard_negatives}):
        rows.append((f"hard negative {p} flagged @ {last}", [
            f"{r.hard_negatives.get(p, {}).get(last, '–')}/"
            f"{r.hard_negatives.get(p, {}).get('accounts', '–')}" for r in report.results]))
    rows.append(("native threshold TPR / FPR", [
        f"{_fmt(r.native['tpr'])} / {_fmt(r.native['benign_fpr'])}" if r.native else "–"
        for r in report.results]))
    return rows


def render_html(report: EvaluationReport) -> str:
    """The report as one HTML page (plots embedded)."""
    head = "".join(f"<th>{html.escape(r.name)}</th>" for r in report.results)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>{''.join(f'<td>{c}</td>' for c in cells)}</tr>"
        for label, cells in _rows(report)
    )
    thresholds = "".join(
        f"<li>{html.escape(r.name)}: " + "; ".join(
            f"FPR {t.fpr:g} → threshold {t.value:.4g} from {t.n_calibration} calibration "
            f"accounts ({t.exceeding} above it; quantile backed by {t.backing:g} accounts)"
            for t in r.thresholds) + "</li>"
        for r in report.results
    )
    plots = [f'<img alt="ROC curves" src="data:image/png;base64,{_roc_plot(report.results)}">']
    plots += [f'<img alt="score distribution {html.escape(r.name)}" '
              f'src="data:image/png;base64,{_score_plot(r)}">' for r in report.results]
    plots += [f'<img alt="detection delay" '
              f'src="data:image/png;base64,{_delay_plot(report.results, f"{f:g}")}">'
              for f in report.fprs]
    split = ", ".join(f"{k}: {v}" for k, v in report.split.items())
    groups = ", ".join(f"{k}: {v}" for k, v in report.attackers.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>distillwarden evaluation</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;
text-align:right}}td:first-child{{text-align:left}}th{{background:#f3f3f3}}
img{{margin:0.5em;border:1px solid #eee}}
</style></head><body>
<h1>Detection evaluation</h1>
<p>Dataset <code>{html.escape(report.dataset)}</code>. Accounts: {html.escape(split)}.
Attackers by kind: {html.escape(groups)}. Thresholds are set on the calibration (benign)
accounts only; rates are measured on held-out test accounts.</p>
<table><tr><th>metric</th>{head}</tr>{body}</table>
<h2>Thresholds</h2><ul>{thresholds}</ul>
<h2>Plots</h2>{''.join(plots)}
</body></html>
"""


def write_report(report: EvaluationReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.json`` (with curves) and ``report.html`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html"}
    paths["json"].write_text(json.dumps(report.as_dict(with_curves=True), indent=1))
    paths["html"].write_text(render_html(report), encoding="utf-8")
    return paths
