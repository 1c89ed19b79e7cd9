"""``distillwarden org|key|licence|status|audit|db``: the store from the command line.

Every command takes ``--config PATH`` (embedded defaults when omitted) and ``--json`` for
machine-readable output; changes take ``--actor`` (default ``cli:<user>``) and go through
the same services as the admin API, so they are validated, audited and pushed to gateways.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .._cli_common import fail, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from ..config import Settings

__all__ = ["register"]

T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (embedded defaults when omitted)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of tables")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="who makes the change (default cli:<user>)")
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="why (kept in the audit log)")]

_out = Console(highlight=False, soft_wrap=False, width=160)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

org_app = typer.Typer(help="Organizations (customer accounts).", no_args_is_help=True)
key_app = typer.Typer(help="API keys (shown once at creation).", no_args_is_help=True)
licence_app = typer.Typer(
    help="Licences: channel, regions, permitted uses, models, dates.", no_args_is_help=True
)
status_app = typer.Typer(
    help="Account status: warn, throttle, suspend, terminate, reinstate.", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
db_app = typer.Typer(help="The store's database schema.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the store's command groups to the root ``distillwarden`` app."""
    app.add_typer(org_app, name="org")
    app.add_typer(key_app, name="key")
    app.add_typer(licence_app, name="licence")
    app.add_typer(status_app, name="status")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")


# --------------------------------------------------------------------------- plumbing


_fail = fail
_settings = settings_or_exit


@contextmanager
def _session(config: Path | None) -> Iterator[tuple[Settings, Session]]:
    """Settings and a session in one transaction (committed on success, then its changes
    pushed to gateways over Redis when configured); the store is migrated first so the
    commands work on a fresh data dir."""
    from ..store import services
    from ..store.db import make_engine, make_sessionmaker, session_scope
    from ..store.errors import StoreError
    from ..store.migrate import upgrade_database
    from ..store.push import announce

    settings = _settings(config)
    url = settings.effective_database_url
    try:
        upgrade_database(url)
    except Exception as exc:
        raise _fail(f"cannot open or migrate the store at {url}: {exc}", 2) from exc
    engine = make_engine(url)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield settings, session
            changes = services.take_changes(session)
    except StoreError as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()
    announce(settings.redis_url, changes)


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and _ISO_TS.match(value):
        return value[:19].replace("T", " ")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(any)"
    return str(value)


_ISO_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$")

_STATUS_STYLE = {
    "active": "green",
    "warned": "yellow",
    "throttled": "dark_orange",
    "suspended": "bold red",
    "terminated": "bold white on red",
}


def _status(value: str) -> Text:
    return Text(value, style=_STATUS_STYLE.get(value, "white"))


def _transition(org_id: str, change: dict[str, Any]) -> Text:
    return Text.assemble(
        f"{org_id}: ",
        _status(change["from"]),
        " → ",
        _status(change["to"]),
        f" ({change['reason']})",
    )


def _cell(value: Any) -> Text:
    return value if isinstance(value, Text) else Text(_fmt(value))


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*[_cell(c) for c in row])
    _out.print(table)


def _fields(title: str, values: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left", show_header=False, box=None)
    table.add_column(style="bold cyan")
    table.add_column(overflow="fold")
    for k, v in values.items():
        table.add_row(k, _cell(v))
    _out.print(table)


def _key_dict(key: Any) -> dict[str, Any]:
    from ..store.audit import jsonable

    return jsonable(
        {
            "id": key.id,
            "org_id": key.org_id,
            "name": key.name,
            "prefix": key.prefix,
            "created_at": key.created_at,
            "expires_at": key.expires_at,
            "revoked_at": key.revoked_at,
            "revoked_reason": key.revoked_reason,
            "requests_per_min": key.requests_per_min,
            "tokens_per_min": key.tokens_per_min,
        }
    )


def _change_dict(change: Any) -> dict[str, Any]:
    from ..store.audit import jsonable

    return jsonable(
        {
            "org_id": change.org_id,
            "from": change.old_status,
            "to": change.new_status,
            "reason": change.reason,
            "actor": change.actor,
            "case_id": change.case_id,
            "at": change.at,
        }
    )


def _run(config: Path | None, fn: Callable[[Settings, Session], T]) -> T:
    with _session(config) as (settings, session):
        return fn(settings, session)


# --------------------------------------------------------------------------- org


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="display name, e.g. 'Acme Analytics'")],
    org_id: Annotated[
        str | None, typer.Option("--id", help="chosen id (generated if omitted)")
    ] = None,
    tier: Annotated[str, typer.Option(help="standard, strategic, …")] = "standard",
    email: Annotated[str | None, typer.Option(help="contact e-mail for notices")] = None,
    region: Annotated[str | None, typer.Option(help="home region, e.g. US")] = None,
    signed_up: Annotated[str | None, typer.Option(
        "--signed-up", help="when the account signed up (ISO-8601), for an account that "
        "existed before this store; detection links sign-up bursts")] = None,
    reason: Annotated[str, typer.Option("--reason", "-r")] = "created",
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an organization."""
    from ..store import services

    org = _run(
        config,
        lambda _s, s: services.org_dict(
            services.create_org(
                s,
                name=name,
                org_id=org_id,
                tier=tier,
                contact_email=email,
                home_region=region,
                metadata={"signed_up": signed_up} if signed_up else None,
                actor=_actor(actor),
                reason=reason,
            )
        ),
    )
    if as_json:
        _emit_json(org)
    else:
        _out.print(
            f"created organization [bold]{org['id']}[/] ({escape(org['name'])}), status "
            f"[green]{org['status']}[/]"
        )


@org_app.command("update")
def org_update(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    name: Annotated[str | None, typer.Option(help="new display name")] = None,
    tier: Annotated[str | None, typer.Option(help="standard, strategic, …")] = None,
    email: Annotated[str | None, typer.Option(help="contact e-mail ('' clears it)")] = None,
    region: Annotated[str | None, typer.Option(help="home region ('' clears it)")] = None,
    reason: Annotated[str, typer.Option("--reason", "-r")] = "updated",
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an organization's details (status has its own commands)."""
    from ..store import services

    org = _run(
        config,
        lambda _s, s: services.org_dict(
            services.update_org(
                s,
                org_id,
                name=name,
                tier=tier,
                contact_email=email,
                home_region=region,
                actor=_actor(actor),
                reason=reason,
            )
        ),
    )
    if as_json:
        _emit_json(org)
    else:
        _out.print(
            f"updated organization [bold]{org['id']}[/] ({escape(org['name'])}), "
            f"tier {escape(org['tier'])}"
        )


@org_app.command("list")
def org_list(
    status: Annotated[str | None, typer.Option(help="only accounts with this status")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List organizations with their status and licence channel."""
    from ..store import services

    def do(_: Settings, s: Session) -> list[dict[str, Any]]:
        rows = []
        for org in services.list_orgs(s, status=status):
            d = services.org_dict(org)
            lic = services.active_licence(s, org.id)
            d["licence"] = services.licence_dict(lic) if lic else None
            rows.append(d)
        return rows

    rows = _run(config, do)
    if as_json:
        _emit_json(rows)
        return
    _table(
        f"{len(rows)} organization(s)",
        ["id", "name", "tier", "status", "channel", "since"],
        [
            [
                r["id"],
                r["name"],
                r["tier"],
                _status(r["status"]),
                r["licence"]["channel"] if r["licence"] else "(no licence)",
                r["status_changed_at"],
            ]
            for r in rows
        ],
    )


@org_app.command("show")
def org_show(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an organization, its licence and its keys."""
    from ..store import services

    def do(_: Settings, s: Session) -> dict[str, Any]:
        d = services.org_dict(services.get_org(s, org_id))
        lic = services.active_licence(s, org_id)
        d["licence"] = services.licence_dict(lic) if lic else None
        d["keys"] = [_key_dict(k) for k in services.list_api_keys(s, org_id)]
        return d

    d = _run(config, do)
    if as_json:
        _emit_json(d)
        return
    _fields(
        f"organization {d['id']}",
        {
            "name": d["name"],
            "tier": d["tier"],
            "status": _status(d["status"]),
            "status reason": d["status_reason"],
            "changed by": d["status_actor"],
            "changed at": d["status_changed_at"],
            "contact": d["contact_email"],
            "home region": d["home_region"],
            "created": d["created_at"],
        },
    )
    lic = d["licence"]
    if lic:
        _fields(
            "licence",
            {
                k: lic[k]
                for k in (
                    "name",
                    "channel",
                    "regions",
                    "permitted_uses",
                    "models",
                    "valid_from",
                    "valid_until",
                    "requests_per_min",
                    "tokens_per_min",
                    "conditions",
                )
            },
        )
    else:
        _out.print(
            "[yellow]no licence[/]: set one with `distillwarden licence set "
            f"{d['id']} --reason ...`"
        )
    _print_keys(d["keys"])


# --------------------------------------------------------------------------- key


def _print_keys(keys: list[dict[str, Any]]) -> None:
    _table(
        f"{len(keys)} key(s)",
        ["id", "org", "prefix", "name", "created", "expires", "state"],
        [
            [
                k["id"],
                k["org_id"],
                k["prefix"] + "…",
                k["name"],
                k["created_at"],
                k["expires_at"],
                Text("revoked", "red") if k["revoked_at"] else Text("active", "green"),
            ]
            for k in keys
        ],
    )


@key_app.command("create")
def key_create(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    name: Annotated[str | None, typer.Option(help="a label, e.g. 'production'")] = None,
    expires: Annotated[str | None, typer.Option(help="expiry, ISO-8601 (e.g. 2027-01-31)")] = None,
    rpm: Annotated[
        int | None, typer.Option("--rpm", help="requests per minute for this key")
    ] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="tokens per minute for this key")] = None,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue an API key. The key is printed once; only its hash is stored."""
    from ..store import services

    def do(settings: Settings, s: Session) -> dict[str, Any]:
        key, plaintext = services.create_api_key(
            s,
            settings.secret_bytes(),
            org_id,
            name=name,
            expires_at=expires,
            requests_per_min=rpm,
            tokens_per_min=tpm,
            actor=_actor(actor),
        )
        return {"key": _key_dict(key), "secret": plaintext}

    d = _run(config, do)
    if as_json:
        _emit_json(d)
        return
    _out.print(f"created key [bold]{d['key']['id']}[/] for {org_id}")
    _out.print(f"[bold green]{d['secret']}[/]")
    _err.print("store this key now: it is not shown again")


@key_app.command("list")
def key_list(
    org_id: Annotated[str | None, typer.Argument(help="only this organization's keys")] = None,
    active: Annotated[bool, typer.Option("--active", help="hide revoked keys")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List keys (prefixes only; secrets are never stored)."""
    from ..store import services

    keys = _run(
        config,
        lambda _s, s: [
            _key_dict(k) for k in services.list_api_keys(s, org_id, include_revoked=not active)
        ],
    )
    if as_json:
        _emit_json(keys)
    else:
        _print_keys(keys)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="key id (key_…), see `key list`")],
    reason: ReasonOpt,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key at once (gateways stop accepting it within a second)."""
    from ..store import services

    d = _run(
        config,
        lambda _s, s: _key_dict(
            services.revoke_api_key(s, key_id, actor=_actor(actor), reason=reason)
        ),
    )
    if as_json:
        _emit_json(d)
    else:
        _out.print(f"revoked key [bold]{d['id']}[/] ({d['prefix']}…) of {d['org_id']}")


# --------------------------------------------------------------------------- licence


@licence_app.command("set")
def licence_set(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    reason: ReasonOpt,
    name: Annotated[str, typer.Option(help="licence name")] = "standard",
    channel: Annotated[str, typer.Option(help="'direct' or 'reseller:<name>'")] = "direct",
    region: Annotated[
        list[str] | None,
        typer.Option("--region", help="allowed region (repeat; none = every region)"),
    ] = None,
    use: Annotated[
        list[str] | None,
        typer.Option(
            "--use", help="permitted use (repeat): inference, evaluation, fine-tuning-data…"
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="allowed model or pattern (repeat; default '*')"),
    ] = None,
    valid_from: Annotated[str | None, typer.Option("--from", help="start, ISO-8601")] = None,
    valid_until: Annotated[str | None, typer.Option("--until", help="end, ISO-8601")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="tokens per minute")] = None,
    conditions: Annotated[str | None, typer.Option(help="conditions in words")] = None,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give an organization a new licence (the previous one is kept, inactive)."""
    from ..store import services

    d = _run(
        config,
        lambda _s, s: services.licence_dict(
            services.set_licence(
                s,
                org_id,
                name=name,
                channel=channel,
                regions=region or (),
                permitted_uses=use or ("inference",),
                models=model or ("*",),
                valid_from=valid_from,
                valid_until=valid_until,
                requests_per_min=rpm,
                tokens_per_min=tpm,
                conditions=conditions,
                actor=_actor(actor),
                reason=reason,
            )
        ),
    )
    if as_json:
        _emit_json(d)
    else:
        _out.print(
            f"licence [bold]{escape(d['name'])}[/] ({d['id']}) set for {org_id}: channel "
            f"{d['channel']}, regions {_fmt(d['regions'])}, uses "
            f"{_fmt(d['permitted_uses'])}, models {_fmt(d['models'])}"
        )


@licence_app.command("show")
def licence_show(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    history: Annotated[bool, typer.Option("--history", help="every version")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the active licence (or every version with --history)."""
    from ..store import services

    def do(_: Settings, s: Session) -> list[dict[str, Any]]:
        if history:
            return [services.licence_dict(x) for x in services.list_licences(s, org_id)]
        services.get_org(s, org_id)
        lic = services.active_licence(s, org_id)
        return [services.licence_dict(lic)] if lic else []

    rows = _run(config, do)
    if as_json:
        _emit_json(rows if history else (rows[0] if rows else None))
        return
    if not rows:
        raise _fail(
            f"{org_id} has no licence; set one with `distillwarden licence set "
            f"{org_id} --reason ...`"
        )
    _table(
        f"licence(s) of {org_id}",
        [
            "id",
            "name",
            "channel",
            "regions",
            "uses",
            "models",
            "valid until",
            "rpm",
            "conditions",
            "active",
        ],
        [
            [
                r["id"],
                r["name"],
                r["channel"],
                r["regions"],
                r["permitted_uses"],
                r["models"],
                r["valid_until"],
                r["requests_per_min"],
                r["conditions"],
                Text("yes", "green") if r["active"] else "no",
            ]
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- status


@status_app.command("set")
def status_set(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    status: Annotated[
        str, typer.Argument(help="active, warned, throttled, suspended or terminated")
    ],
    reason: ReasonOpt,
    case: Annotated[str | None, typer.Option("--case", help="related case id")] = None,
    factor: Annotated[
        float | None,
        typer.Option("--factor", help="throttled: fraction of the normal limits, (0, 1]"),
    ] = None,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an account's status (terminating revokes every key)."""
    from ..store import services

    d = _run(
        config,
        lambda _s, s: _change_dict(
            services.set_status(
                s,
                org_id,
                status,
                actor=_actor(actor),
                reason=reason,
                case_id=case,
                throttle_factor=factor,
            )
        ),
    )
    if as_json:
        _emit_json(d)
    else:
        _out.print(_transition(org_id, d))


@status_app.command("reinstate")
def status_reinstate(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    reason: ReasonOpt,
    conditions: Annotated[str | None, typer.Option(help="conditions of reinstatement")] = None,
    use: Annotated[
        list[str] | None, typer.Option("--use", help="new permitted uses (repeat)")
    ] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", help="new requests per minute")] = None,
    case: Annotated[str | None, typer.Option("--case", help="related case id")] = None,
    actor: ActorOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reinstate an account (even a terminated one), optionally on a stricter licence."""
    from ..store import services

    changes: dict[str, Any] = {}
    if use:
        changes["permitted_uses"] = use
    if rpm is not None:
        changes["requests_per_min"] = rpm
    d = _run(
        config,
        lambda _s, s: _change_dict(
            services.reinstate(
                s,
                org_id,
                actor=_actor(actor),
                reason=reason,
                conditions=conditions,
                licence_changes=changes,
                case_id=case,
            )
        ),
    )
    if as_json:
        _emit_json(d)
    else:
        _out.print(_transition(org_id, d))


@status_app.command("show")
def status_show(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an account's current status."""
    from ..store import services

    d = _run(config, lambda _s, s: services.org_dict(services.get_org(s, org_id)))
    view = {
        k: d[k]
        for k in (
            "id",
            "status",
            "status_reason",
            "status_actor",
            "status_changed_at",
            "throttle_factor",
        )
    }
    if as_json:
        _emit_json(view)
    else:
        _fields(
            f"status of {org_id}",
            {
                "status": _status(d["status"]),
                "reason": d["status_reason"],
                "by": d["status_actor"],
                "since": d["status_changed_at"],
                "throttle factor": d["throttle_factor"],
            },
        )


@status_app.command("history")
def status_history(
    org_id: Annotated[str, typer.Argument(help="organization id")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every status change of an account, oldest first."""
    from ..store import services

    rows = _run(config, lambda _s, s: [_change_dict(c) for c in services.status_history(s, org_id)])
    if as_json:
        _emit_json(rows)
        return
    _table(
        f"status history of {org_id}",
        ["at", "from", "to", "reason", "actor", "case"],
        [
            [r["at"], _status(r["from"]), _status(r["to"]), r["reason"], r["actor"], r["case_id"]]
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- audit


@audit_app.command("verify")
def audit_verify(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="verify an exported JSONL file instead of the database"),
    ] = None,
    anchor: Annotated[
        list[str] | None,
        typer.Option("--anchor", "-a", help="SEQ:HASH recorded earlier with `audit head` (repeat)"),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the hash chain (exit 1 if broken).

    Detects any edited, removed or reordered entry; with --anchor also a cut-off or
    recomputed chain.
    """
    from ..store import audit
    from ..store.errors import StoreError

    try:
        anchors = [audit.Anchor.parse(a) for a in anchor or ()]
        if file is not None:
            result = audit.verify_file(file, anchors)
        else:
            result = _run(config, lambda _s, s: audit.verify(s, anchors))
    except StoreError as exc:
        raise _fail(str(exc), 2) from exc
    if as_json:
        _emit_json(result.__dict__)
    elif result.ok:
        checked = f", {len(anchors)} anchor(s) matched" if anchors else ""
        _out.print(
            f"[green]audit chain intact[/]: {result.count} entries{checked}, head "
            f"{result.head_hash[:16]}…"
        )
    else:
        _err.print(
            f"[bold red]audit chain BROKEN[/] at seq {result.first_bad_seq}: "
            f"{escape(result.message)} ({result.count} entries verified before it)"
        )
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Print the latest entry as SEQ:HASH, to keep outside the database.

    Record it in a ticket or an e-mail and pass it to `audit verify --anchor` later.
    """
    from ..store import audit

    anchor = _run(config, lambda _s, s: audit.head(s))
    if as_json:
        _emit_json({"seq": anchor.seq, "hash": anchor.hash} if anchor else None)
    elif anchor is None:
        raise _fail("the audit log is empty")
    else:
        sys.stdout.write(f"{anchor}\n")


@audit_app.command("show")
def audit_show(
    limit: Annotated[int, typer.Option(help="how many entries (latest)")] = 20,
    subject: Annotated[str | None, typer.Option(help="only entries about this id")] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the latest audit entries."""
    from sqlalchemy import select

    from ..store import audit
    from ..store.models import AuditEntry

    def do(_: Settings, s: Session) -> list[dict[str, Any]]:
        q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)
        if subject is not None:
            q = q.where(AuditEntry.subject_id == subject)
        return [audit.entry_dict(e) for e in reversed(list(s.scalars(q)))]

    rows = _run(config, do)
    if as_json:
        _emit_json(rows)
        return
    _table(
        f"audit log (last {len(rows)})",
        ["seq", "at", "actor", "action", "subject", "reason", "hash"],
        [
            [
                r["seq"],
                r["at"][:19].replace("T", " "),
                r["actor"],
                r["action"],
                f"{r['subject_type']}:{r['subject_id']}",
                r["reason"],
                r["hash"][:12] + "…",
            ]
            for r in rows
        ],
    )


@audit_app.command("export")
def audit_export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="file (default stdout)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Export the chain as JSONL (verify it elsewhere with `audit verify --file`)."""
    from ..store import audit

    if out is None:
        result = _run(config, lambda _s, s: audit.export_jsonl(s, sys.stdout))
    else:
        with out.open("w", encoding="utf-8") as fh:
            result = _run(config, lambda _s, s: audit.export_jsonl(s, fh))
        _err.print(f"wrote {result.count} entries to {out}")
    if not result.ok:
        _err.print(
            f"[bold red]warning:[/] the exported chain is broken at seq "
            f"{result.first_bad_seq}: {escape(result.message)}"
        )
        raise typer.Exit(1)


# --------------------------------------------------------------------------- db


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Create or upgrade the store's schema (safe to run at every start)."""
    from ..store.migrate import upgrade_database

    settings = _settings(config)
    url = settings.effective_database_url
    try:
        rev = upgrade_database(url)
    except Exception as exc:
        raise _fail(f"cannot migrate {url}: {exc}", 2) from exc
    if as_json:
        _emit_json({"database": url, "revision": rev})
    else:
        _out.print(f"store at {escape(url)} is at revision [bold]{rev}[/]")
