"""``distillwarden simulate``: write labelled traffic, or list scenarios and personas."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["register"]


class OutputFormat(StrEnum):
    parquet = "parquet"
    jsonl = "jsonl"


simulate_app = typer.Typer(
    help="Simulate labelled API traffic (benign personas and attackers) from real prompt sets.",
    invoke_without_command=True,
)


def _progress(total: int, label: str) -> Progress:
    return Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


@simulate_app.callback()
def simulate(
    ctx: typer.Context,
    scenario: Annotated[str | None, typer.Option(
        "--scenario", "-s", help="shipped scenario name (see `simulate list`) or a YAML file")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="output directory (must be empty or absent)")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    workers: Annotated[int, typer.Option(
        help="processes writing segments in parallel (same events; segment files differ)")
    ] = 1,
    fmt: Annotated[OutputFormat, typer.Option(
        "--format", help="parquet: dataset directory; jsonl: interchange files")
    ] = OutputFormat.parquet,
    gateway: Annotated[str | None, typer.Option(
        help="send the traffic through this running gateway instead (e.g. http://127.0.0.1:8080)"
    )] = None,
    admin_token: Annotated[str | None, typer.Option(help="the gateway's admin token")] = None,
    rate: Annotated[float, typer.Option(help="gateway mode: requests per second (0: max)")] = 20.0,
    max_events: Annotated[int | None, typer.Option(help="gateway mode: stop after N")] = None,
    model: Annotated[str | None, typer.Option(help="gateway mode: model name to request")] = None,
    forward_hints: Annotated[bool, typer.Option(
        help="gateway mode: send X-Forwarded-For and the region header (only if trusted)")] = False,
) -> None:
    """Simulate a scenario into a dataset directory, interchange JSONL, or a live gateway.

    Example: distillwarden simulate --scenario smoke --out data/smoke
    """
    if ctx.invoked_subcommand is not None:
        return
    if scenario is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    from .scenario import ScenarioError, load_scenario
    from .sources import SourceUnavailable

    try:
        sc = load_scenario(scenario, seed=seed)
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        if gateway is not None:
            _run_gateway(sc, gateway, admin_token, rate, max_events, model, forward_hints, out)
            return
        if out is None:
            typer.echo("error: --out DIR is required (or --gateway URL)", err=True)
            raise typer.Exit(2)
        _run_files(sc, out, fmt, workers)
    except SourceUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except FileExistsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _run_files(sc: object, out: Path, fmt: OutputFormat, workers: int) -> None:
    from .generate import generate
    from .scenario import Scenario
    from .writers import write_dataset, write_interchange

    assert isinstance(sc, Scenario)
    if fmt is OutputFormat.jsonl:
        total = generate(sc).total_events
        with _progress(total, f"simulating {sc.name}") as bar:
            task = bar.add_task("events", total=total)
            summary = write_interchange(sc, out, progress=lambda n: bar.advance(task, n))
    else:
        traffic = generate(sc)
        with _progress(traffic.total_events, f"simulating {sc.name}") as bar:
            task = bar.add_task("events", total=traffic.total_events)
            summary = write_dataset(sc, out, traffic=traffic, workers=workers,
                                    progress=lambda n: bar.advance(task, n))
    typer.echo(json.dumps(summary.as_dict()))


def _run_gateway(sc: object, gateway: str, admin_token: str | None, rate: float,
                 max_events: int | None, model: str | None, forward_hints: bool,
                 out: Path | None) -> None:
    from .http import GatewayRunError, send_to_gateway
    from .scenario import Scenario

    assert isinstance(sc, Scenario)
    if not admin_token:
        typer.echo("error: --admin-token is required with --gateway (see the gateway's "
                   "data_dir/admin_token)", err=True)
        raise typer.Exit(2)
    total = max_events
    with _progress(total or 0, f"sending {sc.name} to {gateway}") as bar:
        task = bar.add_task("requests", total=total)
        try:
            run = send_to_gateway(sc, gateway, admin_token, rate=rate, max_events=max_events,
                                  model=model, forward_hints=forward_hints, out=out,
                                  progress=lambda n: bar.advance(task, n))
        except GatewayRunError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(json.dumps(run.as_dict()))


@simulate_app.command("list")
def list_cmd() -> None:
    """List shipped scenarios and personas with one-line descriptions."""
    from .personas import ATTACKERS, BENIGN
    from .scenario import list_scenarios

    console = Console(soft_wrap=True)
    console.print("[bold]scenarios[/bold]")
    for name, desc in list_scenarios().items():
        console.print(f"  {name:<12} {desc}")
    console.print("[bold]benign personas[/bold]")
    for name, p in BENIGN.items():
        console.print(f"  {name:<24} {p.description}")
    console.print("[bold]attacker strategies[/bold]")
    for name, p in ATTACKERS.items():
        console.print(f"  {name:<24} {p.description}")


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the root CLI."""
    app.add_typer(simulate_app, name="simulate")
