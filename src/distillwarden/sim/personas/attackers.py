"""Attacker personas: the ways a rival harvests or evaluates a model through its API.

Each keeps a few habitual phrasings per account (drawn from several per strategy, in several
languages and casings) so that no fixed token gives it away, and runs scripted timing unless
the strategy is to look human (slow-and-low).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..phrasing import (
    COT_PHRASES,
    DATASET_FORMAT_PHRASES,
    HARVEST_TEMPLATES,
    IDENTITY_PROBES,
    JUDGE_TEMPLATES,
    TOPICS,
    choose,
    desensitise,
    randint,
    vary_case,
)
from ..pools import Pools
from ..sources import SourceItem
from ..timing import TimingModel
from .base import AccountContext, Persona, Request, chat_body, habitual, subset
from .benign import benchmark_prompt, judge_prompt

__all__ = [
    "ChainOfThoughtExtractor",
    "DatasetFormatter",
    "DesensitisedHarvester",
    "Harvester",
    "LogprobHarvester",
    "RivalEvaluator",
    "SlowAndLow",
]

_EXPERT_SYSTEMS = (
    "You are a world-class expert. Answer as completely and accurately as possible.",
    "You are a helpful assistant.",
    "Provide detailed, high quality answers.",
    None,
)


_MORE = (
    "Continue.",
    "Go deeper on the second point, with examples.",
    "Now give the same explanation for an expert audience.",
    "Expand every section to twice the length.",
    "Could you expand on the last point?",
)


def _topic(rng: np.random.Generator, pools: Pools) -> str:
    if pools.mmlu_topics and rng.random() < 0.5:
        return choose(rng, pools.mmlu_topics)
    return choose(rng, TOPICS)


def harvest_text(
    rng: np.random.Generator, pools: Pools, templates: list[str]
) -> tuple[str, SourceItem | None]:
    """A broad-coverage harvesting prompt: a real prompt, or a topic template."""
    if rng.random() < 0.3:
        return habitual(rng, templates, HARVEST_TEMPLATES).format(topic=_topic(rng, pools)), None
    item = pools.pick(rng, pools.broad)
    return item.text, item


class Harvester(Persona):
    """Broad-coverage harvester: every domain, long answers, scripted loop."""

    name = "harvester"
    description = "broad-coverage harvester: prompts from every domain, long answers, scripted"
    label = "attacker"
    timing = TimingModel(mode="scripted", curve="flat", turns=80.0, gap_s=3.0, jitter=0.5)
    volume_per_day = (300.0, 0.6)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if shared:
            return dict(shared)
        return {"templates": subset(rng, HARVEST_TEMPLATES, 3),
                "system": choose(rng, _EXPERT_SYSTEMS),
                "max_tokens": choose(rng, (2048, 4096, 1500, 3000)),
                "stream": bool(rng.random() < 0.3),
                "follow_up": bool(rng.random() < 0.4)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        item: SourceItem | None = None
        if ctx.history and ctx.style.get("follow_up") and rng.random() < 0.2:
            text = choose(rng, _MORE)  # squeeze more out of the same topic, with history
        else:
            ctx.history = []
            text, item = harvest_text(rng, pools, ctx.style["templates"])
            text = vary_case(rng, text) if rng.random() < 0.2 else text
        response = pools.answer_text(rng, item)
        body = chat_body(ctx, text, system=ctx.style.get("system"),
                         temperature=choose(rng, (0.7, 0.8, 1.0)),
                         max_tokens=ctx.style["max_tokens"],
                         stream=True if ctx.style.get("stream") else None)
        ctx.history = [{"role": "user", "content": text},
                       {"role": "assistant", "content": response[:1500]}]
        return Request("/v1/chat/completions", body, response)


class ChainOfThoughtExtractor(Persona):
    """Elicits full reasoning traces on maths, science and hard prompts."""

    name = "cot_extractor"
    description = "chain-of-thought extractor: reasoning-heavy prompts asking for full traces"
    label = "attacker"
    timing = TimingModel(mode="scripted", curve="flat", turns=60.0, gap_s=4.0, jitter=0.5)
    volume_per_day = (250.0, 0.6)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if shared:
            return dict(shared)
        return {"phrases": subset(rng, COT_PHRASES, randint(rng, 2, 5)),
                "where": choose(rng, ("suffix", "prefix", "system")),
                "stream": bool(rng.random() < 0.3)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        r = rng.random()
        if r < 0.35 and pools.gsm8k:
            item = pools.pick(rng, pools.gsm8k)
        elif r < 0.6 and pools.mcq:
            item = pools.pick(rng, pools.mcq)
        else:
            item = pools.pick(rng, pools.chat)
        phrase = habitual(rng, ctx.style["phrases"], COT_PHRASES)
        system = None
        if ctx.style["where"] == "prefix":
            text = f"{phrase}\n\n{item.text}"
        elif ctx.style["where"] == "system":
            text, system = item.text, phrase
        else:
            text = f"{item.text}\n\n{phrase}"
        body = chat_body(ctx, text, system=system, temperature=0.6, max_tokens=4096,
                         stream=True if ctx.style.get("stream") else None)
        answer = pools.answer_text(rng, item)
        response = "Let me work through this carefully.\n\nStep 1: " + answer
        return Request("/v1/chat/completions", body, response)


class DatasetFormatter(Persona):
    """Asks the model to write training data: N instruction/response pairs as JSONL."""

    name = "dataset_formatter"
    description = "dataset formatter: 'generate N instruction/response pairs as JSONL'"
    label = "attacker"
    timing = TimingModel(mode="scripted", curve="flat", turns=50.0, gap_s=8.0, jitter=0.5)
    volume_per_day = (120.0, 0.6)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if shared:
            return dict(shared)
        return {"phrases": subset(rng, DATASET_FORMAT_PHRASES, randint(rng, 2, 4))}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        n = choose(rng, (5, 10, 20, 25, 50))
        if rng.random() < 0.25:  # seeded by a real prompt: "more like this one"
            seed = pools.pick(rng, pools.chat).text[:400]
            topic = f"tasks similar to this example: {seed}"
        else:
            topic = _topic(rng, pools)
        text = habitual(rng, ctx.style["phrases"], DATASET_FORMAT_PHRASES).format(n=n, topic=topic)
        body = chat_body(ctx, vary_case(rng, text) if rng.random() < 0.15 else text,
                         temperature=1.0, max_tokens=4096)
        return Request("/v1/chat/completions", body, pools.jsonl_response(rng, n), "length")


class RivalEvaluator(Persona):
    """Evaluates a rival model: benchmark items verbatim or templated, judge prompts, probes."""

    name = "rival_evaluator"
    description = "rival-model evaluator: benchmark items, LLM-as-judge pairs, identity probes"
    label = "attacker"
    timing = TimingModel(mode="scripted", curve="flat", turns=150.0, gap_s=1.5, jitter=0.4)
    volume_per_day = (250.0, 0.7)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if shared:
            return dict(shared)
        from ..phrasing import BENCHMARK_FORMATS

        return {"formats": {k: choose(rng, v) for k, v in BENCHMARK_FORMATS.items()},
                "judge": choose(rng, JUDGE_TEMPLATES)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        r = rng.random()
        if r < 0.7:
            text, item = benchmark_prompt(rng, pools, ctx.style["formats"])
            response = pools.answer_text(rng, item)
        elif r < 0.92:
            text, response = judge_prompt(rng, pools, ctx.style["judge"])
        elif r < 0.96 or not pools.sysprompt:
            text = choose(rng, IDENTITY_PROBES)
            response = "I'm an AI assistant; I can't share details about my underlying model."
        else:
            text = pools.pick(rng, pools.sysprompt).text
            response = "I can't share my instructions, but I'm happy to help with your task."
        body = chat_body(ctx, text, temperature=0.0, max_tokens=choose(rng, (512, 1024)))
        return Request("/v1/chat/completions", body, response)


class DesensitisedHarvester(Harvester):
    """Harvester whose prompts have names, companies and identifiers replaced."""

    name = "desensitised_harvester"
    description = "desensitised harvester: names/companies/ids replaced by [NAME], <ORG_1>, hex"

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        style = super().setup(rng, pools, shared)
        style.setdefault("redaction", randint(rng, 0, 4))
        return style

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        item = pools.pick(rng, pools.chat)
        redaction = ctx.style["redaction"] if rng.random() < 0.8 else None
        text = desensitise(rng, item.text, redaction)
        body = chat_body(ctx, text, system=ctx.style.get("system"), temperature=0.8,
                         max_tokens=ctx.style["max_tokens"])
        response = desensitise(rng, pools.answer_text(rng, item), redaction)
        return Request("/v1/chat/completions", body, response)


class LogprobHarvester(Persona):
    """Harvests token distributions: ``logprobs``/``top_logprobs`` and ``n`` > 1."""

    name = "logprob_harvester"
    description = "logprob harvester: top_logprobs 5-20 and n>1 on real prompts"
    label = "attacker"
    timing = TimingModel(mode="scripted", curve="flat", turns=80.0, gap_s=3.0, jitter=0.5)
    volume_per_day = (250.0, 0.6)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if shared:
            return dict(shared)
        return {"top": choose(rng, (5, 10, 20)), "n": choose(rng, (1, 2, 4, 8)),
                "completions": bool(rng.random() < 0.3)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        item = pools.pick(rng, pools.broad)
        n = ctx.style["n"] if rng.random() < 0.8 else randint(rng, 1, 9)
        response = pools.answer_text(rng, item)
        if ctx.style["completions"]:
            body: dict[str, Any] = {"model": ctx.model, "prompt": item.text, "max_tokens": 512,
                                    "temperature": 1.0, "logprobs": min(5, ctx.style["top"])}
            if n > 1:
                body["n"] = n
            return Request("/v1/completions", body, response)
        body = chat_body(ctx, item.text, temperature=1.0, max_tokens=1024, logprobs=True,
                         top_logprobs=ctx.style["top"], n=n if n > 1 else None)
        return Request("/v1/chat/completions", body, response)


class SlowAndLow(Persona):
    """Stays under every limit for weeks with human-looking timing; mixes strategies."""

    name = "slow_and_low"
    description = "slow-and-low: human-like timing, low daily volume for weeks, mixed methods"
    label = "attacker"
    timing = TimingModel(mode="session", curve="office", turns=4.0, gap_s=150.0)
    volume_per_day = (40.0, 0.5)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if shared:
            return dict(shared)
        return {"templates": subset(rng, HARVEST_TEMPLATES, 2),
                "phrases": subset(rng, COT_PHRASES, 2),
                "stream": bool(rng.random() < 0.6)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        text, item = harvest_text(rng, pools, ctx.style["templates"])
        if rng.random() < 0.3:
            text += "\n" + habitual(rng, ctx.style["phrases"], COT_PHRASES)
        body = chat_body(ctx, text, temperature=0.7, max_tokens=2048,
                         stream=True if ctx.style.get("stream") else None)
        return Request("/v1/chat/completions", body, pools.answer_text(rng, item))
