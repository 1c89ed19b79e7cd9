"""The continuous-batching engine produces what transformers' own ``generate`` produces."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import torch

from distillwarden.upstream.engine import (
    FinishEvent,
    GenerationEngine,
    SamplingParams,
    TokenEvent,
    _safe_prefix,
)

pytestmark = pytest.mark.model


def chat_ids(lm: Any, text: str) -> list[int]:
    ids = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
    )
    return list(ids if isinstance(ids, list) else ids["input_ids"])


class Collector:
    def __init__(self) -> None:
        self.tokens: list[TokenEvent] = []
        self.finish: FinishEvent | None = None
        self.done = threading.Event()
        self.first_at: float | None = None

    def __call__(self, ev: TokenEvent | FinishEvent) -> None:
        if isinstance(ev, FinishEvent):
            self.finish = ev
            self.done.set()
        else:
            if self.first_at is None:
                self.first_at = time.monotonic()
            self.tokens.append(ev)

    @property
    def streamed(self) -> str:
        return "".join(t.text for t in self.tokens)


@pytest.fixture(scope="module")
def engine(local_model: Any) -> Any:
    eng = GenerationEngine(local_model, max_batch=4).start()
    yield eng
    eng.close()


def reference(lm: Any, ids: list[int], n: int) -> list[int]:
    out = lm.model.generate(
        torch.tensor([ids]),
        max_new_tokens=n,
        do_sample=False,
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
    )
    return out[0, len(ids) :].tolist()


def test_staggered_batch_matches_generate(local_model: Any, engine: GenerationEngine) -> None:
    prompts = ["What is the capital of France?", "Name three colours.", "Say hello in Spanish."]
    n = 12
    sinks = []
    for i, text in enumerate(prompts):  # later requests join while earlier ones decode
        sink = Collector()
        engine.submit(
            chat_ids(local_model, text), SamplingParams(max_tokens=n, temperature=0), sink
        )
        sinks.append(sink)
        if i == 0:
            while not sinks[0].tokens:
                time.sleep(0.01)
    for sink in sinks:
        assert sink.done.wait(120)
    for text, sink in zip(prompts, sinks, strict=True):
        ref = reference(local_model, chat_ids(local_model, text), n)
        got = [t.token_id for t in sink.tokens]
        assert got == ref[: len(got)], text
        assert sink.finish is not None
        assert sink.streamed == sink.finish.text
        assert sink.finish.completion_tokens == len(got)
        expected = "stop" if len(got) < n else "length"
        assert sink.finish.finish_reason == expected


def test_stop_string_is_cut_and_never_streamed(local_model: Any, engine: GenerationEngine) -> None:
    sink = Collector()
    params = SamplingParams(max_tokens=60, temperature=0, stop=("4",))
    engine.submit(chat_ids(local_model, "Count from 1 to 10, one number per line."), params, sink)
    assert sink.done.wait(120)
    assert sink.finish is not None and sink.finish.finish_reason == "stop"
    assert "4" not in sink.finish.text and "3" in sink.finish.text
    assert sink.streamed == sink.finish.text


def test_seeded_sampling_is_reproducible(local_model: Any, engine: GenerationEngine) -> None:
    ids = chat_ids(local_model, "Write a sentence about the sea.")
    runs = []
    for seed in (7, 7, 8):
        sink = Collector()
        engine.submit(ids, SamplingParams(max_tokens=8, temperature=1.0, seed=seed), sink)
        assert sink.done.wait(120)
        runs.append([t.token_id for t in sink.tokens])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_logprobs_are_log_probabilities(local_model: Any, engine: GenerationEngine) -> None:
    sink = Collector()
    params = SamplingParams(max_tokens=4, temperature=0, logprobs=True, top_logprobs=3)
    engine.submit(chat_ids(local_model, "Hi"), params, sink)
    assert sink.done.wait(120)
    for ev in sink.tokens:
        assert ev.logprob is not None and ev.logprob <= 0
        assert len(ev.top_logprobs) == 3
        assert ev.top_logprobs[0][0] == ev.token_id  # greedy picks the most likely token
        assert ev.top_logprobs[0][1] == pytest.approx(ev.logprob)


def test_cancelled_request_frees_its_row(local_model: Any, engine: GenerationEngine) -> None:
    sink = Collector()
    handle = engine.submit(
        chat_ids(local_model, "Tell me a long story."), SamplingParams(max_tokens=500), sink
    )
    while not sink.tokens:
        time.sleep(0.01)
    handle.cancel()
    deadline = time.monotonic() + 30
    while engine.active and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engine.active == 0
    assert len(sink.tokens) < 500


def test_prompt_too_long_is_refused(local_model: Any, engine: GenerationEngine) -> None:
    with pytest.raises(ValueError, match="context"):
        engine.submit([1] * engine.max_context, SamplingParams(), Collector())
    with pytest.raises(ValueError, match="empty"):
        engine.submit([], SamplingParams(), Collector())


@pytest.mark.parametrize(
    ("text", "stops", "safe"),
    [
        ("hello wor", ("world",), 6),
        ("hello", ("xyz",), 5),
        ("caf\ufffd", (), 3),
        ("a\n\nUs", ("\n\nUser:",), 1),
    ],
)
def test_safe_prefix_holds_back_partial_stops(text: str, stops: tuple[str, ...], safe: int) -> None:
    assert _safe_prefix(text, stops) == safe
