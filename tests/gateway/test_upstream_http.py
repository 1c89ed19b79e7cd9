"""The keep-alive upstream client: reuse, limits, retries on idle close, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from distillwarden.gateway.upstream_http import (
    UpstreamBadResponse,
    UpstreamPool,
    UpstreamTimeout,
    UpstreamUnavailable,
)

from .conftest import free_port

OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"ok":true}'
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length)
    return head + body


async def _serve(handler: Handler) -> tuple[asyncio.AbstractServer, int, dict]:
    stats = {"connections": 0, "open": 0, "max_open": 0, "requests": []}

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        stats["open"] += 1
        stats["max_open"] = max(stats["max_open"], stats["open"])
        try:
            await handler(reader, writer, stats)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            stats["open"] -= 1
            writer.close()

    port = free_port()
    server = await asyncio.start_server(on_conn, "127.0.0.1", port)
    return server, port, stats


def _pool(port: int, **kw: float) -> UpstreamPool:
    pool = UpstreamPool(
        f"http://127.0.0.1:{port}/v1",
        connect_timeout_s=kw.get("connect", 1.0),
        read_timeout_s=kw.get("read", 1.0),
        max_connections=int(kw.get("max", 8)),
    )
    pool.bind(asyncio.get_running_loop())
    return pool


async def _post(pool: UpstreamPool, body: bytes = b"{}") -> tuple[int, bytes]:
    resp = await pool.post(pool.request_head("/chat/completions"), b"x-test: 1\r\n", body)
    return resp.status, await resp.read()


async def keepalive(reader, writer, stats) -> None:
    while True:
        req = await _read_request(reader)
        stats["requests"].append(req)
        writer.write(OK)
        await writer.drain()


async def test_requests_reuse_one_keepalive_connection() -> None:
    server, port, stats = await _serve(keepalive)
    pool = _pool(port)
    for i in range(5):
        assert await _post(pool, b'{"i": %d}' % i) == (200, b'{"ok":true}')
    assert stats["connections"] == 1
    first = stats["requests"][0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"x-test: 1\r\n" in first and first.endswith(b'{"i": 0}')
    await pool.close()
    server.close()


async def test_connection_limit_is_respected() -> None:
    async def slow(reader, writer, stats) -> None:
        while True:
            await _read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(OK)
            await writer.drain()

    server, port, stats = await _serve(slow)
    pool = _pool(port, max=2)
    results = await asyncio.gather(*[_post(pool) for _ in range(8)])
    assert all(r[0] == 200 for r in results)
    assert stats["max_open"] <= 2
    await pool.close()
    server.close()


async def test_idle_connection_closed_by_upstream_is_retried_transparently() -> None:
    async def one_then_close(reader, writer, stats) -> None:
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        # keep the socket open but close it after the client has pooled it
        await asyncio.sleep(0.05)

    server, port, stats = await _serve(one_then_close)
    pool = _pool(port)
    assert (await _post(pool))[0] == 200
    await asyncio.sleep(0.15)  # the upstream closed the idle connection meanwhile
    assert (await _post(pool))[0] == 200
    assert stats["connections"] == 2
    await pool.close()
    server.close()


async def test_chunked_stream_is_delivered_in_pieces() -> None:
    async def sse(reader, writer, stats) -> None:
        await _read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for part in (b"data: a\n\n", b"data: b\n\n", b"data: [DONE]\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    server, port, _ = await _serve(sse)
    pool = _pool(port)
    resp = await pool.post(pool.request_head("/chat/completions"), b"", b"{}")
    assert resp.content_type == "text/event-stream"
    pieces = [c async for c in resp.iter_chunks()]
    assert len(pieces) >= 2
    assert b"".join(pieces) == b"data: a\n\ndata: b\n\ndata: [DONE]\n\n"
    await pool.close()
    server.close()


async def test_failures_map_to_distinct_errors() -> None:
    async def garbage(reader, writer, stats) -> None:
        await _read_request(reader)
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    async def hang(reader, writer, stats) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    async def close_midway(reader, writer, stats) -> None:
        await _read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial')
        await writer.drain()

    for handler, exc in (
        (garbage, UpstreamBadResponse),
        (hang, UpstreamTimeout),
        (close_midway, UpstreamBadResponse),
    ):
        server, port, _ = await _serve(handler)
        pool = _pool(port, read=0.3)
        with pytest.raises(exc):
            await _post(pool)
        await pool.close()
        server.close()
    with pytest.raises(UpstreamUnavailable):
        await _post(_pool(free_port()))
