"""Benign and attacker personas, by name."""

from __future__ import annotations

from .attackers import (
    ChainOfThoughtExtractor,
    DatasetFormatter,
    DesensitisedHarvester,
    Harvester,
    LogprobHarvester,
    RivalEvaluator,
    SlowAndLow,
)
from .base import AccountContext, Persona, Request
from .benign import (
    ChatApp,
    CodingAssistant,
    EducationPlatform,
    EvaluationLab,
    RagApp,
    SupportBot,
    TranslationPipeline,
)

__all__ = [
    "ATTACKERS",
    "BENIGN",
    "PERSONAS",
    "AccountContext",
    "Persona",
    "Request",
    "UnknownPersona",
    "get_persona",
]

BENIGN: dict[str, Persona] = {
    p.name: p
    for p in (ChatApp(), CodingAssistant(), RagApp(), SupportBot(), TranslationPipeline(),
              EvaluationLab(), EducationPlatform())
}
ATTACKERS: dict[str, Persona] = {
    p.name: p
    for p in (Harvester(), ChainOfThoughtExtractor(), DatasetFormatter(), RivalEvaluator(),
              DesensitisedHarvester(), LogprobHarvester(), SlowAndLow())
}
PERSONAS: dict[str, Persona] = {**BENIGN, **ATTACKERS}


class UnknownPersona(KeyError):
    """A scenario names a persona that does not exist; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_persona(name: str) -> Persona:
    """The persona called ``name``; :class:`UnknownPersona` lists the known ones."""
    try:
        return PERSONAS[name]
    except KeyError:
        raise UnknownPersona(
            f"unknown persona {name!r}; known benign personas: {', '.join(BENIGN)}; "
            f"known attacker strategies: {', '.join(ATTACKERS)}"
        ) from None
