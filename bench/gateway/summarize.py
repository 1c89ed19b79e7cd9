"""Combine one LiteLLM pass and one distillwarden pass of the shared gateway harness into
bench/results/gateway.json (headline figures, every measured point, versions).

Headline figures are conservative: CPU per request is the worst (highest) of the measured
concurrencies; RSS is the peak over the whole distillwarden pass of the gateway's process tree
as the harness sampled it (the serving process, plus a spool-conversion child when one was
alive as a point started; ``rss_mb_serving_process`` counts only points where it was alone).

The gateway converts event spools to Parquet in short-lived child processes the harness does
not follow; their CPU time and peak RSS come from the gateway's ``/metrics`` (``--metrics``,
the last scrape of the run) and are added as ``conversion_cpu_ms_per_event`` and
``cpu_ms_per_request_incl_conversion``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _rows(folder: Path) -> list[dict[str, Any]]:
    path = folder / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _pick(rows: list[dict[str, Any]], target: str, mode: str, c: int) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r.get("target") == target
        and r.get("mode") == mode
        and int(r.get("concurrency", 0)) == c
        and r.get("tool") == "loadgen.py"
    ]


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _point_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.get("tool") != "loadgen.py":
            continue
        out.append(
            {
                k: r.get(k)
                for k in (
                    "target",
                    "name",
                    "mode",
                    "concurrency",
                    "rep",
                    "rps",
                    "p50_ms",
                    "p99_ms",
                    "ttfb_p50_ms",
                    "ok",
                    "errors",
                    "gateway_cpu_ms_per_req",
                    "gateway_cpu_pct",
                    "gateway_rss_peak_mb",
                    "gateway_nprocs",
                    "upstream_cpu_ms_per_req",
                    "machine_cpu_busy_pct",
                )
            }
        )
    return out


def _count_events(events_dir: Path) -> int | None:
    """Events the distillwarden pass logged (recovering a spool left by the stop)."""
    try:
        from distillwarden.events.reader import read_events
        from distillwarden.events.writer import EventWriter
    except ImportError:
        return None
    if not events_dir.exists():
        return 0
    EventWriter(events_dir).start().close()
    return read_events(events_dir, columns=["event_id"]).num_rows


def _metrics(path: Path | None) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text scrape (name -> value)."""
    if path is None or not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def _versions(folder: Path) -> str:
    path = folder / "versions.txt"
    return path.read_text() if path.exists() else ""


def _markdown(r: dict[str, Any]) -> str:
    """The headline table (distillwarden vs LiteLLM, same run, same pinned core)."""
    bc, lit = r["by_concurrency"], r["litellm"]

    def worst(d: dict[int, float | None]) -> str:
        vals = [v for v in d.values() if v is not None]
        return f"{max(vals):.2f} ms" if vals else "-"

    def num(v: float | None, unit: str = "", nd: int = 2) -> str:
        return "-" if v is None else f"{v:.{nd}f}{unit}"

    dw64 = bc["distillwarden_rps_nostream"].get(64)
    rows = [
        ("CPU per request, non-streaming (worst of c=1/16/64)",
         worst(bc["distillwarden_cpu_ms_per_request"]), worst(bc["litellm_cpu_ms_per_request"]),
         "≤ 1 ms"),
        ("CPU per 22-event stream (worst of c=1/16/64)",
         worst(bc["distillwarden_cpu_ms_per_stream"]), worst(bc["litellm_cpu_ms_per_stream"]),
         "≤ 2 ms"),
        ("added p50 latency, 1 client", num(r["added_p50_ms"], " ms"),
         num(lit["added_p50_ms"], " ms"), "≤ 1 ms"),
        ("requests/s at 64 clients, non-streaming", num(dw64, "", 0), num(lit["rps_c64"], "", 0),
         "≥ 20× LiteLLM"),
        ("ratio vs LiteLLM at 64 clients (non-streaming / streaming)",
         f"{num(r['rps_ratio_vs_litellm_c64'], '×', 1)} / "
         f"{num(r['rps_ratio_vs_litellm_c64_stream'], '×', 1)}", "1×", "≥ 20×"),
        ("CPU per request / stream incl. Parquet conversion (child process)",
         f"{num(r['cpu_ms_per_request_incl_conversion'], ' ms')} / "
         f"{num(r['cpu_ms_per_stream_incl_conversion'], ' ms')}", "-", "≤ 1 ms / ≤ 2 ms"),
        ("RSS peak, serving process", num(r["rss_mb_serving_process"], " MB", 0),
         num(lit["rss_mb"], " MB", 0), "≤ 150 MB"),
        ("RSS peak, process tree as sampled (with a conversion child when one ran)",
         num(r["rss_mb"], " MB", 0), num(lit["rss_mb"], " MB", 0), "-"),
        ("RSS peak, spool-conversion child (short-lived)",
         num(r["conversion_child_rss_peak_mb"], " MB", 0), "-", "≤ 150 MB"),
        ("errors", str(r["errors"]), str(lit["errors"]), "0"),
    ]
    out = ["| | distillwarden | LiteLLM proxy | target |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--litellm", type=Path, required=True)
    ap.add_argument("--distillwarden", type=Path, required=True)
    ap.add_argument("--events", type=Path, required=True)
    ap.add_argument("--metrics", type=Path, default=None,
                    help="last /metrics scrape of the gateway during the run")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    lit, dw = _rows(a.litellm), _rows(a.distillwarden)
    concs = sorted({int(r["concurrency"]) for r in dw if r.get("target") == "gateway"})

    def cpu(mode: str, rows: list[dict[str, Any]]) -> dict[int, float | None]:
        return {
            c: _median([r.get("gateway_cpu_ms_per_req") for r in _pick(rows, "gateway", mode, c)])
            for c in concs
        }

    def rps(rows: list[dict[str, Any]], target: str, mode: str, c: int) -> float | None:
        return _median([r.get("rps") for r in _pick(rows, target, mode, c)])

    def p50(rows: list[dict[str, Any]], target: str, mode: str, c: int) -> float | None:
        return _median([r.get("p50_ms") for r in _pick(rows, target, mode, c)])

    dw_cpu, dw_cpu_s = cpu("nostream", dw), cpu("stream", dw)
    lit_cpu, lit_cpu_s = cpu("nostream", lit), cpu("stream", lit)
    added = {}
    for name, rows in (("distillwarden", dw), ("litellm", lit)):
        g, d = p50(rows, "gateway", "nostream", 1), p50(rows, "direct", "nostream", 1)
        added[name] = round(g - d, 3) if g is not None and d is not None else None
    dw64, lit64 = rps(dw, "gateway", "nostream", 64), rps(lit, "gateway", "nostream", 64)
    dw64s, lit64s = rps(dw, "gateway", "stream", 64), rps(lit, "gateway", "stream", 64)
    gw_rows = [r for r in dw if r.get("target") == "gateway"]
    errors = sum(int(r.get("errors") or 0) for r in gw_rows)
    measured_ok = sum(int(r.get("ok") or 0) for r in gw_rows)
    rss = max((r.get("gateway_rss_peak_mb") or 0.0) for r in gw_rows) if gw_rows else None
    alone = [r for r in gw_rows if int(r.get("gateway_nprocs") or 1) == 1]
    rss_alone = max((r.get("gateway_rss_peak_mb") or 0.0) for r in alone) if alone else None
    m = _metrics(a.metrics)
    conv_cpu_s = m.get("distillwarden_event_conversion_cpu_seconds")
    conv_events = m.get("distillwarden_events_written")
    conv_ms = (
        round(1000.0 * conv_cpu_s / conv_events, 4) if conv_cpu_s is not None and conv_events
        else None
    )
    conv_rss = m.get("distillwarden_event_conversion_peak_rss_bytes")

    def worst(d: dict[int, float | None]) -> float | None:
        vals = [v for v in d.values() if v is not None]
        return max(vals) if vals else None

    try:
        dw_version = subprocess.run(
            ["distillwarden", "version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        dw_version = "unknown"
    result = {
        "benchmark": "gateway overhead vs LiteLLM proxy (shared harness, one run)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "setup": "fake upstream and gateway pinned to core 1, load generator on core 0; "
        "distillwarden with auth, licence checks, rate limits and event logging on",
        "cpu_ms_per_request": worst(dw_cpu),
        "cpu_ms_per_stream": worst(dw_cpu_s),
        "added_p50_ms": added["distillwarden"],
        "rps_ratio_vs_litellm_c64": round(dw64 / lit64, 2) if dw64 and lit64 else None,
        "rps_ratio_vs_litellm_c64_stream": round(dw64s / lit64s, 2) if dw64s and lit64s else None,
        "rss_mb": rss,
        "rss_mb_serving_process": rss_alone,
        "conversion_cpu_ms_per_event": conv_ms,
        "cpu_ms_per_request_incl_conversion": (
            round(worst(dw_cpu) + conv_ms, 3) if conv_ms is not None and worst(dw_cpu) else None
        ),
        "cpu_ms_per_stream_incl_conversion": (
            round(worst(dw_cpu_s) + conv_ms, 3) if conv_ms is not None and worst(dw_cpu_s)
            else None
        ),
        "conversion_child_rss_peak_mb": round(conv_rss / 2**20, 1) if conv_rss else None,
        "conversion_events_in_scrape": conv_events,
        "errors": errors,
        "events_logged": _count_events(a.events),
        "requests_measured": measured_ok,
        "by_concurrency": {
            "distillwarden_cpu_ms_per_request": dw_cpu,
            "distillwarden_cpu_ms_per_stream": dw_cpu_s,
            "litellm_cpu_ms_per_request": lit_cpu,
            "litellm_cpu_ms_per_stream": lit_cpu_s,
            "distillwarden_rps_nostream": {c: rps(dw, "gateway", "nostream", c) for c in concs},
            "litellm_rps_nostream": {c: rps(lit, "gateway", "nostream", c) for c in concs},
            "direct_rps_nostream": {c: rps(dw, "direct", "nostream", c) for c in concs},
            "distillwarden_rps_stream": {c: rps(dw, "gateway", "stream", c) for c in concs},
            "litellm_rps_stream": {c: rps(lit, "gateway", "stream", c) for c in concs},
        },
        "litellm": {
            "added_p50_ms": added["litellm"],
            "rps_c64": lit64,
            "rss_mb": max(
                ((r.get("gateway_rss_peak_mb") or 0.0) for r in lit if r.get("target") == "gateway"),
                default=None,
            ),
            "errors": sum(int(r.get("errors") or 0) for r in lit if r.get("target") == "gateway"),
        },
        "versions": {
            "distillwarden": dw_version,
            "python": platform.python_version(),
            "harness_distillwarden_pass": _versions(a.distillwarden),
            "harness_litellm_pass": _versions(a.litellm),
        },
        "points": {"distillwarden": _point_table(dw), "litellm": _point_table(lit)},
    }
    result["markdown_table"] = _markdown(result)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in list(result)[3:20]}, indent=2))
    print(result["markdown_table"])


if __name__ == "__main__":
    main()
