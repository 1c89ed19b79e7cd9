"""Detection on any labelled log in the interchange format: import, evaluate, report.

The evaluation half of ``foreign_traffic.py`` for a log written by anything else (a recorder
behind another gateway, ``blind_traffic.py``): the directory holds ``traffic.jsonl``,
``labels.jsonl`` and optionally ``accounts.jsonl`` (../shared/formats/traffic-jsonl.md). The
log is imported as ``distillwarden evaluate --traffic`` imports it, the default detector
(no embeddings) is fitted on a hash split of 20% of the benign accounts where the labels
name no split, and the harness's figures are written with the benign false-positive rate of
each product (the labels' ``persona``):

    python bench/detect/blind_traffic.py --out /tmp/dw/blind
    python bench/detect/interchange_eval.py --log /tmp/dw/blind --name blind

writes ``bench/results/detection_blind.json`` and ``docs/reports/blind.html|json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from foreign_traffic import evaluate_log  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", type=Path, required=True,
                    help="directory with traffic.jsonl, labels.jsonl (and accounts.jsonl)")
    ap.add_argument("--name", required=True,
                    help="names the outputs: bench/results/detection_<name>.json and "
                         "docs/reports/<name>.html|json")
    ap.add_argument("--reports", type=Path, default=ROOT / "docs/reports")
    args = ap.parse_args(argv)
    for required in ("traffic.jsonl", "labels.jsonl"):
        if not (args.log / required).exists():
            ap.error(f"{args.log / required} does not exist")
    result = evaluate_log(args.log, label=f"{args.name}-check", reports=args.reports,
                          report_name=args.name, extra={"log": str(args.log)})
    out = ROOT / "bench/results" / f"detection_{args.name}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
