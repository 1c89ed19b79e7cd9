"""``distillwarden evaluate``: measure detectors on a labelled dataset, write the report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["DEFAULT_DETECTOR", "load_detector", "register"]

DEFAULT_DETECTOR = "distillwarden.detect.scoring:DistillationDetector"


def load_detector(spec: str) -> Any:
    """Instantiate ``module:Class`` (a detector with the estimator API)."""
    import importlib

    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise ValueError(f"detector {spec!r}: expected module:Class, e.g. {DEFAULT_DETECTOR}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"detector {spec!r}: cannot import {module_name!r} ({exc})") from exc
    cls = getattr(module, attr, None)
    if cls is None:
        raise ValueError(f"detector {spec!r}: {module_name} has no attribute {attr!r}")
    detector = cls()
    for method in ("fit", "decision_function"):
        if not callable(getattr(detector, method, None)):
            raise ValueError(f"detector {spec!r} has no {method}(); see docs/evaluation.md")
    return detector


def _dataset(dataset: Path | None, scenario: str | None, traffic: Path | None,
             labels: Path | None, accounts: Path | None, work: Path, seed: int | None) -> Path:
    if sum(x is not None for x in (dataset, scenario, traffic)) != 1:
        raise ValueError("give exactly one of --dataset DIR, --scenario NAME or --traffic FILE")
    if dataset is not None:
        return dataset
    if traffic is not None:
        from ..events.importers import import_dataset

        if labels is None:
            raise ValueError("--traffic needs --labels FILE (ground truth per organization)")
        target = work / f"imported-{traffic.stem}"
        if not (target / "labels.jsonl").exists():
            report = import_dataset(traffic, target, b"distillwarden-evaluate",
                                    accounts_path=accounts, labels_path=labels)
            typer.echo(report.summary(), err=True)
        return target
    from ..sim.scenario import load_scenario
    from ..sim.writers import write_dataset

    assert scenario is not None
    sc = load_scenario(scenario, seed=seed)
    target = work / f"{sc.name}-{sc.seed}"
    if not (target / "labels.jsonl").exists():
        typer.echo(f"simulating {sc.name} into {target}", err=True)
        write_dataset(sc, target)
    return target


def evaluate_cmd(
    dataset: Annotated[Path | None, typer.Option(help="dataset directory")] = None,
    scenario: Annotated[str | None, typer.Option(
        help="simulate this scenario first (cached under --work)")] = None,
    traffic: Annotated[Path | None, typer.Option(
        help="an interchange JSONL traffic log to import and evaluate")] = None,
    labels: Annotated[Path | None, typer.Option(help="labels JSONL for --traffic")] = None,
    accounts: Annotated[Path | None, typer.Option(help="accounts JSONL for --traffic")] = None,
    detector: Annotated[list[str] | None, typer.Option(
        help=f"module:Class with the estimator API (repeatable; default {DEFAULT_DETECTOR})")
    ] = None,
    baseline: Annotated[bool, typer.Option(
        help="also run the MMD baseline (arXiv 2606.05725) side by side")] = True,
    mmd_window: Annotated[list[int] | None, typer.Option(
        help="MMD baseline window(s) in queries (repeatable; paper: 1500)")] = None,
    fpr: Annotated[list[float] | None, typer.Option(
        help="benign false-positive rates to calibrate (default 0.001 and 0.01)")] = None,
    out: Annotated[Path, typer.Option(help="report directory")] = Path("evaluation-report"),
    work: Annotated[Path, typer.Option(help="where simulated/imported datasets are kept")
                    ] = Path("distillwarden-eval"),
    seed: Annotated[int | None, typer.Option(help="scenario seed override")] = None,
) -> None:
    """Evaluate detectors on labelled traffic: ROC AUC, TPR at fixed benign FPR, delay, ARI.

    Example: distillwarden evaluate --scenario smoke --out report/
    """
    from ..sim.dataset import DatasetError
    from .harness import evaluate
    from .mmd_baseline import MMDBaselineDetector
    from .report import write_report

    logging.basicConfig(level=logging.WARNING)
    try:
        path = _dataset(dataset, scenario, traffic, labels, accounts, work, seed)
        detectors: dict[str, Any] = {}
        for spec in detector or [DEFAULT_DETECTOR]:
            detectors[spec.rpartition(":")[2]] = load_detector(spec)
        if baseline:
            for w in mmd_window or [1500]:
                detectors[f"MMD baseline (window {w})"] = MMDBaselineDetector(window=w)
        report = evaluate(detectors, path, fprs=tuple(fpr or (0.001, 0.01)),
                          progress=lambda m: typer.echo(m, err=True))
    except (ValueError, DatasetError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    paths = write_report(report, out)
    typer.echo(json.dumps(report.as_dict(), indent=1))
    typer.echo(f"wrote {paths['json']} and {paths['html']}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the root CLI."""
    app.command("evaluate")(evaluate_cmd)
