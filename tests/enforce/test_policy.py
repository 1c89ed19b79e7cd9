"""Policy loading, errors with line numbers, examples, and properties of the evaluator."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distillwarden.enforce.policy import (
    ACTION_ORDER,
    AccountFacts,
    FindingFacts,
    Policy,
    PolicyError,
    action_rank,
    default_policy_path,
    load_policy,
    parse_policy,
    run_examples,
)

MINIMAL = """\
name: t
rules:
  - id: r1
    description: d
    severity: high
    when:
      risk: {gte: 0.9}
    then: {action: suspend}
"""


def test_default_policy_loads_and_its_examples_pass() -> None:
    policy = load_policy(default_policy_path())
    results = run_examples(policy)
    assert len(results) >= 8
    assert all(r.passed for r in results), [r for r in results if not r.passed]


def test_upper_bound_on_risk_is_rejected_with_its_line() -> None:
    text = MINIMAL.replace("risk: {gte: 0.9}", "risk: {lte: 0.9}")
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")
    (issue,) = info.value.issues
    assert issue.startswith("p.yaml:7:")
    assert "rules[0].when.risk" in issue and "gte" in issue


def test_lower_bound_on_p_value_is_rejected() -> None:
    text = MINIMAL.replace("risk: {gte: 0.9}", "p_value: {gte: 0.01}")
    with pytest.raises(PolicyError, match=r"p\.yaml:7:.*p_value.*lte"):
        parse_policy(text, source="p.yaml")


def test_unknown_action_and_unknown_field_are_named_with_lines() -> None:
    text = MINIMAL.replace("action: suspend", "action: obliterate").replace("when:", "whn:")
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")
    joined = "\n".join(info.value.issues)
    assert "p.yaml:8:" in joined and "then.action" in joined
    assert "p.yaml:6:" in joined and "whn" in joined


def test_duplicate_rule_ids_are_rejected() -> None:
    text = MINIMAL + MINIMAL.split("rules:\n", 1)[1]
    with pytest.raises(PolicyError, match="used twice"):
        parse_policy(text)


def test_broken_yaml_names_line() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml:\d+:\d+: not valid YAML"):
        parse_policy("name: t\nrules: [\n  {", source="p.yaml")


def test_example_with_unknown_finding_field_fails_load() -> None:
    text = MINIMAL + "    examples:\n      - finding: {riks: 0.95}\n        expect: suspend\n"
    with pytest.raises(PolicyError, match="riks"):
        parse_policy(text)


def test_wrong_expectation_is_reported_not_raised() -> None:
    text = MINIMAL + "    examples:\n      - finding: {risk: 0.95}\n        expect: warn\n"
    (res,) = run_examples(parse_policy(text))
    assert not res.passed and res.actual == "suspend" and res.expected == "warn"


def test_most_severe_matching_rule_wins_regardless_of_order() -> None:
    policy = Policy.model_validate(
        {
            "name": "t",
            "rules": [
                _rule("w", "warn", 0.5),
                _rule("s", "suspend", 0.8),
                _rule("f", "flag", 0.1),
            ],
        }
    )
    d = policy.decide(FindingFacts("o", risk=0.9), AccountFacts("o"))
    assert d.action == "suspend" and d.rule_id == "s" and set(d.matched) == {"w", "s", "f"}


def test_throttle_factor_only_on_throttle() -> None:
    with pytest.raises(PolicyError, match="throttle_factor"):
        parse_policy(MINIMAL.replace("{action: suspend}", "{action: warn, throttle_factor: 0.5}"))


# --- properties -----------------------------------------------------------------------

SIGNALS = ("template_repetition", "cot_elicitation", "benchmark_overlap")
TIERS = ("standard", "strategic", "startup")


def _rule(rule_id: str, action: str, risk: float, **when: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "description": "generated",
        "severity": "high",
        "when": {"risk": {"gte": risk}, **when},
        "then": {"action": action},
    }


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    n = draw(st.integers(1, 6))
    rules = []
    for i in range(n):
        when: dict[str, Any] = {}
        if draw(st.booleans()):
            when["p_value"] = {"lte": draw(st.floats(1e-9, 1.0))}
        if draw(st.booleans()):
            when["threshold_fpr"] = {"lt": draw(st.floats(1e-4, 0.1))}
        if draw(st.booleans()):
            when["cluster_size"] = {"gte": draw(st.integers(1, 20))}
        if draw(st.booleans()):
            when["repeat_offences"] = {"gt": draw(st.integers(0, 3))}
        sig = draw(st.lists(st.sampled_from(SIGNALS), max_size=2, unique=True))
        if sig:
            when["signals"] = {s: {"gte": draw(st.floats(0, 1))} for s in sig}
        if draw(st.booleans()):
            when["tier"] = draw(st.lists(st.sampled_from(TIERS), min_size=1, unique=True))
        rules.append(
            _rule(f"r{i}", draw(st.sampled_from(ACTION_ORDER)), draw(st.floats(0, 20)), **when)
        )
    overrides = []
    if draw(st.booleans()):
        overrides.append(
            {
                "id": "strategic",
                "description": "human first",
                "match": {"tier": "strategic"},
                "max_action": draw(st.sampled_from(("none", "flag", "warn", "throttle"))),
            }
        )
    return Policy.model_validate({"name": "gen", "rules": rules, "overrides": overrides})


findings = st.builds(
    FindingFacts,
    org_id=st.just("o1"),
    risk=st.floats(0, 20),
    p_value=st.one_of(st.none(), st.floats(0, 1)),
    threshold_fpr=st.one_of(st.none(), st.sampled_from([1e-4, 1e-3, 1e-2, 0.05])),
    signals=st.dictionaries(st.sampled_from(SIGNALS), st.floats(0, 1)),
    cluster_size=st.integers(1, 30),
)
accounts = st.builds(
    AccountFacts,
    org_id=st.just("o1"),
    tier=st.sampled_from(TIERS),
    repeat_offences=st.integers(0, 5),
)


@st.composite
def worse(draw: st.DrawFn, f: FindingFacts) -> FindingFacts:
    """A finding at least as severe as ``f`` in every dimension."""
    signals = {k: draw(st.floats(v, 1.0)) for k, v in f.signals.items()}
    for extra in draw(st.lists(st.sampled_from(SIGNALS), unique=True)):
        signals.setdefault(extra, draw(st.floats(0, 1)))
    p = f.p_value
    p2 = draw(st.floats(0, p)) if p is not None else draw(st.one_of(st.none(), st.floats(0, 1)))
    t = f.threshold_fpr
    t2 = draw(st.floats(0, t)) if t is not None else draw(st.one_of(st.none(), st.floats(0, 1)))
    return replace(
        f,
        risk=draw(st.floats(f.risk, 20.0)),
        p_value=p2,
        threshold_fpr=t2,
        signals=signals,
        cluster_size=f.cluster_size + draw(st.integers(0, 10)),
    )


@settings(max_examples=200, deadline=None)
@given(policies(), findings, st.data())
def test_more_severe_finding_never_gets_a_milder_action(
    policy: Policy, f: FindingFacts, data: st.DataObject
) -> None:
    account = data.draw(accounts)
    f2 = data.draw(worse(f))
    worse_account = replace(account, repeat_offences=account.repeat_offences + data.draw(st.integers(0, 3)))
    a1 = policy.decide(f, account).action
    a2 = policy.decide(f2, worse_account).action
    assert action_rank(a2) >= action_rank(a1)


@settings(max_examples=200, deadline=None)
@given(policies(), findings, accounts)
def test_override_caps_automatic_action(
    policy: Policy, f: FindingFacts, account: AccountFacts
) -> None:
    d = policy.decide(f, account)
    if account.tier == "strategic" and policy.overrides:
        cap = policy.overrides[0].max_action
        assert action_rank(d.action) <= action_rank(cap)
        assert d.action not in ("suspend", "terminate")
    else:
        assert d.capped_by is None and d.action == d.requested


@settings(max_examples=200, deadline=None)
@given(policies(), findings, accounts)
def test_decision_is_the_most_severe_matching_rule(
    policy: Policy, f: FindingFacts, account: AccountFacts
) -> None:
    d = policy.decide(f, account)
    matched = [r for r in policy.rules if r.when.holds(f, account)]
    assert d.matched == [r.id for r in matched]
    expected = max((r.then.action for r in matched), key=action_rank, default="none")
    assert d.requested == expected


def test_package_exports_resolve() -> None:
    import distillwarden.enforce as enforce

    for name in enforce.__all__:
        assert callable(getattr(enforce, name)) or name == "ACTION_ORDER"
    with pytest.raises(AttributeError):
        enforce.no_such_thing  # noqa: B018
