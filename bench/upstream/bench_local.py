"""Local model upstream throughput: tokens/s and time to first token for 1 and 4 concurrent
streaming clients, with and without the account watermark, over real HTTP on loopback.

    python bench/upstream/bench_local.py [--tokens 96] [--repeats 2] [--threads 1 2]

Writes bench/results/local_model.json. Wall-clock figures depend on whatever else runs on
the machine, so the JSON records the load average beside each one, and also tokens per CPU
second of this process (server and clients together): the rate one dedicated core would
reach, which does not depend on the other load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import torch

from distillwarden.upstream.local import create_local_app
from distillwarden.upstream.model import load_local_model
from distillwarden.upstream.server import BackgroundServer

PROMPTS = [
    "Write a detailed essay about the history of lighthouses.",
    "Explain how a steam engine works, step by step.",
    "Describe a walk through a busy market in the morning.",
    "Write a story about a robot who learns to paint.",
]
WATERMARK = {"mode": "generation", "gamma": 0.25, "delta": 2.0, "context_width": 2}


async def one_client(
    client: httpx.AsyncClient, url: str, prompt: str, tokens: int, seed: int, watermark: bool
) -> dict[str, float]:
    headers = {"x-distillwarden-org": f"org_bench_{seed}"}
    if watermark:
        headers["x-distillwarden-watermark"] = json.dumps(WATERMARK)
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0.8,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    first: float | None = None
    completion_tokens = 0
    async with client.stream("POST", url, json=body, headers=headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                completion_tokens = chunk["usage"]["completion_tokens"]
            for c in chunk.get("choices", []):
                if c.get("delta", {}).get("content") and first is None:
                    first = time.perf_counter() - start
    total = time.perf_counter() - start
    return {"ttft_s": first or total, "total_s": total, "tokens": completion_tokens}


async def run_level(
    url: str, clients: int, tokens: int, watermark: bool, rep: int
) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=600) as client:
        cpu0 = time.process_time()
        start = time.perf_counter()
        results = await asyncio.gather(
            *[
                one_client(client, url, PROMPTS[i % len(PROMPTS)], tokens, 100 * rep + i, watermark)
                for i in range(clients)
            ]
        )
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
    total_tokens = sum(r["tokens"] for r in results)
    return {
        "aggregate_tokens_per_s": total_tokens / wall,
        "tokens_per_cpu_s": total_tokens / max(1e-9, cpu),
        "cpu_s": cpu,
        "per_client_tokens_per_s": statistics.mean(
            r["tokens"] / max(1e-9, r["total_s"] - r["ttft_s"]) for r in results
        ),
        "ttft_s_mean": statistics.mean(r["ttft_s"] for r in results),
        "ttft_s_max": max(r["ttft_s"] for r in results),
        "tokens": total_tokens,
        "wall_s": wall,
    }


def step_latency(
    lm: Any, batch_sizes: list[int], steps: int, watermark: bool, threads: int
) -> dict[str, dict[str, float]]:
    """Decoding-step time of the engine at fixed batch sizes (sampling and watermark
    included). The minimum over many steps estimates the speed on an otherwise idle core;
    the median shows what this (shared) machine gave."""
    import threading

    from distillwarden.upstream.engine import FinishEvent, GenerationEngine, SamplingParams
    from distillwarden.upstream.watermarking import Watermarker, WatermarkPlan
    from distillwarden.watermark.licence import config_for_tokenizer

    marker = Watermarker(b"bench-secret", lm.tokenizer)
    strength = {k: v for k, v in WATERMARK.items() if k != "mode"}
    plan = WatermarkPlan("org_bench", config_for_tokenizer(lm.tokenizer, strength))
    out: dict[str, dict[str, float]] = {}
    for batch in batch_sizes:
        engine = GenerationEngine(lm, max_batch=batch, num_threads=threads).start()
        done = threading.Semaphore(0)

        def sink(ev: Any, done: threading.Semaphore = done) -> None:
            if isinstance(ev, FinishEvent):
                done.release()

        for i in range(batch):
            prompt = PROMPTS[i % len(PROMPTS)]
            ids = lm.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            ids = list(ids if isinstance(ids, list) else ids["input_ids"])
            proc = marker.processor(plan) if watermark else None
            engine.submit(
                ids, SamplingParams(max_tokens=steps, temperature=0.8, seed=i), sink, proc
            )
        for _ in range(batch):
            done.acquire()
        engine.close()
        times = [sec for rows, sec in engine.step_seconds if rows == batch]
        if not times:
            continue
        best, median = min(times), statistics.median(times)
        out[f"batch{batch}"] = {
            "steps_measured": len(times),
            "step_s_min": best,
            "step_s_median": median,
            "tokens_per_s_idle_estimate": batch / best,
            "tokens_per_s_median": batch / median,
        }
        print(
            f"step batch={batch} watermark={watermark}: min {best * 1000:.0f} ms "
            f"({batch / best:.1f} tok/s), median {median * 1000:.0f} ms "
            f"({batch / median:.1f} tok/s)",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--out", type=Path, default=Path("bench/results/local_model.json"))
    ap.add_argument(
        "--phase",
        choices=["all", "http", "step"],
        default="all",
        help="http: streaming clients over HTTP; step: engine step latency; results are "
        "merged into --out",
    )
    ap.add_argument("--step-batches", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--steps", type=int, default=48)
    args = ap.parse_args()
    previous: dict[str, Any] = {}
    if args.out.exists():
        previous = json.loads(args.out.read_text())

    t0 = time.perf_counter()
    lm = load_local_model(device="cpu")
    load_s = time.perf_counter() - t0
    torch.set_num_threads(args.threads[0])
    step: dict[str, Any] = previous.get("step_latency", {})
    if args.phase in ("all", "step"):
        step = {
            "threads": args.threads[0],
            "load_avg_1m_at_start": os.getloadavg()[0],
            "plain": step_latency(lm, args.step_batches, args.steps, False, args.threads[0]),
            "watermarked": step_latency(lm, args.step_batches, args.steps, True, args.threads[0]),
        }
    if args.phase == "step":
        previous.update(
            {"step_latency": step, "cpu_count": os.cpu_count(), "torch": torch.__version__}
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(previous, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
    runs: list[dict[str, Any]] = []
    for threads in args.threads:
        app = create_local_app(
            master_secret=b"bench-secret", local_model=lm, max_batch=8, num_threads=threads
        )
        with BackgroundServer(app) as srv:
            url = srv.base_url + "/chat/completions"
            asyncio.run(run_level(url, 1, 8, False, 99))  # warm-up
            for clients in args.clients:
                for watermark in (False, True):
                    reps = []
                    for rep in range(args.repeats):
                        load = os.getloadavg()[0]
                        res = asyncio.run(run_level(url, clients, args.tokens, watermark, rep))
                        res["load_avg_1m"] = load
                        reps.append(res)
                    best = max(reps, key=lambda r: r["tokens_per_cpu_s"])
                    row = {
                        "threads": threads,
                        "clients": clients,
                        "watermark": watermark,
                        "max_tokens": args.tokens,
                        "best": best,
                        "median_aggregate_tokens_per_s": statistics.median(
                            r["aggregate_tokens_per_s"] for r in reps
                        ),
                        "repeats": reps,
                    }
                    runs.append(row)
                    print(
                        f"threads={threads} clients={clients} watermark={watermark}: "
                        f"{best['aggregate_tokens_per_s']:.1f} tok/s aggregate, "
                        f"{best['per_client_tokens_per_s']:.1f} tok/s per client, "
                        f"{best['tokens_per_cpu_s']:.1f} tok/CPU-s, "
                        f"TTFT {best['ttft_s_mean']:.2f} s (load {best['load_avg_1m']:.1f})",
                        flush=True,
                    )

    def pick(threads: int, clients: int, wm: bool) -> dict[str, Any]:
        return next(
            r
            for r in runs
            if r["threads"] == threads and r["clients"] == clients and r["watermark"] == wm
        )

    summary: dict[str, Any] = {}
    for threads in args.threads:
        for clients in args.clients:
            plain, marked = pick(threads, clients, False), pick(threads, clients, True)
            key = f"threads{threads}_clients{clients}"
            summary[key] = {
                "tokens_per_s": plain["best"]["aggregate_tokens_per_s"],
                "tokens_per_s_watermarked": marked["best"]["aggregate_tokens_per_s"],
                "per_client_tokens_per_s": plain["best"]["per_client_tokens_per_s"],
                "ttft_s": plain["best"]["ttft_s_mean"],
                "ttft_s_watermarked": marked["best"]["ttft_s_mean"],
                "tokens_per_cpu_s": plain["best"]["tokens_per_cpu_s"],
                "tokens_per_cpu_s_watermarked": marked["best"]["tokens_per_cpu_s"],
                "watermark_speed_ratio_wall": marked["best"]["aggregate_tokens_per_s"]
                / plain["best"]["aggregate_tokens_per_s"],
                "watermark_speed_ratio_cpu": marked["best"]["tokens_per_cpu_s"]
                / plain["best"]["tokens_per_cpu_s"],
            }
    out = {
        "model": "SmolLM2-135M-Instruct (GGUF Q4_1 dequantised to float32)",
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "load_s": load_s,
        "note": "shared machine: wall-clock tokens/s and TTFT only mean something beside the "
        "load average recorded with them; tokens_per_cpu_s (completion tokens per CPU second "
        "of the benchmark process, server and clients together) is what one dedicated core "
        "gives. 'best' is the repeat with the most tokens per CPU second; tokens/s counts "
        "completion tokens over wall time including time to first token.",
        "summary": summary,
        "runs": runs,
        "step_latency": step,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
