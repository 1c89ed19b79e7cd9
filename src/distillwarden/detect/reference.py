"""The default benign reference, for installations that have none of their own yet.

When no benign reference traffic is given, the detector is fitted on simulated benign
accounts of every benign persona (chat app, coding assistant, RAG, support bot, translation
pipeline, licensed evaluation lab, education) whose prompts come only from the *reference*
split of the real prompt pools (``distillwarden.sim.sources``), which the simulator never
uses for scored traffic. The fitted detector is cached on disk. A provider should refit on a
week of its own traffic from accounts it trusts as soon as it has it (``distillwarden detect
fit-reference``): calibration is only as good as the reference is like real benign use.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .scoring import DistillationDetector

__all__ = ["REFERENCE_VERSION", "default_detector", "load_detector", "reference_traffic",
           "save_detector"]

log = logging.getLogger(__name__)

#: bumped when the signals change, so that a cached reference detector is refitted with them
REFERENCE_VERSION = 8


def reference_traffic(
    *, accounts_per_persona: int = 40, days: float = 7.0, seed: int = 7
) -> tuple[pa.Table, pa.Table]:
    """Benign reference events and accounts, simulated from the reference prompt pools."""
    try:
        from distillwarden.sim.generate import generate
        from distillwarden.sim.personas import BENIGN
        from distillwarden.sim.scenario import BenignGroup, Scenario
        from distillwarden.sim.writers import accounts_table
    except ImportError as exc:  # pragma: no cover - sim ships with distillwarden
        raise RuntimeError(
            "the default reference needs distillwarden.sim; fit the detector on your own "
            "benign traffic instead (distillwarden detect fit-reference --events DIR)"
        ) from exc
    scenario = Scenario(
        name="detect-reference",
        description="benign reference accounts for the detector's default calibration",
        seed=seed,
        days=days,
        reference_fraction=0.95,
        benign=[BenignGroup(persona=p, count=accounts_per_persona) for p in BENIGN],
    )
    traffic = generate(scenario)
    ref_orgs = [p.org_id for p in traffic.plans if p.split == "reference"]
    parts = [chunk.table for chunk in traffic.chunks()]
    events = pa.concat_tables(parts) if parts else pa.table({})
    events = events.filter(pc.is_in(events.column("org_id"), value_set=pa.array(ref_orgs)))
    accounts = accounts_table(
        [p for p in traffic.plans if p.split == "reference"], scenario.secret.encode()
    )
    return events, accounts


def save_detector(detector: DistillationDetector, path: Path) -> None:
    """Pickle a fitted detector (without its embedding cache) atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"version": REFERENCE_VERSION, "detector": detector}, fh)
    tmp.replace(path)


def load_detector(path: Path) -> DistillationDetector:
    """Load a detector saved by :func:`save_detector` (a file you wrote: pickle runs code)."""
    with open(path, "rb") as fh:
        data: dict[str, Any] = pickle.load(fh)
    if data.get("version") != REFERENCE_VERSION or not isinstance(
        data.get("detector"), DistillationDetector
    ):
        raise ValueError(
            f"{path} is not a distillwarden detector of version {REFERENCE_VERSION}; "
            "refit it with distillwarden detect fit-reference"
        )
    det: DistillationDetector = data["detector"]
    return det


def default_detector(
    cache_dir: Path,
    *,
    accounts_per_persona: int = 40,
    days: float = 7.0,
    use_embeddings: bool = True,
) -> DistillationDetector:
    """The detector fitted on the shipped reference, loaded from ``cache_dir`` when cached.

    Calibration resolution comes from the number of reference accounts (no signal can be
    rarer than one in ``accounts + 1``), memory from accounts x days of traffic."""
    span = "" if days == 7.0 else f"-{days:g}d"
    path = cache_dir / f"reference-detector-v{REFERENCE_VERSION}-{accounts_per_persona}{span}"\
        f"{'' if use_embeddings else '-noemb'}.pkl"
    if path.exists():
        try:
            return load_detector(path)
        except (ValueError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            log.warning("cached reference detector %s unusable (%s); refitting", path, exc)
    log.info("fitting the detector on the default benign reference (once; cached in %s)",
             cache_dir)
    events, accounts = reference_traffic(accounts_per_persona=accounts_per_persona, days=days)
    det = DistillationDetector(use_embeddings=use_embeddings).fit(events, accounts)
    save_detector(det, path)
    return det
