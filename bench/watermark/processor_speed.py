"""Per-step cost of the logits processor against transformers' ``WatermarkLogitsProcessor``.

Both bias a (batch, 49,152) score matrix at each decoding step; transformers' version draws a
``randperm`` of the vocabulary per row (a per-row Python loop), ours hashes the whole batch
at once with a key per row, then keeps the probability of the 17 special tokens of SmolLM2
(length neutrality, the default; ``--no-length-neutral`` measures the plain bias). Medians of
repeated calls on growing sequences, one torch thread, CPU. Writes the ``processor_speed`` section of bench/results/watermark.json.

Run: python bench/watermark/processor_speed.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch
from transformers.generation.logits_process import WatermarkLogitsProcessor

sys.path.insert(0, os.path.dirname(__file__))

from common import merge_results  # noqa: E402

from distillwarden.watermark.config import WatermarkConfig, derive_account_key  # noqa: E402
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor  # noqa: E402

VOCAB = 49_152


def per_step_ms(proc: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], batch: int) -> float:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (batch, 40), generator=gen)
    scores = torch.randn(batch, VOCAB, generator=gen)
    proc(ids, scores)
    times = []
    for _ in range(60):
        ids = torch.cat([ids, torch.randint(0, VOCAB, (batch, 1), generator=gen)], dim=1)
        t = time.perf_counter()
        proc(ids, scores)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-length-neutral", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    neutral = not args.no_length_neutral
    cfg = WatermarkConfig(
        vocab_size=VOCAB, special_token_ids=tuple(range(17)), length_neutral=neutral
    )
    out: dict[str, dict[str, float]] = {}
    for batch in (1, 8, 32):
        ours = AccountWatermarkLogitsProcessor(
            cfg, [derive_account_key(b"speed", f"a{i}") for i in range(batch)]
        )
        theirs = WatermarkLogitsProcessor(VOCAB, "cpu", greenlist_ratio=0.25, bias=2.0)
        a = per_step_ms(ours, batch)
        b = per_step_ms(theirs, batch)
        out[str(batch)] = {"distillwarden_ms": a, "transformers_ms": b, "speedup": b / a}
        print(batch, out[str(batch)], flush=True)
    merge_results(
        "processor_speed" if neutral else "processor_speed_plain_bias",
        {
            "device": "cpu, 1 torch thread, shared machine",
            "length_neutral": neutral,
            "vocab": VOCAB,
            "per_batch_size": out,
            "note": "transformers' processor uses one key for the whole batch; ours a key per row",
        },
    )


if __name__ == "__main__":
    main()
