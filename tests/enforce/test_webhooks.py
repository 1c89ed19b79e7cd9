"""Webhooks: signatures, delivery to a loopback receiver, retries, idempotency, SSRF checks."""

from __future__ import annotations

import ipaddress
import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.enforce.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    UnsafeDestination,
    WebhookError,
    WebhookSignatureError,
    add_webhook,
    backoff_delay,
    check_address,
    check_destination,
    deliver_due,
    enqueue,
    signature_header,
    verify_signature,
)
from distillwarden.store.db import session_scope
from distillwarden.store.models import WebhookDelivery


class Receiver:
    """A loopback HTTP receiver that records deliveries and answers with queued codes."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.codes: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.received.append({"headers": dict(self.headers), "body": body})
                code = outer.codes.pop(0) if outer.codes else 204
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/dw"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_signature_roundtrip_and_tampering() -> None:
    body = b'{"a":1}'
    header = signature_header("sec", body, timestamp=1_700_000_000)
    assert verify_signature("sec", body, header, now=1_700_000_010) == 1_700_000_000
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature("sec", b'{"a":2}', header, now=1_700_000_010)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_signature("other", body, header, now=1_700_000_010)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_signature("sec", body, header, now=1_700_000_000 + 3600)
    with pytest.raises(WebhookSignatureError, match="missing"):
        verify_signature("sec", body, None)
    with pytest.raises(WebhookSignatureError, match="t=<unix>"):
        verify_signature("sec", body, "v1=abc")
    # a rotated secret: either signature is accepted
    rotated = header + ",v1=" + "0" * 64
    assert verify_signature("sec", body, rotated, now=1_700_000_000)


def test_delivery_signed_to_loopback_receiver(
    session_factory: sessionmaker[Session], receiver: Receiver
) -> None:
    with session_scope(session_factory) as s:
        _, secret = add_webhook(s, receiver.url, events=["account.*"], allow_private=True,
                                actor="t")
        created = enqueue(s, "account.suspend", {"org_id": "o1"}, key="k1")
        assert len(created) == 1
        assert enqueue(s, "account.suspend", {"org_id": "o1"}, key="k1") == []  # duplicate
        assert enqueue(s, "case.opened", {"x": 1}, key="k2") == []  # not subscribed
    with session_scope(session_factory) as s:
        report = deliver_due(s, allow_private=True)
    assert len(report.delivered) == 1 and not report.failed
    (got,) = receiver.received
    headers = {k.lower(): v for k, v in got["headers"].items()}
    verify_signature(secret, got["body"], headers[SIGNATURE_HEADER])
    assert headers[DELIVERY_HEADER] == created[0].id
    doc = json.loads(got["body"])
    assert doc["event"] == "account.suspend" and doc["data"] == {"org_id": "o1"}
    with session_scope(session_factory) as s:
        assert deliver_due(s, allow_private=True).delivered == []  # nothing due twice
    assert len(receiver.received) == 1


def test_failed_delivery_retries_with_backoff_then_gives_up(
    session_factory: sessionmaker[Session], receiver: Receiver
) -> None:
    receiver.codes = [500, 503]
    with session_scope(session_factory) as s:
        add_webhook(s, receiver.url, allow_private=True, actor="t")
        enqueue(s, "account.warn", {"org_id": "o"}, key="w1")
    t0 = datetime.now(UTC)
    with session_scope(session_factory) as s:
        r1 = deliver_due(s, allow_private=True, now=t0, rng=random.Random(1))
    assert r1.retrying and not r1.delivered
    with session_scope(session_factory) as s:
        d = s.scalars(select(WebhookDelivery)).one()
        assert d.attempts == 1 and d.last_error == "HTTP 500" and d.status == "pending"
        due = d.next_attempt_at.replace(tzinfo=UTC)
        assert t0 + timedelta(seconds=1) <= due <= t0 + timedelta(seconds=2)
        # not due yet: nothing is sent
        assert deliver_due(s, allow_private=True, now=t0).retrying == []
    with session_scope(session_factory) as s:
        r2 = deliver_due(s, allow_private=True, now=due + timedelta(seconds=1))
    assert r2.retrying
    with session_scope(session_factory) as s:
        r3 = deliver_due(s, allow_private=True, now=t0 + timedelta(hours=1))
    assert r3.delivered and len(receiver.received) == 3
    # a destination that never answers fails after max_attempts
    with session_scope(session_factory) as s:
        add_webhook(s, "http://127.0.0.1:9/none", allow_private=True, actor="t")
        enqueue(s, "account.warn", {"org_id": "o"}, key="w2")
    for i in range(3):
        with session_scope(session_factory) as s:
            rep = deliver_due(s, allow_private=True, now=t0 + timedelta(days=i + 1),
                              max_attempts=3, timeout_s=2)
    assert rep.failed


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(0)
    delays = [backoff_delay(n, base_s=2, max_s=60, rng=rng) for n in range(1, 10)]
    for n, d in enumerate(delays, 1):
        ceiling = min(60, 2 * 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling


def test_private_destination_refused_without_setting(session_factory: sessionmaker[Session]
                                                     ) -> None:
    with session_scope(session_factory) as s, pytest.raises(UnsafeDestination, match="loopback"):
        add_webhook(s, "http://127.0.0.1:8080/x", actor="t")
    with pytest.raises(WebhookError, match="http"):
        check_destination("file:///etc/passwd")
    with pytest.raises(WebhookError, match="credentials"):
        check_destination("https://user:pw@example.com/")


def test_dns_rebinding_is_caught_at_delivery(
    session_factory: sessionmaker[Session], receiver: Receiver
) -> None:
    answers = {"hooks.example.com": ["93.184.216.34"]}

    def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    with session_scope(session_factory) as s:
        add_webhook(s, "http://hooks.example.com/x", resolver=resolver, actor="t")
        enqueue(s, "account.warn", {}, key="r1")
    answers["hooks.example.com"] = ["127.0.0.1"]  # the attacker's DNS now points inside
    with session_scope(session_factory) as s:
        rep = deliver_due(s, resolver=resolver)
    assert rep.failed and not receiver.received
    with session_scope(session_factory) as s:
        d = s.scalars(select(WebhookDelivery)).one()
        assert d.status == "failed" and "127.0.0.1" in (d.last_error or "")


public_v4 = st.sampled_from(["8.8.8.8", "93.184.216.34", "1.1.1.1", "151.101.1.69"])
blocked_v4_nets = [
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "192.0.2.0/24",
    "198.18.0.0/15",
]
blocked_v6_nets = ["::1/128", "fe80::/10", "fc00::/7", "ff00::/8", "::/128", "2001:db8::/32"]


@st.composite
def addr_in(draw: st.DrawFn, nets: list[str]) -> str:
    net = ipaddress.ip_network(draw(st.sampled_from(nets)))
    offset = draw(st.integers(0, net.num_addresses - 1))
    return str(net.network_address + offset)


@settings(max_examples=300, deadline=None)
@given(addr_in(blocked_v4_nets + blocked_v6_nets))
def test_blocked_ranges_are_refused(addr: str) -> None:
    with pytest.raises(UnsafeDestination):
        check_address(addr)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_ipv4_mapped_ipv6_always_refused(n: int) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{ipaddress.IPv4Address(n)}")
    with pytest.raises(UnsafeDestination):
        check_address(mapped)
    with pytest.raises(UnsafeDestination):
        check_destination(f"http://[{mapped}]/")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_ipv4_verdict_matches_global_flag(n: int) -> None:
    ip = ipaddress.IPv4Address(n)
    in_blocked = any(ip in ipaddress.ip_network(b) for b in blocked_v4_nets)
    if ip.is_global and not in_blocked:
        check_address(ip)  # public: accepted
    else:
        with pytest.raises(UnsafeDestination):
            check_address(ip)


@given(public_v4)
def test_public_addresses_accepted(addr: str) -> None:
    check_address(addr)
    dest = check_destination(f"https://{addr}/hook")
    assert dest.addresses == (addr,)


def test_resolver_with_any_private_answer_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(UnsafeDestination, match="10.0.0.5"):
        check_destination("https://multi.example.com/", resolver=resolver)
