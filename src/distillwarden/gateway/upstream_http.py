"""A small keep-alive HTTP/1.1 client pool for OpenAI-compatible upstreams.

Built on asyncio protocols and the ``httptools`` parser (the one uvicorn uses), because a
general client costs the hot path several times more CPU per request (measured by
``bench/gateway/client_overhead.py``: aiohttp 95 µs, this pool 27 µs per request on loopback;
``bench/results/gateway_client_overhead.json``). It does only what a proxy to an
OpenAI-compatible server needs: POST a body, read a JSON answer or stream an SSE answer
chunk by chunk, keep connections alive, bound their number, time out connects and reads,
and tell unreachable upstreams from broken answers. HTTPS upstreams are supported.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

__all__ = [
    "UpstreamBadResponse",
    "UpstreamError",
    "UpstreamPool",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]

_IDLE_KEEPALIVE_S = 30.0


class UpstreamError(Exception):
    """The upstream could not produce an answer; ``code`` is the gateway's error code."""

    code = "upstream_error"
    status = 502


class UpstreamUnavailable(UpstreamError):
    """Connection refused, reset or closed before an answer."""

    code = "upstream_unavailable"


class UpstreamBadResponse(UpstreamError):
    """The bytes the upstream sent are not a valid HTTP response."""

    code = "upstream_bad_response"


class UpstreamTimeout(UpstreamError):
    """No connection or no data within the configured timeout."""

    code = "upstream_timeout"
    status = 504


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses responses as they arrive."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.last_used = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.content_type = b""
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.chunks: list[bytes] = []
        self.error: UpstreamError | None = None
        self.got_bytes = False
        self.waiter: asyncio.Future[None] | None = None
        self.eof_body = True  # body ends at connection close unless a length is declared
        self._header: bytes = b""

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamBadResponse(f"invalid HTTP from the upstream ({exc})"))
            self._close()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and self.eof_body:
                self.complete = True
            elif self.got_bytes:
                self._fail(UpstreamBadResponse("the upstream closed the connection mid-answer"))
            else:
                self._fail(UpstreamUnavailable("the upstream closed the connection"))
        self._wake()
        self.pool._forget(self)

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        if lname == b"content-type":
            self.content_type = value
        elif lname == b"content-length" or (
            lname == b"transfer-encoding" and b"chunked" in value.lower()
        ):
            self.eof_body = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status in (204, 304) or 100 <= self.status < 200:
            self.eof_body = False
        self.keep_alive = self.parser.should_keep_alive()  # only valid before completion
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- helpers
    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, err: UpstreamError) -> None:
        if self.error is None:
            self.error = err
        self._wake()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def _timed_out(self) -> None:
        self._fail(UpstreamTimeout(f"no data from the upstream for {self.pool.read_timeout_s:g} s"))
        self._close()

    async def wait(self) -> None:
        """Wait for the next parser progress, at most ``read_timeout_s``."""
        if self.error is not None:
            raise self.error
        waiter = self.loop.create_future()
        self.waiter = waiter
        timer = self.loop.call_later(self.pool.read_timeout_s, self._timed_out)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None
        if self.error is not None:
            raise self.error


class UpstreamResponse:
    """Status and content type of an upstream answer; read it whole or stream it."""

    __slots__ = ("_conn", "_pool", "status", "content_type", "_done")

    def __init__(self, pool: UpstreamPool, conn: _Connection) -> None:
        self._pool = pool
        self._conn = conn
        self.status = conn.status
        self.content_type = conn.content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
        self._done = False

    async def read(self) -> bytes:
        """The whole body (the connection then returns to the pool)."""
        conn = self._conn
        try:
            while not conn.complete:
                await conn.wait()
            chunks = conn.chunks
            conn.chunks = []
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        finally:
            self.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive."""
        conn = self._conn
        try:
            while True:
                if conn.chunks:
                    chunks = conn.chunks
                    conn.chunks = []
                    yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
                elif conn.complete:
                    return
                else:
                    await conn.wait()
        finally:
            self.release()

    def release(self) -> None:
        """Give the connection back (kept alive only if the answer was read completely)."""
        if not self._done:
            self._done = True
            self._pool._release(self._conn)


class UpstreamPool:
    """Keep-alive connections to one upstream, at most ``max_connections`` at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream base_url {base_url!r} must be http(s)://host[:port]/path")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.base_path = parts.path.rstrip("/")
        default_port = 443 if self.tls else 80
        self.host_header = (
            self.host if self.port == default_port else f"{self.host}:{self.port}"
        ).encode("idna")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_connections = max(1, max_connections)
        self._ssl = ssl.create_default_context() if self.tls else None
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.loop: asyncio.AbstractEventLoop  # set by bind() inside the serving loop
        self._closing = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Use ``loop`` (call from inside it before the first request)."""
        self.loop = loop

    def request_head(self, path: str) -> bytes:
        """The fixed part of a POST to ``base_url + path`` (up to the per-request headers)."""
        return (
            b"POST "
            + (self.base_path + path).encode("latin-1")
            + b" HTTP/1.1\r\nhost: "
            + self.host_header
            + b"\r\n"
        )

    async def _connect(self) -> _Connection:
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                ),
                timeout=self.connect_timeout_s,
            )
        except TimeoutError:
            raise UpstreamTimeout(
                f"no connection to {self.host}:{self.port} within {self.connect_timeout_s:g} s"
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamUnavailable(
                f"cannot connect to {self.host}:{self.port} ({type(exc).__name__})"
            ) from None
        return conn

    async def _acquire(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.closed:
                continue
            if now - conn.last_used > _IDLE_KEEPALIVE_S:
                conn._close()
                self._open -= 1
                continue
            conn.reused = True
            return conn
        while self._open >= self.max_connections:
            fut = self.loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                raise
            if self._idle:
                return await self._acquire()
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._notify()
            raise

    def _notify(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _release(self, conn: _Connection) -> None:
        """An in-use connection comes back: idle it if reusable, else close and uncount it."""
        if (
            conn.complete
            and conn.error is None
            and not conn.closed
            and not self._closing
            and not conn.chunks
            and conn.keep_alive
        ):
            conn._reset()
            conn.last_used = time.monotonic()
            self._idle.append(conn)
        else:
            conn._close()
            self._open -= 1
        self._notify()

    def _forget(self, conn: _Connection) -> None:
        """An idle connection was closed by the upstream: it no longer counts."""
        try:
            self._idle.remove(conn)
        except ValueError:
            return  # in use: the request releases or discards it
        self._open -= 1
        self._notify()

    async def post(self, head: bytes, headers: bytes, body: bytes) -> UpstreamResponse:
        """Send ``head`` + ``headers`` + body; return once the response headers arrived.

        A reused keep-alive connection that the upstream closed before answering anything is
        retried once on a fresh connection (the usual idle-close race).
        """
        message = b"".join(
            (head, headers, b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        )
        for attempt in (0, 1):
            conn = await self._acquire()
            transport = conn.transport
            assert transport is not None
            transport.write(message)
            try:
                while not conn.headers_done:
                    await conn.wait()
            except UpstreamUnavailable:
                retry = attempt == 0 and conn.reused and not conn.got_bytes
                self._discard(conn)
                if retry:
                    continue
                raise
            except BaseException:
                self._discard(conn)
                raise
            return UpstreamResponse(self, conn)
        raise UpstreamUnavailable("the upstream closed the connection")  # pragma: no cover

    def _discard(self, conn: _Connection) -> None:
        """Drop a connection that failed while in use."""
        if not conn.closed:
            conn._close()
        self._open -= 1
        self._notify()

    async def close(self) -> None:
        """Close every idle connection; in-flight ones close when released."""
        self._closing = True
        while self._idle:
            conn = self._idle.pop()
            conn._close()
            self._open -= 1
