"""Wall-clock cost of the watermark on the real local model, interleaved on a quiet machine.

``real_model.py`` measures quality, length and attribution over many outputs and reports
the processor's own share of ``generate`` time; its wall-clock ratio moves with whatever else
the shared machine runs during the 40-minute run. This script measures the wall-clock ratio
directly: the same batch of prompts generated without and with the default (length-neutral)
processor, alternating arms in every repetition so that load drifts hit both alike, one
torch thread, and the ratio of tokens per second (every row's generated token slots over
wall time) per repetition. Writes the ``overhead_interleaved`` section of
bench/results/watermark.json.

Run: python bench/watermark/overhead.py [--prompts 8 --max-new-tokens 200 --reps 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))

from common import merge_results  # noqa: E402
from real_model import MASTER, TimedProcessor, prompts, timed_generate  # noqa: E402

from distillwarden.upstream.model import load_local_model  # noqa: E402
from distillwarden.watermark.config import derive_account_key  # noqa: E402
from distillwarden.watermark.licence import config_for_tokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=8, help="rows of the one batch")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_local_model(device="cpu")
    tok, model = lm.tokenizer, lm.model
    tok.padding_side = "left"
    cfg = config_for_tokenizer(tok)
    chats = [
        tok.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in prompts(args.prompts)
    ]
    enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
    keys = [derive_account_key(MASTER, f"acct-{i:05d}") for i in range(len(chats))]
    gen_kwargs = dict(
        do_sample=True,
        temperature=args.temperature,
        top_p=1.0,
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.max_new_tokens,  # every row runs to the limit: same work per arm
        eos_token_id=list(lm.eos_token_ids),
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else lm.eos_token_ids[0],
    )

    def run(watermark: bool, seed: int) -> tuple[float, float, int]:
        proc = TimedProcessor(cfg, keys, args.temperature) if watermark else None
        torch.manual_seed(seed)
        out, wall = timed_generate(model, enc, gen_kwargs, proc)
        slots = (out.shape[1] - enc.input_ids.shape[1]) * out.shape[0]
        return wall, (proc.seconds if proc else 0.0), slots

    run(False, 0)  # warm-up
    reps = []
    for r in range(args.reps):
        order = (False, True) if r % 2 == 0 else (True, False)
        res = {wm: run(wm, 100 + r) for wm in order}
        (w0, _, s0), (w1, p1, s1) = res[False], res[True]
        reps.append({"plain_tokens_per_s": s0 / w0, "watermarked_tokens_per_s": s1 / w1,
                     "ratio": (s1 / w1) / (s0 / w0), "processor_share": p1 / w1})
        print(reps[-1], flush=True)
    ratios = [x["ratio"] for x in reps]
    result = {
        "model": "SmolLM2-135M-Instruct (CPU, float32)",
        "device": f"cpu, {args.threads} torch thread(s), shared machine, nothing else running",
        "batch": len(chats),
        "new_tokens_per_row": args.max_new_tokens,
        "temperature": args.temperature,
        "length_neutral": cfg.length_neutral,
        "repetitions": reps,
        "median_ratio": statistics.median(ratios),
        "median_processor_share": statistics.median(x["processor_share"] for x in reps),
        "load_avg_at_end": list(os.getloadavg()),
    }
    print(result["median_ratio"], result["median_processor_share"])
    merge_results("overhead_interleaved", result,
                  top={"logits_overhead_ratio_wall_clock_interleaved": result["median_ratio"]})


if __name__ == "__main__":
    main()
