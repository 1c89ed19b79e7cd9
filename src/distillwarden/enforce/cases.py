"""Investigation cases: opened from a finding or by hand, with a timeline of notes, evidence,
the customer's response and a decision.

Every change is a ``CaseEntry`` on the case's timeline and an entry in the hash-chained audit
log, in the caller's transaction. Evidence is copied into the case when attached (findings as
they were, example requests pulled from the event log, report files with their sha256), so a
later change to the source cannot alter what the case recorded. :mod:`.bundle` exports it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import audit
from ..store.errors import InvalidInput, InvalidTransition, NotFound
from ..store.models import Case, CaseEntry, Cluster, Finding, Organization, utcnow
from . import webhooks

__all__ = [
    "CASE_STATES",
    "DECISIONS",
    "MAX_ATTACHMENT_BYTES",
    "add_note",
    "attach_file",
    "attach_finding",
    "attach_requests",
    "case_dict",
    "decide",
    "entry_dict",
    "entry_digest",
    "finding_dict",
    "get_case",
    "open_case",
    "open_case_for",
    "open_case_for_cluster",
    "open_case_from_finding",
    "record_response",
    "timeline",
]

CASE_STATES = ("open", "awaiting_response", "closed")

#: Decisions an analyst can close a case with, and the account action each implies.
DECISIONS: dict[str, str | None] = {
    "no_violation": "reinstate",
    "reinstate_with_conditions": "reinstate",
    "warn": "warn",
    "throttle": "throttle",
    "keep_suspended": None,
    "terminate": "terminate",
}

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024

#: Timeline entries that are also sent as ``case.<kind>`` webhook events.
_WEBHOOK_KINDS = ("opened", "decision")

#: Columns of an example request kept as evidence (never IP/UA hashes' sources: we have none).
REQUEST_COLUMNS = (
    "event_id", "ts", "org_id", "key_prefix", "channel", "licence", "region", "endpoint",
    "model", "last_user_text", "prompt_text", "response_text", "temperature", "max_tokens",
    "n", "logprobs", "top_logprobs", "status", "ip_net_hash",
)


def _actor(actor: str) -> str:
    if not actor or not actor.strip():
        raise InvalidInput("every case change needs an actor (who makes it)")
    return actor.strip()


def get_case(session: Session, case_id: str) -> Case:
    """The case, or :class:`NotFound` telling how to list cases."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"unknown case {case_id!r}; list cases with `distillwarden case show`")
    return case


def _entry(
    session: Session, case: Case, kind: str, body: Mapping[str, Any], actor: str, reason: str
) -> CaseEntry:
    now = utcnow()
    clean = audit.jsonable(dict(body))
    entry = CaseEntry(case_id=case.id, kind=kind, body=clean, actor=actor, at=now)
    session.add(entry)
    case.updated_at = now
    session.flush()
    digest = entry_digest(case.id, entry.id, kind, clean, actor, now)
    audit.append(
        session,
        actor=actor,
        action=f"case.{kind}",
        subject_type="case",
        subject_id=case.id,
        reason=reason,
        payload={"entry_id": entry.id, "kind": kind, "entry_sha256": digest,
                 "org_id": case.org_id},
    )
    if kind in _WEBHOOK_KINDS:
        webhooks.enqueue(
            session, f"case.{kind}",
            {"case_id": case.id, "title": case.title, "org_id": case.org_id,
             "cluster_id": case.cluster_id, "decision": clean.get("decision"),
             "reason": clean.get("reason")},
            key=f"case:{case.id}:{entry.id}",
        )
    return entry


def entry_digest(
    case_id: str, entry_id: int, kind: str, body: Any, actor: str, at: datetime | str
) -> str:
    """sha256 of a timeline entry's canonical JSON; the audit log records it, which binds
    every timeline entry (and attached evidence) to the hash chain."""
    doc = {
        "case_id": case_id, "entry_id": entry_id, "kind": kind, "actor": actor,
        "at": at if isinstance(at, str) else audit.format_ts(at), "body": audit.jsonable(body),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as plain JSON (as attached to cases and bundles)."""
    return audit.jsonable(
        {
            "id": f.id, "org_id": f.org_id, "cluster_id": f.cluster_id, "detector": f.detector,
            "risk": f.risk, "p_value": f.p_value, "threshold_fpr": f.threshold_fpr,
            "signals": f.signals or {}, "evidence": f.evidence or {},
            "window_start": f.window_start, "window_end": f.window_end, "state": f.state,
            "created_at": f.created_at,
        }
    )


def open_case(
    session: Session,
    *,
    title: str,
    actor: str,
    org_id: str | None = None,
    cluster_id: str | None = None,
    finding_ids: Sequence[str] = (),
    reason: str = "opened by hand",
) -> Case:
    """Open a case about an organization and/or a cluster, attaching ``finding_ids``."""
    actor = _actor(actor)
    if not title or not title.strip():
        raise InvalidInput("a case needs a title saying what is investigated")
    if org_id is None and cluster_id is None:
        raise InvalidInput("a case concerns an organization (org_id) or a cluster (cluster_id)")
    if org_id is not None and session.get(Organization, org_id) is None:
        raise NotFound(f"unknown organization {org_id!r}; list them with `distillwarden org list`")
    if cluster_id is not None and session.get(Cluster, cluster_id) is None:
        raise NotFound(f"unknown cluster {cluster_id!r}; clusters come from `distillwarden detect`")
    findings = [_get_finding(session, fid) for fid in finding_ids]
    now = utcnow()
    case = Case(
        id="case_" + secrets.token_hex(6), title=title.strip()[:300], org_id=org_id,
        cluster_id=cluster_id, state="open", opened_by=actor, created_at=now, updated_at=now,
    )
    session.add(case)
    session.flush()
    _entry(session, case, "opened",
           {"title": case.title, "org_id": org_id, "cluster_id": cluster_id, "reason": reason},
           actor, reason)
    for f in findings:
        _entry(session, case, "finding", {"finding": finding_dict(f)}, actor,
               f"finding {f.id} attached")
    return case


def open_case_from_finding(
    session: Session, finding_id: str, *, actor: str, title: str | None = None,
    reason: str = "opened from a finding",
) -> Case:
    """Open a case about a finding's account (and its cluster, when the store has it),
    with the finding attached."""
    f = _get_finding(session, finding_id)
    cluster_id = f.cluster_id if f.cluster_id and session.get(Cluster, f.cluster_id) else None
    return open_case(
        session,
        title=title or f"Investigation of {f.org_id}: {f.detector} finding (risk {f.risk:.1f})",
        actor=actor, org_id=f.org_id, cluster_id=cluster_id, finding_ids=[f.id], reason=reason,
    )


def open_case_for(
    session: Session, org_id: str, *, title: str, actor: str, reason: str,
    finding_ids: Sequence[str] = (), cluster_id: str | None = None,
) -> tuple[Case, bool]:
    """The organization's open case (attaching new findings) or a new one; ``(case, created)``."""
    existing = session.scalars(
        select(Case)
        .where(Case.org_id == org_id, Case.state != "closed")
        .order_by(Case.created_at.desc())
        .limit(1)
    ).first()
    if existing is None:
        case = open_case(session, title=title, actor=actor, org_id=org_id,
                         cluster_id=cluster_id, finding_ids=finding_ids, reason=reason)
        return case, True
    _attach_new(session, existing, finding_ids, actor)
    return existing, False


def open_case_for_cluster(
    session: Session, cluster_id: str, *, title: str, actor: str, reason: str,
    finding_ids: Sequence[str] = (),
) -> tuple[Case, bool]:
    """The cluster's open case (attaching new findings) or a new one: one investigation for
    all the accounts of a hydra, not one per account. Returns ``(case, created)``."""
    existing = session.scalars(
        select(Case)
        .where(Case.cluster_id == cluster_id, Case.org_id.is_(None), Case.state != "closed")
        .order_by(Case.created_at.desc())
        .limit(1)
    ).first()
    if existing is None:
        case = open_case(session, title=title, actor=actor, cluster_id=cluster_id,
                         finding_ids=finding_ids, reason=reason)
        return case, True
    _attach_new(session, existing, finding_ids, actor)
    return existing, False


def _attach_new(session: Session, case: Case, finding_ids: Sequence[str], actor: str) -> None:
    rows = session.scalars(
        select(CaseEntry).where(CaseEntry.case_id == case.id, CaseEntry.kind == "finding")
    )
    have = {(e.body or {}).get("finding", {}).get("id") for e in rows}
    for fid in finding_ids:
        if fid not in have:
            attach_finding(session, case.id, fid, actor=actor)
            have.add(fid)


def _get_finding(session: Session, finding_id: str) -> Finding:
    f = session.get(Finding, finding_id)
    if f is None:
        raise NotFound(f"unknown finding {finding_id!r}; list findings with `distillwarden detect`")
    return f


def _open(session: Session, case_id: str) -> Case:
    case = get_case(session, case_id)
    if case.state == "closed":
        raise InvalidTransition(
            f"case {case_id} is closed ({case.decision}); open a new case to continue"
        )
    return case


def add_note(session: Session, case_id: str, text: str, *, actor: str) -> CaseEntry:
    """An analyst's note on the timeline."""
    actor = _actor(actor)
    if not text or not text.strip():
        raise InvalidInput("a note needs text")
    return _entry(session, _open(session, case_id), "note", {"text": text.strip()}, actor, "note")


def attach_finding(session: Session, case_id: str, finding_id: str, *, actor: str) -> CaseEntry:
    """Attach a finding as it is now (a copy: later re-scoring does not change the case)."""
    actor = _actor(actor)
    case = _open(session, case_id)
    f = _get_finding(session, finding_id)
    return _entry(session, case, "finding", {"finding": finding_dict(f)}, actor,
                  f"finding {finding_id} attached")


def _request_rows(events_dir: Path, event_ids: Sequence[str], orgs: Sequence[str] | None
                  ) -> list[dict[str, Any]]:
    from ..events.reader import read_events

    table: pa.Table = read_events(events_dir, orgs=list(orgs) if orgs else None)
    wanted = pa.array(list(event_ids), type=pa.string())
    table = table.filter(pc.is_in(table.column("event_id"), value_set=wanted))
    cols = [c for c in REQUEST_COLUMNS if c in table.column_names]
    return table.select(cols).to_pylist()


def attach_requests(
    session: Session,
    case_id: str,
    events_dir: str | Path,
    event_ids: Sequence[str],
    *,
    actor: str,
    description: str = "",
    max_chars: int = 4000,
) -> CaseEntry:
    """Copy example requests (by event id) from the event log into the case.

    Only the case's own organizations' events are searched; ids that are not found are an
    error listing them, so an analyst never attaches evidence from another customer.
    """
    actor = _actor(actor)
    case = _open(session, case_id)
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        raise InvalidInput("give at least one event id (evt_...) to attach")
    orgs = case_orgs(session, case)
    rows = _request_rows(Path(events_dir), ids, orgs)
    found = {r["event_id"] for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(
            f"event(s) {missing} not found in {events_dir} for organization(s) {orgs}; "
            "check the ids and the events directory"
        )
    for r in rows:
        for k, v in list(r.items()):
            if isinstance(v, str) and len(v) > max_chars:
                r[k] = v[:max_chars] + f"… [{len(v) - max_chars} more characters]"
    rows.sort(key=lambda r: ids.index(r["event_id"]))
    return _entry(session, case, "requests",
                  {"description": description, "requests": rows, "events_dir": str(events_dir)},
                  actor, f"{len(rows)} example request(s) attached")


def case_orgs(session: Session, case: Case) -> list[str]:
    """The organizations a case concerns: its organization and its cluster's members."""
    orgs: list[str] = [case.org_id] if case.org_id else []
    if case.cluster_id:
        cluster = session.get(Cluster, case.cluster_id)
        if cluster is not None:
            orgs += [str(m) for m in cluster.members or [] if str(m) not in orgs]
    return orgs


def attach_file(
    session: Session,
    case_id: str,
    path: str | Path,
    *,
    actor: str,
    kind: str = "report",
    description: str = "",
) -> CaseEntry:
    """Attach a report file (watermark attribution, forensic audit, correspondence…).

    The content is copied into the case (at most :data:`MAX_ATTACHMENT_BYTES`) with its
    sha256, so the bundle is self-contained and the file cannot change afterwards.
    """
    actor = _actor(actor)
    case = _open(session, case_id)
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {p}: {exc.strerror}") from exc
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise InvalidInput(
            f"{p} is {len(data)} bytes; attachments are limited to {MAX_ATTACHMENT_BYTES} "
            "bytes: attach a summary report instead"
        )
    media = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
    body: dict[str, Any] = {
        "name": p.name, "kind": kind, "description": description, "media_type": media,
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "content_b64": base64.b64encode(data).decode(),
    }
    return _entry(session, case, "file", body, actor, f"{kind} {p.name} attached")


def record_response(
    session: Session, case_id: str, text: str, *, actor: str, received_at: datetime | None = None
) -> CaseEntry:
    """The customer's response (as received), on the timeline."""
    actor = _actor(actor)
    if not text or not text.strip():
        raise InvalidInput("a customer response needs text")
    case = _open(session, case_id)
    entry = _entry(session, case, "response",
                   {"text": text.strip(), "received_at": received_at or utcnow()},
                   actor, "customer response recorded")
    case.state = "open"
    return entry


def request_response(session: Session, case_id: str, message: str, *, actor: str) -> CaseEntry:
    """Record that the customer was asked to respond; the case awaits their answer."""
    actor = _actor(actor)
    case = _open(session, case_id)
    entry = _entry(session, case, "response_requested", {"text": message}, actor,
                   "customer asked to respond")
    case.state = "awaiting_response"
    return entry


def decide(
    session: Session,
    case_id: str,
    decision: str,
    *,
    actor: str,
    reason: str,
    apply: bool = True,
    conditions: str | None = None,
    licence_changes: Mapping[str, Any] | None = None,
    throttle_factor: float | None = None,
) -> CaseEntry:
    """Close a case with a decision and (with ``apply``) carry it out on every account the
    case concerns, through :mod:`.actions` (so each change is audited and propagated)."""
    from . import actions

    actor = _actor(actor)
    if decision not in DECISIONS:
        raise InvalidInput(f"unknown decision {decision!r}; use one of {', '.join(DECISIONS)}")
    if decision == "reinstate_with_conditions" and not (conditions or licence_changes):
        raise InvalidInput("reinstate_with_conditions needs --conditions or licence changes")
    if not reason or not reason.strip():
        raise InvalidInput("a decision needs a reason")
    case = _open(session, case_id)
    done: list[dict[str, Any]] = []
    action = DECISIONS[decision]
    if apply and action is not None:
        targets = case_orgs(session, case)
        results = actions.take_action(
            session, action, org_ids=targets, actor=actor, reason=f"case {case.id}: {reason}",
            case_id=case.id, conditions=conditions, licence_changes=licence_changes,
            throttle_factor=throttle_factor, skip_noop=True,
        )
        done = [r.to_dict() for r in results]
    entry = _entry(
        session, case, "decision",
        {"decision": decision, "reason": reason.strip(), "conditions": conditions,
         "licence_changes": dict(licence_changes or {}), "actions": done},
        actor, f"decision {decision}: {reason.strip()}",
    )
    case.state = "closed"
    case.decision = decision
    case.decision_reason = reason.strip()
    session.flush()
    return entry


def record_action(session: Session, case: Case, body: Mapping[str, Any], *, actor: str,
                  reason: str) -> CaseEntry:
    """Put an enforcement action taken on the case's accounts on its timeline."""
    return _entry(session, case, "action", body, actor, reason)


def entry_dict(e: CaseEntry) -> dict[str, Any]:
    """A timeline entry as plain JSON; file contents are left out (see the bundle)."""
    body = dict(e.body or {})
    body.pop("content_b64", None)
    return audit.jsonable({"id": e.id, "kind": e.kind, "at": e.at, "actor": e.actor, "body": body})


def timeline(session: Session, case_id: str) -> list[dict[str, Any]]:
    """The case's entries in order."""
    case = get_case(session, case_id)
    rows: Iterable[CaseEntry] = session.scalars(
        select(CaseEntry).where(CaseEntry.case_id == case.id).order_by(CaseEntry.id)
    )
    return [entry_dict(e) for e in rows]


def case_dict(session: Session, case_id: str) -> dict[str, Any]:
    """A case with its timeline, as plain JSON (for the CLI and the API)."""
    c = get_case(session, case_id)
    return audit.jsonable(
        {
            "id": c.id, "title": c.title, "org_id": c.org_id, "cluster_id": c.cluster_id,
            "state": c.state, "opened_by": c.opened_by, "decision": c.decision,
            "decision_reason": c.decision_reason, "created_at": c.created_at,
            "updated_at": c.updated_at, "timeline": timeline(session, case_id),
        }
    )
