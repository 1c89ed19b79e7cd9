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

    __slots__ = ("_buf", "_parts", "finish_reason", "usage", "tail", "done", "events")

    def __init__(self) -> None:
        self._buf = b""
        self._parts: list[str] = []
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
                    text = delta.get("content") if isinstance(delta, dict) else c0.get("text")
                    if isinstance(text, str) and text:
                        self._parts.append(text)
                    fr = c0.get("finish_reason")
                    if isinstance(fr, str):
                        self.finish_reason = fr
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self.usage = usage
        return False

    @property
    def text(self) -> str:
        """The first choice's text so far."""
        return "".join(self._parts)
