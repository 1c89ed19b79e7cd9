"""`distillwarden detect` and `detect fit-reference` on a small dataset directory."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.detect.reference import load_detector, save_detector
from distillwarden.detect.scoring import DistillationDetector
from distillwarden.events.writer import write_segment

from .conftest import TrafficBuilder, attack_prompts


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, benign_prompts: list[str]) -> Path:
    root = tmp_path_factory.mktemp("ds")
    t = TrafficBuilder(31)
    labels = []
    for i in range(40):
        t.account(f"ben{i}", benign_prompts[::2], n=12)
        labels.append({"org": f"ben{i}", "label": "benign"})
    t.account("att", attack_prompts("dataset", benign_prompts[1::2]), n=60, mean_gap_s=30)
    labels.append({"org": "att", "label": "attacker"})
    write_segment(root / "events", t.events(), name="seg-000")
    pq.write_table(t.accounts_table(), root / "accounts.parquet")
    (root / "labels.jsonl").write_text("\n".join(json.dumps(x) for x in labels))
    return root


def test_fit_reference_then_detect(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    model = tmp_path / "det.pkl"
    res = runner.invoke(app, ["detect", "fit-reference", "--events", str(dataset),
                              "--no-embeddings", "-o", str(model)])
    assert res.exit_code == 0, res.output
    assert "fitted on 40 benign accounts" in res.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    res = runner.invoke(app, ["detect", "--config", str(cfg), "--events",
                              str(dataset / "events"), "--detector", str(model),
                              "--fpr", "0.05", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["run"]["events"] == 40 * 12 + 60
    assert [f["org_id"] for f in out["findings"]][0] == "att"
    assert out["findings"][0]["signals"]["share_dataset"]["example_request_ids"]


def test_detect_without_event_log_says_what_to_do(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    res = CliRunner().invoke(app, ["detect", "--config", str(cfg), "--no-store"])
    assert res.exit_code == 2
    assert "no event log" in res.output and "--events" in res.output


def test_saved_detector_round_trip_and_foreign_file(tmp_path: Path, dataset: Path) -> None:
    ev = pq.read_table(next((dataset / "events").glob("*.parquet")))
    det = DistillationDetector(use_embeddings=False).fit(ev, pq.read_table(dataset / "accounts.parquet"))
    save_detector(det, tmp_path / "d.pkl")
    again = load_detector(tmp_path / "d.pkl")
    assert again.threshold_for_fpr(0.01) == det.threshold_for_fpr(0.01)
    import pickle

    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"version": 999}))
    with pytest.raises(ValueError, match="refit"):
        load_detector(tmp_path / "x.pkl")


@pytest.mark.parametrize("follow", [False, True])
def test_detect_names_a_bad_window_start(dataset: Path, tmp_path: Path, follow: bool) -> None:
    model = tmp_path / "det.pkl"
    ev = pq.read_table(next((dataset / "events").glob("*.parquet")))
    det = DistillationDetector(use_embeddings=False, link=False)
    save_detector(det.fit(ev, pq.read_table(dataset / "accounts.parquet")), model)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'data'}\n")
    args = ["detect", "--config", str(cfg), "--events", str(dataset / "events"),
            "--detector", str(model), "--no-store", "--since", "last tuesday"]
    res = CliRunner().invoke(app, args + (["--follow"] if follow else []))
    assert res.exit_code == 2, res.output
    assert "since 'last tuesday' is not an ISO-8601 date" in res.output
