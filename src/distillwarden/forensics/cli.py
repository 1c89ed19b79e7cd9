"""``distillwarden forensics audit``: audit a suspect model and write the evidence report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["app", "register"]

app = typer.Typer(
    name="forensics",
    help="Audit a suspect model: watermark radioactivity, canaries, identity and fingerprint.",
    no_args_is_help=True,
)
_err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _accounts(
    accounts: list[str], accounts_file: Path | None, all_accounts: bool, settings: Any
) -> list[str]:
    out = list(accounts)
    if accounts_file is not None:
        try:
            out += [
                line.strip()
                for line in accounts_file.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")
            ]
        except OSError as exc:
            raise _fail(f"cannot read {accounts_file}: {exc.strerror}") from exc
    if all_accounts:
        from ..store.db import make_engine, make_sessionmaker, session_scope
        from ..store.services import list_orgs

        factory = make_sessionmaker(make_engine(settings.effective_database_url))
        with session_scope(factory) as session:
            out += [org.id for org in list_orgs(session)]
    out = list(dict.fromkeys(out))
    if not out:
        raise _fail(
            "no candidate accounts: pass --account ID (repeatable), --accounts-file FILE "
            "or --all-accounts (every organization in the store)"
        )
    return out


def _licence_strengths(settings: Any, accounts: list[str]) -> dict[str, dict[str, Any]]:
    """Each candidate's watermark strength from its active licence in the store (accounts
    not in the store, or no store at all, are left out)."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from ..store.db import make_engine, make_sessionmaker, session_scope
    from ..store.models import Licence
    from ..watermark.licence import parse_licence_watermark

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    try:
        factory = make_sessionmaker(make_engine(url))
        with session_scope(factory) as session:
            rows = session.execute(
                select(Licence.org_id, Licence.watermark).where(
                    Licence.active.is_(True), Licence.org_id.in_(accounts)
                )
            ).all()
    except SQLAlchemyError:
        return {}
    for org_id, watermark in rows:
        try:
            strength = dict(parse_licence_watermark(watermark or {}).strength)
        except ValueError:
            continue
        out[org_id] = {k: v for k, v in strength.items() if k in ("gamma", "context_width")}
    return out


def _strength_for(settings: Any, accounts: list[str]) -> dict[str, Any]:
    """The green-list settings shared by the candidates' licences; a clear error when the
    candidates' licences disagree (they must then be audited in separate runs)."""
    groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for account, strength in _licence_strengths(settings, accounts).items():
        groups.setdefault(tuple(sorted(strength.items())), []).append(account)
    if len(groups) > 1:
        lines = [
            f"  {dict(k) or 'defaults'}: {', '.join(sorted(v)[:5])}{' …' if len(v) > 5 else ''}"
            for k, v in groups.items()
        ]
        raise _fail(
            "the candidates' licences use different green-list settings:\n"
            + "\n".join(lines)
            + "\naudit each group separately (--account … --watermark '{...}')"
        )
    return dict(next(iter(groups))) if groups else {}


def _served_from_events(events_dir: Path, accounts: list[str]) -> list[str]:
    """``response_text`` of every event of the candidate accounts in the event log."""
    from ..events.reader import read_events

    table = read_events(events_dir, orgs=accounts, columns=["org_id", "response_text"])
    return [t for t in table.column("response_text").to_pylist() if t]


@app.command("audit")
def audit(
    out: Path = typer.Option(..., "--out", "-o", help="folder for audit.json and audit.html"),
    endpoint: str | None = typer.Option(None, help="suspect's OpenAI-compatible base URL (…/v1)"),
    model: str | None = typer.Option(None, help="model name to request from --endpoint"),
    api_key: str | None = typer.Option(None, envvar="SUSPECT_API_KEY", help="suspect API key"),
    corpus: Path | None = typer.Option(None, help="suspect output as JSONL or a text file"),
    field: str | None = typer.Option(None, help="JSONL field holding the text (default text)"),
    prompt_field: str | None = typer.Option(None, help="JSONL field holding the prompt"),
    account: list[str] = typer.Option([], "--account", "-a", help="candidate account id"),
    accounts_file: Path | None = typer.Option(None, help="file with one account id per line"),
    all_accounts: bool = typer.Option(False, help="every organization in the store"),
    config: Path | None = typer.Option(None, "--config", "-c", help="distillwarden YAML config"),
    watermark: str | None = typer.Option(
        None, help='licence watermark settings as JSON, e.g. {"delta": 2.0, "gamma": 0.25}'
    ),
    received: Path | None = typer.Option(
        None, help="what the candidate accounts were served (JSONL/text): score only its contexts"
    ),
    received_field: str | None = typer.Option(None, help="JSONL field of --received"),
    events: Path | None = typer.Option(
        None, help="event log folder: score only contexts the candidates were served"
    ),
    prompts: Path | None = typer.Option(None, help="radioactivity prompts (lines or JSONL)"),
    samples: int = typer.Option(1, min=1, help="answers per prompt"),
    max_tokens: int = typer.Option(200, min=8, help="tokens per radioactivity answer"),
    temperature: float = typer.Option(0.8, min=0.0, max=2.0),
    seed: int = typer.Option(0),
    canaries: Path | None = typer.Option(None, help="canaries JSONL (account, canary, trigger)"),
    reference: bool = typer.Option(
        True, "--reference/--no-reference", help="run probes against our local model"
    ),
    reference_endpoint: str | None = typer.Option(
        None, help="our model's endpoint for the probes (default: the local model in-process)"
    ),
    reference_model: str = typer.Option("smollm2-135m-instruct"),
    alpha: float = typer.Option(1e-3, min=1e-12, max=0.5, help="significance level"),
    permutations: int = typer.Option(9999, min=99, help="probe permutation count"),
) -> None:
    """Audit a suspect model (endpoint or corpus) and write an evidence report.

    Example: distillwarden forensics audit --endpoint http://127.0.0.1:9000/v1 --model rival
    --account org_acme --out audit-rival
    """
    from ..config import ConfigError, load_settings
    from ..upstream.model import ModelUnavailable, load_local_model
    from ..watermark import WatermarkConfigMismatch, derive_account_key
    from ..watermark.licence import config_for_tokenizer, parse_licence_watermark
    from .audit import AuditOptions, run_audit
    from .canaries import read_canaries
    from .prompts import RADIOACTIVITY_PROMPTS, read_prompts
    from .reference import LocalReference
    from .report import write_report
    from .suspect import CorpusSuspect, EndpointSuspect, ForensicsError

    if (endpoint is None) == (corpus is None):
        raise _fail("give exactly one suspect: --endpoint URL --model NAME, or --corpus FILE")
    if endpoint is not None and not model:
        raise _fail("--endpoint needs --model (the name the suspect's API expects)")
    try:
        settings = load_settings(config)
        secret = settings.secret_bytes()
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    names = _accounts(account, accounts_file, all_accounts, settings)
    try:
        strength = (
            dict(parse_licence_watermark(watermark).strength)
            if watermark
            else _strength_for(settings, names)
        )
        prompt_list = read_prompts(prompts) if prompts else list(RADIOACTIVITY_PROMPTS)
        canary_list = read_canaries(canaries) if canaries else []
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    _err.print("loading our model's tokenizer and watermark settings…")
    try:
        local = load_local_model()
    except ModelUnavailable as exc:
        raise _fail(str(exc)) from exc
    wm_config = config_for_tokenizer(local.tokenizer, strength)
    keys = {name: derive_account_key(secret, name) for name in names}
    suspect: EndpointSuspect | CorpusSuspect
    try:
        if corpus is not None:
            suspect = CorpusSuspect.read(str(corpus), field=field, prompt_field=prompt_field)
        else:
            assert endpoint is not None and model is not None
            suspect = EndpointSuspect(endpoint, model, api_key)
    except ForensicsError as exc:
        raise _fail(str(exc)) from exc
    served: list[str] | None = None
    try:
        if received is not None:
            served = CorpusSuspect.read(str(received), field=received_field).texts
        if events is not None:
            served = (served or []) + _served_from_events(events, names)
    except ForensicsError as exc:
        raise _fail(str(exc)) from exc
    if served is not None and not served:
        raise _fail("no served texts found for the candidate accounts; drop --received/--events")
    ref: Any = None
    if reference and endpoint is not None:
        ref = (
            EndpointSuspect(reference_endpoint, reference_model)
            if reference_endpoint
            else LocalReference(local)
        )
    options = AuditOptions(
        prompts=prompt_list,
        samples_per_prompt=samples,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        alpha=alpha,
        permutations=permutations,
        canaries=canary_list,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_err,
    ) as prog:
        tasks: dict[str, Any] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            prog.update(tasks[stage], completed=done, total=total)

        try:
            report = run_audit(
                suspect,
                tokenizer=local.tokenizer,
                keys=keys,
                config=wm_config,
                reference=ref,
                options=options,
                received=served,
                progress=tick,
            )
        except (ForensicsError, WatermarkConfigMismatch, ValueError) as exc:
            raise _fail(str(exc)) from exc
    paths = write_report(report, out)
    summary = {
        "verdict": report.verdict,
        "findings": report.findings,
        "json": str(paths["json"]),
        "html": str(paths["html"]),
    }
    typer.echo(json.dumps(summary, indent=2))


def register(root: typer.Typer) -> None:
    """Mount ``distillwarden forensics`` on the root CLI."""
    root.add_typer(app, name="forensics")
