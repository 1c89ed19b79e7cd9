"""The analyst console: server-rendered pages (Jinja2 + HTMX, no build step).

``create_console_app(settings, session_factory)`` returns an ASGI app the gateway mounts at
``/console``. Analysts sign in with the admin token (and their name, which the audit log
records as ``console:<name>``); actions go through the same store services as the admin
API and the CLI.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..config import Settings
from ..store import services
from ..store.errors import NotFound, StoreError
from ..store.models import ACCOUNT_STATUSES
from ..store.push import run_and_announce
from . import views
from .auth import COOKIE_NAME, SESSION_TTL_S, ConsoleUser, SessionSigner

__all__ = ["create_console_app"]

_log = logging.getLogger("distillwarden.console")
T = TypeVar("T")

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class _SecurityHeaders:
    """Adds CSP and related headers to every console response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                path = scope.get("path", "")
                extra = [
                    h
                    for h in _SECURITY_HEADERS
                    if not (h[0] == b"cache-control" and "/static/" in path)
                ]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _LoginRequired(Exception):
    pass


def _fmt_ts(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _risk_class(risk: float | None) -> str:
    if risk is None:
        return "risk-none"
    if risk >= 0.9:
        return "risk-high"
    if risk >= 0.5:
        return "risk-medium"
    return "risk-low"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3g}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if "." in f"{value:.3f}" else str(value)


def _signal_items(signals: Any) -> list[tuple[str, Any]]:
    """A finding's signals, strongest first: detailed entries by p-value, then plain scores
    by name."""
    if not isinstance(signals, dict):
        return []

    def key(item: tuple[str, Any]) -> tuple[int, float, str]:
        name, v = item
        if isinstance(v, dict):
            p = v.get("p_value")
            return (0, float(p) if isinstance(p, int | float) else 2.0, name)
        return (1, 0.0, name)

    return sorted(signals.items(), key=key)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("distillwarden.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ts=_fmt_ts, risk_class=_risk_class, pretty=_pretty, num=_num, signal_items=_signal_items
    )
    env.tests["scalar"] = _is_scalar
    return env


def _case_tools() -> bool:
    """Whether the enforcement part (case notes, case opening, evidence bundles) is there."""
    try:
        importlib.import_module("distillwarden.enforce.cases")
        importlib.import_module("distillwarden.enforce.bundle")
    except ModuleNotFoundError:
        return False
    return True


def _load_case(session: Session, case_id: str) -> Any:
    case = services.get_case(session, case_id)
    _ = list(case.entries)
    return case


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/accounts"


def create_console_app(settings: Settings, session_factory: sessionmaker[Session]) -> ASGIApp:
    """The console as an ASGI app (mount it at ``/console``)."""
    env = _environment()
    signer = SessionSigner(settings)
    case_tools = _case_tools()
    app = FastAPI(title="distillwarden console", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.mount("/static", StaticFiles(packages=[("distillwarden.console", "static")]), name="static")

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def user_of(request: Request) -> ConsoleUser | None:
        return signer.read(request.cookies.get(COOKIE_NAME))

    def require(request: Request) -> ConsoleUser:
        user = user_of(request)
        if user is None:
            raise _LoginRequired()
        return user

    def render(
        request: Request,
        template: str,
        *,
        status: int = 200,
        user: ConsoleUser | None = None,
        **ctx: Any,
    ) -> HTMLResponse:
        html = env.get_template(template).render(
            base=base(request),
            user=user,
            csrf=signer.csrf(user) if user else "",
            version=__version__,
            statuses=ACCOUNT_STATUSES,
            case_tools=case_tools,
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    def run(fn: Callable[[Session], T]) -> T:
        return run_and_announce(session_factory, settings.redis_url, fn)

    def is_htmx(request: Request) -> bool:
        return request.headers.get("hx-request") == "true"

    async def form_of(request: Request, user: ConsoleUser) -> dict[str, str]:
        form = await request.form()
        data = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        token = request.headers.get("x-csrf-token") or data.get("csrf")
        if not signer.check_csrf(user, token):
            raise _CsrfError()
        return data

    class _CsrfError(Exception):
        pass

    @app.exception_handler(_LoginRequired)
    async def _login_required(request: Request, _: Exception) -> Response:
        target = (
            base(request)
            + "/login?next="
            + quote(request.url.path[len(base(request)) :] or "/accounts")
        )
        if is_htmx(request):
            return Response(status_code=200, headers={"hx-redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(_CsrfError)
    async def _csrf_failed(request: Request, _: Exception) -> Response:
        return render(
            request,
            "error.html",
            status=403,
            user=user_of(request),
            title="Form expired",
            message="This form's security token is missing or stale. Reload the "
            "page and try again.",
        )

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html",
            status=404,
            user=user_of(request),
            title="Not found",
            message=str(exc),
        )

    @app.exception_handler(404)
    async def _no_route(request: Request, _: Exception) -> Response:
        return render(
            request,
            "error.html",
            status=404,
            user=user_of(request),
            title="Not found",
            message="There is no such page in the console.",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("console error on %s %s", request.method, request.url.path)
        return render(
            request,
            "error.html",
            status=500,
            user=user_of(request),
            title="Something went wrong",
            message="The console hit an internal error; it is in the server log.",
        )

    # ------------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str | None = None) -> Response:
        return render(request, "login.html", next=_safe_next(next))

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "")
        name = str(form.get("name") or "")
        nxt = _safe_next(str(form.get("next") or ""))
        if not signer.check_token(token):
            _log.warning(
                "console login failed from %s", request.client.host if request.client else "?"
            )
            return render(
                request,
                "login.html",
                status=401,
                next=nxt,
                name=name,
                error="That is not the admin token of this installation.",
            )
        resp = RedirectResponse(base(request) + nxt, status_code=303)
        resp.set_cookie(
            COOKIE_NAME,
            signer.issue(name),
            max_age=SESSION_TTL_S,
            httponly=True,
            samesite="strict",
            path=base(request) or "/",
            secure=request.url.scheme == "https",
        )
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        user = require(request)
        await form_of(request, user)
        resp = RedirectResponse(base(request) + "/login", status_code=303)
        resp.delete_cookie(COOKIE_NAME, path=base(request) or "/")
        return resp

    # ------------------------------------------------------------------ accounts

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(base(request) + "/accounts", status_code=303)

    @app.get("/accounts", response_class=HTMLResponse)
    def accounts(
        request: Request, q: str | None = None, status: str | None = None, sort: str = "risk"
    ) -> Response:
        user = require(request)

        def load(s: Session) -> tuple[list[views.AccountRow], int, dict[str, int]]:
            rows, total = views.account_rows(s, q=q, status=status, sort=sort)
            return rows, total, views.overview_counts(s)

        rows, total, counts = run(load)
        template = (
            "_account_rows.html"
            if request.headers.get("hx-target") == "account-rows"
            else "accounts.html"
        )
        return render(
            request,
            template,
            user=user,
            rows=rows,
            total=total,
            counts=counts,
            q=q or "",
            status_filter=status or "",
            sort=sort,
            nav="accounts",
        )

    @app.get("/accounts/{org_id}", response_class=HTMLResponse)
    def account(request: Request, org_id: str) -> Response:
        user = require(request)
        detail = run(lambda s: views.account_detail(s, org_id))
        return render(request, "account.html", user=user, d=detail, nav="accounts")

    @app.get("/findings/{finding_id}/examples", response_class=HTMLResponse)
    def finding_examples(request: Request, finding_id: str, signal: str) -> Response:
        user = require(request)
        finding, ids = run(lambda s: views.signal_examples(s, finding_id, signal))
        error = None
        try:
            rows = views.example_requests(
                settings.effective_events_dir,
                finding.org_id,
                ids,
                since=finding.window_start,
                until=finding.window_end,
            )
        except Exception as exc:  # a damaged or newer event log: say so, keep the page
            _log.warning("cannot read example requests for %s: %r", finding_id, exc)
            rows, error = [], f"The event log could not be read: {exc}"
        return render(request, "_examples.html", user=user, rows=rows, ids=ids, error=error)

    @app.post("/accounts/{org_id}/status", response_class=HTMLResponse)
    async def account_status(request: Request, org_id: str) -> Response:
        user = require(request)
        form = await form_of(request, user)
        action = form.get("status", "")
        reason = form.get("reason", "")
        error = None
        notice = None
        try:
            factor = float(form["throttle_factor"]) if form.get("throttle_factor") else None
        except ValueError:
            factor = None
            error = "The throttle factor must be a number between 0 and 1."

        def apply(s: Session) -> None:
            if action == "reinstate":
                services.reinstate(
                    s,
                    org_id,
                    actor=user.actor,
                    reason=reason,
                    conditions=form.get("conditions") or None,
                    case_id=form.get("case_id") or None,
                )
            else:
                services.set_status(
                    s,
                    org_id,
                    action,
                    actor=user.actor,
                    reason=reason,
                    case_id=form.get("case_id") or None,
                    throttle_factor=factor,
                )

        if error is None:
            try:
                run(apply)
                notice = (
                    "Account reinstated." if action == "reinstate" else f"Status set to {action}."
                )
            except NotFound:
                raise
            except StoreError as exc:
                error = str(exc)
        if not is_htmx(request) and error is None:
            return RedirectResponse(f"{base(request)}/accounts/{quote(org_id)}", status_code=303)
        detail = run(lambda s: views.account_detail(s, org_id))
        template = "_account_body.html" if is_htmx(request) else "account.html"
        return render(
            request,
            template,
            user=user,
            d=detail,
            nav="accounts",
            error=error,
            notice=notice,
            form=form if error else {},
            status=200 if is_htmx(request) or error is None else 422,
        )

    # ------------------------------------------------------------------ clusters

    @app.get("/clusters", response_class=HTMLResponse)
    def clusters(request: Request) -> Response:
        user = require(request)
        rows = run(lambda s: views.cluster_rows(s))
        return render(request, "clusters.html", user=user, rows=rows, nav="clusters")

    @app.post("/clusters/{cluster_id}/status", response_class=HTMLResponse)
    async def cluster_status(request: Request, cluster_id: str) -> Response:
        user = require(request)
        form = await form_of(request, user)
        action, reason = form.get("status", ""), form.get("reason", "")

        def apply(s: Session) -> int:
            rows = [r for r in views.cluster_rows(s) if r.cluster.id == cluster_id]
            if not rows:
                raise NotFound(f"unknown cluster {cluster_id!r}")
            changed = 0
            for member in rows[0].members:
                if member.status in (action, "terminated"):
                    continue
                services.set_status(
                    s, member.id, action, actor=user.actor, reason=f"cluster {cluster_id}: {reason}"
                )
                changed += 1
            return changed

        error = notice = None
        try:
            changed = run(apply)
            notice = f"{changed} account(s) of cluster {cluster_id} set to {action}."
        except NotFound:
            raise
        except StoreError as exc:
            error = f"Nothing was changed: {exc}"
        rows = run(lambda s: views.cluster_rows(s))
        return render(
            request,
            "clusters.html",
            user=user,
            rows=rows,
            nav="clusters",
            error=error,
            notice=notice,
            status=200 if error is None else 422,
        )

    # ------------------------------------------------------------------ cases

    @app.get("/cases", response_class=HTMLResponse)
    def cases(request: Request, state: str | None = None) -> Response:
        user = require(request)
        rows = run(lambda s: services.list_cases(s, state=state or None, limit=500))
        return render(
            request, "cases.html", user=user, rows=rows, state_filter=state or "", nav="cases"
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    def case(request: Request, case_id: str) -> Response:
        user = require(request)

        return render(
            request, "case.html", user=user, case=run(lambda s: _load_case(s, case_id)), nav="cases"
        )

    @app.post("/accounts/{org_id}/cases", response_class=HTMLResponse)
    async def open_case(request: Request, org_id: str) -> Response:
        user = require(request)
        form = await form_of(request, user)
        if not case_tools:
            raise NotFound("case management needs the enforcement part (distillwarden.enforce)")
        from ..enforce import cases as case_ops

        def do(s: Session) -> str:
            org = services.get_org(s, org_id)
            findings = services.list_findings(s, org_id=org_id, limit=5)
            case, _ = case_ops.open_case_for(
                s,
                org_id,
                title=form.get("title") or f"{org.name}: suspected distillation",
                actor=user.actor,
                reason=form.get("reason") or "opened from the console",
                finding_ids=[f.id for f in findings],
                cluster_id=next((f.cluster_id for f in findings if f.cluster_id), None),
            )
            return case.id

        try:
            case_id = run(do)
        except NotFound:
            raise
        except StoreError as exc:
            detail = run(lambda s: views.account_detail(s, org_id))
            return render(
                request,
                "account.html",
                status=422,
                user=user,
                d=detail,
                nav="accounts",
                error=f"Could not open a case: {exc}",
                form={},
            )
        return RedirectResponse(f"{base(request)}/cases/{quote(case_id)}", status_code=303)

    @app.post("/cases/{case_id}/notes", response_class=HTMLResponse)
    async def case_note(request: Request, case_id: str) -> Response:
        user = require(request)
        form = await form_of(request, user)
        if not case_tools:
            raise NotFound("case notes need the enforcement part (distillwarden.enforce)")
        from ..enforce import cases as case_ops

        try:
            run(lambda s: case_ops.add_note(s, case_id, form.get("text", ""), actor=user.actor))
        except NotFound:
            raise
        except StoreError as exc:
            c = run(lambda s: _load_case(s, case_id))
            return render(
                request, "case.html", status=422, user=user, case=c, nav="cases", error=str(exc)
            )
        return RedirectResponse(f"{base(request)}/cases/{quote(case_id)}", status_code=303)

    @app.get("/cases/{case_id}/bundle")
    def case_bundle(request: Request, case_id: str) -> Response:
        require(request)
        if not case_tools:
            raise NotFound("evidence bundles need the enforcement part (distillwarden.enforce)")
        from ..enforce import bundle

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bundle"
            run(lambda s: bundle.export_bundle(s, case_id, out))
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for p in sorted(out.rglob("*")):
                    if p.is_file():
                        zf.write(p, f"{case_id}/{p.relative_to(out).as_posix()}")
        return Response(
            buf.getvalue(),
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{case_id}-evidence.zip"'},
        )

    # ------------------------------------------------------------------ audit

    @app.get("/audit", response_class=HTMLResponse)
    def audit_view(request: Request) -> Response:
        user = require(request)
        result, entries = run(lambda s: views.audit_page(s))
        template = "_verify.html" if request.headers.get("hx-target") == "verify" else "audit.html"
        return render(
            request,
            template,
            user=user,
            result=result,
            entries=entries,
            nav="audit",
            checked_at=datetime.now(UTC),
        )

    return _SecurityHeaders(app)
