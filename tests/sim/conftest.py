"""A tiny simulated dataset shared by the sim tests (generated once per module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillwarden.sim.scenario import parse_scenario
from distillwarden.sim.writers import write_dataset

TINY = """
name: tiny
description: tiny test scenario
seed: 11
start: 2026-03-02T00:00:00Z
days: 2
models: [m1, m2]
reference_fraction: 0.25
benign:
  - {persona: chat_app, count: 8, volume_per_day: {median: 8, sigma: 0.5}}
  - {persona: coding_assistant, count: 4, volume_per_day: {median: 8, sigma: 0.5}}
  - {persona: rag_app, count: 2, volume_per_day: {median: 8, sigma: 0.5}}
  - {persona: support_bot, count: 2, volume_per_day: {median: 10, sigma: 0.5}}
  - {persona: translation_pipeline, count: 1, volume_per_day: {median: 40, sigma: 0.2}}
  - {persona: evaluation_lab, count: 1, volume_per_day: {median: 30, sigma: 0.2}}
  - {persona: education, count: 2, volume_per_day: {median: 8, sigma: 0.5}}
attackers:
  - {strategy: harvester, count: 1, volume_per_day: {median: 40, sigma: 0.1}}
  - {strategy: cot_extractor, count: 1, volume_per_day: {median: 40, sigma: 0.1}}
  - {strategy: dataset_formatter, count: 1, volume_per_day: {median: 30, sigma: 0.1}}
  - {strategy: rival_evaluator, count: 1, volume_per_day: {median: 40, sigma: 0.1}}
  - {strategy: desensitised_harvester, count: 1, volume_per_day: {median: 40, sigma: 0.1}}
  - {strategy: logprob_harvester, count: 1, volume_per_day: {median: 40, sigma: 0.1}}
  - {strategy: slow_and_low, count: 1, days: 4, volume_per_day: {median: 10, sigma: 0.1}}
hydras:
  - {strategy: harvester, size: 12, reseller: apexgate, volume_per_day: {median: 6, sigma: 0.2}}
mixers:
  - {host: chat_app, strategy: harvester, fractions: [0.5, 0.1], count: 1,
     volume_per_day: {median: 60, sigma: 0.1}}
"""


@pytest.fixture(scope="session")
def tiny_scenario():
    return parse_scenario(TINY, "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, tiny_scenario) -> Path:
    out = tmp_path_factory.mktemp("sim") / "tiny"
    write_dataset(tiny_scenario, out, chunk_events=400)
    return out
