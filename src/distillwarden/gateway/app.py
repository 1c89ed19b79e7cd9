"""The gateway: a raw ASGI app composing auth, licence checks, limits, proxying and event
capture, plus operations endpoints and the admin API / console mounts.

The hot path (``POST /v1/...``) does the least it can: two dictionary look-ups to
authenticate, in-memory licence and limit checks, one ``orjson.loads`` of the body, the
upstream call over a pooled connection, and one ``EventWriter.append`` before the response
is completed. No framework routing, no pydantic, no per-request logging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ..config import Settings
from ..events.writer import Conversion, check_conversion
from ..store.db import make_engine, make_sessionmaker
from ._http import ClientGone, read_body, send_bytes
from ._memory import MemoryTrimmer
from ._mounts import MountedApps
from .accounts import AccountAuth, AuthCache
from .capture import ClientHasher, finish_event, new_event
from .errors import GatewayError
from .limits import (
    EffectiveLimits,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    retry_after_header,
)
from .logs import log_event
from .metrics import GatewayMetrics
from .policy import authenticate, check_licence, check_use, effective_limits
from .posthoc import PosthocMarker
from .region import RegionResolver
from .requests import parse_request
from .sse import StreamAssembler
from .store_sync import ChangeFeedPoller
from .upstream import Route, build_routes
from .upstream_http import UpstreamError, UpstreamResponse

__all__ = ["GatewayApp", "create_app"]

_log = logging.getLogger("distillwarden.gateway")

_JSON = (b"content-type", b"application/json")
_LOG_UNAVAILABLE_SSE = (
    b'data: {"error":{"message":"the event log is unavailable","type":"server_error",'
    b'"param":null,"code":"event_log_unavailable"}}\n\n'
)
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class GatewayApp:
    """The ASGI application. Create it with :func:`create_app`; serve it with uvicorn."""

    def __init__(
        self,
        settings: Settings,
        *,
        body_timeout_s: float = 30.0,
        migrate: bool = True,
        event_conversion: Conversion = "process",
    ) -> None:
        self.settings = settings
        self.migrate = migrate
        self.event_conversion = check_conversion(event_conversion, name="event_conversion")
        self.secret = settings.secret_bytes()
        self.body_timeout_s = body_timeout_s
        self.max_body = settings.max_body_bytes
        self.cache = AuthCache(self.secret)
        self.posthoc = PosthocMarker(self.secret)
        self.metrics = GatewayMetrics()
        self.hasher = ClientHasher(self.secret)
        self.regions = RegionResolver(
            header=settings.region_header,
            ip_regions=settings.ip_regions,
            default=settings.default_region,
        )
        self.clients, self.routes = build_routes(settings)
        self.limiter: RateLimiter = LocalRateLimiter()
        self._local_limiter: LocalRateLimiter | None = self.limiter  # type: ignore[assignment]
        self.writer: Any = None
        self.session_factory: sessionmaker[Session] | None = None
        self.poller: ChangeFeedPoller | None = None
        self.mounts = MountedApps()
        self._trimmer: MemoryTrimmer | None = None
        self.ready = False
        self._engine: Any = None
        self._region_header = self.regions.header
        self._handlers = {
            "/v1/chat/completions": self._proxy,
            "/v1/completions": self._proxy,
            "/v1/embeddings": self._proxy,
            "/v1/models": self._models,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }

    # ------------------------------------------------------------------ ASGI entry
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            handler = self._handlers.get(path)
            if handler is not None:
                await handler(scope, receive, send)
                return
            if path.startswith("/v1/models/"):
                await self._model(scope, receive, send)
                return
            mounted = self.mounts.match(path)
            if mounted is not None:
                await mounted(scope, receive, send)
                return
            await self._error(send, GatewayError(404, "not_found", f"no route {path!r}"))
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    # ------------------------------------------------------------------ lifecycle
    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    _log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """Open the store (migrating it), load the auth cache, start the event writer, the
        change poller and the upstream pools; mount the admin API and console."""
        settings = self.settings
        url = settings.effective_database_url
        if self.migrate:
            await asyncio.to_thread(_upgrade_database, url)
        self._engine = make_engine(url)
        self.session_factory = make_sessionmaker(self._engine)
        self.poller = ChangeFeedPoller(
            self.cache,
            self.session_factory,
            poll_s=settings.status_poll_s,
            redis_url=settings.redis_url,
            database_url=url,
        )
        n_orgs = await self.poller.load()
        self.writer = _open_writer(settings, self.event_conversion)
        await asyncio.to_thread(self.writer.start)
        for client in self.clients.values():
            await client.start()
        if settings.redis_url:
            self.limiter = RedisRateLimiter(settings.redis_url)
            self._local_limiter = None
        self.poller.start()
        writer = self.writer
        self._trimmer = MemoryTrimmer(lambda: int(getattr(writer, "segments_written", 0)))
        self._trimmer.start()
        self._register_gauges()
        await self.mounts.start(settings, self.session_factory)
        self.ready = True
        log_event(
            _log,
            "gateway_started",
            organizations=n_orgs,
            keys=len(self.cache),
            models=sorted(self.routes),
            events_dir=str(settings.effective_events_dir),
            mounted=self.mounts.prefixes(),
        )

    async def shutdown(self) -> None:
        """Stop background work, flush and close the event writer, close pools."""
        self.ready = False
        if self._trimmer is not None:
            await self._trimmer.stop()
        await self.mounts.stop()
        if self.poller is not None:
            await self.poller.stop()
        for client in self.clients.values():
            await client.close()
        await self.limiter.close()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
        if self._engine is not None:
            self._engine.dispose()
        log_event(_log, "gateway_stopped")

    def _register_gauges(self) -> None:
        writer = self.writer
        self.metrics.gauge(
            "distillwarden_event_queue_depth",
            "Events accepted but not yet in a Parquet segment.",
            lambda: float(writer.queue_depth),
        )
        self.metrics.gauge(
            "distillwarden_event_lag_seconds",
            "Age of the oldest event not yet in a Parquet segment.",
            lambda: float(writer.lag_s),
        )
        self.metrics.gauge(
            "distillwarden_event_conversion_cpu_seconds",
            "CPU time of the processes that converted event spools to Parquet since start.",
            lambda: float(getattr(writer, "conversion_cpu_s", 0.0)),
        )
        self.metrics.gauge(
            "distillwarden_event_conversion_peak_rss_bytes",
            "Largest resident memory of one spool-conversion process since start.",
            lambda: float(getattr(writer, "conversion_peak_rss_mb", 0.0)) * 2**20,
        )
        self.metrics.gauge(
            "distillwarden_events_written",
            "Events published in Parquet segments since start.",
            lambda: float(getattr(writer, "events_written", 0)),
        )
        self.metrics.gauge(
            "distillwarden_auth_cache_keys", "API keys in the auth cache.", lambda: len(self.cache)
        )
        self.metrics.gauge(
            "distillwarden_change_feed_position",
            "Last store change applied to the auth cache.",
            lambda: float(self.poller.position if self.poller else 0),
        )

    # ------------------------------------------------------------------ helpers
    async def _error(
        self,
        send: Any,
        err: GatewayError,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        headers = [_JSON, *err.headers]
        if extra:
            headers.extend(extra)
        await send_bytes(send, err.status, err.body(), headers)

    def _client_ip(self, scope: dict[str, Any], xff: bytes | None) -> str | None:
        if xff is not None and self.settings.trust_forwarded_for:
            first = xff.split(b",", 1)[0].strip()
            if first:
                return first.decode("latin-1")
        client = scope.get("client")
        return client[0] if client else None

    # ------------------------------------------------------------------ the hot path
    async def _proxy(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        t0 = time.perf_counter()
        endpoint: str = scope["path"]
        if scope["method"] != "POST":
            self.metrics.reject("method_not_allowed")
            await self._error(
                send,
                GatewayError(405, "method_not_allowed", f"{endpoint} accepts POST only"),
                [(b"allow", b"POST")],
            )
            return
        authorization = declared = ua = region_value = xff = use = None
        region_header = self._region_header
        for k, v in scope["headers"]:
            if k == b"authorization":
                authorization = v
            elif k == b"content-length":
                declared = v
            elif k == b"user-agent":
                ua = v
            elif k == region_header:
                region_value = v
            elif k == b"x-forwarded-for":
                xff = v
            elif k == b"x-distillwarden-use":
                use = v
        model_label = "-"
        rate_headers: list[tuple[bytes, bytes]] = []
        try:
            auth = authenticate(self.cache, authorization)
            try:
                size = int(declared) if declared is not None else None
            except ValueError:
                raise GatewayError(400, "invalid_request", "malformed Content-Length") from None
            try:
                body = await read_body(receive, self.max_body, self.body_timeout_s, size)
            except ClientGone:
                return
            request = parse_request(body, endpoint)
            model: str = request["model"]
            route = self.routes.get(model)
            if route is None:
                raise GatewayError(
                    404,
                    "model_not_found",
                    f"the model {model!r} does not exist; GET /v1/models lists the ones you "
                    "can use",
                    param="model",
                )
            model_label = model
            client_ip = self._client_ip(scope, xff)
            region = None
            if region_value is not None:
                region = self.regions.from_header(region_value)
            if region is None:
                region = self.regions.from_ip(client_ip)
            check_licence(auth, model, region)
            if use is not None:
                check_use(auth, use)
            max_tokens = request.get("max_tokens") or request.get("max_completion_tokens") or 0
            estimate = len(body) // 4 + (max_tokens if isinstance(max_tokens, int) else 0)
            limits = effective_limits(self.settings.limits, auth)
            local = self._local_limiter
            if local is not None:
                decision = local.acquire_now(auth.key_id, auth.org.org_id, limits, estimate)
            else:
                decision = await self.limiter.acquire(
                    auth.key_id, auth.org.org_id, limits, estimate
                )
            rate_headers = decision.headers
            if not decision.allowed:
                raise GatewayError(
                    429,
                    "rate_limit_exceeded",
                    f"rate limit reached for {decision.scope} {decision.dimension} per minute; "
                    f"retry in {decision.retry_after_s:.1f} s",
                    headers=[retry_after_header(decision.retry_after_s)],
                )
        except GatewayError as err:
            self.metrics.reject(err.code)
            self.metrics.observe(endpoint, model_label, err.status, time.perf_counter() - t0)
            await self._error(send, err, rate_headers)
            return
        event = new_event(
            auth=auth,
            endpoint=endpoint,
            region=region,
            ip_hashes=self.hasher.ip(client_ip),
            ua_hash=self.hasher.ua(ua),
            body=body,
            request=request,
            upstream=route.client.name,
        )
        headers = [_JSON, (b"x-request-id", event["event_id"].encode()), *rate_headers]
        notice = auth.org.notice_header
        if notice is not None:
            headers.append((b"x-distillwarden-notice", notice.encode()))
        await self._forward(
            receive, send, route, auth, limits, estimate, body, request, event, headers, t0
        )

    async def _forward(
        self,
        receive: Any,
        send: Any,
        route: Route,
        auth: AccountAuth,
        limits: EffectiveLimits,
        estimate: int,
        body: bytes,
        request: dict[str, Any],
        event: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
        t0: float,
    ) -> None:
        client = route.client
        endpoint = event["endpoint"]
        if route.upstream_model is not None:
            request = dict(request)
            request["model"] = route.upstream_model
            body = orjson.dumps(request)
        up_headers = auth.org.upstream_headers + b"x-request-id: " + headers[1][1] + b"\r\n"
        status = 502
        data = b""
        response: dict[str, Any] | None = None
        error: GatewayError | None = None
        event_code: str | None = None
        try:
            resp = await client.post(endpoint, up_headers, body)
            status = resp.status
            if (
                request.get("stream") is True
                and status == 200
                and resp.content_type == "text/event-stream"
            ):
                await self._relay_stream(
                    receive, send, resp, auth, limits, estimate, event, headers, t0
                )
                return
            data = await resp.read()
        except UpstreamError as exc:
            error = GatewayError(exc.status, exc.code, f"upstream {client.name!r}: {exc}")
        if error is None:
            try:
                response = orjson.loads(data)
            except orjson.JSONDecodeError:
                response = None
            if not isinstance(response, dict):
                error = GatewayError(
                    502,
                    "upstream_bad_response",
                    f"upstream {client.name!r} returned HTTP {status} with a body that is "
                    "not a JSON object",
                )
                response = None
            elif status >= 400:
                err = response.get("error")
                code = err.get("code") if isinstance(err, dict) else None
                event_code = code if isinstance(code, str) else "upstream_error"
        latency = time.perf_counter() - t0
        if error is not None:
            finish_event(
                event,
                status=error.status,
                response=None,
                error_code=error.code,
                latency_s=latency,
                ttfb_s=None,
            )
            if not self._append(event):
                await self._log_unavailable(send, endpoint, event)
                return
            self.metrics.observe(endpoint, event["model"] or "-", error.status, latency)
            await send_bytes(send, error.status, error.body(), [*headers, *error.headers])
            return
        licence = auth.org.licence
        if (
            status < 400
            and response is not None
            and licence is not None
            and self.posthoc.wants(licence.watermark)
            and self.posthoc.apply(auth.org.org_id, licence.watermark, response)
        ):
            data = orjson.dumps(response)
        finish_event(
            event,
            status=status,
            response=response if status < 400 else None,
            error_code=event_code,
            latency_s=latency,
            ttfb_s=latency,
        )
        await self._settle(auth, limits, estimate, event)
        if not self._append(event):
            await self._log_unavailable(send, endpoint, event)
            return
        self.metrics.observe(endpoint, event["model"] or "-", status, latency)
        await send_bytes(send, status, data, headers)

    async def _relay_stream(
        self,
        receive: Any,
        send: Any,
        resp: UpstreamResponse,
        auth: AccountAuth,
        limits: EffectiveLimits,
        estimate: int,
        event: dict[str, Any],
        headers: list[tuple[bytes, bytes]],
        t0: float,
    ) -> None:
        headers[0] = _SSE_HEADERS[0]
        headers.append(_SSE_HEADERS[1])
        asm = StreamAssembler()
        ttfb: float | None = None
        error: GatewayError | None = None
        gone = asyncio.get_running_loop().create_task(_disconnected(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            async for chunk in resp.iter_chunks():
                if gone.done():  # stop generating for a client that left
                    error = GatewayError(
                        499, "client_disconnected", "the client closed the connection"
                    )
                    break
                out = asm.feed(chunk)
                if out:
                    if ttfb is None:
                        ttfb = time.perf_counter() - t0
                    await send({"type": "http.response.body", "body": out, "more_body": True})
        except UpstreamError as exc:
            error = GatewayError(exc.status, exc.code, f"upstream stream broke: {exc}")
        finally:
            resp.release()
            gone.cancel()
        if not asm.done and error is None:
            rest = asm.flush()
            if rest:
                asm.feed(rest + b"\n\n")
            if not asm.done:
                error = GatewayError(
                    502, "upstream_bad_response", "upstream closed the stream before [DONE]"
                )
        latency = time.perf_counter() - t0
        assembled: dict[str, Any] = {
            "choices": [{"message": asm.message(), "finish_reason": asm.finish_reason}],
            "usage": asm.usage,
        }
        finish_event(
            event,
            status=499 if error is not None and error.status == 499 else 200,
            response=assembled,
            error_code=error.code if error else None,
            latency_s=latency,
            ttfb_s=ttfb,
        )
        await self._settle(auth, limits, estimate, event)
        endpoint = event["endpoint"]
        if not self._append(event):
            await send(
                {"type": "http.response.body", "body": _LOG_UNAVAILABLE_SSE, "more_body": False}
            )
            return
        self.metrics.observe(endpoint, event["model"] or "-", event["status"], latency)
        tail = b"data: " + error.body() + b"\n\n" if error is not None else asm.tail
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _settle(
        self, auth: AccountAuth, limits: EffectiveLimits, estimate: int, event: dict[str, Any]
    ) -> None:
        if not (limits.key_tpm or limits.org_tpm):
            return
        pt = event.get("prompt_tokens")
        ct = event.get("completion_tokens")
        if pt is None and ct is None:
            text_out = event.get("response_text") or ""
            actual = len(event.get("request_json") or "") // 4 + len(text_out) // 4
        else:
            actual = (pt or 0) + (ct or 0)
        delta = actual - estimate
        if not delta:
            return
        local = self._local_limiter
        if local is not None:
            local.settle_now(auth.key_id, auth.org.org_id, limits, delta)
        else:
            await self.limiter.settle(auth.key_id, auth.org.org_id, limits, delta)

    def _append(self, event: dict[str, Any]) -> bool:
        try:
            self.writer.append(event)
            return True
        except Exception as exc:
            log_event(
                _log,
                "event_append_failed",
                logging.ERROR,
                event_id=event.get("event_id"),
                error=repr(exc)[:500],
            )
            return False

    async def _log_unavailable(self, send: Any, endpoint: str, event: dict[str, Any]) -> None:
        err = GatewayError(
            503,
            "event_log_unavailable",
            "the gateway cannot record this request in its event log, so it is not served; "
            "retry shortly",
        )
        self.metrics.reject(err.code)
        self.metrics.observe(endpoint, event.get("model") or "-", 503, 0.0)
        await self._error(send, err)

    # ------------------------------------------------------------------ other endpoints
    def _auth_only(self, scope: dict[str, Any]) -> AccountAuth:
        authorization = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                authorization = v
                break
        return authenticate(self.cache, authorization)

    def _model_entries(self, auth: AccountAuth) -> list[dict[str, Any]]:
        lic = auth.org.licence
        if lic is None:
            return []
        return [
            {"id": name, "object": "model", "created": 0, "owned_by": route.owned_by}
            for name, route in self.routes.items()
            if lic.allows_model(name)
        ]

    async def _models(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "GET":
            await self._error(
                send,
                GatewayError(405, "method_not_allowed", "/v1/models accepts GET only"),
                [(b"allow", b"GET")],
            )
            return
        try:
            auth = self._auth_only(scope)
        except GatewayError as err:
            self.metrics.reject(err.code)
            await self._error(send, err)
            return
        body = orjson.dumps({"object": "list", "data": self._model_entries(auth)})
        await send_bytes(send, 200, body, [_JSON])

    async def _model(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] != "GET":
            await self._error(
                send,
                GatewayError(405, "method_not_allowed", "/v1/models/{id} accepts GET only"),
                [(b"allow", b"GET")],
            )
            return
        try:
            auth = self._auth_only(scope)
        except GatewayError as err:
            self.metrics.reject(err.code)
            await self._error(send, err)
            return
        wanted = scope["path"][len("/v1/models/") :]
        for entry in self._model_entries(auth):
            if entry["id"] == wanted:
                await send_bytes(send, 200, orjson.dumps(entry), [_JSON])
                return
        await self._error(
            send,
            GatewayError(404, "model_not_found", f"the model {wanted!r} does not exist"),
        )

    async def _healthz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(send, 200, b'{"status":"ok"}', [_JSON])

    async def _readyz(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        checks: dict[str, Any] = {}
        checks["started"] = self.ready
        checks["store"] = await self._store_ok()
        checks["event_writer"] = self._writer_ok()
        checks["upstreams"] = bool(self.routes) and all(c.started for c in self.clients.values())
        ok = all(checks.values())
        body = orjson.dumps({"status": "ready" if ok else "not_ready", "checks": checks})
        await send_bytes(send, 200 if ok else 503, body, [_JSON])

    async def _store_ok(self) -> bool:
        if self._engine is None:
            return False

        def ping() -> bool:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True

        try:
            return await asyncio.wait_for(asyncio.to_thread(ping), timeout=2.0)
        except Exception:
            return False

    def _writer_ok(self) -> bool:
        w = self.writer
        if w is None:
            return False
        try:
            return float(w.lag_s) < max(60.0, 5 * self.settings.segment_max_age_s)
        except Exception:
            return False

    async def _metrics(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_bytes(
            send,
            200,
            self.metrics.render(),
            [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")],
        )


async def _disconnected(receive: Any) -> None:
    """Returns when the client disconnects (the request body has been read already)."""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


def _upgrade_database(url: str) -> None:
    from ..store.migrate import upgrade_database

    upgrade_database(url)


def _open_writer(settings: Settings, conversion: Conversion) -> Any:
    from ..events.writer import EventWriter

    return EventWriter(
        settings.effective_events_dir,
        segment_max_events=settings.segment_max_events,
        segment_max_age_s=settings.segment_max_age_s,
        conversion=conversion,
    )


def create_app(
    settings: Settings,
    *,
    body_timeout_s: float = 30.0,
    migrate: bool = True,
    event_conversion: Conversion = "process",
) -> GatewayApp:
    """The gateway ASGI app for ``settings`` (start-up work happens in its lifespan).

    ``migrate=False`` skips the schema upgrade when the caller already ran it.
    ``event_conversion`` says where event spools become Parquet: ``"process"`` (default) in a
    short-lived child per spool, so the serving process's memory stays flat and it never
    loads Arrow; ``"thread"`` in a background thread of this process.
    """
    if not settings.models:
        log_event(
            _log,
            "no_models_configured",
            logging.WARNING,
            hint="add `upstreams:` and `models:` to the config file",
        )
    return GatewayApp(
        settings, body_timeout_s=body_timeout_s, migrate=migrate, event_conversion=event_conversion
    )
