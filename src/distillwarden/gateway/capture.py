"""Turn one accepted exchange into one event row (EVENT_SCHEMA columns).

Identifiers (client IP, its network, the User-Agent) are hashed with the installation
secret; the hashes are memoised (bounded) because the same clients send many requests.
"""

from __future__ import annotations

import time
from typing import Any

from ..events.record import (
    extract_request_fields,
    extract_response_fields,
    hash_identifier,
    hash_ip,
    new_event_id,
)
from .accounts import AccountAuth

__all__ = ["ClientHasher", "new_event"]


class ClientHasher:
    """Memoised HMACs of client IPs and User-Agents."""

    def __init__(self, secret: bytes, *, max_memo: int = 65_536) -> None:
        self._secret = secret
        self._ips: dict[str, tuple[str | None, str | None]] = {}
        self._uas: dict[bytes, str | None] = {}
        self._max = max_memo

    def ip(self, ip: str | None) -> tuple[str | None, str | None]:
        """``(ip_hash, ip_net_hash)``."""
        if ip is None:
            return None, None
        hit = self._ips.get(ip)
        if hit is None:
            hit = hash_ip(self._secret, ip)
            if len(self._ips) >= self._max:
                self._ips.clear()
            self._ips[ip] = hit
        return hit

    def ua(self, ua: bytes | None) -> str | None:
        """Hash of the User-Agent header."""
        if not ua:
            return None
        hit = self._uas.get(ua)
        if hit is None:
            hit = hash_identifier(self._secret, ua.decode("latin-1"))
            if len(self._uas) >= self._max:
                self._uas.clear()
            self._uas[ua] = hit
        return hit


def new_event(
    *,
    auth: AccountAuth,
    endpoint: str,
    region: str,
    ip_hashes: tuple[str | None, str | None],
    ua_hash: str | None,
    body: bytes,
    request: dict[str, Any],
    upstream: str,
) -> dict[str, Any]:
    """The request half of an event; the response half is filled by :func:`finish_event`."""
    lic = auth.org.licence
    event = extract_request_fields(request)
    event["event_id"] = new_event_id()
    event["ts"] = time.time_ns() // 1000
    event["org_id"] = auth.org.org_id
    event["key_id"] = auth.key_id
    event["key_prefix"] = auth.key_prefix
    event["channel"] = lic.channel if lic else None
    event["licence"] = lic.name if lic else None
    event["region"] = region
    event["ip_hash"] = ip_hashes[0]
    event["ip_net_hash"] = ip_hashes[1]
    event["ua_hash"] = ua_hash
    event["endpoint"] = endpoint
    event["request_json"] = body.decode("utf-8", "replace")
    event["upstream"] = upstream
    event["source"] = "gateway"
    return event


def finish_event(
    event: dict[str, Any],
    *,
    status: int,
    response: dict[str, Any] | None,
    error_code: str | None,
    latency_s: float,
    ttfb_s: float | None,
) -> dict[str, Any]:
    """Fill the response half of an event from the upstream's (assembled) answer."""
    event.update(extract_response_fields(response))
    event["status"] = status
    event["error_code"] = error_code
    event["latency_ms"] = latency_s * 1000.0
    event["ttfb_ms"] = ttfb_s * 1000.0 if ttfb_s is not None else None
    return event
