"""The event schema: the contract between the gateway (and importers) and detection.

One Arrow schema, versioned. Every accepted request becomes exactly one event row.
Schema changes bump ``SCHEMA_VERSION``; readers accept older versions by filling new
columns with nulls and reject unknown *newer* versions with a clear error.

Columns (all nullable unless noted):

==================  =========================  ===============================================
column              type                       meaning
==================  =========================  ===============================================
event_id            string (not null)          unique id (``evt_...``)
ts                  timestamp[us, UTC] (nn)    when the request arrived
org_id              string (not null)          organization (account) id
key_id              string                     API key id (never the secret)
key_prefix          string                     display prefix of the key
channel             string                     licence channel: ``direct`` / ``reseller:<name>``
licence             string                     licence name (``standard``, ``evaluation-permitted``…)
region              string                     market the request was attributed to
ip_hash             string                     HMAC of the client IP with the installation secret
ip_net_hash         string                     HMAC of the client's /24 (v4) or /48 (v6) network
ua_hash             string                     HMAC of the User-Agent
endpoint            string (not null)          ``/v1/chat/completions`` …
model               string                     model the client asked for
request_json        string                     the request body exactly as received (JSON text)
prompt_text         string                     all user/system text of the request, newline-joined
last_user_text      string                     text of the last user message (or the prompt)
n_messages          int32                      number of messages (1 for completions)
temperature         float32
max_tokens          int32
n                   int32                      number of choices requested
logprobs            bool                       logprobs requested
top_logprobs        int32
stream              bool
has_tools           bool                       tools / functions in the request
response_text       string                     assembled text of the first choice, then its
                                               tool calls, one ``name(arguments)`` line each
finish_reason       string
prompt_tokens       int32
completion_tokens   int32
status              int16 (not null)           HTTP status returned to the client
error_code          string                     OpenAI-style error code when status >= 400
latency_ms          float32                    time to the last byte
ttfb_ms             float32                    time to the first byte
upstream            string                     upstream that served it
source              string                     ``gateway``, ``import:jsonl``, ``import:litellm``, ``sim``
==================  =========================  ===============================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

__all__ = [
    "EVENT_SCHEMA",
    "SCHEMA_VERSION",
    "SchemaError",
    "conform",
    "empty_table",
    "schema_for",
]

SCHEMA_VERSION = 1

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("org_id", pa.string(), nullable=False),
        pa.field("key_id", pa.string()),
        pa.field("key_prefix", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("licence", pa.string()),
        pa.field("region", pa.string()),
        pa.field("ip_hash", pa.string()),
        pa.field("ip_net_hash", pa.string()),
        pa.field("ua_hash", pa.string()),
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("model", pa.string()),
        pa.field("request_json", pa.string()),
        pa.field("prompt_text", pa.string()),
        pa.field("last_user_text", pa.string()),
        pa.field("n_messages", pa.int32()),
        pa.field("temperature", pa.float32()),
        pa.field("max_tokens", pa.int32()),
        pa.field("n", pa.int32()),
        pa.field("logprobs", pa.bool_()),
        pa.field("top_logprobs", pa.int32()),
        pa.field("stream", pa.bool_()),
        pa.field("has_tools", pa.bool_()),
        pa.field("response_text", pa.string()),
        pa.field("finish_reason", pa.string()),
        pa.field("prompt_tokens", pa.int32()),
        pa.field("completion_tokens", pa.int32()),
        pa.field("status", pa.int16(), nullable=False),
        pa.field("error_code", pa.string()),
        pa.field("latency_ms", pa.float32()),
        pa.field("ttfb_ms", pa.float32()),
        pa.field("upstream", pa.string()),
        pa.field("source", pa.string()),
    ],
    metadata={b"distillwarden.schema_version": str(SCHEMA_VERSION).encode()},
)

COLUMNS = EVENT_SCHEMA.names


class SchemaError(ValueError):
    """A table or segment does not match the event schema; the message says how."""


def empty_table() -> pa.Table:
    """An event table with no rows."""
    return EVENT_SCHEMA.empty_table()


def schema_for(columns: Sequence[str] | None = None) -> pa.Schema:
    """:data:`EVENT_SCHEMA`, or its projection onto ``columns`` (in that order)."""
    if columns is None:
        return EVENT_SCHEMA
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise SchemaError(
            f"unknown event column(s) {unknown}; the event schema has: {', '.join(COLUMNS)}"
        )
    return pa.schema([EVENT_SCHEMA.field(c) for c in columns], metadata=EVENT_SCHEMA.metadata)


def conform(
    table: pa.Table, *, origin: str = "table", columns: Sequence[str] | None = None
) -> pa.Table:
    """Return ``table`` cast to :data:`EVENT_SCHEMA` (or its projection onto ``columns``).

    Missing nullable columns are filled with nulls (older schema versions); extra columns are
    dropped; a missing required column, an uncastable type or a newer schema version raises
    :class:`SchemaError` naming ``origin``.
    """
    target = schema_for(columns)
    meta = table.schema.metadata or {}
    version_raw = meta.get(b"distillwarden.schema_version")
    if version_raw is not None:
        try:
            version = int(version_raw)
        except ValueError as exc:
            raise SchemaError(f"{origin}: unreadable schema version {version_raw!r}") from exc
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"{origin}: written with event schema v{version}, this distillwarden reads "
                f"up to v{SCHEMA_VERSION}; upgrade distillwarden"
            )
    arrays: list[Any] = []
    n = table.num_rows
    for field in target:
        if field.name in table.column_names:
            col = table.column(field.name)
            if not col.type.equals(field.type):
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaError(
                        f"{origin}: column {field.name!r} has type {col.type}, "
                        f"expected {field.type}"
                    ) from exc
            if not field.nullable and col.null_count:
                raise SchemaError(f"{origin}: column {field.name!r} has nulls")
            arrays.append(col)
        elif field.nullable:
            arrays.append(pa.nulls(n, field.type))
        else:
            raise SchemaError(f"{origin}: required column {field.name!r} is missing")
    return pa.Table.from_arrays(arrays, schema=target)
