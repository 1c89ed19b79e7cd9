"""``distillwarden import …`` and ``distillwarden events …``: bring traffic in, look at the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

__all__ = ["events_app", "import_app", "register"]

import_app = typer.Typer(help="Import traffic logged by other gateways into the event log.",
                         no_args_is_help=True)
events_app = typer.Typer(help="Inspect, verify and export the event log.", no_args_is_help=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (embedded defaults when omitted)"),
]
DirOpt = Annotated[
    str | None,
    typer.Option("--dir", help="event directory or fsspec URL (default: the installation's "
                               "event log)"),
]


def _console() -> Console:
    return Console(stderr=True)


def _out() -> Console:
    """Report lines are not wrapped, so paths and reasons stay greppable."""
    return Console(soft_wrap=True)


def _quiet_logs() -> None:
    """The commands print their own reports; don't echo each skipped line twice."""
    if not logging.getLogger("distillwarden.events").handlers:
        logging.getLogger("distillwarden.events").setLevel(logging.ERROR)


def _settings(config: Path | None) -> Any:
    from ..config import ConfigError, load_settings

    _quiet_logs()
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _events_dir(directory: str | None, config: Path | None) -> str | Path:
    if directory is not None:
        return directory
    return Path(_settings(config).effective_events_dir)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=_console(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_report(report: Any) -> None:
    con = _out()
    con.print(report.summary())
    if report.accounts or report.accounts_skipped:
        con.print(f"accounts: {report.accounts} read, {report.accounts_skipped} skipped")
    if report.labels:
        con.print(f"labels: {report.labels}")
    if report.store_orgs_created or report.store_errors:
        con.print(f"store: {report.store_orgs_created} organization(s) created")
        for err in report.store_errors[:10]:
            con.print(f"  [yellow]store: {err}[/]")
    for lineno, reason in report.bad_lines[:10]:
        con.print(f"  [yellow]line {lineno}: {reason}[/]")
    if len(report.bad_lines) > 10:
        con.print(f"  … and {report.skipped - 10} more skipped line(s)")


def _with_store(config: Path | None, fn: Callable[[Any], Any]) -> Any:
    from ..store.db import make_engine, make_sessionmaker, session_scope
    from ..store.migrate import upgrade_database

    settings = _settings(config)
    url = settings.effective_database_url
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            return fn(session)
    finally:
        engine.dispose()


def _check_file(path: Path, what: str) -> None:
    if not path.is_file():
        typer.echo(f"error: {what} {path} does not exist or is not a file", err=True)
        raise typer.Exit(2)


@import_app.command("traffic")
def import_traffic(
    file: Annotated[Path, typer.Argument(help="traffic interchange JSONL (formats/traffic-jsonl.md)")],
    accounts: Annotated[Path | None, typer.Option(help="accounts JSONL file")] = None,
    labels: Annotated[Path | None, typer.Option(help="ground-truth labels JSONL (needs --out)")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="write a dataset directory (events/, accounts.parquet, labels.jsonl) "
                          "instead of importing into the installation"),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Import traffic in the interchange JSONL format.

    Without --out the events go into the installation's event log and missing organizations
    are created in the store; IPs, user agents and payment fingerprints are hashed with the
    installation secret either way.
    """
    from .importers import ImportFormatError, import_dataset, import_interchange

    _check_file(file, "traffic file")
    if accounts is not None:
        _check_file(accounts, "accounts file")
    if labels is not None and out is None:
        typer.echo("error: --labels needs --out DIR (labels belong to a dataset for "
                   "`distillwarden evaluate`, not to the live installation)", err=True)
        raise typer.Exit(2)
    settings = _settings(config)
    secret = settings.secret_bytes()
    try:
        with _progress(f"importing {file.name}") as progress:
            if out is not None:
                report = import_dataset(file, out, secret, accounts_path=accounts,
                                        labels_path=labels, progress=progress)
            else:
                report = _with_store(config, lambda session: import_interchange(
                    file, settings.effective_events_dir, secret, accounts_path=accounts,
                    session=session, progress=progress))
    except ImportFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print_report(report)
    if out is not None:
        _out().print(f"dataset written to {out}")


@import_app.command("litellm")
def import_litellm_cmd(
    file: Annotated[Path, typer.Argument(help="LiteLLM_SpendLogs export: CSV, JSON or JSONL")],
    org_from: Annotated[
        str, typer.Option(help="account id from: auto, org, team, user, end_user, key")
    ] = "auto",
    out: Annotated[
        Path | None,
        typer.Option(help="write a dataset directory instead of importing into the installation"),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Import LiteLLM proxy spend logs (needs prompts/responses stored for content signals)."""
    from .importers import ImportFormatError, write_accounts_for_orgs
    from .litellm import ORG_SOURCES, import_litellm

    _check_file(file, "spend-log file")
    if org_from not in ORG_SOURCES:
        typer.echo(f"error: --org-from must be one of {', '.join(ORG_SOURCES)}", err=True)
        raise typer.Exit(2)
    settings = _settings(config)
    secret = settings.secret_bytes()
    try:
        with _progress(f"importing {file.name}") as progress:
            if out is not None:
                report = import_litellm(file, out / "events", secret, org_from=org_from,
                                        progress=progress)
                write_accounts_for_orgs(out / "accounts.parquet", report.orgs)
            else:
                report = _with_store(config, lambda session: import_litellm(
                    file, settings.effective_events_dir, secret, org_from=org_from,
                    session=session, progress=progress))
    except ImportFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print_report(report)


@events_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Option(help="interchange JSONL file to write")],
    since: Annotated[str | None, typer.Option(help="from this time (ISO 8601, inclusive)")] = None,
    until: Annotated[str | None, typer.Option(help="until this time (ISO 8601, exclusive)")] = None,
    org: Annotated[list[str] | None, typer.Option(help="only this organization (repeatable)")] = None,
    directory: DirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export the event log in the traffic interchange format (IPs/UAs only as hashes)."""
    from .importers import export_interchange

    _quiet_logs()
    src = _events_dir(directory, config)
    try:
        report = export_interchange(src, out, since=since, until=until, orgs=org or None)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _out().print(f"exported {report.events} event(s) to {out}")
    for s in report.read.skipped:
        _out().print(f"  [yellow]skipped {s.path}: {s.reason}[/]")


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@events_app.command("stats")
def stats_cmd(
    directory: DirOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Segments, rows, time range, organizations and pending spools of the event log."""
    from .stats import event_log_stats

    _quiet_logs()
    src = _events_dir(directory, config)
    st = event_log_stats(src)
    if as_json:
        typer.echo(json.dumps({
            "directory": str(src), "segments": st.segments, "events": st.rows,
            "size_bytes": st.size_bytes,
            "first_event": st.ts_min.isoformat() if st.ts_min else None,
            "last_event": st.ts_max.isoformat() if st.ts_max else None,
            "organizations": st.orgs, "spools_pending": st.spools,
            "rejected_files": st.rejected_files,
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in st.skipped],
        }, indent=2))
        return
    table = Table(title=f"event log {src}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("segments", str(st.segments))
    table.add_row("events", f"{st.rows:,}")
    table.add_row("size on disk", _fmt_bytes(st.size_bytes))
    table.add_row("first event", f"{st.ts_min:%Y-%m-%d %H:%M:%S} UTC" if st.ts_min else "-")
    table.add_row("last event", f"{st.ts_max:%Y-%m-%d %H:%M:%S} UTC" if st.ts_max else "-")
    table.add_row("organizations", f"{st.orgs:,}")
    table.add_row("spools pending", str(st.spools))
    table.add_row("rejected files", str(st.rejected_files))
    table.add_row("skipped (unreadable)", str(len(st.skipped)))
    _out().print(table)
    for s in st.skipped:
        _out().print(f"  [yellow]skipped {s.path}: {s.reason}[/]")


@events_app.command("verify")
def verify_cmd(directory: DirOpt = None, config: ConfigOpt = None) -> None:
    """Decode every row of every segment; list corrupt or foreign ones (exit code 1 if any)."""
    from .reader import verify_segments

    _quiet_logs()
    src = _events_dir(directory, config)
    good, report = verify_segments(src)
    con = _out()
    con.print(f"{len(good)} segment(s) OK, {report.rows:,} event(s); "
              f"{len(report.skipped)} bad segment(s)")
    for s in report.skipped:
        con.print(f"  [red]{s.path}: {s.reason}[/]")
    if report.skipped:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount ``import`` and ``events`` on the root command."""
    app.add_typer(import_app, name="import")
    app.add_typer(events_app, name="events")
