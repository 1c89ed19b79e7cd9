"""Enforcement policy: readable YAML rules over findings → graduated actions.

A policy is data, versioned like a Sigma or Falco rule file: each rule has an id, a
description, a severity, ``when`` conditions over a finding and the account it concerns, a
``then`` action and ``examples`` that ``distillwarden policy test`` runs.

Two guarantees hold by construction and are checked by property tests:

* **Monotone**: numeric conditions only accept bounds in the "more suspicious" direction
  (``risk``, signals, ``cluster_size``, ``repeat_offences``: ``gte``/``gt``; ``p_value`` and
  ``threshold_fpr``: ``lte``/``lt``). A finding at least as severe as another therefore matches at least the
  same rules and never gets a milder action. A bound in the other direction is rejected at
  load with an error naming the line.
* **Deterministic conflicts**: when several rules match, the most severe action wins, in the
  documented order :data:`ACTION_ORDER` (ties: the rule listed first). Overrides then *cap*
  the action (``max_action``); the strictest matching cap applies, so an override with
  ``max_action: flag`` can never yield an automatic suspension.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "ACTION_ORDER",
    "AccountFacts",
    "Decision",
    "ExampleResult",
    "FindingFacts",
    "Override",
    "Policy",
    "PolicyError",
    "Rule",
    "action_rank",
    "default_policy_path",
    "load_policy",
    "parse_policy",
    "run_examples",
]

PolicyAction = Literal["none", "flag", "warn", "throttle", "suspend", "terminate"]

#: Actions from mildest to most severe. When several rules match, the most severe wins.
ACTION_ORDER: tuple[str, ...] = ("none", "flag", "warn", "throttle", "suspend", "terminate")

Severity = Literal["info", "low", "medium", "high", "critical"]


def action_rank(action: str) -> int:
    """Position of ``action`` in :data:`ACTION_ORDER` (higher = more severe)."""
    return ACTION_ORDER.index(action)


class PolicyError(ValueError):
    """A policy file is invalid; ``issues`` lists ``file:line:col: field: problem`` lines."""

    def __init__(self, source: str, issues: list[str]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"invalid policy {source}:\n" + "\n".join(f"  {i}" for i in issues))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AtLeast(_Strict):
    """A lower bound: fires when the value is at least (``gte``) or above (``gt``) it."""

    gte: float | None = None
    gt: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_upper(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in ("lte", "lt"):
                if key in data:
                    raise ValueError(
                        f"`{key}` is not allowed here: this value grows with suspicion, so an "
                        "upper bound would give a more severe finding a milder action; "
                        "use `gte` or `gt`"
                    )
        elif isinstance(data, int | float) and not isinstance(data, bool):
            return {"gte": data}
        return data

    @model_validator(mode="after")
    def _one_bound(self) -> AtLeast:
        if self.gte is None and self.gt is None:
            raise ValueError("give `gte` or `gt`")
        return self

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.gte is not None and not value >= self.gte:
            return False
        return not (self.gt is not None and not value > self.gt)


class AtMost(_Strict):
    """An upper bound for p-values and false-positive rates: fires when the value is at most
    (``lte``) or below (``lt``)."""

    lte: float | None = None
    lt: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_lower(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in ("gte", "gt"):
                if key in data:
                    raise ValueError(
                        f"`{key}` is not allowed here: a smaller p-value or false-positive "
                        "rate is stronger evidence, so a lower bound would give a more severe "
                        "finding a milder action; use `lte` or `lt`"
                    )
        elif isinstance(data, int | float) and not isinstance(data, bool):
            return {"lte": data}
        return data

    @model_validator(mode="after")
    def _one_bound(self) -> AtMost:
        if self.lte is None and self.lt is None:
            raise ValueError("give `lte` or `lt`")
        return self

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.lte is not None and not value <= self.lte:
            return False
        return not (self.lt is not None and not value < self.lt)


def _patterns(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    return value


def _glob_any(patterns: Sequence[str] | None, value: str | None) -> bool:
    if patterns is None:
        return True
    if value is None:
        return False
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


class Conditions(_Strict):
    """``when``: all given conditions must hold (absent conditions always hold)."""

    detector: list[str] | None = None
    risk: AtLeast | None = None
    p_value: AtMost | None = None
    threshold_fpr: AtMost | None = None
    signals: dict[str, AtLeast] = Field(default_factory=dict)
    cluster_size: AtLeast | None = None
    repeat_offences: AtLeast | None = None
    licence: list[str] | None = None
    channel: list[str] | None = None
    tier: list[str] | None = None

    @field_validator("detector", "licence", "channel", "tier", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        return _patterns(v)

    def holds(self, finding: FindingFacts, account: AccountFacts) -> bool:
        if not _glob_any(self.detector, finding.detector):
            return False
        if self.risk is not None and not self.risk.holds(finding.risk):
            return False
        if self.p_value is not None and not self.p_value.holds(finding.p_value):
            return False
        if self.threshold_fpr is not None and not self.threshold_fpr.holds(
            finding.threshold_fpr
        ):
            return False
        for name, bound in self.signals.items():
            if not bound.holds(finding.signals.get(name)):
                return False
        if self.cluster_size is not None and not self.cluster_size.holds(finding.cluster_size):
            return False
        if self.repeat_offences is not None and not self.repeat_offences.holds(
            account.repeat_offences
        ):
            return False
        return (
            _glob_any(self.licence, account.licence)
            and _glob_any(self.channel, account.channel)
            and _glob_any(self.tier, account.tier)
        )


class Then(_Strict):
    """``then``: the action, its parameters and whether it covers the finding's whole cluster."""

    action: PolicyAction
    scope: Literal["account", "cluster"] = "account"
    throttle_factor: float | None = Field(default=None, gt=0.0, lt=1.0)
    notify: bool = Field(default=True, description="send the customer notice for warn/suspend")
    open_case: bool = Field(default=True, description="open a case for suspend/terminate/flag")

    @model_validator(mode="after")
    def _params_fit(self) -> Then:
        if self.throttle_factor is not None and self.action != "throttle":
            raise ValueError("`throttle_factor` only applies to `action: throttle`")
        return self


class Example(_Strict):
    """A finding (and the account it concerns) with the action the policy must choose."""

    finding: dict[str, Any]
    account: dict[str, Any] = Field(default_factory=dict)
    expect: PolicyAction


class Rule(_Strict):
    """One rule: conditions over a finding → an action, with examples."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    severity: Severity
    when: Conditions = Field(default_factory=Conditions)
    then: Then
    examples: list[Example] = Field(default_factory=list)


class OverrideMatch(_Strict):
    """Which accounts an override covers (all given lists must match)."""

    org: list[str] | None = None
    tier: list[str] | None = None
    licence: list[str] | None = None
    channel: list[str] | None = None

    @field_validator("org", "licence", "channel", "tier", mode="before")
    @classmethod
    def _as_list(cls, v: Any) -> Any:
        return _patterns(v)

    @model_validator(mode="after")
    def _not_empty(self) -> OverrideMatch:
        if all(v is None for v in (self.org, self.tier, self.licence, self.channel)):
            raise ValueError("give at least one of org, tier, licence, channel")
        return self

    def covers(self, account: AccountFacts) -> bool:
        return (
            _glob_any(self.org, account.org_id)
            and _glob_any(self.tier, account.tier)
            and _glob_any(self.licence, account.licence)
            and _glob_any(self.channel, account.channel)
        )


class Override(_Strict):
    """Per-organization cap on automatic actions, e.g. strategic customers → human review."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    match: OverrideMatch
    max_action: PolicyAction


class Policy(_Strict):
    """A validated enforcement policy."""

    name: str
    version: int = 1
    description: str = ""
    rules: list[Rule] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        seen: set[str] = set()
        for item_id in [r.id for r in self.rules] + [o.id for o in self.overrides]:
            if item_id in seen:
                raise ValueError(
                    f"id {item_id!r} is used twice; rule and override ids must be unique"
                )
            seen.add(item_id)
        return self

    def decide(self, finding: FindingFacts, account: AccountFacts) -> Decision:
        """The action this policy takes for ``finding`` on ``account``."""
        matched = [r for r in self.rules if r.when.holds(finding, account)]
        chosen: Rule | None = None
        for rule in matched:
            if chosen is None or action_rank(rule.then.action) > action_rank(chosen.then.action):
                chosen = rule
        wanted = chosen.then.action if chosen else "none"
        cap: Override | None = None
        for ov in self.overrides:
            if ov.match.covers(account) and (
                cap is None or action_rank(ov.max_action) < action_rank(cap.max_action)
            ):
                cap = ov
        action = wanted
        capped_by = None
        if cap is not None and action_rank(cap.max_action) < action_rank(wanted):
            action = cap.max_action
            capped_by = cap.id
        return Decision(
            action=action,
            requested=wanted,
            rule=chosen,
            matched=[r.id for r in matched],
            capped_by=capped_by,
        )


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class FindingFacts:
    """What a rule can look at in a finding."""

    org_id: str
    risk: float = 0.0
    p_value: float | None = None
    threshold_fpr: float | None = None
    detector: str = "unknown"
    signals: Mapping[str, float] = field(default_factory=dict)
    cluster_id: str | None = None
    cluster_size: int = 1
    finding_id: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, org_id: str = "example") -> FindingFacts:
        """Build from a plain dict (an example or a JSON finding); unknown keys are errors."""
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - allowed - {"id"}
        if unknown:
            raise ValueError(
                f"unknown finding field(s) {sorted(unknown)}; known: {sorted(allowed)}"
            )
        values = dict(data)
        if "id" in values:
            values["finding_id"] = values.pop("id")
        values.setdefault("org_id", org_id)
        signals = values.get("signals") or {}
        values["signals"] = {str(k): _number(v, f"signals.{k}") for k, v in signals.items()}
        values["risk"] = _number(values.get("risk", 0.0), "risk")
        for name in ("p_value", "threshold_fpr"):
            if values.get(name) is not None:
                values[name] = _number(values[name], name)
        if "cluster_size" in values:
            values["cluster_size"] = int(_number(values["cluster_size"], "cluster_size"))
        return cls(**values)


@dataclass(frozen=True)
class AccountFacts:
    """What a rule or override can look at in the account a finding concerns."""

    org_id: str = "example"
    tier: str = "standard"
    licence: str = "standard"
    channel: str = "direct"
    repeat_offences: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, org_id: str = "example") -> AccountFacts:
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(
                f"unknown account field(s) {sorted(unknown)}; known: {sorted(allowed)}"
            )
        values = dict(data)
        values.setdefault("org_id", org_id)
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    """The outcome of evaluating a policy on one finding."""

    action: str
    requested: str
    rule: Rule | None
    matched: list[str]
    capped_by: str | None = None

    @property
    def rule_id(self) -> str | None:
        return self.rule.id if self.rule else None


@dataclass(frozen=True)
class ExampleResult:
    """One example's outcome in ``policy test``."""

    rule_id: str
    index: int
    expected: str
    actual: str
    matched: list[str]
    capped_by: str | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.expected == self.actual


def run_examples(policy: Policy) -> list[ExampleResult]:
    """Evaluate every rule's examples against the whole policy (overrides included)."""
    results: list[ExampleResult] = []
    for rule in policy.rules:
        for i, ex in enumerate(rule.examples):
            try:
                finding = FindingFacts.from_mapping(ex.finding)
                account = AccountFacts.from_mapping(ex.account)
            except (TypeError, ValueError) as exc:
                results.append(
                    ExampleResult(rule.id, i, ex.expect, "error", [], None, error=str(exc))
                )
                continue
            d = policy.decide(finding, account)
            results.append(ExampleResult(rule.id, i, ex.expect, d.action, d.matched, d.capped_by))
    return results


# --- loading with line numbers ---------------------------------------------------------


def _node_at(
    root: yaml.Node | None, loc: Sequence[int | str], *, key: bool = False
) -> yaml.Node | None:
    """The deepest YAML node along a pydantic error location (for its line number); with
    ``key`` the last step gives the mapping key rather than its value."""
    node = root
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, value in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = k if key and i == len(loc) - 1 else value
                    break
            if nxt is None:
                return node
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _loc_text(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate policy YAML text; raise :class:`PolicyError` naming each field and line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise PolicyError(source, [f"{where}: not valid YAML: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise PolicyError(source, [f"{source}: not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict):
        raise PolicyError(source, [f"{source}:1:1: the top level must be a mapping with `rules:`"])
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            node = _node_at(root, loc, key=err["type"] == "extra_forbidden")
            line = f"{node.start_mark.line + 1}:{node.start_mark.column + 1}" if node else "1:1"
            msg = err["msg"].removeprefix("Value error, ")
            issues.append(f"{source}:{line}: {_loc_text(loc)}: {msg}")
        raise PolicyError(source, issues) from exc
    bad = [
        f"{source}: rule {r.rule_id}, example {r.index}: {r.error}"
        for r in run_examples(policy)
        if r.error
    ]
    if bad:
        raise PolicyError(source, bad)
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PolicyError(str(p), [f"{p}: cannot read: {exc.strerror}"]) from exc
    return parse_policy(text, source=str(p))


def default_policy_path() -> Path:
    """The policy shipped with distillwarden (``enforce/policies/default.yaml``)."""
    return Path(__file__).parent / "policies" / "default.yaml"
