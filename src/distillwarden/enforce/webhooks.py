"""Signed webhook deliveries with retries, idempotency and SSRF protection.

Every delivery is a row in ``WebhookDelivery`` whose id is the idempotency key: enqueueing
the same (webhook, event key) twice is a no-op, and receivers can deduplicate on the
``x-distillwarden-delivery`` header. The body is signed with HMAC-SHA256 over
``"{timestamp}.{body}"`` (header ``x-distillwarden-signature: t=<unix>,v1=<hex>``, the scheme
Stripe uses); :func:`verify_signature` is what a receiver calls.

Destinations are resolved and refused when any address is loopback, private, link-local,
multicast, reserved, unspecified, shared (CGNAT) or IPv4-mapped IPv6, unless the installation
sets ``webhooks_allow_private``. The check runs again at every delivery and the request is
sent to the address that was checked (DNS rebinding cannot swap it in between).
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..store import audit
from ..store.models import Webhook, WebhookDelivery

__all__ = [
    "DeliveryReport",
    "SIGNATURE_HEADER",
    "DELIVERY_HEADER",
    "UnsafeDestination",
    "WebhookError",
    "WebhookSignatureError",
    "add_webhook",
    "backoff_delay",
    "check_address",
    "check_destination",
    "deliver_due",
    "delivery_body",
    "enqueue",
    "list_webhooks",
    "sign",
    "signature_header",
    "verify_signature",
]

SIGNATURE_HEADER = "x-distillwarden-signature"
DELIVERY_HEADER = "x-distillwarden-delivery"
EVENT_HEADER = "x-distillwarden-event"

Resolver = Callable[[str, int], Sequence[str]]


class WebhookError(ValueError):
    """A webhook could not be added or delivered; the message says what to change."""


class UnsafeDestination(WebhookError):
    """The destination resolves to an address webhooks may not reach (SSRF protection)."""


class WebhookSignatureError(ValueError):
    """A received webhook's signature is missing, malformed, stale or wrong."""


# --- signing --------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``b"{timestamp}." + body``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``x-distillwarden-signature`` value: ``t=<unix seconds>,v1=<hex>``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={sign(secret, ts, body)}"


def verify_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> int:
    """Check a received delivery; return its timestamp or raise :class:`WebhookSignatureError`.

    For receivers: pass the raw request body (before JSON parsing) and the signature header.
    Several ``v1=`` values are accepted (secret rotation); timestamps older or newer than
    ``tolerance_s`` are refused so a captured delivery cannot be replayed later.
    """
    if not header:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    ts: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t":
            try:
                ts = int(v)
            except ValueError as exc:
                raise WebhookSignatureError(f"timestamp {v!r} is not an integer") from exc
        elif k == "v1":
            candidates.append(v)
    if ts is None or not candidates:
        raise WebhookSignatureError("signature header must look like t=<unix>,v1=<hex>")
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise WebhookSignatureError(
            f"timestamp {ts} is {abs(current - ts):.0f}s away from now (tolerance "
            f"{tolerance_s}s); check the receiver's clock or reject the replay"
        )
    expected = sign(secret, ts, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise WebhookSignatureError("signature does not match: wrong secret or altered body")
    return ts


# --- SSRF ------------------------------------------------------------------------------

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def check_address(addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Raise :class:`UnsafeDestination` unless ``addr`` is a public unicast address."""
    ip = ipaddress.ip_address(addr) if isinstance(addr, str) else addr
    reason = None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            reason = "an IPv4-mapped IPv6 address"
        elif ip.sixtofour is not None or ip.teredo is not None or ip in _NAT64:
            reason = "an IPv6 tunnel address embedding IPv4"
        elif ip.is_site_local:
            reason = "site-local"
    if reason is None:
        for attr in (
            "is_loopback",
            "is_link_local",
            "is_multicast",
            "is_unspecified",
            "is_reserved",
            "is_private",
        ):
            if getattr(ip, attr):
                reason = attr.removeprefix("is_").replace("_", "-")
                break
    if reason is None and isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        reason = "shared address space (CGNAT)"
    if reason is None and not ip.is_global:
        reason = "not globally routable"
    if reason is not None:
        raise UnsafeDestination(
            f"webhook destination address {ip} is {reason}; webhooks only reach public "
            "addresses unless `webhooks_allow_private: true` is set in the configuration"
        )


def _system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebhookError(f"cannot resolve webhook host {host!r}: {exc.strerror}") from exc
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Destination:
    """A checked destination: the URL and the addresses it resolved to when checked."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_destination(
    url: str, *, allow_private: bool = False, resolver: Resolver | None = None
) -> Destination:
    """Validate a webhook URL and resolve it; refuse unsafe destinations (see module doc)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookError(f"webhook URL must be http(s), got {parts.scheme or 'none'!r}")
    if parts.username or parts.password:
        raise WebhookError("webhook URL must not carry credentials; use the signing secret")
    host = parts.hostname
    if not host:
        raise WebhookError(f"webhook URL {url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookError(f"webhook URL {url!r} has an invalid port") from exc
    try:
        literal = ipaddress.ip_address(host)
        addresses: Sequence[str] = [str(literal)]
    except ValueError:
        addresses = (resolver or _system_resolver)(host, port)
    if not addresses:
        raise WebhookError(f"webhook host {host!r} resolved to no address")
    if not allow_private:
        for a in addresses:
            check_address(a)
    return Destination(url=url, host=host, port=port, addresses=tuple(addresses))


# --- registry and queue -----------------------------------------------------------------


def add_webhook(
    session: Session,
    url: str,
    *,
    events: Iterable[str] = ("*",),
    secret: str | None = None,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    actor: str,
) -> tuple[Webhook, str]:
    """Register a destination after the SSRF check; return it and its signing secret."""
    check_destination(url, allow_private=allow_private, resolver=resolver)
    hook = Webhook(
        id="wh_" + secrets.token_hex(8),
        url=url,
        secret=secret or "whsec_" + secrets.token_urlsafe(24),
        events=list(events),
        active=True,
    )
    session.add(hook)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="webhook.add",
        subject_type="webhook",
        subject_id=hook.id,
        reason=f"webhook to {url}",
        payload={"url": url, "events": list(events)},
    )
    return hook, hook.secret


def list_webhooks(session: Session) -> list[Webhook]:
    """All registered webhooks, oldest first."""
    return list(session.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id)))


def _subscribed(hook: Webhook, event: str) -> bool:
    return any(fnmatch.fnmatchcase(event, p) for p in (hook.events or ["*"]))


def delivery_id(webhook_id: str, key: str) -> str:
    """The idempotency id of delivering the event identified by ``key`` to a webhook."""
    return "dlv_" + hashlib.sha256(f"{webhook_id}\x00{key}".encode()).hexdigest()[:32]


def enqueue(
    session: Session, event: str, payload: dict[str, Any], *, key: str
) -> list[WebhookDelivery]:
    """Queue ``event`` for every active webhook subscribed to it; return the *new* deliveries.

    ``key`` identifies the event (e.g. ``status:org_1:42``): enqueueing the same key again
    creates nothing, so retries of the caller never notify a receiver twice.
    """
    created: list[WebhookDelivery] = []
    for hook in session.scalars(select(Webhook).where(Webhook.active.is_(True))):
        if not _subscribed(hook, event):
            continue
        did = delivery_id(hook.id, key)
        if session.get(WebhookDelivery, did) is not None:
            continue
        d = WebhookDelivery(
            id=did,
            webhook_id=hook.id,
            event=event,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=datetime.now(UTC),
        )
        session.add(d)
        created.append(d)
    session.flush()
    return created


def delivery_body(d: WebhookDelivery) -> bytes:
    """The exact bytes sent (and signed) for a delivery."""
    created = _aware(d.created_at) if d.created_at else datetime.now(UTC)
    doc = {"id": d.id, "event": d.event, "created": created.isoformat(), "data": d.payload}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def backoff_delay(
    attempts: int, *, base_s: float = 2.0, max_s: float = 3600.0, rng: random.Random | None = None
) -> float:
    """Delay before the next try after ``attempts`` failures: exponential, capped, with
    "equal jitter" (half fixed, half random) so retries from many deliveries spread out."""
    r = rng or random
    ceiling = min(max_s, base_s * (2 ** max(attempts - 1, 0)))
    return ceiling / 2 + r.uniform(0, ceiling / 2)


@dataclass
class DeliveryReport:
    """What one :func:`deliver_due` pass did."""

    delivered: list[str] = field(default_factory=list)
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _pinned_request(dest: Destination) -> tuple[str, dict[str, str], dict[str, Any]]:
    """URL with the checked address in place of the host, plus Host header / SNI."""
    parts = urlsplit(dest.url)
    addr = dest.addresses[0]
    host_part = f"[{addr}]" if ":" in addr else addr
    netloc = f"{host_part}:{dest.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    default_port = 443 if parts.scheme == "https" else 80
    host_header = dest.host if dest.port == default_port else f"{dest.host}:{dest.port}"
    if ":" in dest.host and not dest.host.startswith("["):
        host_header = f"[{dest.host}]" if dest.port == default_port else f"[{dest.host}]:{dest.port}"
    ext: dict[str, Any] = {"sni_hostname": dest.host} if parts.scheme == "https" else {}
    return url, {"host": host_header}, ext


def deliver_due(
    session: Session,
    *,
    allow_private: bool = False,
    client: httpx.Client | None = None,
    resolver: Resolver | None = None,
    now: datetime | None = None,
    max_attempts: int = 8,
    base_delay_s: float = 2.0,
    max_delay_s: float = 3600.0,
    timeout_s: float = 10.0,
    limit: int = 100,
    rng: random.Random | None = None,
) -> DeliveryReport:
    """Send every pending delivery that is due; schedule retries with backoff.

    A 2xx answer marks the delivery ``delivered``. Any other answer or a network error
    schedules a retry (``attempts`` + 1, ``next_attempt_at`` by :func:`backoff_delay`) until
    ``max_attempts``, then ``failed``. An unsafe destination fails at once (no retry).
    """
    at = now or datetime.now(UTC)
    report = DeliveryReport()
    due = list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= at)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
    )
    own_client = client is None
    http = client or httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False)
    try:
        for d in due:
            hook = session.get(Webhook, d.webhook_id)
            d.attempts += 1
            if hook is None or not hook.active:
                d.status, d.last_error = "failed", "webhook removed or deactivated"
                report.failed.append(d.id)
                continue
            try:
                dest = check_destination(hook.url, allow_private=allow_private, resolver=resolver)
            except UnsafeDestination as exc:
                d.status, d.last_error = "failed", str(exc)
                report.failed.append(d.id)
                continue
            except WebhookError as exc:
                _retry(d, str(exc), at, max_attempts, base_delay_s, max_delay_s, rng, report)
                continue
            body = delivery_body(d)
            url, headers, ext = _pinned_request(dest)
            headers.update(
                {
                    "content-type": "application/json",
                    "user-agent": "distillwarden-webhooks/1",
                    SIGNATURE_HEADER: signature_header(hook.secret, body),
                    DELIVERY_HEADER: d.id,
                    EVENT_HEADER: d.event,
                }
            )
            try:
                resp = http.post(url, content=body, headers=headers, extensions=ext)
            except httpx.HTTPError as exc:
                _retry(d, f"{type(exc).__name__}: {exc}", at, max_attempts, base_delay_s,
                       max_delay_s, rng, report)
                continue
            if 200 <= resp.status_code < 300:
                d.status, d.last_error = "delivered", None
                report.delivered.append(d.id)
            else:
                _retry(d, f"HTTP {resp.status_code}", at, max_attempts, base_delay_s,
                       max_delay_s, rng, report)
    finally:
        if own_client:
            http.close()
        session.flush()
    return report


def _retry(
    d: WebhookDelivery,
    error: str,
    at: datetime,
    max_attempts: int,
    base_s: float,
    max_s: float,
    rng: random.Random | None,
    report: DeliveryReport,
) -> None:
    d.last_error = error
    if d.attempts >= max_attempts:
        d.status = "failed"
        report.failed.append(d.id)
        return
    d.next_attempt_at = at + timedelta(
        seconds=backoff_delay(d.attempts, base_s=base_s, max_s=max_s, rng=rng)
    )
    report.retrying.append(d.id)
