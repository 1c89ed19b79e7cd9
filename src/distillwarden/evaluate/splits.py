"""Split a labelled dataset's accounts into fit-reference, calibration and test sets.

Benign accounts only are used to fit (reference) and to calibrate thresholds; attackers are
only ever scored. Simulated datasets say which benign accounts were built from the reference
prompt pool (``split: reference`` in labels.jsonl) and those become the reference set, so
that the prompts a detector is fitted on never appear in the accounts it is scored on.
Otherwise the split is by a hash of the org id. Both are deterministic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HARD_NEGATIVE_PERSONAS", "AccountSplit", "split_accounts"]

#: Benign personas that look like extraction on the surface and must not be flagged.
HARD_NEGATIVE_PERSONAS = ("support_bot", "translation_pipeline", "evaluation_lab")


def _unit(org: str, salt: str) -> float:
    h = hashlib.sha256(f"{salt}:{org}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


@dataclass
class AccountSplit:
    """Org ids per role, each list sorted."""

    reference: list[str] = field(default_factory=list)
    calibration: list[str] = field(default_factory=list)
    test_benign: list[str] = field(default_factory=list)
    attackers: list[str] = field(default_factory=list)

    @property
    def scored(self) -> list[str]:
        """Every account the detector scores (calibration, test benign, attackers)."""
        return self.calibration + self.test_benign + self.attackers

    def sizes(self) -> dict[str, int]:
        """How many accounts in each role."""
        return {"reference": len(self.reference), "calibration": len(self.calibration),
                "test_benign": len(self.test_benign), "attackers": len(self.attackers)}


def split_accounts(
    labels: dict[str, dict[str, Any]],
    *,
    reference_fraction: float = 0.2,
    calibration_fraction: float = 0.5,
    salt: str = "distillwarden-eval",
) -> AccountSplit:
    """Deterministic split of ``labels`` (org -> label record).

    ``reference_fraction`` applies only when labels carry no ``split`` field;
    ``calibration_fraction`` is the share of the remaining benign accounts used to set
    thresholds (the rest measure the false-positive rate).
    """
    out = AccountSplit()
    has_split = any("split" in rec for rec in labels.values())
    for org in sorted(labels):
        rec = labels[org]
        if rec["label"] == "attacker":
            out.attackers.append(org)
            continue
        if has_split:
            is_ref = rec.get("split") == "reference"
        else:
            is_ref = _unit(org, salt + ":ref") < reference_fraction
        if is_ref:
            out.reference.append(org)
        elif _unit(org, salt + ":cal") < calibration_fraction:
            out.calibration.append(org)
        else:
            out.test_benign.append(org)
    if not out.reference or not out.calibration or not out.test_benign:
        raise ValueError(
            f"not enough benign accounts to evaluate ({out.sizes()}); a dataset needs benign "
            "accounts for reference, calibration and test (simulate a larger scenario)"
        )
    return out
