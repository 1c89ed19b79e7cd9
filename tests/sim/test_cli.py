"""``distillwarden simulate`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.sim.dataset import Dataset

SCENARIO = """
name: cli
seed: 2
days: 1
benign:
  - {persona: chat_app, count: 4, volume_per_day: {median: 5, sigma: 0.1}}
attackers:
  - {strategy: harvester, count: 1, volume_per_day: {median: 20, sigma: 0.1}}
"""


def test_simulate_parquet_and_jsonl(tmp_path: Path) -> None:
    scenario = tmp_path / "cli.yaml"
    scenario.write_text(SCENARIO)
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", "--scenario", str(scenario), "--out",
                              str(tmp_path / "pq"), "--workers", "2"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["accounts"] == 5
    assert Dataset.open(tmp_path / "pq").events(["event_id"]).num_rows == summary["events"]
    res = runner.invoke(app, ["simulate", "--scenario", str(scenario), "--format", "jsonl",
                              "--out", str(tmp_path / "js")])
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "js" / "traffic.jsonl").read_text().splitlines()
    assert len(lines) == summary["events"]
    # the same seed gives the same traffic in both formats
    assert {json.loads(x)["org"] for x in lines} == set(Dataset.open(tmp_path / "pq").labels())


def test_simulate_refuses_a_used_directory_and_bad_files(tmp_path: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", "--scenario", "smoke", "--out", str(tmp_path / "used")])
    assert res.exit_code == 2 and "not empty" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbenign:\n  - {persona: chatbot, count: 3}\n")
    res = runner.invoke(app, ["simulate", "--scenario", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "line 3" in res.output and "support_bot" in res.output


def test_simulate_list() -> None:
    res = CliRunner().invoke(app, ["simulate", "list"])
    assert res.exit_code == 0
    for name in ("standard", "hydra", "chat_app", "rival_evaluator", "slow_and_low"):
        assert name in res.stdout
