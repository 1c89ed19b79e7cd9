"""The hash-chained audit log: tampering is detected; concurrent appends serialise."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.store import audit
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.models import AuditEntry


def _fill(factory: sessionmaker[Session], n: int = 5) -> None:
    with session_scope(factory) as s:
        for i in range(n):
            audit.append(
                s,
                actor="tester",
                action="test.event",
                subject_type="thing",
                subject_id=f"t{i}",
                reason=f"reason {i}",
                payload={"i": i, "nested": {"ü": [1, 2]}},
            )


def test_chain_links_and_verifies(store_sessions: sessionmaker[Session]) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        entries = list(audit.iter_entries(s))
        assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
        assert entries[0]["prev_hash"] == audit.GENESIS_HASH
        for a, b in zip(entries, entries[1:], strict=False):
            assert b["prev_hash"] == a["hash"]
        result = audit.verify(s)
    assert result.ok and result.count == 5 and result.head_hash == entries[-1]["hash"]


def test_edited_entry_detected(store_sessions: sessionmaker[Session]) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(reason="innocent"))
    with session_scope(store_sessions) as s:
        result = audit.verify(s)
    assert not result.ok and result.first_bad_seq == 3 and "edited" in result.message


def test_edited_payload_detected(store_sessions: sessionmaker[Session]) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(payload={"i": 99}))
    with session_scope(store_sessions) as s:
        assert audit.verify(s).first_bad_seq == 2


def test_removed_entry_detected(store_sessions: sessionmaker[Session]) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with session_scope(store_sessions) as s:
        result = audit.verify(s)
    assert not result.ok and result.first_bad_seq == 2 and "removed" in result.message


def test_removed_and_renumbered_entry_detected(store_sessions: sessionmaker[Session]) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
        for seq in (3, 4, 5):
            s.execute(
                text("UPDATE audit_log SET seq = :n WHERE seq = :o"), {"n": seq - 1, "o": seq}
            )
    with session_scope(store_sessions) as s:
        result = audit.verify(s)
    assert not result.ok and result.first_bad_seq == 2


def test_reordered_entries_detected(store_sessions: sessionmaker[Session]) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        s.execute(text("UPDATE audit_log SET seq = 100 WHERE seq = 3"))
        s.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = 4"))
        s.execute(text("UPDATE audit_log SET seq = 4 WHERE seq = 100"))
    with session_scope(store_sessions) as s:
        result = audit.verify(s)
    assert not result.ok and result.first_bad_seq == 3


def test_export_and_verify_file(store_sessions: sessionmaker[Session], tmp_path: Path) -> None:
    _fill(store_sessions)
    buf = io.StringIO()
    with session_scope(store_sessions) as s:
        assert audit.export_jsonl(s, buf).ok
    good = tmp_path / "audit.jsonl"
    good.write_text(buf.getvalue())
    assert audit.verify_file(good).ok and audit.verify_file(good).count == 5

    lines = buf.getvalue().splitlines()
    edited = [json.loads(x) for x in lines]
    edited[3]["actor"] = "someone-else"
    bad = tmp_path / "edited.jsonl"
    bad.write_text("\n".join(json.dumps(e) for e in edited) + "\n")
    assert audit.verify_file(bad).first_bad_seq == 4

    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")
    assert audit.verify_file(swapped).first_bad_seq == 2

    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    result = audit.verify_file(dropped)
    assert result.first_bad_seq == 2 and "removed" in result.message

    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text(lines[0] + "\n{not json\n")
    assert audit.verify_file(garbage).first_bad_seq == 2

    with pytest.raises(audit.InvalidInput, match="cannot read"):
        audit.verify_file(tmp_path / "missing.jsonl")


def test_append_requires_actor(store_sessions: sessionmaker[Session]) -> None:
    with pytest.raises(audit.InvalidInput, match="actor"), session_scope(store_sessions) as s:
        audit.append(s, actor=" ", action="x", subject_type="t", subject_id="1")


def _concurrent_appends(url: str, threads: int, per_thread: int) -> None:
    engine = make_engine(url, pool_size=threads + 2)
    factory = make_sessionmaker(engine)
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with session_scope(factory) as s:
                    audit.append(
                        s,
                        actor=f"w{w}",
                        action="concurrent",
                        subject_type="t",
                        subject_id=f"{w}-{i}",
                        payload={"w": w, "i": i},
                    )
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with session_scope(factory) as s:
        result = audit.verify(s)
    engine.dispose()
    assert result.ok and result.count == threads * per_thread


@pytest.mark.postgres
def test_concurrent_appenders_postgres(postgres_db_url: str) -> None:
    from distillwarden.store.migrate import upgrade_database

    upgrade_database(postgres_db_url)
    _concurrent_appends(postgres_db_url, threads=4, per_thread=25)


def test_concurrent_appenders_sqlite(tmp_path: Path) -> None:
    from distillwarden.store.migrate import upgrade_database

    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade_database(url)
    _concurrent_appends(url, threads=4, per_thread=15)


def test_anchor_detects_cut_off_tail_and_rewritten_chain(
    store_sessions: sessionmaker[Session],
) -> None:
    _fill(store_sessions)
    with session_scope(store_sessions) as s:
        anchor = audit.head(s)
        assert anchor is not None and anchor.seq == 5
        assert audit.verify(s, [anchor]).ok
        assert audit.Anchor.parse(str(anchor)) == anchor
    with session_scope(store_sessions) as s:
        s.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    with session_scope(store_sessions) as s:
        assert audit.verify(s).ok  # a chain alone cannot see a cut-off tail
        result = audit.verify(s, [anchor])
    assert not result.ok and result.first_bad_seq == 5 and "missing" in result.message

    # Recompute the whole chain after editing entry 2: self-consistent, but not the anchor.
    _fill(store_sessions, 2)
    with session_scope(store_sessions) as s:
        mid = audit.Anchor(3, s.get(AuditEntry, 3).hash)  # type: ignore[union-attr]
        s.execute(text("DELETE FROM audit_log"))
    with session_scope(store_sessions) as s:
        for i in range(5):
            audit.append(
                s,
                actor="forger",
                action="test.event",
                subject_type="thing",
                subject_id=f"t{i}",
                reason="rewritten",
            )
    with session_scope(store_sessions) as s:
        assert audit.verify(s).ok
        forged = audit.verify(s, [mid])
    assert not forged.ok and forged.first_bad_seq == 3 and "rewritten" in forged.message


@pytest.mark.parametrize("text_", ["5", "x:abc", "0:" + "a" * 64, "3:" + "g" * 64])
def test_bad_anchor_rejected(text_: str) -> None:
    with pytest.raises(audit.InvalidInput, match="SEQ:HASH"):
        audit.Anchor.parse(text_)
