"""Scenario files: which accounts to simulate, for how long, with which attackers.

A scenario is YAML validated with pydantic. Errors name the field and the line of the file
(from the YAML node marks); an unknown persona lists the known ones. Named scenarios ship as
package data under ``distillwarden/sim/scenarios/``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .personas import ATTACKERS, BENIGN, UnknownPersona, get_persona

__all__ = [
    "AttackerGroup",
    "BenignGroup",
    "HydraGroup",
    "MixerGroup",
    "Scenario",
    "ScenarioError",
    "Volume",
    "list_scenarios",
    "load_scenario",
    "parse_scenario",
]


class ScenarioError(ValueError):
    """A scenario file is unreadable or invalid; the message names the field and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_persona(v: str) -> None:
    try:
        get_persona(v)
    except UnknownPersona as exc:
        raise ValueError(str(exc)) from None


def _check_benign(v: str) -> str:
    if v not in BENIGN:
        _known_persona(v)
        raise ValueError(f"{v!r} is an attacker strategy; benign personas: {', '.join(BENIGN)}")
    return v


def _check_attacker(v: str) -> str:
    if v not in ATTACKERS:
        _known_persona(v)
        raise ValueError(f"{v!r} is a benign persona; attacker strategies: {', '.join(ATTACKERS)}")
    return v


class Volume(_Strict):
    """Requests per day per account: lognormal with this median and sigma (heavy tail)."""

    median: float = Field(gt=0)
    sigma: float = Field(default=1.0, ge=0, le=3)


class BenignGroup(_Strict):
    """``count`` benign accounts of one persona."""

    persona: str
    count: int = Field(ge=0)
    volume_per_day: Volume | None = None

    _known = field_validator("persona")(_check_benign)


class AttackerGroup(_Strict):
    """``count`` independent attacker accounts running one strategy."""

    strategy: str
    count: int = Field(ge=0)
    volume_per_day: Volume | None = None
    days: float | None = Field(default=None, gt=0, description="overrides the scenario days")

    _known = field_validator("strategy")(_check_attacker)


class Sharing(_Strict):
    """Probability that a hydra member uses the cluster's infrastructure for each hint."""

    ip: float = Field(default=0.6, ge=0, le=1)
    user_agent: float = Field(default=0.5, ge=0, le=1)
    payment: float = Field(default=0.3, ge=0, le=1)


class HydraGroup(AttackerGroup):
    """A cluster of ``size`` accounts behind ``reseller:<reseller>`` sharing infrastructure,
    templates and timing, each under per-account limits. ``count`` is the number of such
    clusters."""

    count: int = Field(default=1, ge=0)
    size: int = Field(ge=2, le=100_000)
    reseller: str = "proxy"
    share: Sharing = Field(default_factory=Sharing)


class MixerGroup(_Strict):
    """Accounts of a legitimate product (``host``) hiding ``strategy`` traffic at each of
    ``fractions``; ``count`` accounts per fraction."""

    host: str
    strategy: str
    fractions: list[float] = Field(default_factory=lambda: [1.0, 0.5, 0.2, 0.1, 0.05])
    count: int = Field(ge=0)
    volume_per_day: Volume | None = None

    _known_host = field_validator("host")(_check_benign)
    _known_strategy = field_validator("strategy")(_check_attacker)

    @field_validator("fractions")
    @classmethod
    def _fractions_in_range(cls, v: list[float]) -> list[float]:
        bad = [f for f in v if not 0 < f <= 1]
        if bad:
            raise ValueError(f"fractions must be in (0, 1]; got {bad}")
        return v


class Scenario(_Strict):
    """A complete, reproducible traffic scenario."""

    name: str
    description: str = ""
    seed: int = 0
    start: datetime = datetime(2026, 3, 2, tzinfo=UTC)
    days: float = Field(default=7.0, gt=0, le=366)
    models: list[str] = Field(default_factory=lambda: ["dw-large"], min_length=1)
    reference_fraction: float = Field(
        default=0.2, ge=0, lt=1,
        description="share of benign accounts built from the reference prompt pool",
    )
    total_events: int | None = Field(
        default=None, gt=0, description="rescale volumes so the expected total is this"
    )
    secret: str = Field(default="distillwarden-sim", description="hashes IPs, UAs, payments")
    benign: list[BenignGroup] = Field(default_factory=list)
    attackers: list[AttackerGroup] = Field(default_factory=list)
    hydras: list[HydraGroup] = Field(default_factory=list)
    mixers: list[MixerGroup] = Field(default_factory=list)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    def account_count(self) -> int:
        """How many accounts the scenario creates."""
        return (
            sum(g.count for g in self.benign)
            + sum(g.count for g in self.attackers)
            + sum(g.count * g.size for g in self.hydras)
            + sum(g.count * len(g.fractions) for g in self.mixers)
        )


def _node_at(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """The YAML node at a pydantic error location (deepest one that exists)."""
    current = node
    for part in loc:
        if isinstance(current, yaml.MappingNode):
            nxt = next((v for k, v in current.value if k.value == part), None)
            if nxt is None:
                key = next((k for k, _ in current.value if k.value == part), None)
                return key or current
            current = nxt
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                return current
            current = current.value[part]
        else:
            return current
    return current


def parse_scenario(text: str, origin: str = "<scenario>") -> Scenario:
    """Validate scenario YAML text; :class:`ScenarioError` names the field and line."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{origin}:{where} not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: a scenario is a mapping with at least `name:`")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and "[" in x))
            node = _node_at(root, loc)
            line = f"line {node.start_mark.line + 1}" if node is not None else "line ?"
            field = ".".join(str(x) for x in loc) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{origin}: {line}: field {field}: {msg}")
        raise ScenarioError("invalid scenario:\n" + "\n".join(lines)) from exc


def _bundled() -> dict[str, Any]:
    folder = resources.files("distillwarden.sim") / "scenarios"
    return {p.name.removesuffix(".yaml"): p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_scenarios() -> dict[str, str]:
    """Shipped scenarios: name -> one-line description."""
    out = {}
    for name, path in sorted(_bundled().items()):
        out[name] = parse_scenario(path.read_text("utf-8"), name).description.split("\n")[0]
    return out


def load_scenario(name_or_path: str | Path, *, seed: int | None = None) -> Scenario:
    """A shipped scenario by name, or a YAML file by path; ``seed`` overrides its seed."""
    bundled = _bundled()
    key = str(name_or_path)
    if key in bundled:
        scenario = parse_scenario(bundled[key].read_text("utf-8"), key)
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ScenarioError(
                f"no scenario named {key!r} and no such file; shipped scenarios: "
                f"{', '.join(sorted(bundled))}"
            )
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read {path}: {exc.strerror}") from exc
        scenario = parse_scenario(text, str(path))
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    return scenario
