"""Toy detectors with known scores, for testing the harness (also usable from the CLI)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def orgs_of(events: pa.Table) -> list[str]:
    return [str(o) for o in pc.unique(events.column("org_id")).to_pylist()]


class LabelOracle:
    """Scores 1 for attackers, 0 for benign; clusters = the true hydra clusters."""

    def __init__(self, labels: dict[str, dict[str, Any]]) -> None:
        self.labels = labels

    def fit(self, events: pa.Table, accounts: pa.Table | None = None) -> LabelOracle:
        self.fitted_orgs_ = orgs_of(events)
        return self

    def decision_function(self, events, accounts=None) -> dict[str, float]:
        return {o: float(self.labels[o]["label"] == "attacker") for o in orgs_of(events)}

    def clusters(self, events, accounts=None) -> dict[str, str | None]:
        return {o: self.labels[o].get("cluster") for o in orgs_of(events)}


class Constant:
    """The same score for everyone: no information."""

    def fit(self, events, accounts=None) -> Constant:
        return self

    def decision_function(self, events, accounts=None) -> dict[str, float]:
        return {o: 0.0 for o in orgs_of(events)}


class QueryCount:
    """Score = number of events seen: detection delay is measurable exactly."""

    def fit(self, events, accounts=None) -> QueryCount:
        return self

    def decision_function(self, events, accounts=None) -> dict[str, float]:
        orgs, counts = pc.value_counts(events.column("org_id")).flatten()
        return dict(zip(orgs.to_pylist(), [float(c) for c in counts.to_pylist()], strict=True))
