"""Server-sent-event pass-through that assembles the streamed answer for the event log.

Complete SSE events are forwarded as they arrive; the ``data: [DONE]`` event (and anything
after it) is held back so that the gateway can write the request's event before the client
sees the end of the stream.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["StreamAssembler"]

_DONE = b"[DONE]"


class StreamAssembler:
    """Feed upstream bytes in; get the bytes to forward and the assembled answer out."""

    __slots__ = ("_buf", "_parts", "_tools", "finish_reason", "usage", "tail", "done", "events")

    def __init__(self) -> None:
        self._buf = b""
        self._parts: list[str] = []
        # tool calls of the first choice by index: [id, type, name parts, argument parts]
        self._tools: dict[int, list[Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.tail = b""
        self.done = False
        self.events = 0

    def feed(self, chunk: bytes) -> bytes:
        """Return the complete events in ``chunk`` (plus buffered bytes) to forward now.

        Once ``data: [DONE]`` is seen, ``done`` is set and it is kept in ``tail``.
        """
        if self.done:
            self.tail += chunk
            return b""
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return b""
        complete = buf[: end + 2]
        self._buf = buf[end + 2 :]
        start = 0
        while True:
            stop = complete.find(b"\n\n", start)
            if stop < 0:
                break
            event = complete[start:stop]
            if self._event(event):
                self.done = True
                self.tail = complete[start:] + self._buf
                self._buf = b""
                return complete[:start]
            start = stop + 2
        return complete

    def flush(self) -> bytes:
        """Bytes still buffered when the upstream closed (an incomplete last event)."""
        rest, self._buf = self._buf, b""
        return rest

    def _event(self, event: bytes) -> bool:
        """Parse one SSE event; True when it is the ``[DONE]`` sentinel."""
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == _DONE:
                return True
            self.events += 1
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(obj, dict):
                continue
            choices = obj.get("choices")
            if choices and isinstance(choices, list):
                c0 = choices[0]
                if isinstance(c0, dict) and not c0.get("index"):
                    delta = c0.get("delta")
                    if isinstance(delta, dict):
                        text = delta.get("content")
                        calls = delta.get("tool_calls")
                        if calls:
                            self._tool_deltas(calls)
                        elif delta.get("function_call"):
                            self._tool_deltas([{"index": 0, "function": delta["function_call"]}])
                    else:
                        text = c0.get("text")
                    if isinstance(text, str) and text:
                        self._parts.append(text)
                    fr = c0.get("finish_reason")
                    if isinstance(fr, str):
                        self.finish_reason = fr
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self.usage = usage
        return False

    def _tool_deltas(self, calls: Any) -> None:
        """Fragments of streamed tool calls: name and arguments are concatenated per index."""
        if not isinstance(calls, list):
            return
        for call in calls:
            if not isinstance(call, dict):
                continue
            index = call.get("index", 0)
            slot = self._tools.get(index if isinstance(index, int) else 0)
            if slot is None:
                slot = self._tools[index if isinstance(index, int) else 0] = [None, None, [], []]
            if isinstance(call.get("id"), str):
                slot[0] = call["id"]
            if isinstance(call.get("type"), str):
                slot[1] = call["type"]
            fn = call.get("function")
            if isinstance(fn, dict):
                if isinstance(fn.get("name"), str):
                    slot[2].append(fn["name"])
                if isinstance(fn.get("arguments"), str):
                    slot[3].append(fn["arguments"])

    @property
    def text(self) -> str:
        """The first choice's text so far."""
        return "".join(self._parts)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """The first choice's tool calls so far, assembled as a non-streamed message has them."""
        return [
            {
                "id": call_id,
                "type": kind or "function",
                "function": {"name": "".join(names), "arguments": "".join(args)},
            }
            for _, (call_id, kind, names, args) in sorted(self._tools.items())
        ]

    def message(self) -> dict[str, Any]:
        """The first choice's assembled message: ``content`` and, when any, ``tool_calls``."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self._tools:
            msg["tool_calls"] = self.tool_calls
        return msg
