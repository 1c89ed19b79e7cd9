"""LiteLLM spend-log import: CSV, JSON array and JSONL exports of LiteLLM_SpendLogs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson
import pytest

from distillwarden.events.importers import ImportFormatError
from distillwarden.events.litellm import import_litellm
from distillwarden.events.reader import read_events
from distillwarden.events.record import hash_ip

SECRET = b"s"
HASHED_KEY = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"


def record(i: int, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "request_id": f"chatcmpl-{i}",
        "call_type": "acompletion",
        "api_key": HASHED_KEY,
        "spend": 0.001,
        "total_tokens": 30,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "startTime": f"2024-05-01 10:00:{i:02d}.100000",
        "endTime": f"2024-05-01 10:00:{i:02d}.900000",
        "completionStartTime": f"2024-05-01 10:00:{i:02d}.300000",
        "model": "gpt-4o-2024-08-06",
        "model_group": "gpt-4o",
        "api_base": "https://api.openai.com/v1",
        "user": "",
        "team_id": "team-a",
        "end_user": "customer-7",
        "metadata": {"user_api_key_alias": "prod-key", "user_api_key_team_id": "team-a",
                     "requester_ip_address": "10.1.2.3", "status": "success"},
        "messages": [{"role": "user", "content": f"question {i}"}],
        "response": {"id": "x", "choices": [{"index": 0, "finish_reason": "stop",
                                             "message": {"role": "assistant", "content": "ok"}}],
                     "usage": {"prompt_tokens": 11, "completion_tokens": 21}},
        "requester_ip_address": "10.1.2.3",
        "status": "success",
    }
    rec.update(over)
    return rec


def _csv(path: Path, records: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(records[0]))
        w.writeheader()
        for r in records:
            w.writerow({k: orjson.dumps(v).decode() if isinstance(v, dict | list) else v
                        for k, v in r.items()})
    return path


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_formats_map_the_same(tmp_path: Path, fmt: str) -> None:
    records = [record(i) for i in range(5)]
    path = tmp_path / f"spend.{fmt}"
    if fmt == "csv":
        _csv(path, records)
    elif fmt == "json":
        path.write_bytes(orjson.dumps(records))
    else:
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    report = import_litellm(path, tmp_path / "ev", SECRET)
    assert (report.imported, report.skipped) == (5, 0)
    row = read_events(tmp_path / "ev").sort_by("event_id").to_pylist()[0]
    assert row["event_id"] == "litellm:chatcmpl-0"
    assert row["org_id"] == "team-a"
    assert row["key_id"] == HASHED_KEY and row["key_prefix"] == "prod-key"
    assert row["endpoint"] == "/v1/chat/completions"
    assert row["model"] == "gpt-4o"
    assert row["prompt_text"] == "question 0" and row["response_text"] == "ok"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 21)
    assert row["latency_ms"] == pytest.approx(800.0)
    assert row["ttfb_ms"] == pytest.approx(200.0)
    assert row["ts"].isoformat() == "2024-05-01T10:00:00.100000+00:00"
    assert (row["ip_hash"], row["ip_net_hash"]) == hash_ip(SECRET, "10.1.2.3")
    assert row["source"] == "import:litellm" and row["status"] == 200


def test_org_choice_failures_and_bad_records(tmp_path: Path) -> None:
    records = [
        record(0),
        record(1, team_id="", metadata={"status": "failure",
                                        "error_information": {"error_code": "429",
                                                              "error_class": "RateLimitError"}},
               status="failure"),
        record(2, startTime=""),
        record(3, call_type="aembedding", messages="some text", response=None),
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\nnot json\n")
    report = import_litellm(path, tmp_path / "ev", SECRET)
    assert report.imported == 3
    assert [n for n, _ in report.bad_lines] == [3, 5]
    assert "startTime" in report.bad_lines[0][1]
    rows = {r["event_id"]: r for r in read_events(tmp_path / "ev").to_pylist()}
    failed = rows["litellm:chatcmpl-1"]
    assert failed["org_id"] == HASHED_KEY  # no team/org/user: falls back to the key
    assert failed["status"] == 429 and failed["error_code"] == "RateLimitError"
    emb = rows["litellm:chatcmpl-3"]
    assert emb["endpoint"] == "/v1/embeddings" and emb["prompt_text"] == "some text"
    by_user = import_litellm(path, tmp_path / "ev2", SECRET, org_from="end_user")
    assert by_user.orgs == {"customer-7"}


def test_not_a_spend_log_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ImportFormatError, match="startTime"):
        import_litellm(path, tmp_path / "ev", SECRET)
    with pytest.raises(ValueError, match="org_from"):
        import_litellm(path, tmp_path / "ev", SECRET, org_from="planet")
