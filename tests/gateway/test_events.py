"""One event per accepted request, written before the response completes; none lost on
kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from distillwarden.events.reader import read_events
from distillwarden.events.writer import EventWriter
from distillwarden.store import services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database

from .conftest import TEST_SECRET, Harness, free_port
from .fake_upstream import ANSWER, TOOL_CALLS, FakeUpstream, streamed_text


def test_each_accepted_request_is_one_event_with_its_fields(gateway: Harness) -> None:
    acct = gateway.account(channel="reseller:cloudco")
    ok = gateway.chat(
        acct,
        {
            "model": "fake-model",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "what is 2+2?"},
            ],
            "temperature": 0.2,
            "max_tokens": 10,
            "n": 1,
            "logprobs": True,
            "top_logprobs": 3,
        },
        **{"user-agent": "extractor/1.0", "x-forwarded-for": "198.51.100.9"},
    )
    body = {"model": "fake-model", "stream": True, "messages": [{"role": "user", "content": "s"}]}
    with gateway.http.stream(
        "POST", "/v1/chat/completions", json=body, headers=gateway.headers(acct)
    ) as r:
        b"".join(r.iter_bytes())
        stream_id = r.headers["x-request-id"]
    failed = gateway.chat(
        acct, {"model": "garbage-model", "messages": [{"role": "user", "content": "x"}]}
    )
    rejected = gateway.chat(acct, {"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    assert (ok.status_code, failed.status_code, rejected.status_code) == (200, 502, 404)

    events = {e["event_id"]: e for e in gateway.events(acct.org_id)}
    assert set(events) == {ok.headers["x-request-id"], stream_id, failed.headers["x-request-id"]}
    e = events[ok.headers["x-request-id"]]
    assert e["key_id"] == acct.key_id and e["key_prefix"] == acct.key[:10]
    assert e["channel"] == "reseller:cloudco" and e["licence"] == "standard"
    assert e["region"] == "EU"
    assert e["ip_hash"] and e["ip_net_hash"] and e["ua_hash"]
    assert "198.51.100.9" not in str(e)
    assert e["endpoint"] == "/v1/chat/completions" and e["model"] == "fake-model"
    assert orjson.loads(e["request_json"])["messages"][1]["content"] == "what is 2+2?"
    assert e["prompt_text"] == "be brief\nwhat is 2+2?" and e["last_user_text"] == "what is 2+2?"
    assert e["logprobs"] is True and e["top_logprobs"] == 3 and e["max_tokens"] == 10
    assert e["response_text"] == ANSWER and e["finish_reason"] == "stop"
    assert (e["prompt_tokens"], e["completion_tokens"]) == (7, 9)
    assert e["status"] == 200 and e["error_code"] is None and e["source"] == "gateway"
    assert e["upstream"] == "fake" and e["latency_ms"] > 0
    s = events[stream_id]
    assert s["stream"] is True and s["response_text"] == streamed_text()
    assert s["finish_reason"] == "stop" and s["ttfb_ms"] <= s["latency_ms"]
    f = events[failed.headers["x-request-id"]]
    assert (f["status"], f["error_code"]) == (502, "upstream_bad_response")


def test_same_client_hashes_link_and_differ_by_network(gateway: Harness, acct) -> None:
    ids = []
    for ip in ("198.51.100.1", "198.51.100.2", "203.0.113.1"):
        ids.append(gateway.chat(acct, **{"x-forwarded-for": ip}).headers["x-request-id"])
    events = {e["event_id"]: e for e in gateway.events(acct.org_id)}
    a, b, c = (events[i] for i in ids)
    assert a["ip_hash"] != b["ip_hash"] and a["ip_net_hash"] == b["ip_net_hash"]
    assert c["ip_net_hash"] != a["ip_net_hash"]


def _write_config(
    tmp: Path, upstream_port: int, port: int, segment_max_events: int = 50_000
) -> tuple[Path, str]:
    cfg = {
        "data_dir": str(tmp / "data"),
        "secret": TEST_SECRET,
        "port": port,
        "log_level": "warning",
        "upstreams": [{"name": "fake", "base_url": f"http://127.0.0.1:{upstream_port}/v1"}],
        "models": [{"name": "fake-model", "upstream": "fake"}],
        "segment_max_age_s": 3600,
        "segment_max_events": segment_max_events,
    }
    path = tmp / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    url = f"sqlite:///{tmp / 'data' / 'distillwarden.db'}"
    (tmp / "data").mkdir()
    upgrade_database(url)
    engine = make_engine(url)
    with session_scope(make_sessionmaker(engine)) as s:
        services.create_org(s, name="k9", org_id="org_k9", actor="t")
        services.set_licence(s, "org_k9", actor="t", reason="t")
        _, key = services.create_api_key(s, TEST_SECRET.encode(), "org_k9", actor="t")
    engine.dispose()
    return path, key


def _conversion_children(events_dir: Path) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and b"events._convert" in cmd and str(events_dir).encode() in cmd:
            pids.append(int(entry))
    return pids


@pytest.mark.parametrize("segment_max_events", [50_000, 3])
def test_no_acknowledged_event_is_lost_on_sigkill(
    tmp_path: Path, upstream: tuple[FakeUpstream, int], segment_max_events: int
) -> None:
    """Killed with everything still spooled (50,000), or while conversion processes publish
    segments every 3 events (they finish their spool on their own)."""
    port = free_port()
    config, key = _write_config(tmp_path, upstream[1], port, segment_max_events)
    exe = Path(sys.executable).parent / "distillwarden"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "distillwarden.cli"]
    proc = subprocess.Popen(
        [*cmd, "serve", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    acked: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(base + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "gateway did not become ready"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base) as client:
            for i in range(40):
                body = {
                    "model": "fake-model",
                    "stream": i % 4 == 0,
                    "messages": [{"role": "user", "content": f"request {i}"}],
                }
                with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
                    data = b"".join(r.iter_bytes())
                    assert r.status_code == 200
                    if body["stream"]:
                        assert data.endswith(b"data: [DONE]\n\n")
                    acked.append(r.headers["x-request-id"])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    events_dir = tmp_path / "data" / "events"
    if segment_max_events > len(acked):
        assert not list(events_dir.glob("*.parquet"))  # nothing was published before the kill
    else:
        deadline = time.monotonic() + 60
        while _conversion_children(events_dir):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert list(events_dir.glob("[!.]*.parquet"))  # children published segments
    EventWriter(events_dir).start().close()  # recovery converts the dead writer's spool
    table = read_events(events_dir)
    ids = table.column("event_id").to_pylist()
    assert sorted(ids) == sorted(acked)
    prompts = {r["event_id"]: r["last_user_text"] for r in table.to_pylist()}
    assert prompts[acked[7]] == "request 7"


def test_client_leaving_a_stream_stops_it_and_is_recorded(gateway: Harness) -> None:
    import socket as _socket

    acct = gateway.account()
    body = orjson.dumps(
        {"model": "slow-stream", "stream": True, "messages": [{"role": "user", "content": "s"}]}
    )
    with _socket.create_connection(("127.0.0.1", gateway.settings.port), timeout=5) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
            + acct.key.encode()
            + b"\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        got = b""
        while got.count(b"data: ") < 3:
            got += s.recv(65536)
    t0 = time.monotonic()  # the full answer would take over 2 s
    gateway.wait_for(lambda: bool(gateway.events(acct.org_id)), "the event", timeout_s=5)
    assert time.monotonic() - t0 < 1.5
    (event,) = gateway.events(acct.org_id)
    assert (event["status"], event["error_code"]) == (499, "client_disconnected")
    assert event["response_text"].startswith("tok0 ")


def test_gateway_converts_spools_in_a_child_process(gateway: Harness) -> None:
    """The serving process keeps its memory flat: Parquet is written by another pid."""
    acct = gateway.account()
    assert gateway.chat(acct).status_code == 200
    assert len(gateway.events(acct.org_id)) == 1  # flushes the writer
    writer = gateway.app.writer
    assert writer.conversion == "process"
    assert writer.conversions_in_child >= 1
    assert writer.last_conversion_pid not in (None, os.getpid())
    metrics = gateway.http.get("/metrics").text
    cpu = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("distillwarden_event_conversion_cpu_seconds ")
    )
    assert cpu > 0


def test_tool_calls_are_logged_the_same_streamed_or_not(gateway: Harness) -> None:
    acct = gateway.account()
    msgs = [{"role": "user", "content": "weather and time in Paris?"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    plain = gateway.chat(acct, {"model": "tool-model", "messages": msgs, "tools": tools})
    assert plain.status_code == 200
    body = {"model": "tool-model", "messages": msgs, "tools": tools, "stream": True}
    with gateway.http.stream(
        "POST", "/v1/chat/completions", json=body, headers=gateway.headers(acct)
    ) as r:
        raw = b"".join(r.iter_bytes())
        stream_id = r.headers["x-request-id"]
    assert raw.count(b'"tool_calls"') > 4  # passed through as fragments
    events = {e["event_id"]: e for e in gateway.events(acct.org_id)}
    expected = "\n".join(
        f"{c['function']['name']}({c['function']['arguments']})" for c in TOOL_CALLS
    )
    assert expected == 'get_weather({"city": "Paris", "unit": "C"})\nget_time({"tz": "Europe/Paris"})'
    for event_id in (plain.headers["x-request-id"], stream_id):
        e = events[event_id]
        assert e["response_text"] == expected
        assert e["finish_reason"] == "tool_calls" and e["has_tools"] is True
