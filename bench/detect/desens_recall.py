"""Recall of the desensitisation feature on requests anonymised by other people, and its
false hits on near misses.

Two sets, each line a request labelled ``desens`` (personal or company data replaced by
masks, tags, pseudonyms or surrogate identifiers, in many styles and languages; some also
say that the data was anonymised) or ``benign`` (no anonymised data, but markdown, code,
templates, password masks, puzzles with "Person A" and the like):

* ``tests/detect/data/desens_dev.jsonl``: written independently of the feature, then used
  to develop it;
* ``bench/detect/data/desens_heldout.jsonl``: written the same way by someone else and never
  used to develop anything: its figures are the ones to quote.

For each set: the share of ``desens`` requests the request feature ``f_desens`` flags
(recall), the share in which at least one placeholder is found, and the share of the
``benign`` requests flagged. And the share of real benign prompts (AlpacaEval and
Arena-Hard) flagged. ``--before REV`` runs the same measure on the code of an earlier
commit, side by side.

    python bench/detect/desens_recall.py --before 9b3c87d
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lexicon_recall import measured, side_by_side_args  # noqa: E402

SETS = {
    "development": ROOT / "tests/detect/data/desens_dev.jsonl",
    "held_out": ROOT / "bench/detect/data/desens_heldout.jsonl",
}


def _flags(texts: list[str]) -> tuple[list[bool], list[int]]:
    """``f_desens`` and the placeholder count of each text, as the detector computes them
    for a request whose prompt is that text."""
    import pyarrow as pa

    from distillwarden.detect.features import request_features

    n = len(texts)
    events = pa.table({
        "event_id": [f"e{i}" for i in range(n)],
        "ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * n, pa.timestamp("us", tz="UTC")),
        "org_id": ["o"] * n,
        "prompt_text": texts,
    })
    feats = request_features(events)
    return (feats.column("f_desens").to_pylist(),
            [int(x) for x in feats.column("placeholders").to_pylist()])


def measure() -> dict[str, Any]:
    """Recall, placeholder detection and benign false-hit rate per set, with the code
    importable now."""
    out: dict[str, Any] = {}
    for name, path in SETS.items():
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        flag, found = _flags([r["text"] for r in rows])
        des = [i for i, r in enumerate(rows) if r["category"] == "desens"]
        ben = [i for i, r in enumerate(rows) if r["category"] == "benign"]
        out[name] = {
            "desens": len(des), "benign": len(ben),
            "recall": round(sum(flag[i] for i in des) / len(des), 3),
            "placeholder_found": round(sum(found[i] > 0 for i in des) / len(des), 3),
            "benign_hit_rate": round(sum(flag[i] for i in ben) / len(ben), 3),
            "missed_styles": sorted({rows[i].get("style", "") for i in des if not flag[i]}),
            "false_hit_styles": sorted({rows[i].get("style", "") for i in ben if flag[i]}),
        }
    from distillwarden.sim.sources import load_source

    prompts = [i.text for src in ("alpaca_eval", "arena_hard") for i in load_source(src)]
    flag, _found = _flags(prompts)
    out["benign_prompts"] = {"prompts": len(prompts),
                             "flag_rate": round(sum(flag) / len(prompts), 4)}
    return out


def main(argv: list[str] | None = None) -> int:
    args = side_by_side_args(__doc__ or "", ROOT / "bench/results/desens_recall.json", argv)
    result = measured(args, measure, Path(__file__))
    if result is None:
        return 0
    now, old = result["now"], result.get("before", {})
    print(f"{'set':12s} {'recall':>14s} {'placeholder':>14s} {'benign hits':>14s}")
    for name in SETS:
        cur, was = now[name], old.get(name)
        cells = [f"{cur[k]:.3f}" + (f" ({was[k]:.3f})" if was else "")
                 for k in ("recall", "placeholder_found", "benign_hit_rate")]
        print(f"{name:12s} " + " ".join(f"{c:>14s}" for c in cells))
    rate = now["benign_prompts"]["flag_rate"]
    was_rate = old.get("benign_prompts", {}).get("flag_rate")
    print(f"AlpacaEval + Arena-Hard prompts ({now['benign_prompts']['prompts']}) flagged: "
          f"{rate:.4f}" + (f" ({was_rate:.4f})" if was_rate is not None else ""))
    if args.before:
        print(f"(in brackets: at {args.before})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
