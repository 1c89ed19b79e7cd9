"""``distillwarden policy|enforce|action|case|webhook|indicators``: enforcement from the shell.

Every command takes ``--config PATH`` (embedded defaults when omitted); changes take
``--actor`` (default ``cli:<user>``) and go through the same functions as the admin API, in
one transaction: an error changes nothing.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._cli_common import fail, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..config import Settings
    from .actions import PlannedAction

__all__ = ["register"]

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (embedded defaults when omitted)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="who makes the change (default cli:<user>)")
]

_out = Console(highlight=False, soft_wrap=False, width=160)
_err = Console(stderr=True, highlight=False)

policy_app = typer.Typer(help="Enforcement policies: validate, test, dry-run, activate.",
                         no_args_is_help=True)
enforce_app = typer.Typer(help="Apply the active policy to recorded findings.",
                          no_args_is_help=True)
action_app = typer.Typer(
    help="Act on accounts or a whole cluster: flag, warn, throttle, suspend, terminate, "
    "reinstate.", no_args_is_help=True)
case_app = typer.Typer(help="Investigation cases and evidence bundles.", no_args_is_help=True)
webhook_app = typer.Typer(help="Signed webhook destinations and deliveries.",
                          no_args_is_help=True)
indicators_app = typer.Typer(help="Share indicators with other providers (STIX 2.1).",
                             no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the enforcement command groups to the root ``distillwarden`` app."""
    app.add_typer(policy_app, name="policy")
    app.add_typer(enforce_app, name="enforce")
    app.add_typer(action_app, name="action")
    app.add_typer(case_app, name="case")
    app.add_typer(webhook_app, name="webhook")
    app.add_typer(indicators_app, name="indicators")


# --------------------------------------------------------------------------- plumbing


_fail = fail
_settings = settings_or_exit


@contextmanager
def _session(config: Path | None, *, migrate: bool = True) -> Iterator[tuple[Settings, Session]]:
    """Settings and one transaction (committed on success, rolled back on any error); the
    store is migrated first unless ``migrate`` is false (a loop that already did)."""
    from ..store.db import make_engine, make_sessionmaker, session_scope
    from ..store.errors import StoreError
    from ..store.migrate import upgrade_database
    from .indicators import IndicatorError
    from .policy import PolicyError
    from .webhooks import WebhookError

    settings = _settings(config)
    url = settings.effective_database_url
    try:
        if migrate:
            upgrade_database(url)
    except Exception as exc:
        raise _fail(f"cannot open or migrate the store at {url}: {exc}", 2) from exc
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield settings, session
    except (StoreError, PolicyError, WebhookError, IndicatorError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str, sort_keys=True))


def _load(path: Path) -> Any:
    from .policy import PolicyError, load_policy

    try:
        return load_policy(path)
    except PolicyError as exc:
        raise _fail(str(exc), 2) from exc


def _publish(settings: Settings, plans: list[PlannedAction]) -> None:
    """After the commit: push status changes to gateway replicas over Redis (if configured)."""
    from .propagation import publish_plans

    try:
        publish_plans(settings.redis_url, plans)
    except Exception as exc:  # replicas still pick the change up at their next poll
        _err.print(f"[yellow]warning:[/] Redis push failed ({escape(str(exc))}); gateways will "
                   f"see the change at their next poll (within {settings.status_poll_s}s)")


def _plans_table(plans: list[PlannedAction], title: str) -> None:
    t = Table(title=title, title_justify="left")
    for col in ("account", "action", "status", "rule", "findings", "note"):
        t.add_column(col)
    for p in plans:
        status = p.current_status if not p.changes_status else f"{p.current_status} → {p.new_status}"
        note = p.skipped or (f"capped by {p.capped_by} (wanted {p.requested})" if p.capped_by
                             else "")
        if p.case_id:
            note = (note + f" case {p.case_id}").strip()
        t.add_row(p.org_id, p.action, status, p.rule_id or "-", ",".join(p.finding_ids) or "-",
                  note)
    _out.print(t)


# --------------------------------------------------------------------------- policy


@policy_app.command("validate")
def policy_validate(file: Path) -> None:
    """Check a policy file; errors name the field and line."""
    policy = _load(file)
    _out.print(f"{file}: valid — policy {policy.name!r} v{policy.version}, "
               f"{len(policy.rules)} rules, {len(policy.overrides)} overrides")


@policy_app.command("test")
def policy_test(file: Path, json_out: JsonOpt = False) -> None:
    """Run every rule's examples (finding → expected action); exit 1 if any fails."""
    from .policy import run_examples

    loaded = _load(file)
    results = run_examples(loaded)
    untested = [r.id for r in loaded.rules if not r.examples]
    if json_out:
        _json([{**r.__dict__, "passed": r.passed} for r in results])
    else:
        for r in results:
            mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
            extra = "" if r.passed else f" (expected {r.expected}, got {r.actual}; matched " \
                f"{r.matched or 'nothing'}{', capped by ' + r.capped_by if r.capped_by else ''})"
            _out.print(f"{mark} {r.rule_id} example {r.index}: {r.actual}{escape(extra)}")
        failed = sum(not r.passed for r in results)
        _out.print(f"{len(results) - failed}/{len(results)} examples pass")
        if untested:
            _out.print(f"[yellow]rules without examples:[/] {', '.join(untested)} "
                       "(add an `examples:` list so that changes to them are tested)")
    if any(not r.passed for r in results):
        raise typer.Exit(1)


def _findings(session: Session, state: str | None, findings_file: Path | None) -> list[Any]:
    from sqlalchemy import select

    from ..store.models import Finding

    if findings_file is not None:
        try:
            text = findings_file.read_text()
        except OSError as exc:
            raise _fail(f"cannot read {findings_file}: {exc.strerror}", 2) from exc
        try:
            stripped = text.lstrip()
            if stripped.startswith("["):
                return list(json.loads(text))
            if stripped.startswith("{") and "\n" in stripped.strip():
                doc = json.loads(text)  # `distillwarden detect --json` output
                if isinstance(doc, dict) and isinstance(doc.get("findings"), list):
                    return list(doc["findings"])
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise _fail(f"{findings_file}: not JSON findings (a list, JSONL, or the output of "
                        f"`distillwarden detect --json`): {exc}", 2) from exc
    q = select(Finding).order_by(Finding.created_at)
    if state != "all":
        q = q.where(Finding.state == (state or "new"))
    return list(session.scalars(q))


@policy_app.command("dry-run")
def policy_dry_run(
    file: Path,
    config: ConfigOpt = None,
    state: Annotated[str, typer.Option(help="findings in this state, or 'all'")] = "all",
    findings_file: Annotated[Path | None, typer.Option(
        "--findings", help="JSON/JSONL findings instead of the store's")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show what a policy would do to recorded findings, changing nothing."""
    from .actions import apply_policy

    policy = _load(file)
    with _session(config) as (_, s):
        plans = apply_policy(s, _findings(s, state, findings_file), policy, actor="dry-run",
                             dry_run=True)
        s.rollback()
    if json_out:
        _json([p.to_dict() for p in plans])
    else:
        _plans_table(plans, f"dry run of policy {policy.name} v{policy.version}: nothing changed")


@policy_app.command("activate")
def policy_activate(
    file: Path, config: ConfigOpt = None, actor: ActorOpt = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="why")] = "policy update",
) -> None:
    """Make a policy the active one (its examples must pass); recorded in the audit log."""
    from .policy_store import activate_policy

    _load(file)
    with _session(config) as (_, s):
        row = activate_policy(s, file.read_text(), actor=_actor(actor), reason=reason,
                              source=str(file))
        _out.print(f"policy {row.name!r} is active (version #{row.id})")


@policy_app.command("show")
def policy_show(config: ConfigOpt = None) -> None:
    """Print the active policy's YAML (the shipped default if none was activated)."""
    from .policy import default_policy_path
    from .policy_store import active_policy_row

    with _session(config) as (_, s):
        row = active_policy_row(s)
        typer.echo(row.yaml_text if row else default_policy_path().read_text())


# --------------------------------------------------------------------------- enforce


@enforce_app.command("apply")
def enforce_apply(
    config: ConfigOpt = None, actor: ActorOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show, change nothing")] = False,
    policy_file: Annotated[Path | None, typer.Option(
        "--policy", help="policy file (default: the active policy)")] = None,
    state: Annotated[str, typer.Option(help="findings in this state, or 'all'")] = "new",
    findings_file: Annotated[Path | None, typer.Option(
        "--findings", help="JSON/JSONL findings (or `detect --json` output) instead of the "
        "store's")] = None,
    json_out: JsonOpt = False,
    watch: Annotated[float | None, typer.Option(
        "--watch", help="keep applying the policy to the store's new findings, checking every "
        "SECONDS (Ctrl-C to stop): beside `detect --follow`, a finding is acted on within a "
        "check")] = None,
    runs: Annotated[int | None, typer.Option("--runs", hidden=True)] = None,
) -> None:
    """Apply the active policy to new findings: statuses, cases, notices, webhooks."""
    if watch is not None:
        if dry_run or findings_file is not None:
            raise _fail("--watch acts on the store's findings as they come: it takes neither "
                        "--dry-run nor --findings", 2)
        if watch <= 0:
            raise _fail("--watch takes a positive number of seconds", 2)
        _apply_watch(config, actor, policy_file, state, json_out, watch, runs)
        return
    _apply_once(config, actor, dry_run, policy_file, state, findings_file, json_out)


def _apply_watch(config: Path | None, actor: str | None, policy_file: Path | None, state: str,
                 json_out: bool, every_s: float, runs: int | None) -> None:
    """Apply the policy every ``every_s`` seconds (``runs`` times, or until Ctrl-C); print
    only the runs that planned something."""
    import time

    done = 0
    try:
        while runs is None or done < runs:
            # the store is migrated on the first check only
            _apply_once(config, actor, False, policy_file, state, None, json_out, quiet=True,
                        migrate=done == 0)
            done += 1
            if runs is None or done < runs:
                time.sleep(every_s)
    except KeyboardInterrupt:
        return


def _apply_once(config: Path | None, actor: str | None, dry_run: bool,
                policy_file: Path | None, state: str, findings_file: Path | None,
                json_out: bool, *, quiet: bool = False, migrate: bool = True) -> None:
    from .actions import apply_policy
    from .policy_store import active_policy

    with _session(config, migrate=migrate) as (settings, s):
        policy = _load(policy_file) if policy_file else active_policy(s)
        plans = apply_policy(
            s, _findings(s, state, findings_file), policy,
            actor=_actor(actor) if actor else f"policy:{policy.name}", dry_run=dry_run,
            outbox_dir=settings.data_dir / "outbox",
        )
        if dry_run:
            s.rollback()
    _publish(settings, plans)
    if quiet and not plans:
        return
    if json_out:
        _json([p.to_dict() for p in plans])
        return
    title = f"policy {policy.name} v{policy.version}" + (" (dry run: nothing changed)"
                                                        if dry_run else "")
    _plans_table(plans, title)


# --------------------------------------------------------------------------- actions


def _action(
    name: str, orgs: list[str], cluster: str | None, reason: str, config: Path | None,
    actor: str | None, dry_run: bool, json_out: bool, **kw: Any,
) -> None:
    from .actions import take_action

    with _session(config) as (settings, s):
        plans = take_action(s, name, org_ids=orgs, cluster_id=cluster, actor=_actor(actor),
                            reason=reason, dry_run=dry_run,
                            outbox_dir=settings.data_dir / "outbox", **kw)
        if dry_run:
            s.rollback()
    _publish(settings, plans)
    if json_out:
        _json([p.to_dict() for p in plans])
    else:
        _plans_table(plans, f"{name}" + (" (dry run: nothing changed)" if dry_run else ""))


OrgsArg = Annotated[list[str] | None, typer.Argument(help="organization id(s)")]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="every member of a cluster")]
ReasonReq = Annotated[str, typer.Option("--reason", "-r", help="why (kept in the audit log)")]
CaseOpt = Annotated[str | None, typer.Option("--case", help="case this action belongs to")]
DryOpt = Annotated[bool, typer.Option("--dry-run", help="show, change nothing")]
NotifyOpt = Annotated[bool, typer.Option("--notify/--no-notify",
                                         help="notice to the customer's contact")]


def _simple(name: str, doc: str) -> None:
    def command(
        orgs: OrgsArg = None, cluster: ClusterOpt = None, reason: ReasonReq = ...,  # type: ignore[assignment]
        case: CaseOpt = None, notify: NotifyOpt = True, dry_run: DryOpt = False,
        config: ConfigOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False,
    ) -> None:
        _action(name, orgs or [], cluster, reason, config, actor, dry_run, json_out,
                case_id=case, notify=notify)

    command.__doc__ = doc
    action_app.command(name)(command)


_simple("flag", "Flag accounts for human review (no change for the customer).")
_simple("warn", "Warn accounts: status 'warned' and a notice to their contact.")
_simple("suspend", "Suspend accounts pending investigation (requests get account_suspended).")
_simple("terminate", "Terminate accounts and revoke all their keys.")


@action_app.command("throttle")
def action_throttle(
    orgs: OrgsArg = None, cluster: ClusterOpt = None, reason: ReasonReq = ...,  # type: ignore[assignment]
    factor: Annotated[float | None, typer.Option(
        "--factor", help="fraction of normal limits (default from config)")] = None,
    case: CaseOpt = None, notify: NotifyOpt = True, dry_run: DryOpt = False,
    config: ConfigOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False,
) -> None:
    """Throttle accounts: their rate limits are multiplied by a factor in (0, 1]."""
    _action("throttle", orgs or [], cluster, reason, config, actor, dry_run, json_out,
            case_id=case, notify=notify, throttle_factor=factor)


@action_app.command("reinstate")
def action_reinstate(
    orgs: OrgsArg = None, cluster: ClusterOpt = None, reason: ReasonReq = ...,  # type: ignore[assignment]
    conditions: Annotated[str | None, typer.Option(help="conditions of the new licence")] = None,
    licence: Annotated[list[str] | None, typer.Option(
        "--licence", help="licence change FIELD=VALUE (e.g. requests_per_min=60, "
        "permitted_uses=inference); repeatable")] = None,
    case: CaseOpt = None, notify: NotifyOpt = True, dry_run: DryOpt = False,
    config: ConfigOpt = None, actor: ActorOpt = None, json_out: JsonOpt = False,
) -> None:
    """Reinstate accounts, optionally under a stricter licence."""
    _action("reinstate", orgs or [], cluster, reason, config, actor, dry_run, json_out,
            case_id=case, notify=notify, conditions=conditions,
            licence_changes=_licence_changes(licence or []))


def _licence_changes(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--licence {item!r}: use FIELD=VALUE", 2)
        if key in ("regions", "permitted_uses", "models"):
            out[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif key in ("requests_per_min", "tokens_per_min"):
            try:
                out[key] = int(value)
            except ValueError as exc:
                raise _fail(f"--licence {key} must be an integer", 2) from exc
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- cases


@dataclass
class _Applied:
    org_id: str
    new_status: str | None
    applied: bool


@case_app.command("open")
def case_open(
    title: Annotated[str | None, typer.Option("--title", help="what is investigated")] = None,
    org: Annotated[str | None, typer.Option("--org", help="organization id")] = None,
    cluster: ClusterOpt = None,
    finding: Annotated[list[str] | None, typer.Option(
        "--finding", help="finding id; repeatable. Alone, opens the case on its account")] = None,
    reason: Annotated[str, typer.Option("--reason", "-r")] = "opened by hand",
    config: ConfigOpt = None, actor: ActorOpt = None,
) -> None:
    """Open a case about an account or a cluster, or from a finding; prints the case id."""
    from .cases import attach_finding, open_case, open_case_from_finding

    with _session(config) as (_, s):
        if org is None and cluster is None and finding:
            case = open_case_from_finding(s, finding[0], actor=_actor(actor), title=title,
                                          reason=reason)
            for fid in finding[1:]:
                attach_finding(s, case.id, fid, actor=_actor(actor))
        else:
            if not title:
                raise _fail("give --title (or open from a finding with --finding alone)", 2)
            case = open_case(s, title=title, org_id=org, cluster_id=cluster,
                             finding_ids=finding or [], actor=_actor(actor), reason=reason)
        typer.echo(case.id)


@case_app.command("note")
def case_note(case_id: str, text: str, config: ConfigOpt = None, actor: ActorOpt = None) -> None:
    """Add a note to a case's timeline."""
    from .cases import add_note

    with _session(config) as (_, s):
        e = add_note(s, case_id, text, actor=_actor(actor))
        typer.echo(f"{case_id}: note #{e.id} added")


@case_app.command("attach")
def case_attach(
    case_id: str,
    finding: Annotated[list[str] | None, typer.Option("--finding", help="finding id")] = None,
    event: Annotated[list[str] | None, typer.Option(
        "--event", help="event id (evt_...) from the event log; repeatable")] = None,
    file: Annotated[list[Path] | None, typer.Option(
        "--file", help="report file (watermark, forensics…); repeatable")] = None,
    kind: Annotated[str, typer.Option(help="kind of the attached files")] = "report",
    description: Annotated[str, typer.Option(help="what the evidence shows")] = "",
    events_dir: Annotated[Path | None, typer.Option("--events-dir")] = None,
    config: ConfigOpt = None, actor: ActorOpt = None,
) -> None:
    """Attach evidence: findings, example requests from the event log, report files."""
    from .cases import attach_file, attach_finding, attach_requests

    if not (finding or event or file):
        raise _fail("give --finding, --event or --file", 2)
    who = _actor(actor)
    with _session(config) as (settings, s):
        for fid in finding or []:
            attach_finding(s, case_id, fid, actor=who)
        if event:
            attach_requests(s, case_id, events_dir or settings.effective_events_dir, event,
                            actor=who, description=description)
        for f in file or []:
            attach_file(s, case_id, f, actor=who, kind=kind, description=description)
    typer.echo(f"{case_id}: {len(finding or [])} finding(s), {len(event or [])} request(s), "
               f"{len(file or [])} file(s) attached")


@case_app.command("respond")
def case_respond(case_id: str, text: str, config: ConfigOpt = None,
                 actor: ActorOpt = None) -> None:
    """Record the customer's response."""
    from .cases import record_response

    with _session(config) as (_, s):
        record_response(s, case_id, text, actor=_actor(actor))
    typer.echo(f"{case_id}: response recorded")


@case_app.command("decide")
def case_decide(
    case_id: str,
    decision: Annotated[str, typer.Argument(
        help="no_violation | reinstate_with_conditions | warn | throttle | keep_suspended | "
        "terminate")],
    reason: ReasonReq = ...,  # type: ignore[assignment]
    conditions: Annotated[str | None, typer.Option(help="conditions of the new licence")] = None,
    licence: Annotated[list[str] | None, typer.Option("--licence", help="FIELD=VALUE")] = None,
    factor: Annotated[float | None, typer.Option("--factor", help="throttle factor")] = None,
    no_apply: Annotated[bool, typer.Option("--no-apply",
                                           help="record only; do not change accounts")] = False,
    config: ConfigOpt = None, actor: ActorOpt = None,
) -> None:
    """Close a case with a decision and carry it out on the accounts concerned."""
    from .cases import decide

    with _session(config) as (settings, s):
        e = decide(s, case_id, decision, actor=_actor(actor), reason=reason,
                   apply=not no_apply, conditions=conditions,
                   licence_changes=_licence_changes(licence or []), throttle_factor=factor)
        applied = list(e.body.get("actions", []))
        for a in applied:
            typer.echo(f"{a['org_id']}: {a['action']} "
                       f"({a['skipped'] or a['current_status'] + ' → ' + str(a['new_status'])})")
    if settings.redis_url:
        from .propagation import publish_plans

        publish_plans(settings.redis_url, [_Applied(a["org_id"], a["new_status"], a["applied"])
                                           for a in applied])
    typer.echo(f"{case_id}: closed with decision {decision}")


@case_app.command("show")
def case_show(case_id: Annotated[str | None, typer.Argument()] = None, config: ConfigOpt = None,
              json_out: JsonOpt = False) -> None:
    """Show a case and its timeline (or list cases without an id)."""
    from ..store import services
    from .cases import case_dict

    with _session(config) as (_, s):
        if case_id is None:
            rows = services.list_cases(s)
            t = Table(title="cases", title_justify="left")
            for col in ("id", "state", "org", "cluster", "title", "updated"):
                t.add_column(col)
            for c in rows:
                t.add_row(c.id, c.state, c.org_id or "-", c.cluster_id or "-", c.title,
                          str(c.updated_at)[:19])
            _out.print(t)
            return
        doc = case_dict(s, case_id)
    if json_out:
        _json(doc)
        return
    _out.print(f"[bold]{escape(doc['title'])}[/] ({doc['id']}) — {doc['state']}"
               + (f", decision {doc['decision']}: {escape(doc['decision_reason'] or '')}"
                  if doc["decision"] else ""))
    for e in doc["timeline"]:
        body = e["body"]
        summary = (body.get("text") or body.get("title") or body.get("decision")
                   or (body.get("finding") or {}).get("id") or body.get("name")
                   or body.get("action") or (f"{len(body['requests'])} request(s)"
                                             if "requests" in body else ""))
        _out.print(f"  {e['at'][:19]}  {e['kind']:<10} {e['actor']:<16} {escape(str(summary))}")


@case_app.command("export")
def case_export(case_id: str, out: Annotated[Path, typer.Option("--out", "-o",
                help="folder for the bundle (must be empty)")], config: ConfigOpt = None) -> None:
    """Export a case as a self-contained evidence bundle (JSON + HTML + manifest)."""
    from .bundle import export_bundle

    with _session(config) as (_, s):
        index = export_bundle(s, case_id, out)
    typer.echo(f"evidence bundle: {index}")
    typer.echo(f"verify with: distillwarden case verify-bundle {out}")


@case_app.command("verify-bundle")
def case_verify_bundle(directory: Path) -> None:
    """Check an evidence bundle: file hashes, audit-entry hashes, timeline digests."""
    from .bundle import verify_bundle

    res = verify_bundle(directory)
    if res.ok:
        typer.echo(f"bundle intact: {res.files_checked} files, {res.audit_entries_checked} "
                   f"audit entries, {res.timeline_entries_checked} timeline entries verified")
        return
    for p in res.problems:
        _err.print(f"[red]✗[/] {escape(p)}")
    raise typer.Exit(1)


# --------------------------------------------------------------------------- webhooks


@webhook_app.command("add")
def webhook_add(
    url: str,
    event: Annotated[list[str] | None, typer.Option(
        "--event", help="event pattern, e.g. 'account.*'; repeatable (default all)")] = None,
    config: ConfigOpt = None, actor: ActorOpt = None,
) -> None:
    """Register a destination (SSRF-checked); prints the signing secret once."""
    from .webhooks import add_webhook

    with _session(config) as (settings, s):
        hook, secret = add_webhook(s, url, events=event or ["*"], actor=_actor(actor),
                                   allow_private=settings.webhooks_allow_private)
        typer.echo(f"{hook.id} -> {url}")
        typer.echo(f"signing secret (shown once): {secret}")


@webhook_app.command("list")
def webhook_list(config: ConfigOpt = None) -> None:
    """Registered destinations and their delivery counts."""
    from sqlalchemy import func, select

    from ..store.models import WebhookDelivery
    from .webhooks import list_webhooks

    with _session(config) as (_, s):
        t = Table(title="webhooks", title_justify="left")
        for col in ("id", "url", "events", "active", "pending", "delivered", "failed"):
            t.add_column(col)
        for h in list_webhooks(s):
            counts = dict(s.execute(
                select(WebhookDelivery.status, func.count()).where(
                    WebhookDelivery.webhook_id == h.id).group_by(WebhookDelivery.status)
            ).tuples().all())
            t.add_row(h.id, h.url, ",".join(h.events or []), str(h.active),
                      str(counts.get("pending", 0)), str(counts.get("delivered", 0)),
                      str(counts.get("failed", 0)))
        _out.print(t)


@webhook_app.command("deliver")
def webhook_deliver(
    config: ConfigOpt = None,
    watch: Annotated[float | None, typer.Option(
        "--watch", help="keep delivering, checking every SECONDS (Ctrl-C to stop)")] = None,
) -> None:
    """Send every due delivery (once, or continuously with --watch); retries are scheduled."""
    import time

    from ..store.db import make_engine, make_sessionmaker, session_scope
    from .webhooks import deliver_due

    with _session(config) as (settings, _):  # validates the config and migrates once
        pass
    engine = make_engine(settings.effective_database_url)
    factory = make_sessionmaker(engine)
    try:
        while True:
            with session_scope(factory) as s:
                rep = deliver_due(s, allow_private=settings.webhooks_allow_private)
            if watch is None or rep.delivered or rep.retrying or rep.failed:
                typer.echo(f"delivered {len(rep.delivered)}, retrying {len(rep.retrying)}, "
                           f"failed {len(rep.failed)}")
            if watch is None:
                return
            time.sleep(max(0.1, watch))
    except KeyboardInterrupt:
        return
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- indicators


def _sharing_key(key: str | None) -> bytes:
    from .indicators import COMMUNITY_SHARING_KEY

    return key.encode() if key else COMMUNITY_SHARING_KEY


SharingOpt = Annotated[str | None, typer.Option(
    "--sharing-key", envvar="DISTILLWARDEN_SHARING_KEY",
    help="key agreed with the trust group (default: the public community key)")]


@indicators_app.command("export")
def indicators_export(
    out: Annotated[Path, typer.Option("--out", "-o", help="STIX bundle file to write")],
    org: Annotated[list[str] | None, typer.Option("--org", help="organization; repeatable")
                   ] = None,
    cluster: Annotated[list[str] | None, typer.Option("--cluster", help="cluster; repeatable")
                       ] = None,
    producer: Annotated[str, typer.Option(help="name of your organization")] = "distillwarden operator",
    tlp: Annotated[str, typer.Option(help="white | green | amber | red")] = "amber",
    sharing_key: SharingOpt = None, config: ConfigOpt = None,
) -> None:
    """Export indicators (no customer content) for accounts/clusters as a STIX 2.1 bundle."""
    from .indicators import bundle_json, export_indicators

    with _session(config) as (settings, s):
        bundle = export_indicators(
            s, settings.effective_events_dir, installation_secret=settings.secret_bytes(),
            org_ids=org or [], cluster_ids=cluster or [], producer=producer,
            sharing_key=_sharing_key(sharing_key), tlp=tlp,
        )
    out.write_text(bundle_json(bundle))
    n = sum(1 for o in bundle.objects if o["type"] == "indicator")
    typer.echo(f"{out}: {n} indicators, {len(bundle.objects)} STIX objects")


@indicators_app.command("import")
def indicators_import(
    file: Path, sharing_key: SharingOpt = None, config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Match a shared STIX bundle against our accounts and event log."""
    from .indicators import import_indicators

    with _session(config) as (settings, s):
        rep = import_indicators(file, settings.effective_events_dir,
                                installation_secret=settings.secret_bytes(), session=s,
                                sharing_key=_sharing_key(sharing_key))
    if json_out:
        _json({"producer": rep.producer, "tlp": rep.tlp, "indicators": rep.indicators,
               "accounts": rep.accounts(), "matches": [m.__dict__ for m in rep.matches],
               "not_matchable": rep.not_matchable, "clusters": rep.cluster_summaries})
        return
    typer.echo(f"{rep.indicators} indicators from {rep.producer or 'unknown producer'} "
               f"({rep.tlp}); {len(rep.not_matchable)} not matchable here, {rep.ignored} ignored")
    t = Table(title="accounts matching shared indicators", title_justify="left")
    t.add_column("account")
    t.add_column("indicators matched")
    for org_id, n in rep.accounts().items():
        t.add_row(org_id, str(n))
    _out.print(t)
