"""``distillwarden import …`` / ``distillwarden events …`` end to end through the root CLI."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from distillwarden.cli import app
from distillwarden.events.reader import read_events

from .test_interchange import valid_line, write_jsonl


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DISTILLWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DISTILLWARDEN_CONFIG", raising=False)
    return CliRunner()


def test_import_traffic_into_dataset_then_stats_export_verify(runner: CliRunner,
                                                              tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(i) for i in range(12)] + [b"{oops"])
    labels = write_jsonl(tmp_path / "l.jsonl", [{"org": "org_1", "label": "attacker"}])
    out = tmp_path / "ds"
    res = runner.invoke(app, ["import", "traffic", str(src), "--labels", str(labels),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "imported 12 event(s)" in res.output
    assert "line 13: not valid JSON" in res.output
    assert (out / "accounts.parquet").exists() and (out / "labels.jsonl").exists()

    res = runner.invoke(app, ["events", "stats", "--dir", str(out / "events")])
    assert res.exit_code == 0, res.output
    assert "12" in res.output and "2025-01-17 09:00:12 UTC" in res.output

    res = runner.invoke(app, ["events", "stats", "--json", "--dir", str(out / "events")])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert (stats["segments"], stats["events"], stats["organizations"]) == (1, 12, 4)
    assert stats["first_event"] == "2025-01-17T09:00:12.481000+00:00"

    exported = tmp_path / "x.jsonl"
    res = runner.invoke(app, ["events", "export", "--dir", str(out / "events"), "--out",
                              str(exported), "--org", "org_1"])
    assert res.exit_code == 0, res.output
    lines = [orjson.loads(x) for x in exported.read_bytes().splitlines()]
    assert len(lines) == 3 and {x["org"] for x in lines} == {"org_1"}

    res = runner.invoke(app, ["events", "verify", "--dir", str(out / "events")])
    assert res.exit_code == 0 and "1 segment(s) OK" in res.output
    (out / "events" / "broken.parquet").write_bytes(b"PAR1garbage")
    res = runner.invoke(app, ["events", "verify", "--dir", str(out / "events")])
    assert res.exit_code == 1
    assert "broken.parquet" in res.output


def test_import_traffic_into_installation_creates_orgs(runner: CliRunner, tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(i) for i in range(4)])
    res = runner.invoke(app, ["import", "traffic", str(src)])
    assert res.exit_code == 0, res.output
    assert "store: 4 organization(s) created" in res.output
    assert read_events(tmp_path / "data" / "events").num_rows == 4
    res = runner.invoke(app, ["org", "list"])
    assert res.exit_code == 0 and "org_3" in res.output


def test_cli_errors_are_clear(runner: CliRunner, tmp_path: Path) -> None:
    res = runner.invoke(app, ["import", "traffic", str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2 and "does not exist" in res.output
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(1)])
    res = runner.invoke(app, ["import", "traffic", str(src), "--labels", str(src)])
    assert res.exit_code == 2 and "--labels needs --out" in res.output
