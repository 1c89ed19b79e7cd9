"""The local model as an OpenAI-compatible HTTP server (an ASGI app).

``create_local_app()`` serves SmolLM2-135M-Instruct (or any loaded :class:`LocalModel`) on
``/v1/chat/completions`` and ``/v1/completions`` (both with SSE streaming), ``/v1/models``
and ``/health``. Generation runs on :class:`GenerationEngine`'s worker thread with
continuous batching; each request may be watermarked with its account's key, read from the
gateway's ``x-distillwarden-org`` / ``x-distillwarden-watermark`` headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from . import protocol as p
from .engine import EngineOverloaded, FinishEvent, GenerationEngine, TokenEvent
from .model import DEFAULT_MODEL_ID, LocalModel, load_local_model
from .watermarking import (
    Watermarker,
    WatermarkHeaderError,
    WatermarkPlan,
    watermark_requested,
)

__all__ = ["LocalModelServer", "create_local_app"]

log = logging.getLogger(__name__)
WATERMARK_APPLIED_HEADER = "x-distillwarden-watermark-applied"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _error(exc: p.RequestError) -> Response:
    return _json(p.error_body(str(exc), type_=exc.type, param=exc.param, code=exc.code), exc.status)


@dataclass
class _Choice:
    index: int
    prompt_tokens: int
    events: list[TokenEvent] = field(default_factory=list)
    finish: FinishEvent | None = None


class LocalModelServer:
    """Owns the model, the generation engine and the watermarker behind the ASGI routes."""

    def __init__(
        self,
        model_id: str = DEFAULT_MODEL_ID,
        master_secret: bytes | None = None,
        *,
        local_model: LocalModel | None = None,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        max_batch: int = 8,
        max_queue: int = 256,
        default_max_tokens: int = 256,
        num_threads: int | None = None,
    ) -> None:
        self.model_id = model_id
        self.master_secret = master_secret
        self.local_model = local_model
        self.cache_dir = cache_dir
        self.device = device
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.default_max_tokens = default_max_tokens
        self.num_threads = num_threads
        self.engine: GenerationEngine | None = None
        self.watermarker: Watermarker | None = None
        self.load_error: str | None = None
        self.started_at = int(time.time())

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the model (if not given) and start the engine; blocking."""
        if self.local_model is None:
            self.local_model = load_local_model(self.cache_dir, self.device)
        if self.master_secret:
            self.watermarker = Watermarker(self.master_secret, self.local_model.tokenizer)
        self.engine = GenerationEngine(
            self.local_model,
            max_batch=self.max_batch,
            max_queue=self.max_queue,
            num_threads=self.num_threads,
        ).start()

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        try:
            await asyncio.to_thread(self.start)
        except Exception as exc:  # reported on /health and every request, not a crash loop
            log.exception("local model failed to load")
            self.load_error = str(exc)
        try:
            yield
        finally:
            await asyncio.to_thread(self.stop)

    def _ready(self) -> tuple[LocalModel, GenerationEngine]:
        if self.local_model is None or self.engine is None:
            msg = self.load_error or "the model is still loading; retry in a few seconds"
            raise p.RequestError(msg, status=503, code="model_not_ready")
        return self.local_model, self.engine

    # -- routes -------------------------------------------------------------------------------
    async def health(self, _request: Request) -> Response:
        if self.local_model is None or self.engine is None:
            status = "error" if self.load_error else "loading"
            return _json({"status": status, "error": self.load_error, "model": self.model_id}, 503)
        return _json(
            {
                "status": "ok",
                "model": self.model_id,
                "device": self.local_model.device,
                "active": self.engine.active,
                "waiting": self.engine.waiting,
                "steps": self.engine.steps,
                "tokens_generated": self.engine.tokens_generated,
                "watermark": self.watermarker is not None,
            }
        )

    async def models(self, _request: Request) -> Response:
        return _json(
            {
                "object": "list",
                "data": [
                    {
                        "id": self.model_id,
                        "object": "model",
                        "created": self.started_at,
                        "owned_by": "distillwarden",
                    }
                ],
            }
        )

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, "completion")

    # -- generation ---------------------------------------------------------------------------
    def _plan(self, request: Request) -> WatermarkPlan | None:
        try:
            if self.watermarker is not None:
                return self.watermarker.plan(request.headers)
            requested = watermark_requested(request.headers)
        except WatermarkHeaderError as exc:
            raise p.RequestError(str(exc), param="x-distillwarden-watermark") from exc
        if requested:
            raise p.RequestError(
                "this request must be watermarked but the local model server has no "
                "watermark secret; start it with `distillwarden upstream serve-local "
                "--secret-from-config`",
                status=500,
                code="watermark_unavailable",
            )
        return None

    def _tokenize(self, lm: LocalModel, parsed: p.ParsedRequest) -> list[list[int]]:
        out: list[list[int]] = []
        for prompt in parsed.prompts:
            if parsed.kind == "chat":
                ids = lm.tokenizer.apply_chat_template(
                    prompt, add_generation_prompt=True, tokenize=True
                )
                if not isinstance(ids, list):
                    ids = ids["input_ids"]
            else:
                ids = lm.tokenizer.encode(prompt)
            out.append([int(i) for i in ids])
        return out

    async def _generate(self, request: Request, kind: str) -> Response:
        try:
            lm, engine = self._ready()
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise p.RequestError(f"the request body is not valid JSON: {exc}") from exc
            if kind == "chat":
                parsed = p.parse_chat(body, default_max_tokens=self.default_max_tokens)
            else:
                parsed = p.parse_completion(body)
            plan = self._plan(request)
            prompts = await asyncio.to_thread(self._tokenize, lm, parsed)
            return await self._submit(request, lm, engine, parsed, prompts, plan)
        except p.RequestError as exc:
            return _error(exc)
        except Exception as exc:  # an OpenAI-shaped 500, never a bare traceback
            log.exception("request failed")
            return _json(p.error_body(f"the local model failed: {exc}", type_="server_error"), 500)

    async def _submit(
        self,
        request: Request,
        lm: LocalModel,
        engine: GenerationEngine,
        parsed: p.ParsedRequest,
        prompts: list[list[int]],
        plan: WatermarkPlan | None,
    ) -> Response:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[int, TokenEvent | FinishEvent]] = asyncio.Queue()
        choices: list[_Choice] = []
        handles = []

        def sink_for(index: int) -> Callable[[TokenEvent | FinishEvent], None]:
            def sink(ev: TokenEvent | FinishEvent) -> None:
                loop.call_soon_threadsafe(events.put_nowait, (index, ev))

            return sink

        context = engine.max_context
        for ids in prompts:
            room = context - len(ids)
            if parsed.max_tokens_given and parsed.params.max_tokens > room:
                raise p.RequestError(
                    f"this model's maximum context length is {context} tokens; the prompt has "
                    f"{len(ids)} and max_tokens asks for {parsed.params.max_tokens}: lower "
                    "max_tokens or shorten the prompt",
                    param="max_tokens",
                    code="context_length_exceeded",
                )
            if room < 1:
                raise p.RequestError(
                    f"the prompt has {len(ids)} tokens; this model's context is {context}",
                    param="messages" if parsed.kind == "chat" else "prompt",
                    code="context_length_exceeded",
                )
            for j in range(parsed.n):
                params = replace(
                    parsed.params,
                    max_tokens=min(parsed.params.max_tokens, room),
                    seed=None if parsed.params.seed is None else parsed.params.seed + j,
                )
                index = len(choices)
                choices.append(_Choice(index, len(ids)))
                processor = (
                    self.watermarker.processor(plan, params.temperature)
                    if plan and self.watermarker
                    else None
                )
                try:
                    handles.append(engine.submit(ids, params, sink_for(index), processor))
                except EngineOverloaded as exc:
                    for h in handles:
                        h.cancel()
                    raise p.RequestError(str(exc), status=429, code="server_overloaded") from exc
        headers = {WATERMARK_APPLIED_HEADER: _applied(plan)}
        if parsed.stream:
            return StreamingResponse(
                self._stream(lm, parsed, choices, events, handles),
                media_type="text/event-stream",
                headers={**headers, "cache-control": "no-cache"},
            )
        data, status = await self._collect(request, lm, parsed, choices, events, handles)
        return _json(data, status, headers)

    async def _collect(
        self,
        request: Request,
        lm: LocalModel,
        parsed: p.ParsedRequest,
        choices: list[_Choice],
        events: asyncio.Queue[tuple[int, TokenEvent | FinishEvent]],
        handles: list[Any],
    ) -> tuple[dict[str, Any], int]:
        gone = asyncio.ensure_future(_client_gone(request))
        try:
            remaining = len(choices)
            while remaining:
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():  # the client disconnected: stop generating for it
                    getter.cancel()
                    return p.error_body("the client disconnected", code="client_closed"), 499
                index, ev = getter.result()
                if isinstance(ev, FinishEvent):
                    choices[index].finish = ev
                    remaining -= 1
                else:
                    choices[index].events.append(ev)
        finally:
            gone.cancel()
            for h in handles:
                h.cancel()
        failed = [c.finish for c in choices if c.finish and c.finish.finish_reason == "error"]
        if failed:
            return p.error_body(failed[0].error or "generation failed", type_="server_error"), 500
        rid = p.new_id(parsed.kind)
        prompt_tokens = sum(choices[i].prompt_tokens for i in range(0, len(choices), parsed.n))
        completion_tokens = sum(c.finish.completion_tokens for c in choices if c.finish)
        out = []
        for c in choices:
            assert c.finish is not None
            lp = None
            if parsed.params.logprobs:
                lp = (
                    p.chat_logprobs(lm.tokenizer, c.events)
                    if parsed.kind == "chat"
                    else p.completion_logprobs(lm.tokenizer, c.events)
                )
            if parsed.kind == "chat":
                out.append(p.chat_choice(c.index, c.finish, lp))
            else:
                out.append(
                    {
                        "index": c.index,
                        "text": c.finish.text,
                        "logprobs": lp,
                        "finish_reason": c.finish.finish_reason,
                    }
                )
        build = p.chat_completion if parsed.kind == "chat" else p.completion
        return build(rid, self.model_id, out, prompt_tokens, completion_tokens), 200

    async def _stream(
        self,
        lm: LocalModel,
        parsed: p.ParsedRequest,
        choices: list[_Choice],
        events: asyncio.Queue[tuple[int, TokenEvent | FinishEvent]],
        handles: list[Any],
    ) -> AsyncIterator[bytes]:
        rid = p.new_id(parsed.kind)
        created = int(time.time())
        chat = parsed.kind == "chat"
        chunk = p.chat_chunk if chat else p.completion_chunk

        def sse(obj: Any) -> bytes:
            return b"data: " + orjson.dumps(obj) + b"\n\n"

        try:
            if chat:
                yield sse(
                    chunk(
                        rid,
                        self.model_id,
                        created,
                        [
                            {
                                "index": c.index,
                                "delta": {"role": "assistant", "content": ""},
                                "logprobs": None,
                                "finish_reason": None,
                            }
                            for c in choices
                        ],
                    )
                )
            remaining = len(choices)
            while remaining:
                index, ev = await events.get()
                choice = choices[index]
                if isinstance(ev, FinishEvent):
                    choice.finish = ev
                    remaining -= 1
                    if ev.finish_reason == "error":
                        yield sse(
                            p.error_body(ev.error or "generation failed", type_="server_error")
                        )
                        return
                    final: dict[str, Any] = {
                        "index": index,
                        "logprobs": None,
                        "finish_reason": ev.finish_reason,
                    }
                    final["delta" if chat else "text"] = {} if chat else ""
                    yield sse(chunk(rid, self.model_id, created, [final]))
                    continue
                if not ev.text and not parsed.params.logprobs:
                    continue
                lp = None
                if parsed.params.logprobs:
                    lp = (
                        p.chat_logprobs(lm.tokenizer, [ev])
                        if chat
                        else p.completion_logprobs(lm.tokenizer, [ev])
                    )
                body: dict[str, Any] = {"index": index, "logprobs": lp, "finish_reason": None}
                if chat:
                    body["delta"] = {"content": ev.text}
                else:
                    body["text"] = ev.text
                yield sse(chunk(rid, self.model_id, created, [body]))
            if parsed.include_usage:
                prompt_tokens = sum(
                    choices[i].prompt_tokens for i in range(0, len(choices), parsed.n)
                )
                completion_tokens = sum(c.finish.completion_tokens for c in choices if c.finish)
                yield sse(
                    chunk(
                        rid, self.model_id, created, [], p.usage(prompt_tokens, completion_tokens)
                    )
                )
            yield b"data: [DONE]\n\n"
        finally:
            for h in handles:
                h.cancel()


async def _client_gone(request: Request) -> None:
    """Return when the client disconnects (the body has been read, so the next ASGI
    message is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def _applied(plan: WatermarkPlan | None) -> str:
    if plan is None:
        return "none"
    c = plan.config
    return f"gamma={c.gamma};delta={c.delta};window={c.context_width}"


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    msg = (
        f"no route {request.method} {request.url.path}; this server offers /v1/chat/completions, "
        "/v1/completions, /v1/models and /health"
        if status in (404, 405)
        else "internal error"
    )
    return JSONResponse(p.error_body(msg, code="not_found" if status == 404 else None), status)


def create_local_app(
    model_id: str = DEFAULT_MODEL_ID,
    master_secret: bytes | None = None,
    *,
    local_model: LocalModel | None = None,
    cache_dir: str | Path | None = None,
    device: str | None = None,
    max_batch: int = 8,
    max_queue: int = 256,
    default_max_tokens: int = 256,
    num_threads: int | None = None,
) -> Starlette:
    """An OpenAI-compatible ASGI app serving the local model.

    Without ``local_model`` the model is loaded (converted on first use) when the app
    starts; ``/health`` answers 503 until it is ready. Without ``master_secret``, requests
    that the gateway marks for watermarking are refused rather than served unmarked.
    """
    server = LocalModelServer(
        model_id,
        master_secret,
        local_model=local_model,
        cache_dir=cache_dir,
        device=device,
        max_batch=max_batch,
        max_queue=max_queue,
        default_max_tokens=default_max_tokens,
        num_threads=num_threads,
    )
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", server.chat, methods=["POST"]),
            Route("/v1/completions", server.completions, methods=["POST"]),
            Route("/v1/models", server.models, methods=["GET"]),
            Route("/health", server.health, methods=["GET"]),
        ],
        exception_handlers={404: _not_found, 405: _not_found},
        lifespan=server.lifespan,
    )
    app.state.server = server
    return app
