"""Request and response fields from the OpenAI API shapes traffic arrives in."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from distillwarden.events.record import extract_request_fields, extract_response_fields

RESPONSES_REQUEST: dict[str, Any] = {
    "model": "gpt-large",
    "instructions": "You are a data-labelling assistant.",
    "input": [
        {"role": "user", "content": "Summarise the attached report."},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Which report?"}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "Explain step by step how tides work."}]},
        {"type": "function_call", "call_id": "c1", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "no results"},
    ],
    "max_output_tokens": 900,
    "tools": [{"type": "function", "name": "search", "parameters": {}}],
    "top_logprobs": 5,
}


def test_a_responses_api_conversation_reads_like_a_chat() -> None:
    f = extract_request_fields(RESPONSES_REQUEST)
    assert f["prompt_text"] == ("You are a data-labelling assistant.\nSummarise the attached "
                                "report.\nExplain step by step how tides work.")
    assert f["last_user_text"] == "Explain step by step how tides work."
    assert f["n_messages"] == 6  # the instructions count as the system message
    assert f["max_tokens"] == 900 and f["has_tools"] and f["top_logprobs"] == 5


def test_a_plain_responses_input_and_texts_to_embed_keep_their_meaning() -> None:
    assert extract_request_fields({"input": "Hello there"})["prompt_text"] == "Hello there"
    f = extract_request_fields({"model": "e", "input": ["first text", "second text"]})
    assert f["prompt_text"] == "first text\nsecond text" and f["n_messages"] == 1
    # a completions prompt wins over an input field
    assert extract_request_fields({"prompt": "p", "input": [{"role": "user"}]})[
        "prompt_text"] == "p"


def test_a_responses_api_answer_gives_text_tool_calls_and_usage() -> None:
    out = extract_response_fields({
        "object": "response", "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "High tide happens when"}]},
            {"type": "function_call", "name": "lookup", "arguments": "{\"q\": \"moon\"}"},
        ],
        "usage": {"input_tokens": 31, "output_tokens": 120, "total_tokens": 151},
    })
    assert out == {"response_text": 'High tide happens when\nlookup({"q": "moon"})',
                   "finish_reason": "completed", "prompt_tokens": 31, "completion_tokens": 120}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["role", "type", "content", "text", "input", "output", "instructions",
                         "messages", "prompt", "usage", "choices", "name", "arguments"]),
        inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(
    st.sampled_from(["input", "instructions", "messages", "prompt", "max_output_tokens",
                     "output", "usage", "status", "choices", "tools"]), _json, max_size=5))
def test_any_body_gives_text_columns_and_never_raises(body: dict[str, Any]) -> None:
    req = extract_request_fields(body)
    assert isinstance(req["prompt_text"], str) and isinstance(req["last_user_text"], str)
    assert isinstance(req["n_messages"], int)
    resp = extract_response_fields(body)
    assert resp["response_text"] is None or isinstance(resp["response_text"], str)
