"""GPU check for the generation watermark (run on a machine with CUDA; ~2 minutes).

1. Green lists on the GPU equal numpy's bit for bit (batch × full vocabulary, many keys),
   and the length-neutral step keeps the special tokens' probability (float32 and bfloat16
   logits: the largest change of P(special) is reported).
2. Tokens/s of SmolLM2-135M-Instruct with and without the processor on the GPU (target
   >= 0.99x), batch 16, 256 new tokens, alternating runs, best of three.
3. If vLLM is installed: the adapter inside ``SamplingParams`` generates, and its outputs
   carry the watermark.

Writes the ``gpu`` section of bench/results/watermark.json.
Run: python bench/watermark/gpu_check.py
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))

from common import merge_results  # noqa: E402
from transformers import LogitsProcessorList  # noqa: E402

from distillwarden.upstream.model import load_local_model  # noqa: E402
from distillwarden.watermark.config import derive_account_key  # noqa: E402
from distillwarden.watermark.detect import detect_tokens  # noqa: E402
from distillwarden.watermark.greenlist import (  # noqa: E402  # noqa: E402
    _signed,
    context_hash_np,
    gamma_threshold,
    key_words,
    score_np,
    token_hash_np,
)
from distillwarden.watermark.licence import config_for_tokenizer  # noqa: E402
from distillwarden.watermark.processor import AccountWatermarkLogitsProcessor, GreenListBias  # noqa: E402


def bit_identity(cfg: Any, device: str) -> bool:
    keys = [derive_account_key(b"gpu-check", f"k{i}") for i in range(16)]
    rng = np.random.default_rng(0)
    windows = rng.integers(0, cfg.vocab_size, (16, cfg.context_width))
    bias = GreenListBias(cfg, keys)
    ctx = bias.context_hashes(torch.from_numpy(windows).to(device))
    gpu = bias.green_mask(ctx, cfg.vocab_size).cpu().numpy()
    vocab = np.arange(cfg.vocab_size)
    for i, k in enumerate(keys):
        kc, kt = key_words(k)
        c = context_hash_np(np.uint64(kc), windows[i][None, :])
        want = score_np(c, token_hash_np(np.uint64(kt), vocab)) < np.uint64(
            gamma_threshold(cfg.gamma)
        )
        if not np.array_equal(gpu[i], want) or int(ctx[i].cpu()) != _signed(int(c[0])):
            return False
    return True


def length_neutral_drift(cfg: Any, device: str) -> dict[str, float]:
    """Largest |P'(special) - P(special)| after the processor, per logits dtype."""
    keys = [derive_account_key(b"gpu-check", f"k{i}") for i in range(16)]
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (16, 8), generator=gen).to(device)
    base = (torch.randn(16, cfg.vocab_size, generator=gen) * 3).to(device)
    special = list(cfg.special_token_ids)
    base[:, special[-1] if special else 0] += 6.0  # a likely end of turn
    out: dict[str, float] = {}
    for dtype in (torch.float32, torch.bfloat16):
        scores = base.to(dtype)
        biased = AccountWatermarkLogitsProcessor(cfg, keys)(ids, scores.clone())
        p0 = torch.softmax(scores.float(), -1)[:, special]
        p1 = torch.softmax(biased.float(), -1)[:, special]
        out[str(dtype).replace("torch.", "")] = float((p1 - p0).abs().max())
    return out


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine")
    lm = load_local_model(device="cuda")
    tok, model = lm.tokenizer, lm.model
    tok.padding_side = "left"
    cfg = config_for_tokenizer(tok)
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(0)}
    out["bit_identical_to_numpy"] = bit_identity(cfg, "cuda")
    out["length_neutral_max_special_prob_change"] = length_neutral_drift(cfg, "cuda")
    chats = [
        tok.apply_chat_template(
            [{"role": "user", "content": f"Write a long story about topic number {i}."}],
            add_generation_prompt=True,
            tokenize=False,
        )
        for i in range(16)
    ]
    enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to("cuda")
    keys = [derive_account_key(b"gpu-check", f"acct-{i}") for i in range(16)]
    kw = dict(
        **enc,
        do_sample=True,
        temperature=0.7,
        max_new_tokens=256,
        min_new_tokens=256,
        pad_token_id=lm.eos_token_ids[0],
    )
    times: dict[str, list[float]] = {"plain": [], "watermarked": []}
    last = None
    for _ in range(3):
        for name in ("plain", "watermarked"):
            procs = (
                LogitsProcessorList([AccountWatermarkLogitsProcessor(cfg, keys, 0.7)])
                if name == "watermarked"
                else None
            )
            torch.manual_seed(0)
            torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.no_grad():
                res = model.generate(**kw, logits_processor=procs)
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
            if name == "watermarked":
                last = res
    out["tokens_per_s_plain"] = 16 * 256 / min(times["plain"])
    out["tokens_per_s_watermarked"] = 16 * 256 / min(times["watermarked"])
    out["ratio"] = out["tokens_per_s_watermarked"] / out["tokens_per_s_plain"]
    assert last is not None
    gen = last[:, enc.input_ids.shape[1] :].cpu()
    out["detected"] = sum(
        detect_tokens(gen[i].tolist(), cfg, keys[i]).verdict == "watermarked" for i in range(16)
    )
    try:
        from vllm import LLM

        from distillwarden.watermark.vllm import sampling_params

        llm = LLM(model=str(lm.path), gpu_memory_utilization=0.3)
        sp = sampling_params(cfg, keys[0], temperature=0.7, max_tokens=256)
        text_out = llm.generate([chats[0]], sp)[0].outputs[0]
        out["vllm_detected"] = detect_tokens(list(text_out.token_ids), cfg, keys[0]).verdict
    except ImportError:
        out["vllm_detected"] = "vllm not installed"
    merge_results("gpu", out, top={"logits_overhead_ratio_gpu": out["ratio"]})
    print(out)


if __name__ == "__main__":
    main()
