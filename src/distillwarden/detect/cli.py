"""``distillwarden detect``: score the event log for distillation traffic.

``distillwarden detect --since 2026-03-01 --until 2026-03-08`` scores one window (batch);
``distillwarden detect --follow`` processes new segments as they land (and the events still in
the writers' spools). ``distillwarden
detect fit-reference`` fits the detector on benign traffic you trust.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["detect_app", "register"]

detect_app = typer.Typer(
    help="Detect distillation and rival-evaluation traffic in the event log.",
    invoke_without_command=True,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (embedded defaults when omitted)"),
]
DetectorOpt = Annotated[
    Path | None,
    typer.Option("--detector", help="a fitted detector (from `detect fit-reference`); default: "
                 "the one fitted on the shipped benign reference"),
]


def _settings(config: Path | None) -> Any:
    from distillwarden.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _session_factory(settings: Any) -> Any:
    from distillwarden.store.db import make_engine, make_sessionmaker
    from distillwarden.store.migrate import upgrade_database

    url = settings.effective_database_url
    upgrade_database(url)
    return make_sessionmaker(make_engine(url))


def _detector(settings: Any, path: Path | None, no_embeddings: bool) -> Any:
    from .reference import default_detector, load_detector

    err = Console(stderr=True)
    if path is not None:
        try:
            return load_detector(path)
        except (OSError, ValueError) as exc:
            err.print(f"[red]cannot load detector {path}: {exc}[/red]")
            raise typer.Exit(2) from exc
    with err.status("loading the detector fitted on the default benign reference…"):
        return default_detector(Path(settings.data_dir) / "detect",
                                use_embeddings=not no_embeddings)


def _print_run(run: Any, as_json: bool) -> None:
    out = Console(soft_wrap=True)
    if as_json:
        out.print_json(json.dumps({"run": run.summary(),
                                   "findings": [f.as_dict() for f in run.findings]}))
        return
    s = run.summary()
    out.print(
        f"window {s['window_start']} .. {s['window_end']}: {s['events']} events, "
        f"{s['accounts']} accounts, threshold risk {s['threshold']:.2f} "
        f"(benign FPR {s['fpr']:g}), {s['findings']} findings, {s['clusters']} clusters "
        f"in {s['seconds']} s"
    )
    for skipped in run.skipped_segments:
        out.print(f"[yellow]skipped segment[/yellow] {skipped}")
    if not run.findings:
        return
    table = Table("org", "risk", "p-value", "top signals", "cluster")
    for f in run.findings[:50]:
        top = ", ".join(list(f.signals)[:3])
        table.add_row(f.org_id, f"{f.risk:.1f}", f"{f.p_value:.1e}", top, f.cluster_id or "")
    out.print(table)
    if len(run.findings) > 50:
        out.print(f"… and {len(run.findings) - 50} more (use --json)")


@detect_app.callback()
def detect(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="window start, ISO 8601 (UTC if no zone)")]
    = None,
    until: Annotated[str | None, typer.Option(help="window end (exclusive), ISO 8601")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="process new segments as they land")]
    = False,
    window_hours: Annotated[float | None, typer.Option(
        help="with --follow: a sliding window of this many hours (default: grow from --since)")]
    = None,
    poll: Annotated[float, typer.Option(help="with --follow: seconds between polls")] = 5.0,
    spools: Annotated[bool, typer.Option(
        "--spools/--segments-only",
        help="with --follow: also score events the writers logged but have not yet "
             "published as segments (findings within a poll of the events)")] = True,
    fpr: Annotated[float, typer.Option(help="benign false-positive rate of the threshold")]
    = 0.001,
    events: Annotated[Path | None, typer.Option(
        "--events", help="event directory (default: the installation's event log)")] = None,
    detector: DetectorOpt = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="print findings, store nothing")]
    = False,
    no_embeddings: Annotated[bool, typer.Option(
        "--no-embeddings", help="skip prompt-embedding signals (faster)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Score accounts in a window of the event log and store findings with evidence."""
    if ctx.invoked_subcommand is not None:
        return
    from distillwarden._cli_common import fail
    from distillwarden.store.errors import InvalidInput
    from distillwarden.store.validation import normalize_datetime

    from .engine import IncrementalDetection, run_detection

    # the window's bounds first: a bad one is named before the detector is loaded
    try:
        window_start = normalize_datetime(since, "since")
        window_end = normalize_datetime(until, "until")
    except InvalidInput as exc:
        raise fail(str(exc), 2) from exc
    logging.basicConfig(level=logging.WARNING)
    settings = _settings(config)
    events_dir = events or settings.effective_events_dir
    if not Path(events_dir).is_dir():
        Console(stderr=True).print(
            f"[red]no event log at {events_dir}[/red]: start the gateway, import traffic "
            "(distillwarden import …) or pass --events DIR"
        )
        raise typer.Exit(2)
    sf = None if no_store else _session_factory(settings)
    det = _detector(settings, detector, no_embeddings)
    if not follow:
        try:
            run = run_detection(events_dir, det, session_factory=sf, since=window_start,
                                until=window_end, fpr=fpr)
        except ValueError as exc:
            Console(stderr=True).print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        _print_run(run, as_json)
        return
    inc = IncrementalDetection(
        events_dir, det, session_factory=sf, since=window_start, fpr=fpr,
        window=timedelta(hours=window_hours) if window_hours else None, spools=spools,
    )
    Console(stderr=True).print(f"following {events_dir} (Ctrl-C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        inc.follow(poll_s=poll, on_run=lambda r: _print_run(r, as_json))


@detect_app.command("fit-reference")
def fit_reference(
    output: Annotated[Path, typer.Option("--output", "-o", help="where to save the detector")],
    events: Annotated[Path | None, typer.Option(
        "--events", help="benign reference: an event directory or a dataset directory "
        "(events/, accounts.parquet, labels.jsonl: only benign accounts are used)")] = None,
    since: Annotated[str | None, typer.Option(help="reference window start")] = None,
    until: Annotated[str | None, typer.Option(help="reference window end")] = None,
    no_embeddings: Annotated[bool, typer.Option("--no-embeddings")] = False,
) -> None:
    """Fit the detector on benign traffic (or, without --events, on the shipped reference)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from distillwarden.events.reader import read_events

    from .reference import reference_traffic, save_detector
    from .scoring import DistillationDetector

    err = Console(stderr=True)
    accounts = None
    if events is None:
        with err.status("simulating the default benign reference…"):
            ev, accounts = reference_traffic()
    else:
        root = events
        ev_dir = root / "events" if (root / "events").is_dir() else root
        ev = read_events(ev_dir, since=since, until=until)
        if (root / "accounts.parquet").exists():
            accounts = pq.read_table(root / "accounts.parquet")
        labels = root / "labels.jsonl"
        if labels.exists():
            benign = [r["org"] for r in map(json.loads, labels.read_text().splitlines())
                      if r.get("label") == "benign"]
            ev = ev.filter(pc.is_in(ev.column("org_id"), value_set=pa.array(benign)))
    with err.status(f"fitting on {ev.num_rows} events…"):
        try:
            det = DistillationDetector(use_embeddings=not no_embeddings).fit(ev, accounts)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    save_detector(det, output)
    Console().print(
        f"fitted on {det.n_reference_accounts_} benign accounts; threshold at FPR 0.1%: "
        f"risk {det.threshold_for_fpr(0.001):.2f}; saved to {output}"
    )


def register(app: typer.Typer) -> None:
    """Mount ``distillwarden detect``."""
    app.add_typer(detect_app, name="detect")
