"""Small raw-ASGI helpers for the hot path: read a bounded body, send a whole response."""

from __future__ import annotations

import asyncio
from typing import Any

from .errors import GatewayError

__all__ = ["ClientGone", "read_body", "send_bytes"]

Receive = Any
Send = Any


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


async def read_body(receive: Receive, limit: int, timeout_s: float, declared: int | None) -> bytes:
    """The request body, refusing more than ``limit`` bytes (413) as soon as it is known and
    giving up (408) when the client takes longer than ``timeout_s`` to send it."""
    if declared is not None and declared > limit:
        raise GatewayError(
            413,
            "request_too_large",
            f"request body of {declared} bytes exceeds the limit of {limit} bytes",
        )
    try:
        async with asyncio.timeout(timeout_s):
            msg = await receive()
            if msg["type"] != "http.request":
                raise ClientGone()
            body: bytes = msg.get("body", b"")
            if not msg.get("more_body", False):
                if len(body) > limit:
                    raise _too_large(limit)
                return body
            parts = [body]
            size = len(body)
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    raise ClientGone()
                chunk = msg.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                parts.append(chunk)
                if not msg.get("more_body", False):
                    return b"".join(parts)
    except TimeoutError:
        raise GatewayError(
            408,
            "request_timeout",
            f"the request body was not received within {timeout_s:g} s; send it faster "
            "or in one piece",
        ) from None


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413, "request_too_large", f"request body exceeds the limit of {limit} bytes"
    )


async def send_bytes(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Send a complete response (``headers`` must already include content-type)."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
