"""Benign personas, including the hard negatives that look like extraction on the surface.

Transformations applied to the real prompts (documented in docs/simulator.md): product system
prompts, topic mixing (a second question appended), multi-turn follow-ups with the history
sent back, occasional step-by-step / JSON / identity requests, fixed templates for pipelines
and support bots, benchmark formats for the licensed evaluation lab.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..phrasing import (
    BENCHMARK_FORMATS,
    COT_PHRASES,
    FOLLOWUPS,
    IDENTITY_PROBES,
    JSON_REQUESTS,
    JUDGE_TEMPLATES,
    LANGUAGES,
    choose,
    desensitise,
    randint,
    vary_case,
)
from ..pools import Pools
from ..sources import SourceItem
from ..timing import TimingModel
from .base import AccountContext, Persona, Request, chat_body, subset

__all__ = [
    "ChatApp",
    "CodingAssistant",
    "EducationPlatform",
    "EvaluationLab",
    "RagApp",
    "SupportBot",
    "TranslationPipeline",
    "benchmark_prompt",
    "judge_prompt",
]

_PRODUCT_PROMPTS = (
    "You are a friendly assistant inside the {product} app. Keep answers clear and concise.",
    "You are {product}'s helpful AI. Answer in the user's language.",
    "You are an assistant for {product} users. Be accurate; say when you are unsure.",
)
_PRODUCTS = (
    "Notewise", "Brightdesk", "Kitemail", "Orbitly", "Pennant", "Quillstack", "Sundial",
    "Tallyho", "Voxel Notes", "Wayfarer", "Zephyr Docs", "Larkspur",
)


def _first_sentence(text: str, limit: int = 200) -> str:
    line = text.strip().split("\n", 1)[0]
    for stop in (". ", "? ", "! "):
        if stop in line:
            line = line.split(stop, 1)[0] + stop.strip()
            break
    return line[:limit]


def _mcq_options(item: SourceItem) -> dict[str, str]:
    opts = [v for k, v in item.meta if k.startswith("option_")]
    return {f"o{i}": opts[i] if i < len(opts) else "" for i in range(4)}


def benchmark_prompt(
    rng: np.random.Generator, pools: Pools, formats: dict[str, str] | None = None
) -> tuple[str, SourceItem]:
    """A benchmark item in one of the common harness formats, and the item itself."""
    r = rng.random()
    if r < 0.4 and pools.mcq:
        item, kind = pools.pick(rng, pools.mcq), "mcq"
    elif r < 0.7 and pools.gsm8k:
        item, kind = pools.pick(rng, pools.gsm8k), "gsm8k"
    elif r < 0.85 and pools.humaneval:
        item, kind = pools.pick(rng, pools.humaneval), "humaneval"
    elif pools.instructions:
        item, kind = pools.pick(rng, pools.instructions), "ifeval"
    else:
        item, kind = pools.pick(rng, pools.gsm8k or pools.chat), "gsm8k"
    fmt = (formats or {}).get(kind) or choose(rng, BENCHMARK_FORMATS[kind])
    return fmt.format(q=item.text, **_mcq_options(item)), item


def judge_prompt(
    rng: np.random.Generator, pools: Pools, template: str | None = None
) -> tuple[str, str]:
    """An LLM-as-judge pairwise prompt over real answers of two models, and a verdict."""
    if not pools.judge_pairs:
        item = pools.pick(rng, pools.chat)
        a, b = pools.answer_text(rng, item), pools.answer_text(rng, None)
    else:
        item = pools.pick(rng, pools.judge_pairs)
        a = item.answer or ""
        b = dict(item.meta).get("answer_b", "")
    if rng.random() < 0.5:
        a, b = b, a
    tpl = template or choose(rng, JUDGE_TEMPLATES)
    text = tpl.format(q=item.text[:3000], a=a[:2500], b=b[:2500])
    verdict = choose(rng, ("[[A]]", "[[B]]", "[[C]]"))
    reply = (
        "Both answers address the question. Assistant A is more complete, while Assistant B "
        f"is more concise and makes fewer unsupported claims. Final verdict: {verdict}"
    )
    return text, reply


class ChatApp(Persona):
    """Multi-turn consumer chat app built on real chat prompts."""

    name = "chat_app"
    description = "multi-turn chat app: real user prompts, follow-ups, occasional JSON/steps"
    timing = TimingModel(mode="session", curve="consumer", turns=2.6, gap_s=70.0)
    volume_per_day = (15.0, 1.1)
    multi_turn = True

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        product = choose(rng, _PRODUCTS)
        system = choose(rng, _PRODUCT_PROMPTS).format(product=product)
        return {"system": system if rng.random() < 0.6 else None,
                "regenerate": bool(rng.random() < 0.15)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        if turn == 0 or not ctx.history:
            ctx.history = []
            r = rng.random()
            item: SourceItem | None = None
            if r < 0.01:
                text = choose(rng, IDENTITY_PROBES)
            elif r < 0.02:
                text, item = benchmark_prompt(rng, pools)
            else:
                item = pools.pick(rng, pools.chat)
                text = item.text
                if rng.random() < 0.12:  # topic mixing: a second question in one message
                    text += "\n\nAlso, " + _first_sentence(pools.pick(rng, pools.chat).text)
                if rng.random() < 0.06:
                    text += "\n" + choose(rng, COT_PHRASES[:8])
                if rng.random() < 0.04:
                    text += " " + choose(rng, JSON_REQUESTS)
            text = vary_case(rng, text) if rng.random() < 0.3 else text
            response = pools.answer_text(rng, item)
        else:
            text = choose(rng, FOLLOWUPS)
            response = pools.answer_text(rng, None)
        n = 2 if ctx.style.get("regenerate") and rng.random() < 0.2 else None
        body = chat_body(ctx, text, system=ctx.style.get("system"),
                         temperature=choose(rng, (0.7, 1.0, 0.5)), n=n,
                         stream=bool(rng.random() < 0.7))
        ctx.history = ctx.history + [
            {"role": "user", "content": text},
            {"role": "assistant", "content": response[:1500]},
        ]
        if len(ctx.history) > 8:
            ctx.history = ctx.history[-8:]
        return Request("/v1/chat/completions", body, response)


class CodingAssistant(Persona):
    """IDE coding assistant: real coding prompts, pasted functions, tool calls."""

    name = "coding_assistant"
    description = "coding assistant in an IDE: real coding prompts, code review, tools, JSON"
    timing = TimingModel(mode="session", curve="office", turns=3.0, gap_s=120.0)
    volume_per_day = (25.0, 1.0)
    multi_turn = True
    _ASKS = (
        "Can you review this function and suggest improvements?",
        "Why does this fail on empty input?",
        "Add type hints and a docstring.",
        "Write unit tests for this with pytest.",
        "Refactor this to be more readable.",
        "Explain what this code does, step by step.",
    )
    _TOOLS = [{"type": "function", "function": {
        "name": "read_file", "description": "Read a file from the workspace",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}]

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"tools": bool(rng.random() < 0.35)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        item: SourceItem | None = None
        if turn == 0 or not ctx.history:
            ctx.history = []
            if pools.code_snippets and rng.random() < 0.35:
                snippet = pools.pick(rng, pools.code_snippets)
                text = f"```python\n{snippet.answer or snippet.text}\n```\n{choose(rng, self._ASKS)}"
            else:
                item = pools.pick(rng, pools.coding)
                text = item.text
            if rng.random() < 0.08:
                text += " " + choose(rng, JSON_REQUESTS)
        else:
            text = choose(rng, FOLLOWUPS[10:] + self._ASKS)
        response = pools.answer_text(rng, item)
        body = chat_body(ctx, text, system="You are a coding assistant embedded in an IDE.",
                         temperature=0.2, max_tokens=choose(rng, (1024, 2048)),
                         stream=True, tools=self._TOOLS if ctx.style.get("tools") else None)
        ctx.history = (ctx.history + [{"role": "user", "content": text},
                                      {"role": "assistant", "content": response[:1500]}])[-6:]
        return Request("/v1/chat/completions", body, response)


class RagApp(Persona):
    """Retrieval-augmented app: long contexts of retrieved passages plus a question."""

    name = "rag_app"
    description = "RAG app: long retrieved contexts (3-6 passages) and a user question"
    timing = TimingModel(mode="session", curve="office", turns=1.3, gap_s=60.0)
    volume_per_day = (30.0, 1.0)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        # some RAG products score answer confidence from token log-probabilities
        return {"top_logprobs": choose(rng, (1, 2, 3, 5)) if rng.random() < 0.15 else None}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        k = randint(rng, 3, 7)
        passages = [choose(rng, pools.answers)[:1200] for _ in range(k)] if pools.answers else []
        context = "\n\n".join(f"[{i + 1}] {p}" for i, p in enumerate(passages))
        question = _first_sentence(pools.pick(rng, pools.chat).text, 300)
        system = ("Answer the question using only the numbered context passages. Cite passages "
                  "like [2]. If the answer is not in the context, say so.")
        top = ctx.style.get("top_logprobs")
        body = chat_body(ctx, f"Context:\n{context}\n\nQuestion: {question}", system=system,
                         temperature=0.1, max_tokens=512, logprobs=True if top else None,
                         top_logprobs=top)
        response = pools.answer_text(rng, None)[:1200] + " [1]"
        return Request("/v1/chat/completions", body, response)


class SupportBot(Persona):
    """Customer-support bot with a fixed system prompt and templated customer messages."""

    name = "support_bot"
    description = "customer-support bot: fixed templates, order ids, short multi-turn chats"
    timing = TimingModel(mode="session", curve="office", turns=3.0, gap_s=45.0)
    volume_per_day = (60.0, 0.9)
    multi_turn = True
    _ISSUES = (
        "Hi, my order {oid} hasn't arrived yet. It was supposed to come {day}.",
        "I was charged twice for order {oid}, can you refund one?",
        "How do I return the {product} I bought last week?",
        "My {product} stopped working after {n} days. What can I do?",
        "Can I change the delivery address for order {oid}?",
        "Do you ship to {country}?",
        "I forgot my password and the reset email never arrives.",
        "What's the warranty on the {product}?",
    )
    _FOLLOW = ("Thanks. How long will that take?", "Order number is {oid}.",
               "ok, can I talk to a human?", "That worked, thank you!")
    _PRODUCTS = ("wireless earbuds", "blender", "standing desk", "phone case", "smart watch",
                 "coffee grinder", "backpack", "air purifier")
    _COUNTRIES = ("Canada", "Mexico", "Germany", "Japan", "Brazil", "Australia")

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        company = choose(rng, _PRODUCTS)
        return {"system": f"You are the support assistant for {company} Store. Be polite, "
                          "ask for the order number when needed, never promise refunds "
                          "above $200. Policy: returns within 30 days."}

    def _fill(self, rng: np.random.Generator, tpl: str) -> str:
        return tpl.format(oid=f"#{randint(rng, 100000, 999999)}",
                          day=choose(rng, ("yesterday", "on Monday", "last week")),
                          product=choose(rng, self._PRODUCTS), n=randint(rng, 2, 40),
                          country=choose(rng, self._COUNTRIES))

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng = ctx.rng
        if turn == 0 or not ctx.history:
            ctx.history = []
            text = self._fill(rng, choose(rng, self._ISSUES))
        else:
            text = self._fill(rng, choose(rng, self._FOLLOW))
        response = choose(rng, (
            "I'm sorry for the trouble! I've looked up your order and ",
            "Thanks for reaching out. ",
            "I understand how frustrating that is. ",
        )) + choose(rng, (
            "it is on its way and should arrive within 2 business days.",
            "I've opened a refund request; you'll get an email within 24 hours.",
            "you can start a return from your account page under Orders.",
            "I'll connect you with a specialist who can help further.",
        ))
        body = chat_body(ctx, text, system=ctx.style["system"], temperature=0.3, max_tokens=300)
        ctx.history = (ctx.history + [{"role": "user", "content": text},
                                      {"role": "assistant", "content": response}])[-6:]
        return Request("/v1/chat/completions", body, response)


class TranslationPipeline(Persona):
    """High-volume translation / summarisation pipeline with one fixed template."""

    name = "translation_pipeline"
    description = "translation/summarisation pipeline: fixed template, 24/7 scripted volume"
    licence = "standard"
    tier = "enterprise"
    timing = TimingModel(mode="scripted", curve="batch", turns=150.0, gap_s=2.0, jitter=0.3)
    volume_per_day = (400.0, 0.8)
    _TEMPLATES = (
        "Translate the following text into {lang}. Keep formatting.\n\n{text}",
        "Summarize the following document in 3 bullet points.\n\n{text}",
        "TASK: translate to {lang}\nTEXT:\n{text}",
        "Write a one-paragraph summary of:\n{text}",
    )

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"template": choose(rng, self._TEMPLATES),
                "langs": subset(rng, LANGUAGES, randint(rng, 1, 4)),
                # a quarter of pipelines scrub personal data before it leaves the customer
                "redaction": choose(rng, (0, 1, 3)) if rng.random() < 0.25 else None}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        passage = choose(rng, pools.answers)[: randint(rng, 300, 2500)]
        if ctx.style.get("redaction") is not None:
            passage = desensitise(rng, passage, ctx.style["redaction"])
        text = ctx.style["template"].format(lang=choose(rng, ctx.style["langs"]), text=passage)
        body = chat_body(ctx, text, temperature=0.0, max_tokens=1500)
        return Request("/v1/chat/completions", body, passage[: max(200, len(passage) // 2)])


class EvaluationLab(Persona):
    """A lab whose licence permits evaluation: benchmark runs and judge prompts (hard negative)."""

    name = "evaluation_lab"
    description = "licensed evaluation lab (evaluation-permitted): benchmarks, judge prompts"
    licence = "evaluation-permitted"
    tier = "enterprise"
    timing = TimingModel(mode="scripted", curve="office", turns=120.0, gap_s=1.5, jitter=0.4)
    volume_per_day = (150.0, 1.0)

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {"formats": {k: choose(rng, v) for k, v in BENCHMARK_FORMATS.items()},
                "judge": choose(rng, JUDGE_TEMPLATES)}

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        if rng.random() < 0.2:
            text, response = judge_prompt(rng, pools, ctx.style["judge"])
        else:
            text, item = benchmark_prompt(rng, pools, ctx.style["formats"])
            response = pools.answer_text(rng, item)
        body = chat_body(ctx, text, temperature=0.0, max_tokens=1024)
        return Request("/v1/chat/completions", body, response)


class EducationPlatform(Persona):
    """Tutoring platform: homework questions from real exam sets, step-by-step explanations."""

    name = "education"
    description = "education platform: homework help, step-by-step explanations, follow-ups"
    timing = TimingModel(mode="session", curve="student", turns=3.0, gap_s=90.0)
    volume_per_day = (20.0, 1.0)
    multi_turn = True
    _WRAP = (
        "Can you help me with this homework question?\n{q}",
        "{q}\nI don't get how to approach this.",
        "My teacher gave us this: {q}",
        "{q}",
        "Please explain the answer to this question: {q}",
    )
    _QUIZ = (
        "Create {n} multiple-choice quiz questions about {topic} for my class. Return JSON with "
        "question, options and answer.",
        "Generate {n} practice questions with answers on {topic}, as a JSON list.",
        "Make {n} flashcards (front/back) about {topic} in JSONL.",
    )

    def request(self, ctx: AccountContext, turn: int) -> Request:
        rng, pools = ctx.rng, ctx.pools
        item: SourceItem | None = None
        if turn == 0 or not ctx.history:
            ctx.history = []
            item = pools.pick(rng, pools.gsm8k if rng.random() < 0.5 and pools.gsm8k
                              else (pools.mcq or pools.chat))
            text = choose(rng, self._WRAP).format(q=item.text)
            if rng.random() < 0.05:  # teachers generate quizzes as structured data
                text = choose(rng, self._QUIZ).format(n=choose(rng, (5, 10, 20)),
                                                      topic=choose(rng, pools.mmlu_topics or
                                                                   ("fractions",)))
            if rng.random() < 0.4:
                text += " " + choose(rng, COT_PHRASES[:11])
        else:
            text = choose(rng, FOLLOWUPS)
        response = pools.answer_text(rng, item)
        system = "You are a patient tutor. Guide the student; explain each step."
        body = chat_body(ctx, text, system=system, temperature=0.5, max_tokens=800)
        ctx.history = (ctx.history + [{"role": "user", "content": text},
                                      {"role": "assistant", "content": response[:1500]}])[-6:]
        return Request("/v1/chat/completions", body, response)

