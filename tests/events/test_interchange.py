"""The traffic interchange format: validation, junk tolerance, hashing and round trips."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillwarden.events.importers import (
    ImportFormatError,
    export_interchange,
    import_dataset,
    import_interchange,
    read_accounts,
    read_labels,
)
from distillwarden.events.reader import read_events
from distillwarden.events.record import hash_identifier, hash_ip

SECRET = b"test-secret"


def valid_line(i: int, **over: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "ts": f"2025-01-17T09:{i % 60:02d}:12.481Z",
        "org": f"org_{i % 4}",
        "key": "sk-dg-3Fa9",
        "ip": f"203.0.113.{i % 250}",
        "user_agent": "python-httpx/0.27",
        "region": "SG",
        "endpoint": "/v1/chat/completions",
        "request": {"model": "gpt-large", "temperature": 0.7,
                    "messages": [{"role": "system", "content": "be brief"},
                                 {"role": "user", "content": f"Explain {i}"}]},
        "response": {"id": "c1", "object": "chat.completion",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": f"answer {i}"}}],
                     "usage": {"prompt_tokens": 12, "completion_tokens": 230,
                               "total_tokens": 242}},
        "status": 200,
        "latency_ms": 1840,
    }
    line.update(over)
    return line


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_bytes(b"".join(
        (item if isinstance(item, bytes) else orjson.dumps(item)) + b"\n" for item in items))
    return path


def test_fields_are_mapped_and_identifiers_hashed(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(1, unknown_field={"x": 1})])
    report = import_interchange(src, tmp_path / "ev", SECRET)
    assert (report.imported, report.skipped) == (1, 0)
    row = read_events(tmp_path / "ev").to_pylist()[0]
    assert row["org_id"] == "org_1" and row["key_id"] == "sk-dg-3Fa9"
    assert row["ts"].isoformat() == "2025-01-17T09:01:12.481000+00:00"
    assert row["prompt_text"] == "be brief\nExplain 1"
    assert row["last_user_text"] == "Explain 1"
    assert row["response_text"] == "answer 1"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (12, 230)
    assert row["latency_ms"] == 1840.0 and row["status"] == 200 and row["region"] == "SG"
    assert row["source"] == "import:jsonl"
    assert (row["ip_hash"], row["ip_net_hash"]) == hash_ip(SECRET, "203.0.113.1")
    assert row["ua_hash"] == hash_identifier(SECRET, "python-httpx/0.27")
    stored = b"".join(p.read_bytes() for p in (tmp_path / "ev").glob("*.parquet"))
    assert b"203.0.113.1" not in stored and b"python-httpx" not in stored


def test_a_responses_api_exchange_is_imported_with_its_text(tmp_path: Path) -> None:
    line = valid_line(
        2, endpoint="/v1/responses",
        request={"model": "gpt-large", "instructions": "be brief", "max_output_tokens": 400,
                 "input": [{"type": "message", "role": "user",
                            "content": [{"type": "input_text", "text": "Explain 2"}]}]},
        response={"object": "response", "status": "completed",
                  "output": [{"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": "answer 2"}]}],
                  "usage": {"input_tokens": 9, "output_tokens": 80, "total_tokens": 89}})
    src = write_jsonl(tmp_path / "t.jsonl", [line])
    assert import_interchange(src, tmp_path / "ev", SECRET).imported == 1
    row = read_events(tmp_path / "ev").to_pylist()[0]
    assert row["endpoint"] == "/v1/responses"
    assert (row["prompt_text"], row["last_user_text"]) == ("be brief\nExplain 2", "Explain 2")
    assert (row["n_messages"], row["max_tokens"]) == (2, 400)
    assert row["response_text"] == "answer 2" and row["finish_reason"] == "completed"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 80)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (orjson.dumps({k: v for k, v in valid_line(0).items() if k != "org"}),
         "missing required field 'org'"),
        (orjson.dumps(valid_line(0, ts="2025-01-17T09:00:00")), "time zone"),
        (orjson.dumps(valid_line(0, ts="yesterday")), "RFC 3339"),
        (orjson.dumps(valid_line(0, status="200")), "'status' must be an integer"),
        (orjson.dumps(valid_line(0, status=42)), "HTTP status"),
        (orjson.dumps(valid_line(0, request="hi")), "'request' must be an object"),
        (orjson.dumps(valid_line(0, response=[1])), "'response' must be an object or null"),
        (orjson.dumps(valid_line(0, key="")), "'key' must not be empty"),
        (orjson.dumps(valid_line(0, latency_ms="fast")), "'latency_ms' must be a number"),
        (orjson.dumps(valid_line(0, ip=12)), "'ip' must be a string"),
    ],
)
def test_bad_lines_are_reported_with_line_number(tmp_path: Path, line: bytes, reason: str) -> None:
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(1), line, valid_line(2)])
    report = import_interchange(src, tmp_path / "ev", SECRET)
    assert (report.imported, report.skipped, report.lines) == (2, 1, 3)
    assert report.bad_lines[0][0] == 2
    assert reason in report.bad_lines[0][1]


def test_response_null_and_huge_request_numbers(tmp_path: Path) -> None:
    line = valid_line(3, response=None, status=429)
    line["request"]["max_tokens"] = 10**12  # beyond int32: kept in request_json, not a column
    src = write_jsonl(tmp_path / "t.jsonl", [line])
    import_interchange(src, tmp_path / "ev", SECRET)
    row = read_events(tmp_path / "ev").to_pylist()[0]
    assert row["response_text"] is None and row["status"] == 429
    assert row["max_tokens"] is None
    assert orjson.loads(row["request_json"])["max_tokens"] == 10**12


junk = st.one_of(
    st.binary(max_size=200).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.text(alphabet=string.printable.replace("\n", "").replace("\r", ""), max_size=80),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={k: st.one_of(st.none(), st.integers(), st.text(max_size=8),
                                                     st.just({}))
                                        for k in ("ts", "org", "key", "endpoint", "request",
                                                  "status")}).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), junk), min_size=1, max_size=12))
def test_junk_never_crashes_and_is_counted(tmp_path_factory, items) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("junk")
    lines: list[bytes] = []
    valid_numbers: list[int] = []
    junk_numbers: list[int] = []
    for n, (is_valid, j) in enumerate(items, start=1):
        if is_valid:
            lines.append(orjson.dumps(valid_line(n)))
            valid_numbers.append(n)
        else:
            raw = j if isinstance(j, bytes) else j.encode()
            lines.append(raw)
            if raw.strip():
                junk_numbers.append(n)
    src = tmp / "t.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    report = import_interchange(src, tmp / "ev", SECRET)
    assert report.imported == len(valid_numbers)
    assert report.skipped == len(junk_numbers)
    assert [n for n, _ in report.bad_lines] == junk_numbers
    assert read_events(tmp / "ev").num_rows == len(valid_numbers)


line_strategy = st.builds(
    lambda i, org, text, status, resp, lat, ip: valid_line(
        i, org=org, status=status, latency_ms=lat, ip=ip,
        request={"model": "m", "messages": [{"role": "user", "content": text}], "n": 2},
        response={"choices": [{"index": 0, "finish_reason": "length",
                               "message": {"role": "assistant", "content": text[::-1]}}]}
        if resp else None,
    ),
    st.integers(0, 10_000),
    st.text(alphabet=string.ascii_letters + string.digits + "_-:.", min_size=1, max_size=12),
    st.text(max_size=40),
    st.sampled_from([200, 400, 429, 500]),
    st.booleans(),
    st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    st.one_of(st.none(), st.ip_addresses().map(str)),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(line_strategy, min_size=1, max_size=15))
def test_import_export_import_round_trips(tmp_path_factory, lines) -> None:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("rt")
    src = write_jsonl(tmp / "t.jsonl", lines)
    first = import_interchange(src, tmp / "ev1", SECRET)
    assert first.imported == len(lines)
    exported = export_interchange(tmp / "ev1", tmp / "out.jsonl")
    assert exported.events == len(lines)
    text = (tmp / "out.jsonl").read_bytes()
    for line in lines:
        if line.get("ip"):
            assert b'"ip":' not in text  # only hashes leave the installation
    second = import_interchange(tmp / "out.jsonl", tmp / "ev2", b"another-installation")
    assert second.skipped == 0
    a = read_events(tmp / "ev1").sort_by("event_id")
    b = read_events(tmp / "ev2").sort_by("event_id")
    assert a.equals(b)


def test_reimporting_the_same_file_does_not_duplicate(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(i) for i in range(30)])
    for _ in range(2):
        import_interchange(src, tmp_path / "ev", SECRET, segment_rows=7)
    t = read_events(tmp_path / "ev")
    assert t.num_rows == 30
    assert len(set(t.column("event_id").to_pylist())) == 30


def test_dataset_with_accounts_and_labels(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(i) for i in range(8)])
    acc = write_jsonl(tmp_path / "a.jsonl", [
        {"org": "org_1", "licence": "evaluation-permitted", "channel": "reseller:acme",
         "home_region": "SG", "created": "2024-03-01T00:00:00Z", "payment_fingerprint": "card-9"},
        {"licence": "standard"},
    ])
    lab = write_jsonl(tmp_path / "l.jsonl", [
        {"org": "org_1", "label": "attacker", "strategy": "cot-harvest", "cluster": "h1"},
        {"org": "org_0", "label": "benign", "strategy": "support-bot", "cluster": None},
    ])
    out = tmp_path / "ds"
    report = import_dataset(src, out, SECRET, accounts_path=acc, labels_path=lab)
    assert (report.imported, report.accounts, report.accounts_skipped, report.labels) == (8, 1, 1, 2)
    events = read_events(out / "events")
    by_org = {r["org_id"]: r for r in events.to_pylist()}
    assert by_org["org_1"]["licence"] == "evaluation-permitted"
    assert by_org["org_1"]["channel"] == "reseller:acme"
    assert by_org["org_2"]["licence"] is None
    accounts = {r["org_id"]: r for r in read_accounts(out / "accounts.parquet").to_pylist()}
    assert set(accounts) == {"org_0", "org_1", "org_2", "org_3"}
    assert accounts["org_1"]["payment_fingerprint_hash"] == hash_identifier(SECRET, "card-9")
    assert accounts["org_1"]["created"].year == 2024
    labels = read_labels(out / "labels.jsonl")
    assert labels["org_1"] == {"org": "org_1", "label": "attacker", "strategy": "cot-harvest",
                               "cluster": "h1", "persona": None, "attacker_fraction": 1.0}
    assert labels["org_0"]["attacker_fraction"] == 0.0


def test_bad_labels_fail_loudly(tmp_path: Path) -> None:
    lab = write_jsonl(tmp_path / "l.jsonl", [{"org": "a", "label": "benign"},
                                             {"org": "b", "label": "maybe"},
                                             {"org": "a", "label": "attacker"}])
    with pytest.raises(ImportFormatError, match=r"2 bad label line\(s\).*line 2.*'maybe'.*line 3"):
        read_labels(lab)


def test_accounts_jsonl_needs_secret(tmp_path: Path) -> None:
    acc = write_jsonl(tmp_path / "a.jsonl", [{"org": "o", "payment_fingerprint": "x"}])
    with pytest.raises(ImportFormatError, match="secret"):
        read_accounts(acc)
    table = read_accounts(acc, secret=SECRET)
    assert table.column("payment_fingerprint_hash").to_pylist() == [hash_identifier(SECRET, "x")]


def test_import_creates_orgs_and_licences_in_store(tmp_path: Path, session_factory) -> None:  # type: ignore[no-untyped-def]
    from distillwarden.store import services

    src = write_jsonl(tmp_path / "t.jsonl", [valid_line(i) for i in range(4)])
    acc = write_jsonl(tmp_path / "a.jsonl", [
        {"org": "org_1", "licence": "evaluation-permitted", "channel": "reseller:acme",
         "home_region": "SG", "created": "2026-02-13T05:00:00+08:00"}])
    with session_factory() as session:
        services.create_org(session, name="existing", org_id="org_0", actor="test")
        report = import_interchange(src, tmp_path / "ev", SECRET, accounts_path=acc,
                                    session=session)
        session.commit()
    assert report.store_orgs_created == 3, report.store_errors
    with session_factory() as session:
        assert services.get_org(session, "org_0").name == "existing"
        lic = services.active_licence(session, "org_1")
        assert lic is not None and lic.name == "evaluation-permitted"
        assert lic.channel == "reseller:acme"
        assert {o.id for o in services.list_orgs(session)} == {"org_0", "org_1", "org_2", "org_3"}
        # the detector's accounts table carries the source's sign-up time, not the import's
        from distillwarden.detect.engine import accounts_from_store

        created = dict(zip(*(accounts_from_store(session).column(c).to_pylist()
                             for c in ("org_id", "created")), strict=True))
    assert created["org_1"] == datetime(2026, 2, 12, 21, tzinfo=UTC)
    assert created["org_0"] is None and created["org_2"] is None  # no sign-up time known
