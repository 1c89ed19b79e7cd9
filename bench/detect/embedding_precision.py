"""Prompt-embedding throughput and agreement: fp32 against bfloat16 autocast, in one run.

Embeds the same simulated prompts (the ``standard`` scenario, the texts detection embeds)
with ``DISTILLWARDEN_EMBED_PRECISION=fp32`` and ``=bf16``, alternating the two arms so that
machine load falls on both alike, and prints texts/s of each, their ratio and the cosine
between each text's two embeddings. bf16 is what ``auto`` picks on a CPU with AMX or
AVX512-BF16 (``machine.native_bf16`` in the output).

    python bench/detect/embedding_precision.py --texts 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_eval import _dataset  # noqa: E402


def _texts(data: Path, events: int, count: int) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillwarden.events.reader import list_segments

    path = _dataset("standard", data, events)  # the log bench_speed.py uses at this size
    table = pa.concat_tables(
        [pq.read_table(s, columns=["last_user_text"]) for s in list_segments(path / "events")]
    )
    texts = [t for t in table.column("last_user_text").to_pylist() if t]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(texts), size=min(count, len(texts)), replace=False)
    return [texts[i] for i in pick]


def _embed(texts: list[str], precision: str) -> tuple[np.ndarray, float]:
    from distillwarden.embeddings import embed_texts

    os.environ["DISTILLWARDEN_EMBED_PRECISION"] = precision
    t0 = time.perf_counter()
    vecs = embed_texts(texts)
    return vecs, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--events", type=int, default=5000, help="size of the simulated log")
    ap.add_argument("--data", type=Path, default=Path("/tmp/distillwarden-bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/embedding_precision.json")
    args = ap.parse_args(argv)

    from distillwarden.embeddings import _cpu_has_native_bf16, get_encoder

    texts = _texts(args.data, args.events, args.texts)
    get_encoder()
    for precision in ("fp32", "bf16"):  # warm-up: first calls pay one-off kernel set-up
        _embed(texts[:64], precision)
    seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}
    vecs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for precision in ("fp32", "bf16"):
            v, s = _embed(texts, precision)
            seconds[precision].append(s)
            vecs[precision] = v
    cos = np.sum(vecs["fp32"] * vecs["bf16"], axis=1)
    rate = {k: len(texts) / float(np.median(v)) for k, v in seconds.items()}
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform(), "native_bf16": _cpu_has_native_bf16(),
                    "load_avg_at_start": os.getloadavg()},
        "texts": len(texts),
        "repeats": args.repeats,
        "texts_per_s_fp32": round(rate["fp32"], 1),
        "texts_per_s_bf16": round(rate["bf16"], 1),
        "bf16_speedup": round(rate["bf16"] / rate["fp32"], 2),
        "cosine_fp32_bf16_min": round(float(cos.min()), 6),
        "cosine_fp32_bf16_p01": round(float(np.quantile(cos, 0.01)), 6),
        "cosine_fp32_bf16_mean": round(float(cos.mean()), 6),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
