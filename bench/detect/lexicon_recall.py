"""Recall of the request lexicons on requests worded by other people, and their false hits
on near misses.

Two sets of requests, each line labelled with the kind of request it is (``cot``,
``dataset``, ``judge``, ``identity``, ``agent``) or ``benign`` (an ordinary request that uses
the same words in their everyday senses, with the kind it might be mistaken for):

* ``tests/detect/data/lexicon_dev.jsonl``: two sets written independently of the lexicons,
  then used to develop the word cues (:mod:`distillwarden.detect.cues`);
* ``bench/detect/data/lexicon_heldout.jsonl``: a third set, written the same way and never
  used to develop anything: its figures are the ones to quote.

For each set and kind: the share of its requests the lexicon flags (recall), and the share of
the benign requests it flags. And the share of real benign prompts (AlpacaEval and
Arena-Hard, through the text window as the detector reads them) each lexicon flags. ``--before REV`` runs the same measure on the lexicons of an
earlier commit, side by side.

    python bench/detect/lexicon_recall.py --before aa44489
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETS = {
    "development": ROOT / "tests/detect/data/lexicon_dev.jsonl",
    "held_out": ROOT / "bench/detect/data/lexicon_heldout.jsonl",
}
KINDS = ("cot", "dataset", "judge", "identity", "agent")


def measure() -> dict[str, Any]:
    """Recall and benign false-hit rate per set and kind, with the lexicons importable now."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from distillwarden.detect.lexmatch import match_lexicons

    out: dict[str, Any] = {}
    for name, path in SETS.items():
        rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
        flags = match_lexicons(pc.utf8_lower(pa.array([r["text"] for r in rows])))
        benign = [i for i, r in enumerate(rows) if r["category"] == "benign"]
        per: dict[str, Any] = {}
        for kind in KINDS:
            mine = [i for i, r in enumerate(rows) if r["category"] == kind]
            hit = flags[f"f_{kind}"]
            per[kind] = {
                "requests": len(mine),
                "recall": round(sum(bool(hit[i]) for i in mine) / len(mine), 3),
                "benign_hit_rate": round(sum(bool(hit[i]) for i in benign) / len(benign), 3),
            }
        out[name] = {"requests": len(rows), "benign": len(benign), "kinds": per}
    from distillwarden.detect.window import text_window
    from distillwarden.sim.sources import load_source

    prompts = [i.text for src in ("alpaca_eval", "arena_hard") for i in load_source(src)]
    flags = match_lexicons(text_window(pa.array(prompts)))
    out["benign_prompts"] = {"prompts": len(prompts), "flag_rate": {
        kind: round(float(flags[f"f_{kind}"].mean()), 4) for kind in KINDS}}
    return out


def _before(rev: str, script: Path = Path(__file__)) -> dict[str, Any]:
    """The measure of ``script`` (run with ``--child``) at commit ``rev``: its ``src``
    exported to a temporary folder, run in a child process that imports it first."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "src")}
        done = subprocess.run([sys.executable, str(script), "--child"], check=True, env=env,
                              capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def side_by_side_args(description: str, out: Path, argv: list[str] | None) -> argparse.Namespace:
    """The options of a measure run now and, with ``--before REV``, at an earlier commit."""
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", help="a commit to measure side by side (its code)")
    ap.add_argument("--out", type=Path, default=out)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def measured(args: argparse.Namespace, measure: Callable[[], dict[str, Any]],
             script: Path) -> dict[str, Any] | None:
    """``{"now": measure(), "before": ...}``; None in the ``--child`` process, which prints
    its measure for the parent instead."""
    if args.child:
        print(json.dumps(measure()))
        return None
    result: dict[str, Any] = {"now": measure()}
    if args.before:
        result["before"] = {"commit": args.before, **_before(args.before, script)}
    return result


def main(argv: list[str] | None = None) -> int:
    args = side_by_side_args(__doc__ or "", ROOT / "bench/results/lexicon_recall.json", argv)
    result = measured(args, measure, Path(__file__))
    if result is None:
        return 0
    now = result["now"]
    print(f"{'set':12s} {'kind':9s} {'recall':>14s} {'benign hits':>14s}")
    for name in SETS:
        for kind in KINDS:
            cur = now[name]["kinds"][kind]
            old = result.get("before", {}).get(name, {}).get("kinds", {}).get(kind)
            rec = f"{cur['recall']:.3f}" + (f" ({old['recall']:.3f})" if old else "")
            fal = (f"{cur['benign_hit_rate']:.3f}"
                   + (f" ({old['benign_hit_rate']:.3f})" if old else ""))
            print(f"{name:12s} {kind:9s} {rec:>14s} {fal:>14s}")
    rates = now["benign_prompts"]["flag_rate"]
    old_rates = result.get("before", {}).get("benign_prompts", {}).get("flag_rate", {})
    print(f"AlpacaEval + Arena-Hard prompts ({now['benign_prompts']['prompts']}) flagged: "
          + ", ".join(f"{k} {rates[k]:.4f}" + (f" ({old_rates[k]:.4f})" if old_rates else "")
                      for k in KINDS))
    if args.before:
        print(f"(in brackets: at {args.before})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
