"""Import LiteLLM proxy spend logs (the ``LiteLLM_SpendLogs`` table) into the event log.

Accepted exports: CSV with a header row (e.g. ``\\copy "LiteLLM_SpendLogs" TO ... CSV
HEADER``), a JSON array (``/spend/logs`` API) or JSONL. Columns used: ``request_id``,
``call_type``, ``api_key`` (LiteLLM's hashed token), ``startTime``, ``endTime``,
``completionStartTime``, ``model``, ``model_group``, ``api_base``, ``user``, ``team_id``,
``organization_id``, ``end_user``, ``metadata`` (``user_api_key_alias``,
``user_api_key_team_id``, ``user_api_key_org_id``, ``user_api_key_user_id``,
``requester_ip_address``, ``status``, ``error_information``), ``requester_ip_address``,
``messages``, ``response``, ``proxy_server_request``, ``prompt_tokens``,
``completion_tokens``, ``status``. Others are ignored. Times without a zone are UTC (how
LiteLLM stores them).

The account (``org_id``) of each request is chosen by ``org_from``: ``auto`` takes the first
present of organization, team, internal user and API key; or force one of ``org``, ``team``,
``user``, ``end_user``, ``key``.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .importers import ImportFormatError, ImportReport, ProgressCallback, import_rows, iter_jsonl
from .interchange import LineError
from .record import extract_request_fields, extract_response_fields, hash_identifier, hash_ip

__all__ = ["ORG_SOURCES", "import_litellm", "litellm_event"]

ORG_SOURCES = ("auto", "org", "team", "user", "end_user", "key")

_ENDPOINTS = {
    "completion": "/v1/chat/completions",
    "acompletion": "/v1/chat/completions",
    "text_completion": "/v1/completions",
    "atext_completion": "/v1/completions",
    "embedding": "/v1/embeddings",
    "aembedding": "/v1/embeddings",
    "responses": "/v1/responses",
    "aresponses": "/v1/responses",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _json_field(value: Any) -> Any:
    """LiteLLM JSON columns arrive as objects (JSON exports) or JSON text (CSV)."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return value
        return value or None
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _time(value: Any, name: str) -> datetime:
    text = _text(value)
    if text is None:
        raise LineError(f"missing {name}")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise LineError(f"{name} {text!r} is not a timestamp") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _micros(dt: datetime) -> int:
    d = dt.astimezone(UTC) - _EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        v = int(float(value))
    except (TypeError, ValueError):
        return None
    return v if -(2**31) <= v < 2**31 else None


def _org(rec: dict[str, Any], meta: dict[str, Any], org_from: str) -> str | None:
    candidates = {
        "org": _text(rec.get("organization_id")) or _text(meta.get("user_api_key_org_id")),
        "team": _text(rec.get("team_id")) or _text(meta.get("user_api_key_team_id")),
        "user": _text(rec.get("user")) or _text(meta.get("user_api_key_user_id")),
        "end_user": _text(rec.get("end_user")),
        "key": _text(rec.get("api_key")),
    }
    if org_from != "auto":
        return candidates[org_from]
    for name in ("org", "team", "user", "key"):
        if candidates[name]:
            return candidates[name]
    return None


def _status(rec: dict[str, Any], meta: dict[str, Any]) -> int:
    raw = _text(rec.get("status")) or _text(meta.get("status")) or "success"
    if raw.isdigit():
        return int(raw)
    if raw.lower() == "success":
        return 200
    info = meta.get("error_information")
    if isinstance(info, dict):
        code = _int(info.get("error_code"))
        if code is not None and 400 <= code <= 599:
            return code
    return 500


def _request(rec: dict[str, Any], model: str | None) -> dict[str, Any]:
    psr = _json_field(rec.get("proxy_server_request"))
    if isinstance(psr, dict) and psr:
        inner = psr.get("body")
        body: dict[str, Any] = inner if isinstance(inner, dict) else psr
        if any(body.get(k) is not None for k in ("messages", "prompt", "input")):
            return body
    messages = _json_field(rec.get("messages"))
    req: dict[str, Any] = {"model": model} if model else {}
    if isinstance(messages, list):
        req["messages"] = messages
    elif isinstance(messages, dict) and messages:
        req.update(messages)
    elif isinstance(messages, str) and messages:
        req["prompt"] = messages
    return req


def litellm_event(rec: Any, secret: bytes, *, org_from: str = "auto") -> dict[str, Any]:
    """One spend-log record as an event row; raises :class:`LineError` if unusable."""
    if not isinstance(rec, dict):
        raise LineError(f"not a JSON object (got {type(rec).__name__})")
    meta = _json_field(rec.get("metadata"))
    meta = meta if isinstance(meta, dict) else {}
    start = _time(rec.get("startTime"), "startTime")
    org = _org(rec, meta, org_from)
    if not org:
        raise LineError(f"no account id for org_from={org_from!r} (organization/team/user/key "
                        "columns are all empty)")
    request_id = _text(rec.get("request_id"))
    if not request_id:
        raise LineError("missing request_id")
    model = _text(rec.get("model_group")) or _text(rec.get("model"))
    request = _request(rec, model)
    response = _json_field(rec.get("response"))
    call_type = _text(rec.get("call_type")) or "acompletion"
    endpoint = _ENDPOINTS.get(call_type, "/" + call_type.lstrip("/"))
    key = _text(rec.get("api_key"))
    ip = _text(rec.get("requester_ip_address")) or _text(meta.get("requester_ip_address"))
    ip_hash, net_hash = hash_ip(secret, ip)
    raw_headers = meta.get("headers")
    headers: dict[str, Any] = raw_headers if isinstance(raw_headers, dict) else {}
    ua = _text(meta.get("user_agent")) or _text(headers.get("user-agent"))
    latency = ttfb = None
    end = _text(rec.get("endTime"))
    if end:
        latency = (_time(end, "endTime") - start).total_seconds() * 1000
    first = _text(rec.get("completionStartTime"))
    if first:
        ttfb = (_time(first, "completionStartTime") - start).total_seconds() * 1000
    status = _status(rec, meta)
    row: dict[str, Any] = {
        "event_id": f"litellm:{request_id}",
        "ts": _micros(start),
        "org_id": org,
        "key_id": key,
        "key_prefix": _text(meta.get("user_api_key_alias")) or (key[:16] if key else None),
        "endpoint": endpoint,
        "request_json": orjson.dumps(request).decode(),
        "ip_hash": ip_hash,
        "ip_net_hash": net_hash,
        "ua_hash": hash_identifier(secret, ua),
        "status": status,
        "latency_ms": latency,
        "ttfb_ms": ttfb,
        "upstream": _text(rec.get("api_base")) or _text(rec.get("custom_llm_provider")),
        "source": "import:litellm",
    }
    row.update(extract_request_fields(request))
    if row["model"] is None:
        row["model"] = model
    row.update(extract_response_fields(response if isinstance(response, dict) else None))
    if isinstance(response, str) and response and row["response_text"] is None:
        row["response_text"] = response
    for col in ("prompt_tokens", "completion_tokens"):
        if row[col] is None:
            row[col] = _int(rec.get(col))
    if status >= 400:
        info = meta.get("error_information")
        if isinstance(info, dict):
            row["error_code"] = _text(info.get("error_class")) or _text(info.get("error_code"))
    for col in ("n_messages", "max_tokens", "n", "top_logprobs"):
        if row.get(col) is not None and not -(2**31) <= row[col] < 2**31:
            row[col] = None
    return row


def _sniff(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith(b"["):
        return "json"
    if head.startswith(b"{"):
        return "jsonl"
    return "csv"


def _records(
    path: Path, report: ImportReport, progress: ProgressCallback | None
) -> Iterator[tuple[int, bytes, Any]]:
    kind = _sniff(path)
    if kind == "jsonl":
        yield from iter_jsonl(path, report, progress, what="record")
        return
    if kind == "json":
        try:
            items = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ImportFormatError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(items, list):
            raise ImportFormatError(f"{path}: expected a JSON array of spend-log records")
        for i, item in enumerate(items, start=1):
            report.lines += 1
            yield i, orjson.dumps(item), item
        return
    csv.field_size_limit(sys.maxsize)
    total = path.stat().st_size
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "startTime" not in reader.fieldnames:
            raise ImportFormatError(
                f"{path}: not a LiteLLM spend-log CSV (no startTime column in the header); "
                "export the LiteLLM_SpendLogs table with a header row"
            )
        done = 0
        for i, row in enumerate(reader, start=1):
            report.lines += 1
            raw = orjson.dumps(row)
            done += len(raw)  # approximate: the CSV text is about as long as its JSON
            if progress is not None and i % 2048 == 0:
                progress(min(done, total), total)
            yield reader.line_num, raw, row
    if progress is not None:
        progress(total, total)


def import_litellm(
    path: str | os.PathLike[str],
    events_dir: str | os.PathLike[str],
    secret: bytes,
    *,
    org_from: str = "auto",
    session: Any = None,
    progress: ProgressCallback | None = None,
    segment_rows: int = 50_000,
    actor: str = "import",
) -> ImportReport:
    """Import a LiteLLM spend-log export (CSV, JSON array or JSONL) into ``events_dir``.

    Records without a start time or any account id are reported and skipped. With a
    ``session`` the accounts are created in the store when missing (the caller commits).
    """
    if org_from not in ORG_SOURCES:
        raise ValueError(f"org_from must be one of {', '.join(ORG_SOURCES)}, not {org_from!r}")
    p = Path(path)
    if not p.is_file():
        raise ImportFormatError(f"{p}: no such file")
    report = ImportReport(source=str(p))

    def rows() -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        for lineno, raw, rec in _records(p, report, progress):
            try:
                yield lineno, raw, litellm_event(rec, secret, org_from=org_from)
            except LineError as exc:
                report.bad(lineno, str(exc), what="record")

    import_rows(rows(), Path(events_dir), report, kind="litellm", segment_rows=segment_rows)
    if session is not None:
        from .importers import sync_accounts_to_store

        sync_accounts_to_store(session, {}, report.orgs, report, actor=actor)
    return report
