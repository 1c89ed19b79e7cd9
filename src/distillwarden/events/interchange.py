"""The traffic interchange JSONL format (``formats/traffic-jsonl.md`` v1): line <-> event row.

Pure functions, no I/O: :func:`traffic_event` validates one parsed line and builds the event
row (hashing IP and User-Agent with the installation secret); :func:`interchange_line` goes
back from an event row to an interchange object for export; :func:`account_record` and
:func:`label_record` do the same checks for the accounts and labels files.

Extra fields that distillwarden itself writes on export and reads back on import (all
optional, ignored by other readers): ``event_id``, ``ip_hash``, ``ip_net_hash``, ``ua_hash``
(hashes already made with the exporting installation's secret, used only when ``ip`` /
``user_agent`` are absent), ``key_prefix``, ``channel``, ``licence``, ``ttfb_ms``,
``upstream``, ``error_code``, ``source``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from .record import (
    extract_request_fields,
    extract_response_fields,
    hash_identifier,
    hash_ip,
    ts_from_iso,
)

__all__ = [
    "ACCOUNT_COLUMNS",
    "LineError",
    "account_record",
    "interchange_line",
    "label_record",
    "traffic_event",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT32 = (-(2**31), 2**31 - 1)
_INT32_COLUMNS = ("n_messages", "max_tokens", "n", "top_logprobs", "prompt_tokens",
                  "completion_tokens")
_FLOAT32_MAX = 3.4e38
ACCOUNT_COLUMNS = ("org_id", "licence", "channel", "home_region", "payment_fingerprint_hash",
                   "created", "tier")
_EXTRA_STR = ("key_prefix", "channel", "licence", "upstream", "error_code", "source",
              "ip_hash", "ip_net_hash", "ua_hash")


class LineError(ValueError):
    """One input line is unusable; the message says why (the caller adds the line number)."""


def _micros(dt: datetime) -> int:
    d = dt.astimezone(UTC) - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _req_str(obj: dict[str, Any], name: str) -> str:
    v = obj.get(name)
    if v is None:
        raise LineError(f"missing required field {name!r}")
    if not isinstance(v, str):
        raise LineError(f"field {name!r} must be a string, got {type(v).__name__}")
    if not v.strip():
        raise LineError(f"field {name!r} must not be empty")
    return v


def _opt_str(obj: dict[str, Any], name: str) -> str | None:
    v = obj.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise LineError(f"field {name!r} must be a string, got {type(v).__name__}")
    return v


def _opt_num(obj: dict[str, Any], name: str) -> float | None:
    v = obj.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise LineError(f"field {name!r} must be a number, got {type(v).__name__}")
    if not -_FLOAT32_MAX < v < _FLOAT32_MAX:
        raise LineError(f"field {name!r} is out of range: {v}")
    return float(v)


def _time(obj: dict[str, Any], name: str) -> datetime:
    text = _req_str(obj, name)
    try:
        return ts_from_iso(text)
    except (ValueError, OverflowError) as exc:
        raise LineError(
            f"field {name!r} is not an RFC 3339 time with a time zone: {text!r}"
        ) from exc


def _clamp_ints(row: dict[str, Any]) -> None:
    for name in _INT32_COLUMNS:
        v = row.get(name)
        if v is not None and not _INT32[0] <= v <= _INT32[1]:
            row[name] = None
    t = row.get("temperature")
    if t is not None and not -_FLOAT32_MAX < t < _FLOAT32_MAX:
        row["temperature"] = None


def traffic_event(
    obj: Any,
    secret: bytes,
    *,
    lineno: int,
    raw: bytes,
    accounts: dict[str, dict[str, Any]] | None = None,
    source: str = "import:jsonl",
) -> dict[str, Any]:
    """Validate one parsed interchange line and return the event row (EVENT_SCHEMA keys).

    Raises :class:`LineError` for a line that is not an object, misses a required field or has
    a field of the wrong type. The event id is the line's own ``event_id`` when present, else
    derived from the line's bytes and number, so importing the same file twice yields the
    same ids.
    """
    if not isinstance(obj, dict):
        raise LineError(f"not a JSON object (got {type(obj).__name__})")
    ts = _time(obj, "ts")
    org = _req_str(obj, "org")
    key = _req_str(obj, "key")
    endpoint = _req_str(obj, "endpoint")
    request = obj.get("request")
    if request is None:
        raise LineError("missing required field 'request'")
    if not isinstance(request, dict):
        raise LineError(f"field 'request' must be an object, got {type(request).__name__}")
    response = obj.get("response")
    if response is not None and not isinstance(response, dict):
        raise LineError(f"field 'response' must be an object or null, got {type(response).__name__}")
    status = obj.get("status")
    if status is None:
        raise LineError("missing required field 'status'")
    if isinstance(status, bool) or not isinstance(status, int):
        raise LineError(f"field 'status' must be an integer, got {status!r}")
    if not 100 <= status <= 599:
        raise LineError(f"field 'status' must be an HTTP status (100-599), got {status}")
    ip = _opt_str(obj, "ip")
    ua = _opt_str(obj, "user_agent")
    region = _opt_str(obj, "region")
    latency = _opt_num(obj, "latency_ms")
    ttfb = _opt_num(obj, "ttfb_ms")
    extras = {name: _opt_str(obj, name) for name in _EXTRA_STR}
    event_id = _opt_str(obj, "event_id")
    if not event_id:
        event_id = "evt_" + hashlib.sha256(b"%d:" % lineno + raw.strip()).hexdigest()[:24]
    if ip:
        ip_hash, net_hash = hash_ip(secret, ip)
    else:
        ip_hash, net_hash = extras["ip_hash"], extras["ip_net_hash"]
    ua_hash = hash_identifier(secret, ua) if ua else extras["ua_hash"]
    account = (accounts or {}).get(org) or {}
    row: dict[str, Any] = {
        "event_id": event_id,
        "ts": _micros(ts),
        "org_id": org,
        "key_id": key,
        "key_prefix": extras["key_prefix"] or key[:16],
        "channel": account.get("channel") or extras["channel"],
        "licence": account.get("licence") or extras["licence"],
        "region": region,
        "ip_hash": ip_hash,
        "ip_net_hash": net_hash,
        "ua_hash": ua_hash,
        "endpoint": endpoint,
        "request_json": orjson.dumps(request).decode(),
        "status": status,
        "error_code": extras["error_code"],
        "latency_ms": latency,
        "ttfb_ms": ttfb,
        "upstream": extras["upstream"],
        "source": extras["source"] or source,
    }
    row.update(extract_request_fields(request))
    row.update(extract_response_fields(response))
    if row["error_code"] is None and status >= 400 and isinstance(response, dict):
        err = response.get("error")
        if isinstance(err, dict) and isinstance(err.get("code"), str):
            row["error_code"] = err["code"]
    _clamp_ints(row)
    return row


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _response_object(row: dict[str, Any]) -> dict[str, Any] | None:
    text = row.get("response_text")
    finish = row.get("finish_reason")
    pt, ct = row.get("prompt_tokens"), row.get("completion_tokens")
    if text is None and finish is None and pt is None and ct is None:
        return None
    resp: dict[str, Any] = {}
    if text is not None or finish is not None:
        choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
        if row.get("endpoint") == "/v1/completions":
            resp["object"] = "text_completion"
            choice["text"] = text
        else:
            resp["object"] = "chat.completion"
            choice["message"] = {"role": "assistant", "content": text}
        resp["choices"] = [choice]
    if pt is not None or ct is not None:
        usage: dict[str, Any] = {}
        if pt is not None:
            usage["prompt_tokens"] = pt
        if ct is not None:
            usage["completion_tokens"] = ct
        if pt is not None and ct is not None:
            usage["total_tokens"] = pt + ct
        resp["usage"] = usage
    if row.get("model"):
        resp["model"] = row["model"]
    return resp


def _request_object(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("request_json")
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    # The original body was not kept: rebuild a minimal, equivalent one.
    req: dict[str, Any] = {}
    if row.get("model"):
        req["model"] = row["model"]
    if row.get("endpoint") == "/v1/chat/completions":
        req["messages"] = [{"role": "user", "content": row.get("last_user_text") or ""}]
    else:
        req["prompt"] = row.get("prompt_text") or ""
    return req


def interchange_line(row: dict[str, Any]) -> dict[str, Any]:
    """An event row (as from ``Table.to_pylist``) as an interchange object.

    IPs and User-Agents exist only as hashes in the log, so they are exported as the extra
    fields ``ip_hash``/``ip_net_hash``/``ua_hash``, never as ``ip``; no secret is exported.
    """
    ts = row["ts"]
    out: dict[str, Any] = {
        "ts": _iso(ts) if isinstance(ts, datetime) else _iso(datetime.fromtimestamp(0, UTC)),
        "org": row["org_id"],
        "key": row.get("key_id") or row.get("key_prefix") or "unknown",
    }
    if row.get("region") is not None:
        out["region"] = row["region"]
    out["endpoint"] = row["endpoint"]
    out["request"] = _request_object(row)
    out["response"] = _response_object(row)
    out["status"] = int(row["status"])
    if row.get("latency_ms") is not None:
        out["latency_ms"] = row["latency_ms"]
    out["event_id"] = row["event_id"]
    for name in (*_EXTRA_STR, "ttfb_ms"):
        if row.get(name) is not None:
            out[name] = row[name]
    return out


def account_record(obj: Any, secret: bytes) -> dict[str, Any]:
    """Validate one accounts-file line; returns a row with :data:`ACCOUNT_COLUMNS`.

    The payment fingerprint is hashed with the installation secret; a line that already
    carries ``payment_fingerprint_hash`` (e.g. exported by distillwarden) keeps it.
    """
    if not isinstance(obj, dict):
        raise LineError(f"not a JSON object (got {type(obj).__name__})")
    org = _req_str(obj, "org")
    created = _time(obj, "created") if obj.get("created") is not None else None
    fingerprint = _opt_str(obj, "payment_fingerprint")
    fp_hash = (hash_identifier(secret, fingerprint) if fingerprint
               else _opt_str(obj, "payment_fingerprint_hash"))
    return {
        "org_id": org,
        "licence": _opt_str(obj, "licence"),
        "channel": _opt_str(obj, "channel"),
        "home_region": _opt_str(obj, "home_region"),
        "payment_fingerprint_hash": fp_hash,
        "created": created,
        "tier": _opt_str(obj, "tier"),
    }


_LABELS = ("benign", "attacker")


def label_record(obj: Any) -> dict[str, Any]:
    """Validate and normalise one labels-file line.

    Returns ``{org, label, strategy, cluster, persona, attacker_fraction}``;
    ``attacker_fraction`` defaults to 1.0 for attackers and 0.0 for benign accounts.
    """
    if not isinstance(obj, dict):
        raise LineError(f"not a JSON object (got {type(obj).__name__})")
    org = _req_str(obj, "org")
    label = _req_str(obj, "label")
    if label not in _LABELS:
        raise LineError(f"field 'label' must be 'benign' or 'attacker', got {label!r}")
    cluster = obj.get("cluster")
    if cluster is not None and not isinstance(cluster, str | int):
        raise LineError("field 'cluster' must be a string or null")
    frac = obj.get("attacker_fraction")
    if frac is None:
        frac = 1.0 if label == "attacker" else 0.0
    elif isinstance(frac, bool) or not isinstance(frac, int | float) or not 0 <= frac <= 1:
        raise LineError(f"field 'attacker_fraction' must be a number in [0, 1], got {frac!r}")
    return {
        "org": org,
        "label": label,
        "strategy": _opt_str(obj, "strategy"),
        "cluster": str(cluster) if cluster is not None else None,
        "persona": _opt_str(obj, "persona"),
        "attacker_fraction": float(frac),
    }
