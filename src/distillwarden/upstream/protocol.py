"""OpenAI request parsing and response shapes for the local model server.

Pure functions: validate a request body into :class:`ParsedRequest`, and build the JSON
objects (completions, chunks, errors) the OpenAI API returns, so that any OpenAI client —
and the gateway — talks to the local model unchanged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .engine import FinishEvent, SamplingParams, TokenEvent

__all__ = [
    "ParsedRequest",
    "RequestError",
    "chat_chunk",
    "chat_completion",
    "completion",
    "completion_chunk",
    "error_body",
    "parse_chat",
    "parse_completion",
]


class RequestError(ValueError):
    """A client error, reported OpenAI-style with the offending parameter."""

    def __init__(
        self, message: str, *, param: str | None = None, status: int = 400, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code
        self.type = "invalid_request_error" if status < 500 else "server_error"


def error_body(
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """The OpenAI error envelope."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass(frozen=True)
class ParsedRequest:
    """A validated generation request: prompt(s), sampling settings, output options."""

    kind: str  # "chat" or "completion"
    model: str
    prompts: tuple[Any, ...]  # chat: one message list; completion: one or more strings
    params: SamplingParams
    n: int
    stream: bool
    include_usage: bool
    max_tokens_given: bool


def _number(body: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"`{name}` must be a number", param=name)
    if not lo <= float(value) <= hi:
        raise RequestError(f"`{name}` must be between {lo:g} and {hi:g}, got {value}", param=name)
    return float(value)


def _integer(body: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"`{name}` must be an integer", param=name)
    if not lo <= value <= hi:
        raise RequestError(f"`{name}` must be between {lo} and {hi}, got {value}", param=name)
    return int(value)


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if (
        not isinstance(stop, list)
        or len(stop) > 4
        or not all(isinstance(s, str) and s for s in stop)
    ):
        raise RequestError("`stop` must be a non-empty string or a list of up to 4", param="stop")
    return tuple(stop)


def _common(
    body: dict[str, Any], *, default_max_tokens: int, max_n: int, logprobs: tuple[bool, int]
) -> tuple[SamplingParams, int, bool, bool, bool]:
    max_tokens = _integer(body, "max_completion_tokens", 1, 1 << 20)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, 1 << 20)
    n = _integer(body, "n", 1, max_n) or 1
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError("`stream` must be true or false", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("`stream_options` must be an object", param="stream_options")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError("`seed` must be an integer", param="seed")
    params = SamplingParams(
        max_tokens=max_tokens or default_max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1.0,
        stop=_stop(body),
        seed=seed,
        logprobs=logprobs[0],
        top_logprobs=logprobs[1],
    )
    return params, n, stream, bool(options.get("include_usage", False)), max_tokens is not None


def _message_text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if (
                isinstance(part, dict)
                and part.get("type") == "text"
                and isinstance(part.get("text"), str)
            ):
                parts.append(part["text"])
            else:
                raise RequestError(
                    "this model reads text only; message content parts must be "
                    '{"type": "text", "text": ...}',
                    param=f"messages[{index}].content",
                )
        return "".join(parts)
    if content is None:
        return ""
    raise RequestError("message content must be a string", param=f"messages[{index}].content")


def parse_chat(body: Any, *, default_max_tokens: int = 256, max_n: int = 8) -> ParsedRequest:
    """Validate a ``/v1/chat/completions`` body."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` must be a non-empty list", param="messages")
    clean = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in {
            "system",
            "developer",
            "user",
            "assistant",
            "tool",
        }:
            raise RequestError(
                "each message needs a `role` (system, user, assistant, tool)",
                param=f"messages[{i}].role",
            )
        role = "system" if m["role"] == "developer" else m["role"]
        clean.append({"role": role, "content": _message_text(m.get("content"), i)})
    want = body.get("logprobs", False)
    if not isinstance(want, bool):
        raise RequestError("`logprobs` must be true or false", param="logprobs")
    top = _integer(body, "top_logprobs", 0, 20) or 0
    if top and not want:
        raise RequestError("`top_logprobs` needs `logprobs: true`", param="top_logprobs")
    params, n, stream, usage, given = _common(
        body, default_max_tokens=default_max_tokens, max_n=max_n, logprobs=(want, top)
    )
    return ParsedRequest(
        "chat", str(body.get("model") or ""), (clean,), params, n, stream, usage, given
    )


def parse_completion(body: Any, *, default_max_tokens: int = 16, max_n: int = 8) -> ParsedRequest:
    """Validate a ``/v1/completions`` body (prompt: a string or a list of strings)."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts: tuple[Any, ...] = (prompt,)
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = tuple(prompt)
    else:
        raise RequestError("`prompt` must be a string or a list of strings", param="prompt")
    if body.get("echo") or body.get("suffix") or (body.get("best_of") or 1) > 1:
        raise RequestError(
            "`echo`, `suffix` and `best_of` are not supported by the local model",
            param="echo" if body.get("echo") else "suffix" if body.get("suffix") else "best_of",
        )
    top = _integer(body, "logprobs", 0, 5)
    params, n, stream, usage, given = _common(
        body,
        default_max_tokens=default_max_tokens,
        max_n=max_n,
        logprobs=(top is not None, top or 0),
    )
    return ParsedRequest(
        "completion", str(body.get("model") or ""), prompts, params, n, stream, usage, given
    )


def new_id(kind: str) -> str:
    return ("chatcmpl-" if kind == "chat" else "cmpl-") + secrets.token_hex(12)


def _token_str(tokenizer: Any, token_id: int) -> str:
    return str(tokenizer.decode([token_id]))


def chat_logprobs(tokenizer: Any, events: Sequence[TokenEvent]) -> dict[str, Any]:
    """The chat ``logprobs`` object for a run of token events."""
    content = []
    for ev in events:
        tok = _token_str(tokenizer, ev.token_id)
        content.append(
            {
                "token": tok,
                "logprob": ev.logprob,
                "bytes": list(tok.encode()),
                "top_logprobs": [
                    {
                        "token": (t := _token_str(tokenizer, i)),
                        "logprob": lp,
                        "bytes": list(t.encode()),
                    }
                    for i, lp in ev.top_logprobs
                ],
            }
        )
    return {"content": content}


def completion_logprobs(
    tokenizer: Any, events: Sequence[TokenEvent], offset: int = 0
) -> dict[str, Any]:
    """The legacy completions ``logprobs`` object."""
    tokens, lps, tops, offsets = [], [], [], []
    pos = offset
    for ev in events:
        tok = _token_str(tokenizer, ev.token_id)
        tokens.append(tok)
        lps.append(ev.logprob)
        tops.append({_token_str(tokenizer, i): lp for i, lp in ev.top_logprobs})
        offsets.append(pos)
        pos += len(tok)
    return {"tokens": tokens, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(
    rid: str, model: str, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    return {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chat_choice(index: int, finish: FinishEvent, logprobs: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "index": index,
        "message": {"role": "assistant", "content": finish.text},
        "logprobs": logprobs,
        "finish_reason": finish.finish_reason,
    }


def completion(
    rid: str, model: str, choices: list[dict[str, Any]], prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """A ``text_completion`` object."""
    return {
        "id": rid,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chat_chunk(
    rid: str,
    model: str,
    created: int,
    choices: list[dict[str, Any]],
    usage_: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object (empty choices with usage for the final one)."""
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if usage_ is not None:
        chunk["usage"] = usage_
    return chunk


def completion_chunk(
    rid: str,
    model: str,
    created: int,
    choices: list[dict[str, Any]],
    usage_: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A streamed ``text_completion`` object."""
    chunk: dict[str, Any] = {
        "id": rid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if usage_ is not None:
        chunk["usage"] = usage_
    return chunk
