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


def _tool_delta(index: int, **fn: str) -> bytes:
    call: dict = {"index": index, "function": fn}
    if "name" in fn:
        call.update(id=f"call_{index}", type="function")
    return _chunk({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})


def test_streamed_tool_calls_are_assembled_per_index() -> None:
    asm = StreamAssembler()
    asm.feed(_delta("Let me check. "))
    asm.feed(_tool_delta(0, name="get_weather", arguments=""))
    asm.feed(_tool_delta(1, name="get_time", arguments='{"tz'))
    asm.feed(_tool_delta(0, arguments='{"city": '))
    asm.feed(_tool_delta(1, arguments='": "CET"}'))
    asm.feed(_tool_delta(0, arguments='"Paris"}'))
    asm.feed(_delta("", finish="tool_calls") + b"data: [DONE]\n\n")
    assert asm.done and asm.finish_reason == "tool_calls"
    assert asm.text == "Let me check. "
    msg = asm.message()
    assert msg["tool_calls"] == [
        {"id": "call_0", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_1", "type": "function",
         "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}},
    ]
    from distillwarden.events.record import extract_response_fields

    fields = extract_response_fields({"choices": [{"message": msg, "finish_reason": "stop"}]})
    assert fields["response_text"] == (
        'Let me check. \nget_weather({"city": "Paris"})\nget_time({"tz": "CET"})'
    )


def test_legacy_function_call_and_plain_text_have_no_tool_calls() -> None:
    asm = StreamAssembler()
    asm.feed(_delta("just text"))
    assert "tool_calls" not in asm.message()
    fc = {"choices": [{"index": 0, "delta": {"function_call": {"name": "f", "arguments": "{}"}}}]}
    asm.feed(_chunk(fc))
    assert asm.message()["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
