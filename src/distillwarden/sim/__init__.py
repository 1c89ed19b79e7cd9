"""Traffic simulator: labelled benign and attacker traffic from real prompt sets.

``load_scenario(name_or_path)`` → ``write_dataset(scenario, out)`` (event log + accounts +
labels), ``write_interchange`` (traffic JSONL), ``send_to_gateway`` (live, end to end);
``Dataset.open(dir)`` reads a dataset back. See docs/simulator.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Dataset",
    "Scenario",
    "ScenarioError",
    "generate",
    "list_scenarios",
    "load_scenario",
    "prompt_pool",
    "send_to_gateway",
    "write_dataset",
    "write_interchange",
]

if TYPE_CHECKING:
    from .dataset import Dataset
    from .generate import generate
    from .http import send_to_gateway
    from .scenario import Scenario, ScenarioError, list_scenarios, load_scenario
    from .sources import prompt_pool
    from .writers import write_dataset, write_interchange

_WHERE = {
    "Dataset": ".dataset",
    "generate": ".generate",
    "send_to_gateway": ".http",
    "Scenario": ".scenario",
    "ScenarioError": ".scenario",
    "list_scenarios": ".scenario",
    "load_scenario": ".scenario",
    "prompt_pool": ".sources",
    "write_dataset": ".writers",
    "write_interchange": ".writers",
}


def __getattr__(name: str) -> Any:
    """Import lazily so that ``distillwarden --help`` stays fast."""
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
