"""Build one event row (a dict keyed by schema column) from a request/response exchange.

Used by the gateway, the importers and the simulator so that every source fills the
columns the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import datetime
from typing import Any

import orjson

__all__ = [
    "extract_request_fields",
    "extract_response_fields",
    "hash_identifier",
    "hash_ip",
    "new_event_id",
    "tool_calls_text",
]


def new_event_id() -> str:
    """A random, sortable-enough event id."""
    return "evt_" + secrets.token_hex(12)


def hash_identifier(secret: bytes, value: str | None) -> str | None:
    """HMAC-SHA256 of an identifier (IP, user agent, payment fingerprint), hex, 32 chars."""
    if value is None or value == "":
        return None
    return hmac.new(secret, value.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]


def hash_ip(secret: bytes, ip: str | None) -> tuple[str | None, str | None]:
    """Hash an IP and its network (/24 for IPv4, /48 for IPv6): ``(ip_hash, net_hash)``.

    The network hash lets detection link accounts behind one proxy range without storing
    the address. An unparsable address is hashed as a string with no network hash.
    """
    if not ip:
        return None, None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return hash_identifier(secret, ip), None
    prefix = 24 if addr.version == 4 else 48
    net = ipaddress.ip_network(f"{addr}/{prefix}", strict=False)
    return hash_identifier(secret, str(addr)), hash_identifier(secret, "net:" + str(net))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def tool_calls_text(tool_calls: Any, function_call: Any = None) -> str:
    """The tool calls of an answer as text for ``response_text``: one ``name(arguments)`` line
    per call, arguments exactly as the model wrote them (they are model output that a
    distiller would harvest like any other). ``function_call`` is the legacy single call."""
    calls = list(tool_calls) if isinstance(tool_calls, list) else []
    if isinstance(function_call, dict):
        calls.append({"function": function_call})
    lines = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        name, args = fn.get("name"), fn.get("arguments")
        if not isinstance(args, str):
            args = "" if args is None else orjson.dumps(args).decode()
        lines.append(f"{name if isinstance(name, str) else ''}({args})")
    return "\n".join(lines)


def _int_or_none(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return int(v)


def _input_items(body: dict[str, Any]) -> list[Any] | None:
    """The conversation of a Responses API body (``/v1/responses``): its ``input`` items
    (messages, tool calls and their outputs) after its ``instructions`` as a system message;
    None for any other shape (a plain ``input`` string or a list of texts to embed)."""
    items = body.get("input")
    if not isinstance(items, list) or not any(
        isinstance(x, dict) and ("role" in x or "type" in x) for x in items
    ):
        return None
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        return [{"role": "system", "content": instructions}, *items]
    return list(items)


def extract_request_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Columns derived from an OpenAI-shaped request body (chat, completions, embeddings,
    responses)."""
    messages = body.get("messages")
    if not isinstance(messages, list) and "prompt" not in body:
        messages = _input_items(body)
    if isinstance(messages, list):
        texts = []
        last_user = ""
        for m in messages:
            if not isinstance(m, dict):
                continue
            text = _content_text(m.get("content"))
            if m.get("role") in ("user", "system", "developer"):
                texts.append(text)
            if m.get("role") == "user":
                last_user = text
        prompt_text = "\n".join(texts)
        n_messages = len(messages)
    else:
        prompt = body.get("prompt", body.get("input"))
        if isinstance(prompt, list):
            prompt_text = "\n".join(p if isinstance(p, str) else str(p) for p in prompt)
        else:
            prompt_text = _content_text(prompt)
        last_user = prompt_text
        n_messages = 1
    temperature = body.get("temperature")
    lp = body.get("logprobs")
    return {
        "model": body.get("model") if isinstance(body.get("model"), str) else None,
        "prompt_text": prompt_text,
        "last_user_text": last_user,
        "n_messages": n_messages,
        "temperature": float(temperature)
        if isinstance(temperature, int | float) and not isinstance(temperature, bool)
        else None,
        "max_tokens": _int_or_none(body.get(
            "max_tokens", body.get("max_completion_tokens", body.get("max_output_tokens")))),
        "n": _int_or_none(body.get("n")),
        "logprobs": bool(lp) if lp is not None else None,
        "top_logprobs": _int_or_none(body.get("top_logprobs"))
        if "top_logprobs" in body
        else (_int_or_none(lp) if isinstance(lp, int) and not isinstance(lp, bool) else None),
        "stream": bool(body.get("stream", False)),
        "has_tools": bool(body.get("tools") or body.get("functions")),
    }


def extract_response_fields(resp: dict[str, Any] | None) -> dict[str, Any]:
    """Columns derived from an OpenAI-shaped response body (or an assembled stream)."""
    out: dict[str, Any] = {
        "response_text": None,
        "finish_reason": None,
        "prompt_tokens": None,
        "completion_tokens": None,
    }
    if not isinstance(resp, dict):
        return out
    choices = resp.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        c0 = choices[0]
        msg = c0.get("message")
        if isinstance(msg, dict):
            text = _content_text(msg.get("content"))
            calls = tool_calls_text(msg.get("tool_calls"), msg.get("function_call"))
            out["response_text"] = f"{text}\n{calls}" if text and calls else text or calls
        elif isinstance(c0.get("text"), str):
            out["response_text"] = c0["text"]
        fr = c0.get("finish_reason")
        out["finish_reason"] = fr if isinstance(fr, str) else None
    elif isinstance(resp.get("output"), list):  # the Responses API's output items
        texts: list[str] = []
        items: list[dict[str, Any]] = []
        for item in resp["output"]:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                texts.append(_content_text(item.get("content")))
            elif item.get("type") == "function_call":
                items.append({"function": item})
        joined = "\n".join(t for t in texts if t)
        called = tool_calls_text(items)
        out["response_text"] = f"{joined}\n{called}" if joined and called else joined or called
        status = resp.get("status")
        out["finish_reason"] = status if isinstance(status, str) else None
    usage = resp.get("usage")
    if isinstance(usage, dict):
        out["prompt_tokens"] = _int_or_none(usage.get("prompt_tokens", usage.get("input_tokens")))
        out["completion_tokens"] = _int_or_none(
            usage.get("completion_tokens", usage.get("output_tokens")))
    return out


def ts_from_iso(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (with ``Z`` or an offset); naive values are rejected."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return dt
