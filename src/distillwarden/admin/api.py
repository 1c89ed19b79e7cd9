"""The admin API: organizations, keys, licences, account status, audit, findings and cases.

A FastAPI app the gateway mounts at ``/admin`` (OpenAPI at ``/admin/openapi.json``). Every
route needs the installation's admin token as a bearer token; customer API keys never work
here. Writes go through :mod:`distillwarden.store.services`, so they are validated, audited
and announced on the change feed exactly like the CLI's and the console's.

Routers of other parts see ``request.app.state.settings`` and
``request.app.state.session_factory``; the enforcement part's
``distillwarden.enforce.api.router`` is included when it is installed.
"""

from __future__ import annotations

import hmac
import importlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .. import __version__
from ..config import Settings
from ..store import audit, services
from ..store.db import session_scope
from ..store.keys import KEY_PREFIX
from ..store.models import ApiKey, AuditEntry
from ..store.push import run_and_announce
from . import schemas as sc
from .errors import AdminError, install_error_handlers

__all__ = ["create_admin_app", "require_admin"]

_log = logging.getLogger("distillwarden.admin")
_bearer = HTTPBearer(auto_error=False, description="the installation's admin token")
T = TypeVar("T")

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": sc.ErrorBody, "description": "malformed request"},
    401: {"model": sc.ErrorBody, "description": "missing or wrong admin token"},
    404: {"model": sc.ErrorBody, "description": "unknown organization, key or case"},
    409: {"model": sc.ErrorBody, "description": "conflict or transition not allowed"},
    422: {"model": sc.ErrorBody, "description": "invalid value (channel, region, dates…)"},
}


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Accept only the installation's admin token (constant-time comparison)."""
    settings: Settings = request.app.state.settings
    expected = (settings.admin_token or "").encode()
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AdminError(
            401, "missing_admin_token", "send the admin token as 'Authorization: Bearer <token>'"
        )
    given = credentials.credentials.encode()
    if not expected or not hmac.compare_digest(given, expected):
        if credentials.credentials.startswith(KEY_PREFIX):
            raise AdminError(
                401,
                "customer_key_not_allowed",
                "customer API keys do not work on the admin API; use the admin token "
                "(admin_token in the config, or the data dir's admin_token file)",
            )
        raise AdminError(401, "invalid_admin_token", "the admin token is not valid")


def _actor(x_distillwarden_actor: Annotated[str | None, Header()] = None) -> str:
    """``admin`` or ``admin:<name>`` from the optional ``x-distillwarden-actor`` header."""
    if x_distillwarden_actor and x_distillwarden_actor.strip():
        return "admin:" + x_distillwarden_actor.strip()[:180]
    return "admin"


Actor = Annotated[str, Depends(_actor)]


def _run(request: Request, fn: Callable[[Session], T]) -> T:
    """Run ``fn`` in one transaction, committed before the response is sent; its changes
    are then pushed to gateways over Redis when configured."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    settings: Settings = request.app.state.settings
    return run_and_announce(factory, settings.redis_url, fn)


def _org_detail(session: Session, org_id: str) -> sc.OrgDetail:
    org = services.get_org(session, org_id)
    lic = services.active_licence(session, org_id)
    keys = services.list_api_keys(session, org_id, include_revoked=False)
    detail = sc.OrgDetail.model_validate(org)
    detail.licence = sc.LicenceOut.model_validate(lic) if lic is not None else None
    detail.active_keys = len(keys)
    return detail


def _orgs_router() -> APIRouter:
    r = APIRouter(tags=["organizations"], responses=ERRORS)

    @r.get("/orgs", response_model=sc.Page[sc.OrgOut], summary="List organizations")
    def list_orgs(
        request: Request,
        status: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        rows = _run(
            request, lambda s: services.list_orgs(s, status=status, limit=limit, offset=offset)
        )
        return {"data": [sc.OrgOut.model_validate(o) for o in rows]}

    @r.post("/orgs", response_model=sc.OrgDetail, status_code=201, summary="Create an organization")
    def create_org(request: Request, body: sc.OrgCreate, actor: Actor) -> Any:
        def do(s: Session) -> sc.OrgDetail:
            org = services.create_org(
                s,
                name=body.name,
                org_id=body.id,
                tier=body.tier,
                contact_email=body.contact_email,
                home_region=body.home_region,
                payment_fingerprint_hash=body.payment_fingerprint_hash,
                metadata=body.metadata,
                actor=actor,
                reason=body.reason,
            )
            return _org_detail(s, org.id)

        return _run(request, do)

    @r.get("/orgs/{org_id}", response_model=sc.OrgDetail, summary="Show an organization")
    def get_org(request: Request, org_id: str) -> Any:
        return _run(request, lambda s: _org_detail(s, org_id))

    @r.patch(
        "/orgs/{org_id}", response_model=sc.OrgDetail, summary="Update an organization's details"
    )
    def update_org(request: Request, org_id: str, body: sc.OrgUpdate, actor: Actor) -> Any:
        def do(s: Session) -> sc.OrgDetail:
            services.update_org(
                s,
                org_id,
                name=body.name,
                tier=body.tier,
                contact_email=body.contact_email,
                home_region=body.home_region,
                payment_fingerprint_hash=body.payment_fingerprint_hash,
                metadata=body.metadata,
                actor=actor,
                reason=body.reason,
            )
            return _org_detail(s, org_id)

        return _run(request, do)

    return r


def _keys_router(secret: bytes) -> APIRouter:
    r = APIRouter(tags=["keys"], responses=ERRORS)

    @r.post(
        "/orgs/{org_id}/keys",
        response_model=sc.ApiKeyCreated,
        status_code=201,
        summary="Issue an API key (the secret is returned once)",
    )
    def create_key(request: Request, org_id: str, body: sc.ApiKeyCreate, actor: Actor) -> Any:
        def do(s: Session) -> sc.ApiKeyCreated:
            key, plaintext = services.create_api_key(
                s,
                secret,
                org_id,
                name=body.name,
                expires_at=body.expires_at,
                requests_per_min=body.requests_per_min,
                tokens_per_min=body.tokens_per_min,
                actor=actor,
            )
            return sc.ApiKeyCreated(key=sc.ApiKeyOut.model_validate(key), secret=plaintext)

        return _run(request, do)

    @r.get(
        "/orgs/{org_id}/keys",
        response_model=sc.Page[sc.ApiKeyOut],
        summary="List an organization's keys",
    )
    def list_org_keys(request: Request, org_id: str, include_revoked: bool = True) -> Any:
        rows = _run(
            request, lambda s: services.list_api_keys(s, org_id, include_revoked=include_revoked)
        )
        return {"data": [sc.ApiKeyOut.model_validate(k) for k in rows]}

    @r.get("/keys", response_model=sc.Page[sc.ApiKeyOut], summary="List all keys")
    def list_keys(request: Request, org_id: str | None = None, include_revoked: bool = True) -> Any:
        rows = _run(
            request, lambda s: services.list_api_keys(s, org_id, include_revoked=include_revoked)
        )
        return {"data": [sc.ApiKeyOut.model_validate(k) for k in rows]}

    @r.post("/keys/{key_id}/revoke", response_model=sc.ApiKeyOut, summary="Revoke a key")
    def revoke_key(request: Request, key_id: str, body: sc.Revoke, actor: Actor) -> Any:
        def do(s: Session) -> sc.ApiKeyOut:
            key: ApiKey = services.revoke_api_key(s, key_id, actor=actor, reason=body.reason)
            return sc.ApiKeyOut.model_validate(key)

        return _run(request, do)

    return r


def _licences_router() -> APIRouter:
    r = APIRouter(tags=["licences"], responses=ERRORS)

    @r.put(
        "/orgs/{org_id}/licence",
        response_model=sc.LicenceOut,
        summary="Set the organization's licence (replaces the active one)",
    )
    def set_licence(request: Request, org_id: str, body: sc.LicenceSet, actor: Actor) -> Any:
        def do(s: Session) -> sc.LicenceOut:
            lic = services.set_licence(
                s,
                org_id,
                name=body.name,
                channel=body.channel,
                regions=body.regions,
                permitted_uses=body.permitted_uses,
                models=body.models,
                valid_from=body.valid_from,
                valid_until=body.valid_until,
                requests_per_min=body.requests_per_min,
                tokens_per_min=body.tokens_per_min,
                watermark=body.watermark,
                conditions=body.conditions,
                actor=actor,
                reason=body.reason,
            )
            return sc.LicenceOut.model_validate(lic)

        return _run(request, do)

    @r.get("/orgs/{org_id}/licence", response_model=sc.LicenceOut, summary="The active licence")
    def get_licence(request: Request, org_id: str) -> Any:
        def do(s: Session) -> sc.LicenceOut:
            services.get_org(s, org_id)
            lic = services.active_licence(s, org_id)
            if lic is None:
                raise AdminError(
                    404,
                    "no_licence",
                    f"organization {org_id!r} has no licence; "
                    f"set one with PUT /orgs/{org_id}/licence",
                )
            return sc.LicenceOut.model_validate(lic)

        return _run(request, do)

    @r.get(
        "/orgs/{org_id}/licences",
        response_model=sc.Page[sc.LicenceOut],
        summary="Every licence version, newest first",
    )
    def list_licences(request: Request, org_id: str) -> Any:
        rows = _run(request, lambda s: services.list_licences(s, org_id))
        return {"data": [sc.LicenceOut.model_validate(x) for x in rows]}

    return r


def _status_router() -> APIRouter:
    r = APIRouter(tags=["status"], responses=ERRORS)

    @r.post(
        "/orgs/{org_id}/status",
        response_model=sc.StatusChangeOut,
        summary="Set the account status (warn, throttle, suspend, terminate…)",
    )
    def set_status(request: Request, org_id: str, body: sc.StatusSet, actor: Actor) -> Any:
        def do(s: Session) -> sc.StatusChangeOut:
            change = services.set_status(
                s,
                org_id,
                body.status,
                actor=actor,
                reason=body.reason,
                case_id=body.case_id,
                throttle_factor=body.throttle_factor,
            )
            return sc.StatusChangeOut.model_validate(change)

        return _run(request, do)

    @r.post(
        "/orgs/{org_id}/reinstate",
        response_model=sc.StatusChangeOut,
        summary="Reinstate an account, optionally with conditions and a new licence",
    )
    def reinstate(request: Request, org_id: str, body: sc.Reinstate, actor: Actor) -> Any:
        def do(s: Session) -> sc.StatusChangeOut:
            change = services.reinstate(
                s,
                org_id,
                actor=actor,
                reason=body.reason,
                conditions=body.conditions,
                licence_changes=body.licence_changes,
                case_id=body.case_id,
            )
            return sc.StatusChangeOut.model_validate(change)

        return _run(request, do)

    @r.get(
        "/orgs/{org_id}/status/history",
        response_model=sc.Page[sc.StatusChangeOut],
        summary="Status history, oldest first",
    )
    def history(request: Request, org_id: str) -> Any:
        rows = _run(request, lambda s: services.status_history(s, org_id))
        return {"data": [sc.StatusChangeOut.model_validate(x) for x in rows]}

    return r


def _audit_router() -> APIRouter:
    r = APIRouter(tags=["audit"], responses=ERRORS)

    @r.get(
        "/audit",
        response_model=sc.Page[sc.AuditEntryOut],
        summary="Audit entries after a sequence number",
    )
    def list_audit(
        request: Request,
        after_seq: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
        subject_id: str | None = None,
    ) -> Any:
        def do(s: Session) -> list[dict[str, Any]]:
            q = select(AuditEntry).where(AuditEntry.seq > after_seq)
            if subject_id is not None:
                q = q.where(AuditEntry.subject_id == subject_id)
            return [audit.entry_dict(e) for e in s.scalars(q.order_by(AuditEntry.seq).limit(limit))]

        return {"data": _run(request, do)}

    @r.get("/audit/verify", response_model=sc.AuditVerificationOut, summary="Verify the hash chain")
    def verify(
        request: Request,
        anchor: Annotated[
            list[str] | None, Query(description="SEQ:HASH recorded earlier (repeatable)")
        ] = None,
    ) -> Any:
        anchors = [audit.Anchor.parse(a) for a in anchor or ()]
        result = _run(request, lambda s: audit.verify(s, anchors))
        return sc.AuditVerificationOut(**result.__dict__)

    @r.get(
        "/audit/head",
        response_model=sc.AuditAnchorOut,
        summary="The latest entry (SEQ:HASH) to record outside the database",
    )
    def head(request: Request) -> Any:
        anchor = _run(request, audit.head)
        if anchor is None:
            raise AdminError(404, "empty_audit_log", "the audit log is empty")
        return sc.AuditAnchorOut(seq=anchor.seq, hash=anchor.hash, anchor=str(anchor))

    @r.get("/audit/export", summary="The whole chain as JSONL", response_class=StreamingResponse)
    def export(request: Request) -> StreamingResponse:
        factory: sessionmaker[Session] = request.app.state.session_factory

        def chunks() -> Iterator[str]:
            with session_scope(factory) as session:
                for entry in audit.iter_entries(session):
                    yield json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"

        return StreamingResponse(
            chunks(),
            media_type="application/x-ndjson",
            headers={"content-disposition": "attachment; filename=audit.jsonl"},
        )

    return r


def _investigation_router() -> APIRouter:
    r = APIRouter(tags=["findings and cases"], responses=ERRORS)

    @r.get("/findings", response_model=sc.Page[sc.FindingOut], summary="List findings")
    def findings(
        request: Request,
        org_id: str | None = None,
        cluster_id: str | None = None,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        rows = _run(
            request,
            lambda s: services.list_findings(
                s, org_id=org_id, cluster_id=cluster_id, state=state, limit=limit, offset=offset
            ),
        )
        return {"data": [sc.FindingOut.model_validate(f) for f in rows]}

    @r.get("/clusters", response_model=sc.Page[sc.ClusterOut], summary="List clusters")
    def clusters(request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 100) -> Any:
        rows = _run(request, lambda s: services.list_clusters(s, limit=limit))
        return {"data": [sc.ClusterOut.model_validate(c) for c in rows]}

    @r.get("/cases", response_model=sc.Page[sc.CaseOut], summary="List cases")
    def cases(
        request: Request,
        org_id: str | None = None,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        rows = _run(
            request,
            lambda s: services.list_cases(
                s, org_id=org_id, state=state, limit=limit, offset=offset
            ),
        )
        return {"data": [sc.CaseOut.model_validate(c) for c in rows]}

    @r.get("/cases/{case_id}", response_model=sc.CaseDetailOut, summary="A case and timeline")
    def case(request: Request, case_id: str) -> Any:
        return _run(
            request, lambda s: sc.CaseDetailOut.model_validate(services.get_case(s, case_id))
        )

    return r


def _enforce_router() -> APIRouter | None:
    try:
        module = importlib.import_module("distillwarden.enforce.api")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("distillwarden.enforce"):
            return None
        raise
    router = getattr(module, "router", None)
    return router if isinstance(router, APIRouter) else None


def create_admin_app(settings: Settings, session_factory: sessionmaker[Session]) -> FastAPI:
    """The admin API as an ASGI app (mount it at ``/admin``)."""
    app = FastAPI(
        title="distillwarden admin API",
        version=__version__,
        description=(
            "Manage organizations, API keys, licences and account status; read the audit "
            "chain, findings and cases. Authenticate with `Authorization: Bearer <admin "
            "token>`; set `x-distillwarden-actor` to record who acted."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    install_error_handlers(app)
    auth = [Depends(require_admin)]
    secret = settings.secret_bytes()
    for router in (
        _orgs_router(),
        _keys_router(secret),
        _licences_router(),
        _status_router(),
        _audit_router(),
        _investigation_router(),
    ):
        app.include_router(router, dependencies=auth)
    enforce = _enforce_router()
    if enforce is not None:
        app.include_router(enforce, dependencies=auth)
    return app
