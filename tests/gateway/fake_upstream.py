"""A controllable OpenAI-compatible upstream for the gateway tests (raw ASGI, loopback).

The model name picks the behaviour: ``fake-model`` answers normally (JSON or a 22-event SSE
stream), ``hang-model`` never answers, ``garbage-model`` returns non-JSON with status 200,
``error-model`` returns an OpenAI-shaped 400, ``midstream-hang`` starts a stream and stalls,
``broken-stream`` closes the stream without ``[DONE]``, ``slow-stream`` sends a chunk every
0.1 s, ``tool-model`` answers with two tool calls (streamed as interleaved argument fragments).
Every request is recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson

CHUNKS = 20
ANSWER = "Hello! This is a fake upstream answer."
TOOL_CALLS = [
    {"id": "call_1", "type": "function",
     "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'}},
    {"id": "call_2", "type": "function",
     "function": {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'}},
]


@dataclass
class Seen:
    """One request the upstream received."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass
class FakeUpstream:
    """The ASGI app; ``seen`` lists the requests received, oldest first."""

    seen: list[Seen] = field(default_factory=list)
    answer: str = ANSWER

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        path = scope["path"]
        self.seen.append(Seen(path, headers, body))
        if scope["method"] == "GET":
            await _send(send, 200, b'{"object":"list","data":[]}')
            return
        req = orjson.loads(body)
        model = req.get("model")
        if model == "tool-model":
            await _tool_answer(send, bool(req.get("stream")))
            return
        if model == "hang-model":
            await asyncio.sleep(3600)
        if model == "garbage-model":
            await _send(send, 200, b"<html>not json</html>", b"text/html")
            return
        if model == "error-model":
            await _send(
                send,
                400,
                orjson.dumps(
                    {
                        "error": {
                            "message": "upstream says no",
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "upstream_rejects",
                        }
                    }
                ),
            )
            return
        if path.endswith("/embeddings"):
            inputs = req["input"] if isinstance(req["input"], list) else [req["input"]]
            data = [
                {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                for i, _ in enumerate(inputs)
            ]
            await _send(
                send,
                200,
                orjson.dumps(
                    {
                        "object": "list",
                        "data": data,
                        "model": model,
                        "usage": {"prompt_tokens": 4, "total_tokens": 4},
                    }
                ),
            )
            return
        chat = path.endswith("/chat/completions")
        if not req.get("stream"):
            n = int(req.get("n") or 1)
            choices = [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": self.answer} if chat else None,
                    "text": None if chat else ANSWER,
                    "logprobs": {"content": []} if req.get("logprobs") else None,
                    "finish_reason": "stop",
                }
                for i in range(n)
            ]
            for c in choices:
                for k in [k for k, v in c.items() if v is None and k != "logprobs"]:
                    del c[k]
            await _send(
                send,
                200,
                orjson.dumps(
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion" if chat else "text_completion",
                        "created": 1700000000,
                        "model": model,
                        "choices": choices,
                        "usage": {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16},
                    }
                ),
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        base = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            c = dict(base)
            c["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            return b"data: " + orjson.dumps(c) + b"\n\n"

        await send(
            {"type": "http.response.body", "body": chunk({"role": "assistant"}), "more_body": True}
        )
        for i in range(CHUNKS):
            await send(
                {
                    "type": "http.response.body",
                    "body": chunk({"content": f"tok{i} "}),
                    "more_body": True,
                }
            )
            if model == "midstream-hang" and i == 3:
                await asyncio.sleep(3600)
            if model == "slow-stream":
                await asyncio.sleep(0.1)
        if model == "broken-stream":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        tail = chunk({}, "stop")
        if (req.get("stream_options") or {}).get("include_usage"):
            u = dict(base)
            u["choices"] = []
            u["usage"] = {"prompt_tokens": 7, "completion_tokens": CHUNKS, "total_tokens": 27}
            tail += b"data: " + orjson.dumps(u) + b"\n\n"
        # split [DONE] across two writes to exercise the gateway's reassembly
        await send({"type": "http.response.body", "body": tail + b"data: [DO", "more_body": True})
        await asyncio.sleep(0.001)
        await send({"type": "http.response.body", "body": b"NE]\n\n", "more_body": False})


async def _tool_answer(send: Any, stream: bool) -> None:
    """Two tool calls; streamed like OpenAI does: id and name first, arguments in fragments,
    the two calls' fragments interleaved."""
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS}
        body = {"id": "chatcmpl-tool", "object": "chat.completion", "model": "tool-model",
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
        await _send(send, 200, orjson.dumps(body))
        return

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        c = {"id": "chatcmpl-tool", "object": "chat.completion.chunk", "model": "tool-model",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(c) + b"\n\n"

    out = chunk({"role": "assistant", "content": None})
    for i, call in enumerate(TOOL_CALLS):
        head = {"index": i, "id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""}}
        out += chunk({"tool_calls": [head]})
    args = [c["function"]["arguments"] for c in TOOL_CALLS]
    for start in range(0, max(len(a) for a in args), 5):
        for i, a in enumerate(args):
            if a[start : start + 5]:
                frag = {"index": i, "function": {"arguments": a[start : start + 5]}}
                out += chunk({"tool_calls": [frag]})
    out += chunk({}, "tool_calls") + b"data: [DONE]\n\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    await send({"type": "http.response.body", "body": out, "more_body": False})


async def _send(send: Any, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def streamed_text() -> str:
    """The text a streamed answer assembles to."""
    return "".join(f"tok{i} " for i in range(CHUNKS))
