"""Print the README's figures table from bench/results/*.json (run the benchmarks first).

Every number in the README's "Figures" section is printed by this script from the JSON that
a benchmark under bench/ wrote; nothing is typed in by hand.

    python bench/figures.py                   # markdown table on stdout
    python bench/figures.py --update-readme   # rewrite the table between the README markers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _get(d: dict[str, Any], dotted: str) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _fmt(v: Any, spec: str) -> str:
    if v is None:
        return "not measured"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | float):
        return format(v, spec)
    return str(v)


ROWS: list[tuple[str, str, str, str, str]] = [
    # (area, what, results file, key, format)
    ("gateway", "CPU per non-streaming request (ms)", "gateway", "cpu_ms_per_request", ".2f"),
    ("gateway", "CPU per 22-event stream (ms)", "gateway", "cpu_ms_per_stream", ".2f"),
    ("gateway", "added p50 latency, 1 client (ms)", "gateway", "added_p50_ms", ".2f"),
    ("gateway", "rps vs LiteLLM at 64 clients (×)", "gateway", "rps_ratio_vs_litellm_c64", ".1f"),
    ("gateway", "RSS of one process (MB)", "gateway", "rss_mb", ".0f"),
    ("gateway", "errors", "gateway", "errors", "d"),
    ("events", "append, CPU per event (µs)", "events", "append.append_cpu_us_mean", ".1f"),
    ("simulator", "1M events to the event log: wall (s)", "sim", "generate_scale.wall_s", ".0f"),
    ("simulator", "1M events to the event log: CPU (s)", "sim", "generate_scale.cpu_s", ".0f"),
    ("detection", "pure attackers: TPR at benign FPR 0.1%", "detection",
     "pure_tpr_at_fpr_0_1pct", ".3f"),
    ("detection", "mixed 10%: TPR at FPR 1%", "detection", "mixed10_tpr_at_fpr_1pct", ".3f"),
    ("detection", "mixed 5%: TPR at FPR 1%", "detection", "mixed5_tpr_at_fpr_1pct", ".3f"),
    ("detection", "benign FPR (test accounts)", "detection", "benign_fpr", ".4f"),
    ("detection", "hydra clusters: adjusted Rand index", "detection", "hydra_ari", ".3f"),
    ("detection", "median queries to detection", "detection", "median_queries_to_detection",
     ".0f"),
    ("MMD baseline", "pure attackers: TPR at benign FPR 0.1%", "detection",
     "mmd_baseline.pure_tpr_at_fpr_0_1pct", ".3f"),
    ("MMD baseline", "mixed 10%: TPR at FPR 1%", "detection",
     "mmd_baseline.mixed10_tpr_at_fpr_1pct", ".3f"),
    ("MMD baseline", "mixed 5%: TPR at FPR 1%", "detection",
     "mmd_baseline.mixed5_tpr_at_fpr_1pct", ".3f"),
    ("MMD baseline", "benign FPR", "detection", "mmd_baseline.benign_fpr", ".4f"),
    ("detection speed", "events/s, no embeddings", "detection_speed",
     "events_per_s_no_embeddings", ",.0f"),
    ("detection speed", "events/hour with sampled embeddings (`standard` at its own size)",
     "detection_speed", "events_per_hour_full", ",.0f"),
    ("detection speed", "events/hour with embeddings, small log (worst case)",
     "detection_speed", "events_per_hour_full_small_log", ",.0f"),
    ("detection latency", "logged → finding, `detect --follow`, median (s)",
     "detection_latency", "spools_and_segments.median_s", ".1f"),
    ("detection latency", "logged → finding, segments only, median (s)", "detection_latency",
     "segments_only.median_s", ".1f"),
    ("embeddings", "MiniLM texts/s, bf16 autocast ÷ fp32", "embedding_precision",
     "bf16_speedup", ".2f"),
    ("detection speed", "peak RSS (MB)", "detection_speed", "peak_rss_mb", ".0f"),
    ("watermark", "attribution among 10k keys from 400 tokens (synthetic LM)", "watermark",
     "attribution_acc_400_tokens_10k_keys", ".3f"),
    ("watermark", "attribution among 10k keys from 400 tokens (SmolLM2-135M)", "watermark",
     "real_model_attribution_acc_400_tokens_10k_keys", ".3f"),
    ("watermark", "family-wise FPR (1,000 keys, FWER 1e-3)", "watermark", "family_wise_fpr",
     ".2e"),
    ("watermark", "FPR calibration within 99% interval", "watermark", "fpr_calibration_ok", ""),
    ("watermark", "1 − processor share of generate time (CPU)", "watermark",
     "logits_overhead_ratio", ".3f"),
    ("watermark", "tokens/s with ÷ without processor, interleaved (CPU)", "watermark",
     "logits_overhead_ratio_wall_clock_interleaved", ".3f"),
    ("watermark", "perplexity ratio watermarked ÷ plain", "watermark", "ppl_ratio", ".3f"),
    ("enforcement", "status propagation p90, SQLite poll (s)", "enforce",
     "propagation.sqlite_poll.suspend.p90", ".3f"),
    ("enforcement", "status propagation p90, PostgreSQL+Redis (s)", "enforce",
     "propagation.postgres_redis_push.suspend.p90", ".3f"),
]


def table() -> str:
    """The figures as a markdown table with the file each one comes from."""
    lines = ["| area | figure | value | from |", "|---|---|---|---|"]
    for area, what, name, key, spec in ROWS:
        value = _fmt(_get(_load(name), key), spec)
        lines.append(f"| {area} | {what} | {value} | `bench/results/{name}.json` |")
    return "\n".join(lines)


def update_readme(path: Path) -> None:
    """Replace the table between ``<!-- figures:start -->`` and ``<!-- figures:end -->``."""
    text = path.read_text()
    start, end = "<!-- figures:start -->", "<!-- figures:end -->"
    a, b = text.index(start), text.index(end)
    path.write_text(text[:a] + start + "\n" + table() + "\n" + text[b:])


if __name__ == "__main__":
    if "--update-readme" in sys.argv[1:]:
        update_readme(Path(__file__).resolve().parent.parent / "README.md")
    else:
        sys.stdout.write(table() + "\n")
