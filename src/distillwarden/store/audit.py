"""Hash-chained, append-only audit log.

Each entry carries ``prev_hash`` (the previous entry's hash; 64 zeros for the first) and
``hash = sha256(prev_hash || canonical JSON of the entry)``. Editing, removing or
reordering any entry breaks the chain from that entry on, which :func:`verify` (database)
and :func:`verify_file` (an exported JSONL file) report with the first bad sequence number.

Appends serialise: on PostgreSQL through a transaction-scoped advisory lock, on SQLite
through the database write lock taken before the chain head is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .errors import InvalidInput
from .models import AuditEntry, utcnow

__all__ = [
    "GENESIS_HASH",
    "Anchor",
    "AuditVerification",
    "append",
    "canonical_entry",
    "entry_hash",
    "export_jsonl",
    "head",
    "iter_entries",
    "jsonable",
    "verify",
    "verify_entries",
    "verify_file",
]

GENESIS_HASH = "0" * 64
_ADVISORY_LOCK_KEY = 0x64_77_61_75_64_69_74  # "dwaudit"


def jsonable(value: Any) -> Any:
    """Convert a payload to plain JSON types (datetimes to ISO-8601 UTC, tuples to lists),
    so that what is hashed is exactly what the database stores and returns."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def format_ts(value: datetime) -> str:
    """UTC timestamp with microseconds and a ``Z``; naive values (SQLite) are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(
    *,
    seq: int,
    at: datetime | str,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    reason: str,
    payload: Any,
) -> str:
    """The canonical JSON text of an entry (sorted keys, no spaces, UTF-8) that is hashed."""
    body = {
        "seq": seq,
        "at": at if isinstance(at, str) else format_ts(at),
        "actor": actor,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "reason": reason,
        "payload": jsonable(payload),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, canonical: str) -> str:
    """sha256 over the previous hash and the canonical entry, hex."""
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _lock_chain(session: Session) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        # A write statement makes pysqlite open the transaction and take SQLite's write
        # lock (waiting for the busy timeout), so the head read below is the latest one.
        session.execute(text("UPDATE audit_log SET seq = seq WHERE 1 = 0"))


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    reason: str = "",
    payload: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain in the caller's transaction and return it.

    The entry becomes durable when the caller commits; a rollback removes it together with
    the change it records.
    """
    if not actor or not actor.strip():
        raise InvalidInput("every audit entry needs an actor (who made the change)")
    if not action:
        raise InvalidInput("every audit entry needs an action name, e.g. 'status.set'")
    session.flush()
    _lock_chain(session)
    head = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    at = utcnow()
    clean_payload = jsonable(dict(payload or {}))
    canonical = canonical_entry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason or "",
        payload=clean_payload,
    )
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        reason=reason or "",
        payload=clean_payload,
        prev_hash=prev,
        hash=entry_hash(prev, canonical),
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class AuditVerification:
    """Result of checking a chain: ``ok`` or the first bad sequence number and why."""

    ok: bool
    count: int
    head_hash: str
    first_bad_seq: int | None = None
    message: str = "chain intact"


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    """An entry as plain JSON (the JSONL export format)."""
    return {
        "seq": entry.seq,
        "at": format_ts(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "reason": entry.reason,
        "payload": entry.payload,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


@dataclass(frozen=True)
class Anchor:
    """A (seq, hash) pair recorded outside the database (a ticket, an e-mail, a bundle).

    A hash chain alone cannot reveal that its *latest* entries were cut off or that the
    whole chain was recomputed; checking against an anchor kept elsewhere can.
    """

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``SEQ:HASH`` as printed by ``distillwarden audit head``."""
        seq, _, digest = text.strip().partition(":")
        if (
            not seq.isdigit()
            or int(seq) < 1
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise InvalidInput(
                f"anchor {text!r} is not SEQ:HASH (e.g. 42:9f86d0…, 64 hex digits); "
                "get one with `distillwarden audit head`"
            )
        return cls(int(seq), digest)


def head(session: Session) -> Anchor | None:
    """The latest entry as an anchor to record elsewhere (None for an empty log)."""
    row = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return Anchor(int(row[0]), str(row[1])) if row else None


def verify_entries(
    entries: Iterable[Mapping[str, Any]], anchors: Iterable[Anchor] = ()
) -> AuditVerification:
    """Check a sequence of entries (dicts in the export format), in the order given, and
    that it still contains every ``anchor`` unchanged."""
    wanted = {a.seq: a for a in anchors}
    seen: dict[int, str] = {}
    result = _verify_chain(entries, wanted, seen)
    if not result.ok:
        return result
    for seq in sorted(wanted):
        if seq not in seen:
            return AuditVerification(
                False,
                result.count,
                result.head_hash,
                seq,
                f"anchor {seq} is missing: the log ends at seq {result.count} "
                "(its latest entries were removed)",
            )
        if seen[seq] != wanted[seq].hash:
            return AuditVerification(
                False,
                result.count,
                result.head_hash,
                seq,
                f"seq {seq} differs from the recorded anchor (the chain was rewritten)",
            )
    return result


def _verify_chain(
    entries: Iterable[Mapping[str, Any]], wanted: Mapping[int, Anchor], seen: dict[int, str]
) -> AuditVerification:
    prev = GENESIS_HASH
    count = 0
    expected_seq = 1
    for raw in entries:
        try:
            seq = int(raw["seq"])
            canonical = canonical_entry(
                seq=seq,
                at=str(raw["at"]),
                actor=str(raw["actor"]),
                action=str(raw["action"]),
                subject_type=str(raw["subject_type"]),
                subject_id=str(raw["subject_id"]),
                reason=str(raw["reason"]),
                payload=raw["payload"],
            )
            stored_prev, stored_hash = str(raw["prev_hash"]), str(raw["hash"])
        except (KeyError, TypeError, ValueError) as exc:
            return AuditVerification(
                False,
                count,
                prev,
                expected_seq,
                f"entry after seq {expected_seq - 1} "
                f"is malformed ({exc!r}); the file was edited or truncated mid-line",
            )
        if seq != expected_seq:
            what = "removed" if seq > expected_seq else "reordered or duplicated"
            return AuditVerification(
                False,
                count,
                prev,
                expected_seq,
                f"expected seq {expected_seq} but found {seq}: entries {what}",
            )
        if stored_prev != prev:
            return AuditVerification(
                False,
                count,
                prev,
                seq,
                f"seq {seq}: prev_hash does not match the hash of seq {seq - 1} "
                "(an entry before it was removed, reordered or rewritten)",
            )
        if entry_hash(prev, canonical) != stored_hash:
            return AuditVerification(
                False,
                count,
                prev,
                seq,
                f"seq {seq}: content does not match its hash (the entry was edited)",
            )
        if seq in wanted:
            seen[seq] = stored_hash
        prev = stored_hash
        count += 1
        expected_seq += 1
    return AuditVerification(True, count, prev)


def iter_entries(session: Session, *, batch: int = 2000) -> Iterator[dict[str, Any]]:
    """All entries in sequence order as export dicts, read in batches (plain rows, no ORM
    objects, so verifying a long chain stays fast and flat in memory)."""
    table = AuditEntry.__table__
    last = 0
    while True:
        rows = (
            session.execute(
                select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield {
                "seq": row["seq"],
                "at": format_ts(row["at"]),
                "actor": row["actor"],
                "action": row["action"],
                "subject_type": row["subject_type"],
                "subject_id": row["subject_id"],
                "reason": row["reason"],
                "payload": row["payload"],
                "prev_hash": row["prev_hash"],
                "hash": row["hash"],
            }
        last = rows[-1]["seq"]


def verify(session: Session, anchors: Iterable[Anchor] = ()) -> AuditVerification:
    """Verify the chain stored in the database. A removed row shows up as a gap in ``seq``,
    an edited or reordered one as a hash mismatch, a cut-off tail as a missing anchor."""
    return verify_entries(iter_entries(session), anchors)


def export_jsonl(session: Session, out: IO[str]) -> AuditVerification:
    """Write the chain as JSONL (one entry per line) and return its verification, so the
    exporter learns at once whether what it hands over is intact."""
    for entry in iter_entries(session):
        out.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
    return verify(session)


def verify_file(path: str | Path, anchors: Iterable[Anchor] = ()) -> AuditVerification:
    """Verify an exported JSONL chain (e.g. one handed to a customer or a court)."""
    p = Path(path)
    try:
        fh = p.open(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read audit file {p}: {exc.strerror}") from exc

    def entries() -> Iterator[dict[str, Any]]:
        with fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    yield {"_bad_line": lineno}
                    return
                yield value if isinstance(value, dict) else {"_bad_line": lineno}

    return verify_entries(entries(), anchors)
