"""Scenario files: validation errors name field and line; shipped scenarios parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillwarden.sim.personas import ATTACKERS, BENIGN
from distillwarden.sim.scenario import ScenarioError, list_scenarios, load_scenario, parse_scenario


def test_shipped_scenarios_parse_and_are_described() -> None:
    shipped = list_scenarios()
    assert {"smoke", "standard", "hydra", "mixers", "scale"} <= set(shipped)
    for name, description in shipped.items():
        assert description, name
        assert load_scenario(name).account_count() > 0


def test_bad_field_error_names_field_and_line() -> None:
    text = "name: x\ndays: 2\nbenign:\n  - persona: chat_app\n    count: many\n"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "bad.yaml")
    msg = str(err.value)
    assert "benign.0.count" in msg
    assert "line 5" in msg
    assert "bad.yaml" in msg


def test_unknown_field_is_reported_with_its_line() -> None:
    text = "name: x\n\n\nattackers:\n  - strategy: harvester\n    count: 1\n    speed: 3\n"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    assert "attackers.0.speed" in str(err.value)
    assert "line 7" in str(err.value)


def test_unknown_persona_lists_known_ones() -> None:
    text = "name: x\nbenign:\n  - {persona: chatbot, count: 3}\n"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    msg = str(err.value)
    assert "line 3" in msg and "'chatbot'" in msg
    for name in list(BENIGN) + list(ATTACKERS):
        assert name in msg


def test_attacker_used_as_benign_persona_is_refused() -> None:
    with pytest.raises(ScenarioError, match="attacker strategy"):
        parse_scenario("name: x\nbenign:\n  - {persona: harvester, count: 3}\n")


def test_invalid_yaml_names_line() -> None:
    with pytest.raises(ScenarioError, match="line 3"):
        parse_scenario("name: x\nbenign:\n  - {persona: chat_app, count: 3\n")


def test_mixing_fraction_out_of_range() -> None:
    text = ("name: x\nmixers:\n  - host: chat_app\n    strategy: harvester\n"
            "    fractions: [0.5, 1.5]\n    count: 1\n")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text)
    assert "mixers.0.fractions" in str(err.value) and "line 5" in str(err.value)


def test_missing_scenario_names_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="standard"):
        load_scenario(tmp_path / "nope.yaml")


def test_seed_override() -> None:
    assert load_scenario("smoke", seed=99).seed == 99
