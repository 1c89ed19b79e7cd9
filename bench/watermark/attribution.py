"""Attribution among 10,000 account keys on the seeded synthetic LM.

(a) 400 tokens of unedited output, family-wise error 1e-6 (Holm): share attributed to the
    right account and to no other; also at 100-300 tokens and at three entropy levels.
(b) 2,000 tokens with 20% of tokens substituted by random ones; 2,000 tokens of which only
    the first half is ours (the rest unwatermarked text).
(c) Detection throughput in (key, token) scores per second.

Run: python bench/watermark/attribution.py [--texts 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from common import merge_results, wilson  # noqa: E402
from synthetic_lm import SyntheticLM  # noqa: E402

from distillwarden.watermark.config import WatermarkConfig, derive_account_key  # noqa: E402
from distillwarden.watermark.detect import attribute_tokens, tokens_needed  # noqa: E402

MASTER = b"bench-master-secret"
FWER = 1e-6


class Scorer:
    """Runs attribution and accumulates accuracy, wrong attributions and throughput."""

    def __init__(self, keys: dict[str, bytes], cfg: WatermarkConfig) -> None:
        self.keys = keys
        self.cfg = cfg
        self.scores = 0
        self.seconds = 0.0

    def run(self, rows: np.ndarray, truth: list[str]) -> dict[str, Any]:
        correct = wrong = 0
        greens = []
        log10 = []
        for row, acct in zip(rows, truth, strict=True):
            t = time.perf_counter()
            r = attribute_tokens(row, self.keys, self.cfg, alpha=FWER, method="holm", top=2)
            self.seconds += time.perf_counter() - t
            self.scores += r.scored_tokens * len(self.keys)
            top = r.ranked[0]
            ok = top.account == acct and top.attributed and not r.ranked[1].attributed
            correct += ok
            wrong += any(a.attributed and a.account != acct for a in r.ranked)
            greens.append(top.green_tokens / max(1, r.scored_tokens) if top.account == acct else 0)
            log10.append(top.log10_p_holm)
        n = len(truth)
        return {
            "texts": n,
            "accuracy": correct / n,
            "accuracy_wilson_99": list(wilson(correct, n)),
            "wrong_account_attributions": wrong,
            "mean_green_fraction_true_key": float(np.mean(greens)),
            "median_log10_p_holm_top": float(np.median(log10)),
        }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--edited-texts", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cfg = WatermarkConfig()
    t0 = time.time()
    accounts = [f"acct-{i:05d}" for i in range(args.keys)]
    keys = {a: derive_account_key(MASTER, a) for a in accounts}
    scorer = Scorer(keys, cfg)
    lm = SyntheticLM(seed=11)
    out: dict[str, Any] = {
        "source": "seeded synthetic LM (vocab 49,152, 32 candidates/step, temperature mixture "
        f"0.25/1.5, mean entropy {lm.entropy():.2f} nats/token)",
        "config": {"gamma": cfg.gamma, "delta": cfg.delta, "context_width": cfg.context_width},
        "keys": args.keys,
        "fwer": FWER,
        "method": "holm",
    }

    def marked(n: int, length: int, model: SyntheticLM = lm) -> tuple[np.ndarray, list[str]]:
        truth = [accounts[i] for i in rng.integers(0, len(accounts), n)]
        rows = model.generate(n, length, rng, keys=[keys[a] for a in truth], config=cfg)
        return rows, truth

    rows, truth = marked(args.texts, 400)
    out["unedited_400"] = scorer.run(rows, truth)
    print("400 tokens:", out["unedited_400"], f"{time.time() - t0:.0f}s", flush=True)
    out["by_length"] = {}
    for length in (100, 200, 300):
        rows, truth = marked(max(50, args.texts // 5), length)
        out["by_length"][str(length)] = scorer.run(rows, truth)
    out["by_entropy_400"] = {}
    for temps in ((0.5, 2.0), (1.0,)):
        w = (0.5, 0.5) if len(temps) == 2 else (1.0,)
        model = SyntheticLM(temperatures=temps, weights=w, seed=13)
        rows, truth = marked(max(50, args.texts // 5), 400, model)
        out["by_entropy_400"][f"{model.entropy():.2f}_nats"] = scorer.run(rows, truth)
    print("sweeps done", f"{time.time() - t0:.0f}s", flush=True)
    # 20% substitutions at 2,000 tokens
    rows, truth = marked(args.edited_texts, 2000)
    sub = rng.random(rows.shape) < 0.2
    rows = np.where(sub, rng.integers(0, lm.vocab, rows.shape), rows)
    out["substituted_20pct_2000"] = scorer.run(rows, truth)
    print("substituted:", out["substituted_20pct_2000"], f"{time.time() - t0:.0f}s", flush=True)
    # half ours, half not
    ours, truth = marked(args.edited_texts, 1000)
    other = SyntheticLM(seed=99).generate(args.edited_texts, 1000, rng)
    out["half_ours_2000"] = scorer.run(np.concatenate([ours, other], axis=1), truth)
    print("half:", out["half_ours_2000"], f"{time.time() - t0:.0f}s", flush=True)
    out["planning_tokens_needed_10k_keys"] = tokens_needed(cfg, FWER / args.keys)
    out["detection_scores_per_s"] = scorer.scores / scorer.seconds
    out["seconds"] = time.time() - t0
    merge_results(
        "attribution",
        out,
        top={
            "attribution_acc_400_tokens_10k_keys": out["unedited_400"]["accuracy"],
            "attribution_acc_2000_tokens_20pct_substituted": out["substituted_20pct_2000"][
                "accuracy"
            ],
            "attribution_acc_2000_tokens_half_ours": out["half_ours_2000"]["accuracy"],
            "detection_scores_per_s": out["detection_scores_per_s"],
        },
    )
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
