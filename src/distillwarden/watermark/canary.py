"""Per-account canaries: rare keyed "facts" slipped into a small share of responses.

Each account gets a few invented facts (a made-up name and a four-digit number, e.g. "the
Velkoran index is 4817"), derived from its key. A response carries one with probability
``rate``, decided by a keyed hash of the response id so the choice is reproducible. A model
trained on that account's outputs tends to recall them: asking the suspect model for each
canary's number and counting exact answers gives an exact binomial p-value (a guess is right
with probability 1/9000).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .stats import LN10, binom_log_sf

__all__ = ["Canary", "CanaryRecall", "CanarySet"]

_LABEL = b"distillwarden/watermark/canary/v1"
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "kr", "dr")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "io")
_CODAS = ("n", "r", "l", "s", "th", "x", "m", "nd")
_KINDS = ("index", "constant", "coefficient", "number", "threshold", "ratio")
_GUESS_P = 1.0 / 9000.0


@dataclass(frozen=True)
class Canary:
    """One invented fact: ``subject`` (e.g. "the Velkoran index") and its ``value``."""

    subject: str
    value: str

    @property
    def sentence(self) -> str:
        return f"(For reference, {self.subject} is {self.value}.)"

    @property
    def question(self) -> str:
        return f"What is {self.subject}? Answer with the number only."


@dataclass(frozen=True)
class CanaryRecall:
    """How many canaries a suspect model reproduced, and the chance of that by guessing."""

    asked: int
    recalled: int
    log10_p: float


class CanarySet:
    """An account's canaries and the keyed decision of which responses carry one."""

    def __init__(self, key: bytes, *, count: int = 8, rate: float = 0.01) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"canary rate must lie in [0, 1], got {rate}")
        if count < 1:
            raise ValueError("an account needs at least one canary")
        self._key = hmac.new(key, _LABEL, hashlib.sha256).digest()
        self.rate = rate
        self.canaries = tuple(self._make(i) for i in range(count))

    def _stream(self, label: str) -> bytes:
        return hmac.new(self._key, label.encode(), hashlib.sha256).digest()

    def _make(self, i: int) -> Canary:
        b = self._stream(f"canary:{i}")
        name = (
            "".join(
                _ONSETS[b[2 * j] % len(_ONSETS)] + _VOWELS[b[2 * j + 1] % len(_VOWELS)]
                for j in range(3)
            )
            + _CODAS[b[6] % len(_CODAS)]
        )
        kind = _KINDS[b[7] % len(_KINDS)]
        value = 1000 + int.from_bytes(b[8:12], "little") % 9000
        return Canary(subject=f"the {name.capitalize()} {kind}", value=str(value))

    def pick(self, response_id: str) -> Canary | None:
        """The canary that response ``response_id`` carries, or None (most responses)."""
        b = self._stream(f"response:{response_id}")
        u = int.from_bytes(b[:8], "little") / float(1 << 64)
        if u >= self.rate:
            return None
        return self.canaries[b[8] % len(self.canaries)]

    def maybe_insert(self, text: str, response_id: str) -> str:
        """``text`` with its canary sentence appended after the first paragraph, if any."""
        canary = self.pick(response_id)
        if canary is None:
            return text
        head, sep, tail = text.partition("\n\n")
        if sep:
            return f"{head} {canary.sentence}{sep}{tail}"
        return f"{text.rstrip()} {canary.sentence}"

    def found_in(self, text: str) -> list[Canary]:
        """Canaries whose subject and value both appear in ``text``."""
        low = text.lower()
        return [c for c in self.canaries if c.subject.lower() in low and c.value in text]

    def recall(self, answers: Sequence[str]) -> CanaryRecall:
        """Score a suspect model's answers to :attr:`Canary.question`, one per canary in order."""
        if len(answers) != len(self.canaries):
            raise ValueError(
                f"expected {len(self.canaries)} answers (one per canary question), got "
                f"{len(answers)}"
            )
        hits = sum(
            c.value in re.findall(r"\d{4}", a) for c, a in zip(self.canaries, answers, strict=True)
        )
        return CanaryRecall(
            asked=len(answers),
            recalled=hits,
            log10_p=binom_log_sf(hits, len(answers), _GUESS_P) / LN10,
        )
