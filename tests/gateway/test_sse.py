"""SSE pass-through: complete events forwarded, [DONE] held back, answer assembled."""

from __future__ import annotations

import orjson

from distillwarden.gateway.sse import StreamAssembler


def _chunk(obj: dict) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _delta(text: str, index: int = 0, finish: str | None = None) -> bytes:
    return _chunk(
        {"choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish}]}
    )


def test_forwards_complete_events_and_holds_done_even_when_split() -> None:
    asm = StreamAssembler()
    stream = _delta("Hel") + _delta("lo") + _delta("", finish="stop") + b"data: [DONE]\n\n"
    out = b""
    for i in range(0, len(stream), 7):  # arbitrary TCP-like fragmentation
        out += asm.feed(stream[i : i + 7])
    assert asm.done
    assert out == _delta("Hel") + _delta("lo") + _delta("", finish="stop")
    assert asm.tail == b"data: [DONE]\n\n"
    assert asm.text == "Hello" and asm.finish_reason == "stop"


def test_only_first_choice_is_assembled_and_usage_kept() -> None:
    asm = StreamAssembler()
    asm.feed(_delta("a", 0) + _delta("X", 1) + _delta("b", 0))
    asm.feed(_chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}))
    assert asm.text == "ab"
    assert asm.usage == {"prompt_tokens": 3, "completion_tokens": 2}
    assert not asm.done


def test_completions_text_crlf_and_garbage_lines() -> None:
    asm = StreamAssembler()
    data = (
        b'data: {"choices":[{"index":0,"text":"once "}]}\r\n\r\n'
        b": keep-alive comment\r\n\r\n"
        b"data: not json\r\n\r\n"
        b'data: {"choices":[{"index":0,"text":"upon","finish_reason":"length"}]}\r\n\r\n'
        b"data: [DONE]\r\n\r\n"
    )
    out = asm.feed(data)
    assert asm.done and asm.text == "once upon" and asm.finish_reason == "length"
    assert b"not json" in out and b"[DONE]" not in out


def test_incomplete_tail_is_flushed() -> None:
    asm = StreamAssembler()
    assert asm.feed(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}') == b""
    assert asm.flush().startswith(b"data: ")
