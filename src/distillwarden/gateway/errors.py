"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}`` with a status.

Every failure the gateway reports goes through :class:`GatewayError`, so clients written
for OpenAI's API (including the official SDK) see the same structure and can branch on
``code``.
"""

from __future__ import annotations

import orjson

__all__ = ["ERROR_TYPES", "GatewayError", "error_body"]

#: OpenAI's ``type`` for each HTTP status the gateway returns.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "upstream_error",
}


def error_body(status: int, message: str, code: str, param: str | None = None) -> bytes:
    """The JSON body of an OpenAI-shaped error."""
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": ERROR_TYPES.get(status, "invalid_request_error"),
                "param": param,
                "code": code,
            }
        }
    )


class GatewayError(Exception):
    """A request the gateway answers with an error status and an OpenAI-shaped body.

    ``headers`` are extra response headers (e.g. ``retry-after`` on 429).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or []

    def body(self) -> bytes:
        """The JSON body for this error."""
        return error_body(self.status, self.message, self.code, self.param)
