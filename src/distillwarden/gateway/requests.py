"""Check the request fields the gateway relies on; everything else passes through untouched.

Only what routing, limits and the event need is validated (``model``, the endpoint's
input field, and the types of sampling parameters), so that a bad request gets a precise
400 instead of an upstream error, while unknown or vendor-specific fields still reach the
upstream.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import GatewayError

__all__ = ["parse_request"]

# field -> (accepted types, name shown in the error)
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "stream": ((bool,), "a boolean"),
    "n": ((int,), "an integer"),
    "max_tokens": ((int,), "an integer"),
    "max_completion_tokens": ((int,), "an integer"),
    "temperature": ((int, float), "a number"),
    "top_p": ((int, float), "a number"),
    "logprobs": ((bool, int), "a boolean"),
    "top_logprobs": ((int,), "an integer"),
    "tools": ((list,), "an array"),
}


def _bad_type(name: str, value: Any) -> bool:
    types, _ = _FIELD_TYPES[name]
    if value is None:
        return False
    if isinstance(value, bool) and bool not in types:
        return True
    return not isinstance(value, types)


def parse_request(body: bytes, endpoint: str) -> dict[str, Any]:
    """Decode and check the fields the gateway relies on; everything else passes through."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            400, "invalid_json", f"the request body is not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(request, dict):
        raise GatewayError(400, "invalid_request", "the request body must be a JSON object")
    model = request.get("model")
    if model is None:
        raise GatewayError(400, "missing_required_parameter", "'model' is required", param="model")
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "invalid_type", "'model' must be a non-empty string", param="model")
    if endpoint == "/v1/chat/completions":
        messages = request.get("messages")
        if messages is None:
            raise GatewayError(
                400, "missing_required_parameter", "'messages' is required", param="messages"
            )
        if not isinstance(messages, list) or not messages:
            raise GatewayError(
                400, "invalid_type", "'messages' must be a non-empty array", param="messages"
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise GatewayError(
                    400,
                    "invalid_type",
                    f"messages[{i}] must be an object with a string 'role'",
                    param=f"messages[{i}]",
                )
    elif endpoint == "/v1/completions":
        if "prompt" not in request:
            raise GatewayError(
                400, "missing_required_parameter", "'prompt' is required", param="prompt"
            )
        if not isinstance(request["prompt"], str | list):
            raise GatewayError(
                400, "invalid_type", "'prompt' must be a string or an array", param="prompt"
            )
    else:
        if "input" not in request:
            raise GatewayError(
                400, "missing_required_parameter", "'input' is required", param="input"
            )
        if not isinstance(request["input"], str | list):
            raise GatewayError(
                400, "invalid_type", "'input' must be a string or an array", param="input"
            )
    for name in _FIELD_TYPES.keys() & request.keys():
        if _bad_type(name, request[name]):
            raise GatewayError(
                400,
                "invalid_type",
                f"'{name}' must be {_FIELD_TYPES[name][1]}",
                param=name,
            )
    return request
