"""The harness on toy detectors whose right answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from toy_detectors import Constant, LabelOracle, QueryCount
from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.evaluate.harness import evaluate, first_k_events
from distillwarden.evaluate.report import render_html, write_report
from distillwarden.sim.dataset import Dataset


def test_oracle_and_constant(small_dataset: Path) -> None:
    ds = Dataset.open(small_dataset)
    oracle = LabelOracle(ds.labels())
    report = evaluate({"oracle": oracle, "constant": Constant()}, ds)
    o, c = report.result("oracle"), report.result("constant")
    assert o.roc_auc == 1.0 and c.roc_auc == 0.5
    for key in ("0.001", "0.01"):
        assert o.tpr[key] == 1.0 and o.benign_fpr[key] == 0.0
        assert o.balanced_accuracy[key] == 1.0
        assert c.tpr[key] == 0.0 and c.balanced_accuracy[key] == 0.5
    assert o.tpr_by_strategy.keys() == {"harvester", "rival_evaluator"}
    assert set(o.tpr_by_fraction) == {"0.5", "0.1"}
    assert o.tpr_hydra["0.01"] == 1.0
    assert o.cluster_ari == 1.0
    assert o.hard_negatives["evaluation_lab"]["0.01"] == 0
    # fitted on benign reference accounts only
    labels = ds.labels()
    assert all(labels[x]["label"] == "benign" and labels[x]["split"] == "reference"
               for x in oracle.fitted_orgs_)
    assert report.attackers == {"pure": 4, "hydra": 11, "mixer": 4}


def test_queries_to_detection_is_exact(small_dataset: Path) -> None:
    ds = Dataset.open(small_dataset)
    steps = (5, 10, 20, 50, 100)
    r = evaluate({"count": QueryCount()}, ds, windows=steps).result("count")
    thr = r.thresholds[-1].value
    labels = ds.labels()
    orgs, counts = np.unique(ds.events(["org_id"]).column(0).to_numpy(zero_copy_only=False),
                             return_counts=True)
    expected = []
    for org, n in zip(orgs, counts, strict=True):
        if labels[org]["label"] != "attacker":
            continue
        hit = next((min(k, n) for k in steps if min(k, n) > thr), None)
        if hit is not None:
            expected.append(hit)
    delay = r.delay["0.01"]
    assert delay["detected"] == len(expected) > 0
    assert delay["median_queries"] == float(np.median(expected))
    assert delay["detected_by_step"] == sorted(delay["detected_by_step"])


def test_first_k_events_orders_by_time() -> None:
    t = pa.table({"org_id": ["a", "b", "a", "a", "b"], "ts": pa.array([5, 1, 3, 9, 2],
                                                                  pa.timestamp("us"))})
    got = first_k_events(t, 2)
    rows = sorted(zip(got.column("org_id").to_pylist(),
                      got.column("ts").cast(pa.int64()).to_pylist(), strict=True))
    assert rows == [("a", 3), ("a", 5), ("b", 1), ("b", 2)]


def test_report_html_and_json(small_dataset: Path, tmp_path: Path) -> None:
    ds = Dataset.open(small_dataset)
    report = evaluate({"oracle": LabelOracle(ds.labels()), "constant": Constant()}, ds,
                      windows=(5, 50))
    paths = write_report(report, tmp_path / "rep")
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert "oracle" in page and "constant" in page and "TPR @ FPR 0.01" in page
    data = json.loads(paths["json"].read_text())
    assert data["detectors"][0]["roc_auc"] == 1.0
    assert data["detectors"][0]["roc_points"]["tpr"][-1] == 1.0
    assert "<script" not in render_html(report)


def test_cli_evaluates_a_user_detector(small_dataset: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    result = CliRunner().invoke(app, [
        "evaluate", "--dataset", str(small_dataset), "--detector", "toy_detectors:Constant",
        "--no-baseline", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").exists()
    assert json.loads((tmp_path / "r" / "report.json").read_text())["detectors"][0][
        "roc_auc"] == 0.5


def test_cli_evaluates_an_imported_interchange_log(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from small_scenario import SMALL

    from distillwarden.sim.scenario import parse_scenario
    from distillwarden.sim.writers import write_interchange

    write_interchange(parse_scenario(SMALL), tmp_path / "jsonl")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    result = CliRunner().invoke(app, [
        "evaluate", "--traffic", str(tmp_path / "jsonl" / "traffic.jsonl"),
        "--labels", str(tmp_path / "jsonl" / "labels.jsonl"),
        "--accounts", str(tmp_path / "jsonl" / "accounts.jsonl"),
        "--detector", "toy_detectors:Constant", "--no-baseline",
        "--work", str(tmp_path / "work"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    # imported labels carry no prompt-pool split: benign accounts are split by org-id hash
    assert report["split"]["attackers"] == 19
    assert sum(report["split"].values()) == 70 + 19


def test_cli_rejects_bad_detector_spec(small_dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--dataset", str(small_dataset),
                                      "--detector", "nomodule", "--no-baseline"])
    assert result.exit_code == 2
    assert "module:Class" in result.output


def test_scores_missing_for_some_accounts_are_unscored(small_dataset: Path) -> None:
    class Partial(Constant):
        def decision_function(self, events, accounts=None):
            scores = super().decision_function(events, accounts)
            return {o: v for i, (o, v) in enumerate(sorted(scores.items())) if i % 2}

    r = evaluate({"p": Partial()}, small_dataset, windows=(5,)).result("p")
    assert r.unscored > 0
    assert np.isfinite(r.thresholds[0].value)
