"""Every failure is an OpenAI-shaped error with the right status; none crashes the server."""

from __future__ import annotations

import socket
import time

import httpx
import orjson
import pytest

from .conftest import Account, Harness


def _err(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["code"] == code
    assert err["message"]
    return err


def _post(
    gateway: Harness, acct: Account | None, content: bytes, path: str = "/v1/chat/completions"
):
    headers = {"content-type": "application/json"}
    if acct is not None:
        headers["Authorization"] = f"Bearer {acct.key}"
    return gateway.http.post(path, content=content, headers=headers)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        (b"{not json", "invalid_json", None),
        (b"[1, 2]", "invalid_request", None),
        (
            b'{"messages": [{"role": "user", "content": "x"}]}',
            "missing_required_parameter",
            "model",
        ),
        (b'{"model": 5, "messages": []}', "invalid_type", "model"),
        (b'{"model": "fake-model"}', "missing_required_parameter", "messages"),
        (b'{"model": "fake-model", "messages": "hi"}', "invalid_type", "messages"),
        (b'{"model": "fake-model", "messages": [{"content": "x"}]}', "invalid_type", "messages[0]"),
        (
            b'{"model": "fake-model", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "invalid_type",
            "stream",
        ),
        (
            b'{"model": "fake-model", "messages": [{"role": "user", "content": "x"}], "n": 1.5}',
            "invalid_type",
            "n",
        ),
        (
            b'{"model": "fake-model", "messages": [{"role": "user", "content": "x"}], "temperature": true}',
            "invalid_type",
            "temperature",
        ),
    ],
)
def test_bad_bodies_are_400(gateway: Harness, acct: Account, body: bytes, code: str, param) -> None:
    err = _err(_post(gateway, acct, body), 400, code)
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"


def test_completions_and_embeddings_need_their_fields(gateway: Harness, acct: Account) -> None:
    _err(
        _post(gateway, acct, b'{"model": "fake-model"}', "/v1/completions"),
        400,
        "missing_required_parameter",
    )
    _err(
        _post(gateway, acct, b'{"model": "fake-model", "input": 3}', "/v1/embeddings"),
        400,
        "invalid_type",
    )


def test_auth_failures_are_401(gateway: Harness, acct: Account) -> None:
    body = b'{"model": "fake-model", "messages": [{"role": "user", "content": "x"}]}'
    _err(_post(gateway, None, body), 401, "missing_api_key")
    r = gateway.http.post(
        "/v1/chat/completions", content=body, headers={"Authorization": "Basic abc"}
    )
    _err(r, 401, "invalid_api_key")
    r = gateway.http.post(
        "/v1/chat/completions",
        content=body,
        headers={"Authorization": "Bearer sk-dw-not-a-real-key"},
    )
    _err(r, 401, "invalid_api_key")


def test_revoked_key_is_401(gateway: Harness) -> None:
    from distillwarden.store import services
    from distillwarden.store.db import session_scope

    acct = gateway.account()
    assert gateway.chat(acct).status_code == 200
    with session_scope(gateway.sessions) as s:
        services.revoke_api_key(s, acct.key_id, actor="test", reason="leaked")
    gateway.wait_for(lambda: gateway.app.cache.lookup(acct.key).revoked, "revocation")
    _err(gateway.chat(acct), 401, "revoked_api_key")


def test_unknown_model_404_route_404_method_405(gateway: Harness, acct: Account) -> None:
    err = _err(
        gateway.chat(acct, {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}),
        404,
        "model_not_found",
    )
    assert err["param"] == "model"
    _err(gateway.http.get("/v1/nope"), 404, "not_found")
    r = gateway.http.get("/v1/chat/completions", headers=gateway.headers(acct))
    _err(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


def test_body_over_limit_is_413_declared_and_streamed(gateway: Harness, acct: Account) -> None:
    big = (
        b'{"model": "fake-model", "messages": [{"role": "user", "content": "'
        + b"x" * 70_000
        + b'"}]}'
    )
    _err(_post(gateway, acct, big), 413, "request_too_large")

    def chunks():
        for _ in range(20):
            yield b"x" * 8192

    r = gateway.http.post("/v1/chat/completions", content=chunks(), headers=gateway.headers(acct))
    _err(r, 413, "request_too_large")


def test_slow_client_gets_408(gateway: Harness, acct: Account) -> None:
    port = gateway.settings.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            b"authorization: Bearer " + acct.key.encode() + b"\r\n"
            b'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"model"'
        )
        t0 = time.monotonic()
        data = s.recv(65536)
        assert time.monotonic() - t0 < 4
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert orjson.loads(body)["error"]["code"] == "request_timeout"


def test_upstream_hang_is_504_and_garbage_502(gateway: Harness, acct: Account) -> None:
    t0 = time.monotonic()
    err = _err(
        gateway.chat(acct, {"model": "hang-model", "messages": [{"role": "user", "content": "x"}]}),
        504,
        "upstream_timeout",
    )
    assert time.monotonic() - t0 < 5
    assert err["type"] == "upstream_error"
    _err(
        gateway.chat(
            acct, {"model": "garbage-model", "messages": [{"role": "user", "content": "x"}]}
        ),
        502,
        "upstream_bad_response",
    )


def test_upstream_error_json_passes_through(gateway: Harness, acct: Account) -> None:
    r = gateway.chat(acct, {"model": "error-model", "messages": [{"role": "user", "content": "x"}]})
    _err(r, 400, "upstream_rejects")


def test_streams_that_fail_midway_end_with_an_error_event(gateway: Harness, acct: Account) -> None:
    for model, code in (
        ("midstream-hang", "upstream_timeout"),
        ("broken-stream", "upstream_bad_response"),
    ):
        body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "s"}]}
        with gateway.http.stream(
            "POST", "/v1/chat/completions", json=body, headers=gateway.headers(acct)
        ) as r:
            assert r.status_code == 200
            raw = b"".join(r.iter_bytes())
        last = [e for e in raw.split(b"\n\n") if e][-1]
        assert b"data: [DONE]" not in raw
        assert orjson.loads(last[6:])["error"]["code"] == code


def test_unreachable_upstream_is_502(tmp_path) -> None:
    from distillwarden.gateway.app import create_app
    from distillwarden.store import services
    from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
    from distillwarden.store.migrate import upgrade_database

    from .conftest import ServerThread, free_port, make_settings

    settings = make_settings(tmp_path, free_port(), free_port())  # nothing listens upstream
    upgrade_database(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    with session_scope(make_sessionmaker(engine)) as s:
        services.create_org(s, name="o", org_id="org_x", actor="t")
        services.set_licence(s, "org_x", actor="t", reason="t")
        _, key = services.create_api_key(s, settings.secret_bytes(), "org_x", actor="t")
    engine.dispose()
    server = ServerThread(create_app(settings), settings.port)
    server.start()
    try:
        r = httpx.post(
            f"http://127.0.0.1:{settings.port}/v1/chat/completions",
            json={"model": "fake-model", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        _err(r, 502, "upstream_unavailable")
    finally:
        server.stop()


def test_warned_notice_cannot_inject_headers(gateway: Harness) -> None:
    acct = gateway.account()
    gateway.set_status(acct.org_id, "warned", reason="bulk extraction\r\nSet-Cookie: pwned=1")
    gateway.wait_status(acct.org_id, "warned")
    r = gateway.chat(acct)
    assert r.status_code == 200
    assert "set-cookie" not in r.headers
    notice = r.headers["x-distillwarden-notice"]
    assert "\r" not in notice and "\n" not in notice
    assert "bulk extraction" in notice


def test_server_survives_garbage_on_the_socket(gateway: Harness, acct: Account) -> None:
    with socket.create_connection(("127.0.0.1", gateway.settings.port), timeout=5) as s:
        s.sendall(b"\x00\x01GARBAGE / HTTP/9.9\r\n\r\n")
        s.recv(1024)
    assert gateway.chat(acct).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01garbage\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["binary", "header-without-colon", "bad-chunk-size"],
)
def test_requests_the_http_parser_rejects_get_an_openai_shaped_400(
    gateway: Harness, acct: Account, raw: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.settings.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    err = orjson.loads(body)["error"]
    assert err["code"] == "invalid_http_request" and err["type"] == "invalid_request_error"
    assert gateway.chat(acct).status_code == 200  # the server is unharmed
