"""Our own model as the audit's reference: answers the same probes the suspect gets.

In-process by default (the local model, batched by :class:`GenerationEngine`); any
OpenAI-compatible endpoint serving our model works too (``EndpointSuspect`` fits the same
:class:`~distillwarden.forensics.suspect.Generator` protocol).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["LocalReference"]


class LocalReference:
    """Generates with the local model in this process (no watermark: the reference answers
    are what our model says, not what an account received)."""

    def __init__(self, local_model: Any, *, max_batch: int = 8) -> None:
        self.local_model = local_model
        self.max_batch = max_batch
        self.name = f"{local_model.model_id} (local reference)"

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int,
        temperature: float,
        seed: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """One answer per prompt, in order."""
        from ..upstream.engine import FinishEvent, GenerationEngine, SamplingParams

        engine = GenerationEngine(self.local_model, max_batch=self.max_batch).start()
        results: list[str | None] = [None] * len(prompts)
        done = threading.Event()
        remaining = [len(prompts)]
        lock = threading.Lock()
        errors: list[str] = []

        def sink_for(i: int) -> Callable[[Any], None]:
            def sink(ev: Any) -> None:
                if isinstance(ev, FinishEvent):
                    if ev.finish_reason == "error":
                        errors.append(ev.error or "generation failed")
                    results[i] = ev.text
                    if progress is not None:
                        progress(1)
                    with lock:
                        remaining[0] -= 1
                        if remaining[0] == 0:
                            done.set()

            return sink

        tok = self.local_model.tokenizer
        try:
            if not prompts:
                return []
            for i, prompt in enumerate(prompts):
                ids = tok.apply_chat_template(
                    [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True
                )
                ids = list(ids if isinstance(ids, list) else ids["input_ids"])
                params = SamplingParams(
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=None if seed is None else seed + i,
                )
                engine.submit(ids, params, sink_for(i))
            done.wait()
        finally:
            engine.close()
        if errors:
            raise RuntimeError(f"the reference model failed: {errors[0]}")
        return [r or "" for r in results]
