"""A small labelled dataset shared by the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from small_scenario import SMALL

from distillwarden.sim.scenario import parse_scenario
from distillwarden.sim.writers import write_dataset


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval") / "small"
    write_dataset(parse_scenario(SMALL, "small.yaml"), out)
    return out
