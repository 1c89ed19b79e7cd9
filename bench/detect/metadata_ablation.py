"""Detection when traffic carries less than this gateway logs: a generalisation check.

Traffic imported from another gateway (``../shared/formats/traffic-jsonl.md``) may carry
only the required fields: no client IP or user agent, no region, no response (so no
completion tokens), and no accounts file (so no licence, channel, home region or payment
fingerprint). This script takes a simulated dataset, writes copies with those fields
removed, runs the evaluation harness on each with the same split and the default detector
(without embeddings unless ``--embeddings``), and prints the figures side by side:

* ``full``: everything the gateway logs;
* ``no_client``: no client IP or user agent (hashes null);
* ``no_accounts``: everything the traffic itself carries, but no accounts file (no licence,
  channel, sign-up time or payment fingerprint): another gateway's log imported alone;
* ``required_only``: only the interchange format's required fields (time, organization,
  key, endpoint, request, status), no accounts file.

    python bench/detect/metadata_ablation.py --data /tmp/dw --scenario standard
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_eval import _dataset, headline  # noqa: E402

#: event columns each level empties, and whether the level keeps the accounts file
LEVELS: dict[str, tuple[tuple[str, ...], bool]] = {
    "full": ((), True),
    "no_client": (("ip_hash", "ip_net_hash", "ua_hash"), True),
    "no_accounts": (("channel", "licence"), False),
    "required_only": (
        ("ip_hash", "ip_net_hash", "ua_hash", "region", "channel", "licence",
         "prompt_tokens", "completion_tokens", "response_text", "finish_reason", "latency_ms",
         "ttfb_ms"),
        False,
    ),
}


def _strip(src: Path, dst: Path, columns: tuple[str, ...], keep_accounts: bool) -> Path:
    """A copy of dataset ``src`` whose events have ``columns`` set to nulls."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillwarden.events.reader import list_segments

    if (dst / "labels.jsonl").exists():
        return dst
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for seg in list_segments(src / "events"):
        table = pq.read_table(seg)
        for name in columns:
            if name in table.column_names:
                i = table.column_names.index(name)
                table = table.set_column(i, table.schema.field(i),
                                         pa.nulls(table.num_rows, table.schema.field(i).type))
        out = tmp / seg.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, out, compression="zstd")
    shutil.copy(src / "labels.jsonl", tmp / "labels.jsonl")
    if keep_accounts and (src / "accounts.parquet").exists():
        shutil.copy(src / "accounts.parquet", tmp / "accounts.parquet")
    tmp.rename(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scenario", default="standard")
    ap.add_argument("--data", type=Path, default=Path("/tmp/dw"))
    ap.add_argument("--levels", nargs="*", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--embeddings", action="store_true",
                    help="with the embedding signals (MiniLM; slow on a CPU)")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: bench/results/detection_ablation[_embeddings].json")
    args = ap.parse_args(argv)
    if args.out is None:
        suffix = "_embeddings" if args.embeddings else ""
        args.out = ROOT / f"bench/results/detection_ablation{suffix}.json"

    from distillwarden.detect.scoring import DistillationDetector
    from distillwarden.evaluate.harness import evaluate

    src = _dataset(args.scenario, args.data, None)
    result: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "scenario": args.scenario,
        "embeddings": args.embeddings,
        "levels": {},
    }
    for level in args.levels:
        columns, keep_accounts = LEVELS[level]
        path = src if level == "full" else _strip(
            src, args.data / f"{args.scenario}-{level}", columns, keep_accounts)
        t0 = time.perf_counter()
        detector = DistillationDetector(use_embeddings=args.embeddings)
        report = evaluate({"distillwarden": detector},
                          str(path), fprs=(0.001, 0.01),
                          progress=lambda m: print(m, flush=True))
        full = report.as_dict(with_curves=False)
        entry = headline(full["detectors"][0])
        entry["pure_tpr_by_strategy_at_fpr_1pct"] = {
            k: v.get("0.01") for k, v in full["detectors"][0]["tpr_by_strategy"].items()}
        entry["emptied_columns"] = list(columns)
        entry["accounts_file"] = keep_accounts
        entry["wall_seconds"] = round(time.perf_counter() - t0, 1)
        result["levels"][level] = entry
        print(json.dumps({level: entry}, indent=1, default=str), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    keys = ("pure_tpr_at_fpr_0_1pct", "pure_tpr_at_fpr_1pct", "mixed10_tpr_at_fpr_1pct",
            "mixed5_tpr_at_fpr_1pct", "benign_fpr", "hydra_ari", "roc_auc")
    print("| figure | " + " | ".join(result["levels"]) + " |")
    print("|---|" + "---|" * len(result["levels"]))
    for k in keys:
        cells = [result["levels"][lv].get(k) for lv in result["levels"]]
        print(f"| {k} | " + " | ".join("–" if c is None else f"{c:.3f}" for c in cells) + " |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
