"""The blind traffic generator (bench/detect/blind_traffic.py) writes logs the importer takes
whole: every line an event, every account and label read, the same bytes for the same seed."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from distillwarden.events.importers import import_dataset

_SCRIPT = Path(__file__).resolve().parents[2] / "bench/detect/blind_traffic.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("blind_traffic", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("blind")
    assert _generator().main(["--out", str(out), "--scale", "0.02", "--days", "2"]) == 0
    return out


def test_the_importer_takes_every_line(small_log: Path, tmp_path: Path) -> None:
    report = import_dataset(small_log / "traffic.jsonl", tmp_path / "ds", b"test",
                            accounts_path=small_log / "accounts.jsonl",
                            labels_path=small_log / "labels.jsonl")
    lines = (small_log / "traffic.jsonl").read_bytes().count(b"\n")
    labels = [json.loads(x) for x in (small_log / "labels.jsonl").read_text().splitlines()]
    assert report.skipped == 0 and report.accounts_skipped == 0
    assert report.imported == lines > 0
    assert report.labels == len(labels) == report.accounts
    # benign and attacker accounts, hydra members with a shared cluster id, no split given
    kinds = Counter(x["label"] for x in labels)
    assert kinds["benign"] > 0 and kinds["attacker"] > 0
    assert any(n >= 3 for n in Counter(x["cluster"] for x in labels if x["cluster"]).values())
    assert all("split" not in x for x in labels)


def test_the_same_seed_writes_the_same_log(small_log: Path, tmp_path: Path) -> None:
    assert _generator().main(["--out", str(tmp_path), "--scale", "0.02", "--days", "2"]) == 0
    for name in ("traffic.jsonl", "accounts.jsonl", "labels.jsonl"):
        assert (tmp_path / name).read_bytes() == (small_log / name).read_bytes(), name
