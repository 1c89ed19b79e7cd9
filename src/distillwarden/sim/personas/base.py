"""What a persona is: per-account choices, timing, volume and one request at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..phrasing import choose
from ..pools import Pools
from ..timing import TimingModel

__all__ = ["AccountContext", "Persona", "Request", "chat_body"]


@dataclass(slots=True)
class Request:
    """One simulated exchange: the request body as sent, and the response text."""

    endpoint: str
    body: dict[str, Any]
    response_text: str
    finish_reason: str = "stop"


@dataclass
class AccountContext:
    """Per-account state a persona keeps between requests (choices, conversation)."""

    rng: np.random.Generator
    pools: Pools
    model: str
    style: dict[str, Any]
    history: list[dict[str, str]] = field(default_factory=list)


def chat_body(
    ctx: AccountContext,
    user: str,
    *,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An OpenAI chat request continuing ``ctx.history`` with a new user message."""
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend(ctx.history)
    messages.append({"role": "user", "content": user})
    body: dict[str, Any] = {"model": ctx.model, "messages": messages}
    if temperature is not None:
        body["temperature"] = round(float(temperature), 2)
    if max_tokens is not None:
        body["max_tokens"] = int(max_tokens)
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


class Persona:
    """A kind of account. Subclasses set the class attributes and implement ``request``.

    ``setup`` draws the account's lasting choices (product system prompt, preferred
    phrasings...); ``shared`` carries choices common to a hydra cluster so that its members
    use the same templates.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    label: ClassVar[str] = "benign"
    licence: ClassVar[str] = "standard"
    tier: ClassVar[str] = "standard"
    timing: ClassVar[TimingModel] = TimingModel()
    #: median requests per day and lognormal sigma across accounts
    volume_per_day: ClassVar[tuple[float, float]] = (20.0, 1.0)
    #: conversation continues across turns (history sent back)
    multi_turn: ClassVar[bool] = False

    def setup(
        self, rng: np.random.Generator, pools: Pools, shared: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Lasting per-account choices; the default has none."""
        return dict(shared or {})

    def request(self, ctx: AccountContext, turn: int) -> Request:
        """The account's next request; ``turn`` is its index in the current session."""
        raise NotImplementedError

    def cluster_style(self, rng: np.random.Generator, pools: Pools) -> dict[str, Any]:
        """Choices shared by all members of a hydra cluster running this persona."""
        return self.setup(rng, pools)


def subset(rng: np.random.Generator, options: tuple[str, ...], k: int) -> list[str]:
    """``k`` distinct options (an account's habitual phrasings)."""
    k = max(1, min(k, len(options)))
    idx = rng.choice(len(options), size=k, replace=False)
    return [options[int(i)] for i in idx]


def habitual(rng: np.random.Generator, habits: list[str], options: tuple[str, ...]) -> str:
    """Mostly one of the account's habitual phrasings, sometimes any phrasing."""
    if habits and rng.random() < 0.85:
        return choose(rng, habits)
    return choose(rng, options)
