"""Admin API routes for enforcement: policies, actions, cases, bundles, webhooks, indicators.

``router`` is included by :func:`distillwarden.admin.api.create_admin_app` behind the admin
token; it reads ``request.app.state.settings`` and ``request.app.state.session_factory``.
Each request is one transaction; status changes are pushed to gateways over Redis after
the commit when Redis is configured.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from ..admin.errors import AdminError
from ..config import Settings
from ..store.db import session_scope
from . import actions, bundle, cases, indicators, policy, policy_store, webhooks
from .propagation import publish_plans

__all__ = ["router"]

T = TypeVar("T")
router = APIRouter(tags=["enforcement"])


def _actor(header: str | None) -> str:
    return "admin:" + header.strip()[:180] if header and header.strip() else "admin"


ActorHeader = Annotated[str | None, Header(alias="x-distillwarden-actor")]


def _run(request: Request, fn: Callable[[Session], T]) -> T:
    factory: sessionmaker[Session] = request.app.state.session_factory
    try:
        with session_scope(factory) as session:
            return fn(session)
    except policy.PolicyError as exc:
        raise AdminError(422, "invalid_policy", str(exc)) from exc
    except webhooks.UnsafeDestination as exc:
        raise AdminError(422, "unsafe_webhook_destination", str(exc)) from exc
    except webhooks.WebhookError as exc:
        raise AdminError(422, "invalid_webhook", str(exc)) from exc
    except indicators.IndicatorError as exc:
        raise AdminError(422, "invalid_indicators", str(exc)) from exc


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- policy


class PolicyText(_Strict):
    yaml: str = Field(description="policy YAML text")


class PolicyRun(_Strict):
    yaml: str | None = Field(default=None, description="policy YAML (default: the active one)")
    state: str = Field(default="new", description="findings in this state, or 'all'")
    findings: list[dict[str, Any]] | None = Field(
        default=None, description="findings to evaluate instead of the store's")
    dry_run: bool = True


class Activate(_Strict):
    yaml: str
    reason: str


def _policy_from(session: Session, text: str | None) -> policy.Policy:
    return policy.parse_policy(text) if text else policy_store.active_policy(session)


def _stored_findings(session: Session, state: str) -> list[Any]:
    from sqlalchemy import select

    from ..store.models import Finding

    q = select(Finding).order_by(Finding.created_at)
    if state != "all":
        q = q.where(Finding.state == state)
    return list(session.scalars(q))


@router.post("/policy/validate", summary="Validate policy YAML (errors name field and line)")
def policy_validate(body: PolicyText) -> dict[str, Any]:
    try:
        p = policy.parse_policy(body.yaml)
    except policy.PolicyError as exc:
        return {"valid": False, "issues": exc.issues}
    return {"valid": True, "name": p.name, "version": p.version, "rules": len(p.rules),
            "overrides": len(p.overrides)}


@router.post("/policy/test", summary="Run every rule's examples")
def policy_test(body: PolicyText) -> dict[str, Any]:
    try:
        results = policy.run_examples(policy.parse_policy(body.yaml))
    except policy.PolicyError as exc:
        raise AdminError(422, "invalid_policy", str(exc)) from exc
    return {"passed": all(r.passed for r in results),
            "results": [{**r.__dict__, "passed": r.passed} for r in results]}


@router.get("/policy", summary="The active policy (the shipped default if none activated)")
def policy_active(request: Request) -> dict[str, Any]:
    def fn(s: Session) -> dict[str, Any]:
        row = policy_store.active_policy_row(s)
        text = row.yaml_text if row else policy.default_policy_path().read_text()
        return {"id": row.id if row else None, "name": row.name if row else "default",
                "yaml": text, "activated_by": row.created_by if row else None}

    return _run(request, fn)


@router.post("/policy/activate", summary="Activate a policy (its examples must pass)")
def policy_activate(request: Request, body: Activate, actor: ActorHeader = None
                    ) -> dict[str, Any]:
    def fn(s: Session) -> dict[str, Any]:
        row = policy_store.activate_policy(s, body.yaml, actor=_actor(actor), reason=body.reason)
        return {"id": row.id, "name": row.name, "active": True}

    return _run(request, fn)


@router.post("/enforce/apply", summary="Evaluate a policy on findings; dry_run by default")
def enforce_apply(request: Request, body: PolicyRun, actor: ActorHeader = None
                  ) -> list[dict[str, Any]]:
    settings = _settings(request)

    def fn(s: Session) -> list[actions.PlannedAction]:
        p = _policy_from(s, body.yaml)
        found = body.findings if body.findings is not None else _stored_findings(s, body.state)
        plans = actions.apply_policy(
            s, found, p, actor=_actor(actor) if actor else f"policy:{p.name}",
            dry_run=body.dry_run, outbox_dir=settings.data_dir / "outbox")
        if body.dry_run:
            s.rollback()
        return plans

    plans = _run(request, fn)
    publish_plans(settings.redis_url, plans)
    return [p.to_dict() for p in plans]


# --------------------------------------------------------------------------- actions


class ActionRequest(_Strict):
    org_ids: list[str] = Field(default_factory=list)
    cluster_id: str | None = None
    reason: str
    case_id: str | None = None
    throttle_factor: float | None = None
    conditions: str | None = None
    licence_changes: dict[str, Any] | None = None
    notify: bool = True
    dry_run: bool = False


class BatchItem(ActionRequest):
    action: Literal["flag", "warn", "throttle", "suspend", "terminate", "reinstate"]


class Batch(_Strict):
    actions: list[BatchItem] = Field(min_length=1)
    dry_run: bool = False


@router.post("/actions", summary="Several actions at once, all or nothing (conflicts rejected)")
def take_many(request: Request, body: Batch, actor: ActorHeader = None) -> list[dict[str, Any]]:
    settings = _settings(request)

    def fn(s: Session) -> list[actions.PlannedAction]:
        reqs = [actions.ActionRequest(
            action=a.action, reason=a.reason, org_ids=a.org_ids, cluster_id=a.cluster_id,
            case_id=a.case_id, throttle_factor=a.throttle_factor, conditions=a.conditions,
            licence_changes=a.licence_changes, notify=a.notify) for a in body.actions]
        plans = actions.take_actions(s, reqs, actor=_actor(actor), dry_run=body.dry_run,
                                     outbox_dir=settings.data_dir / "outbox")
        if body.dry_run:
            s.rollback()
        return plans

    plans = _run(request, fn)
    publish_plans(settings.redis_url, plans)
    return [p.to_dict() for p in plans]


@router.post("/actions/{action}", summary="flag|warn|throttle|suspend|terminate|reinstate "
             "accounts or a whole cluster, all or nothing")
def take(request: Request, action: Literal["flag", "warn", "throttle", "suspend", "terminate",
                                          "reinstate"],
         body: ActionRequest, actor: ActorHeader = None) -> list[dict[str, Any]]:
    settings = _settings(request)

    def fn(s: Session) -> list[actions.PlannedAction]:
        plans = actions.take_action(
            s, action, org_ids=body.org_ids, cluster_id=body.cluster_id, actor=_actor(actor),
            reason=body.reason, case_id=body.case_id, throttle_factor=body.throttle_factor,
            conditions=body.conditions, licence_changes=body.licence_changes,
            notify=body.notify, dry_run=body.dry_run, outbox_dir=settings.data_dir / "outbox")
        if body.dry_run:
            s.rollback()
        return plans

    plans = _run(request, fn)
    publish_plans(settings.redis_url, plans)
    return [p.to_dict() for p in plans]


# --------------------------------------------------------------------------- cases


class CaseOpen(_Strict):
    title: str
    org_id: str | None = None
    cluster_id: str | None = None
    finding_ids: list[str] = Field(default_factory=list)
    reason: str = "opened by hand"


class Text(_Strict):
    text: str


class Evidence(_Strict):
    finding_ids: list[str] = Field(default_factory=list)
    event_ids: list[str] = Field(default_factory=list)
    description: str = ""


class Decision(_Strict):
    decision: str
    reason: str
    conditions: str | None = None
    licence_changes: dict[str, Any] | None = None
    throttle_factor: float | None = None
    apply: bool = True


@router.post("/cases", status_code=201, summary="Open a case")
def case_open(request: Request, body: CaseOpen, actor: ActorHeader = None) -> dict[str, Any]:
    return _run(request, lambda s: cases.case_dict(s, cases.open_case(
        s, title=body.title, org_id=body.org_id, cluster_id=body.cluster_id,
        finding_ids=body.finding_ids, actor=_actor(actor), reason=body.reason).id))


@router.post("/cases/{case_id}/notes", status_code=201, summary="Add a note")
def case_note(request: Request, case_id: str, body: Text, actor: ActorHeader = None
              ) -> dict[str, Any]:
    return _run(request, lambda s: cases.entry_dict(
        cases.add_note(s, case_id, body.text, actor=_actor(actor))))


@router.post("/cases/{case_id}/responses", status_code=201,
             summary="Record the customer's response")
def case_response(request: Request, case_id: str, body: Text, actor: ActorHeader = None
                  ) -> dict[str, Any]:
    return _run(request, lambda s: cases.entry_dict(
        cases.record_response(s, case_id, body.text, actor=_actor(actor))))


@router.post("/cases/{case_id}/evidence", status_code=201,
             summary="Attach findings and example requests from the event log")
def case_evidence(request: Request, case_id: str, body: Evidence, actor: ActorHeader = None
                  ) -> list[dict[str, Any]]:
    settings = _settings(request)

    def fn(s: Session) -> list[dict[str, Any]]:
        out = [cases.entry_dict(cases.attach_finding(s, case_id, f, actor=_actor(actor)))
               for f in body.finding_ids]
        if body.event_ids:
            out.append(cases.entry_dict(cases.attach_requests(
                s, case_id, settings.effective_events_dir, body.event_ids, actor=_actor(actor),
                description=body.description)))
        return out

    return _run(request, fn)


@router.post("/cases/{case_id}/files", status_code=201,
             summary="Attach a report file (raw body; ?name=&kind=)")
def case_file(request: Request, case_id: str, name: str, content: Annotated[bytes, Body(
        media_type="application/octet-stream")], kind: str = "report", description: str = "",
        actor: ActorHeader = None) -> dict[str, Any]:
    safe = Path(name).name or "report"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / safe
        path.write_bytes(content)
        return _run(request, lambda s: cases.entry_dict(cases.attach_file(
            s, case_id, path, actor=_actor(actor), kind=kind, description=description)))


@router.post("/cases/{case_id}/decision", summary="Close with a decision and carry it out")
def case_decision(request: Request, case_id: str, body: Decision, actor: ActorHeader = None
                  ) -> dict[str, Any]:
    settings = _settings(request)
    entry = _run(request, lambda s: cases.entry_dict(cases.decide(
        s, case_id, body.decision, actor=_actor(actor), reason=body.reason, apply=body.apply,
        conditions=body.conditions, licence_changes=body.licence_changes,
        throttle_factor=body.throttle_factor)))
    applied = [actions.PlannedAction(**a) for a in entry["body"].get("actions", [])]
    publish_plans(settings.redis_url, applied)
    return entry


@router.get("/cases/{case_id}/bundle", summary="The evidence bundle as a zip file",
            response_class=Response)
def case_bundle(request: Request, case_id: str) -> Response:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / case_id
        _run(request, lambda s: bundle.export_bundle(s, case_id, out))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(out.rglob("*")):
                if p.is_file():
                    zf.write(p, f"{case_id}/{p.relative_to(out).as_posix()}")
    return Response(buf.getvalue(), media_type="application/zip", headers={
        "content-disposition": f'attachment; filename="{case_id}-evidence.zip"'})


# --------------------------------------------------------------------------- webhooks


class WebhookIn(_Strict):
    url: str
    events: list[str] = Field(default_factory=lambda: ["*"])


@router.post("/webhooks", status_code=201, summary="Register a destination (SSRF-checked); "
             "the signing secret is returned once")
def webhook_add(request: Request, body: WebhookIn, actor: ActorHeader = None) -> dict[str, Any]:
    settings = _settings(request)

    def fn(s: Session) -> dict[str, Any]:
        hook, secret = webhooks.add_webhook(s, body.url, events=body.events,
                                            allow_private=settings.webhooks_allow_private,
                                            actor=_actor(actor))
        return {"id": hook.id, "url": hook.url, "events": hook.events, "secret": secret}

    return _run(request, fn)


@router.get("/webhooks", summary="Registered destinations")
def webhook_list(request: Request) -> list[dict[str, Any]]:
    return _run(request, lambda s: [
        {"id": h.id, "url": h.url, "events": h.events, "active": h.active}
        for h in webhooks.list_webhooks(s)])


@router.post("/webhooks/deliver", summary="Send due deliveries now")
def webhook_deliver(request: Request) -> dict[str, Any]:
    settings = _settings(request)
    rep = _run(request, lambda s: webhooks.deliver_due(
        s, allow_private=settings.webhooks_allow_private))
    return rep.__dict__


# --------------------------------------------------------------------------- indicators


class IndicatorExport(_Strict):
    org_ids: list[str] = Field(default_factory=list)
    cluster_ids: list[str] = Field(default_factory=list)
    producer: str = "distillwarden operator"
    tlp: str = "amber"


@router.post("/indicators/export", summary="STIX 2.1 bundle of indicators (no content)")
def indicators_export(request: Request, body: IndicatorExport) -> Response:
    settings = _settings(request)
    b = _run(request, lambda s: indicators.export_indicators(
        s, settings.effective_events_dir, installation_secret=settings.secret_bytes(),
        org_ids=body.org_ids, cluster_ids=body.cluster_ids, producer=body.producer,
        tlp=body.tlp))
    return Response(indicators.bundle_json(b), media_type="application/stix+json;version=2.1")


@router.post("/indicators/import", summary="Match a shared STIX bundle against our accounts")
def indicators_import(request: Request, bundle_doc: Annotated[dict[str, Any], Body()]
                      ) -> JSONResponse:
    settings = _settings(request)
    rep = _run(request, lambda s: indicators.import_indicators(
        bundle_doc, settings.effective_events_dir, installation_secret=settings.secret_bytes(),
        session=s))
    return JSONResponse({
        "producer": rep.producer, "tlp": rep.tlp, "indicators": rep.indicators,
        "accounts": rep.accounts(), "matches": [m.__dict__ for m in rep.matches],
        "not_matchable": rep.not_matchable, "cluster_summaries": rep.cluster_summaries,
        "ignored": rep.ignored})
