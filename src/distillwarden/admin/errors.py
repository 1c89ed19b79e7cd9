"""JSON errors of the admin API: ``{"error": {"message", "type", "code"}}`` with a status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..store.errors import Conflict, InvalidInput, InvalidTransition, NotFound, StoreError

__all__ = ["AdminError", "error_response", "install_error_handlers"]

_log = logging.getLogger("distillwarden.admin")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    422: "invalid_request_error",
    500: "server_error",
}


class AdminError(Exception):
    """An error the admin API answers with ``status`` and a JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error response every failure of the admin API uses."""
    return JSONResponse(
        {"error": {"message": message, "type": _TYPES.get(status, "api_error"), "code": code}},
        status_code=status,
        headers=headers,
    )


def _store_status(exc: StoreError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict | InvalidTransition):
        return 409
    if isinstance(exc, InvalidInput):
        return 422
    return 400


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through :func:`error_response`."""

    async def on_admin(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AdminError)
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, headers)

    async def on_store(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StoreError)
        return error_response(_store_status(exc), exc.code, str(exc))

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return error_response(400, "invalid_request", "; ".join(parts) or "invalid request")

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("admin API error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the server log")

    app.add_exception_handler(AdminError, on_admin)
    app.add_exception_handler(StoreError, on_store)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
