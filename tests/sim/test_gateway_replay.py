"""End to end: simulated traffic through a real gateway (admin API + hot path) on loopback."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from distillwarden.config import load_settings
from distillwarden.events.reader import read_events
from distillwarden.gateway.app import create_app
from distillwarden.sim.http import GatewayRunError, send_to_gateway
from distillwarden.sim.scenario import parse_scenario
from distillwarden.store.migrate import upgrade_database

ADMIN_TOKEN = "sim-test-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal OpenAI-compatible upstream answering every chat request."""
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            done = msg["type"] == "lifespan.shutdown"
            await send({"type": msg["type"] + ".complete"})
            if done:
                return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    req = orjson.loads(body)
    payload = orjson.dumps({
        "id": "chatcmpl-sim", "object": "chat.completion", "model": req.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok, answered"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


class _Server:
    def __init__(self, app: Any, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


SCENARIO = """
name: replay
seed: 4
days: 1
models: [sim-model]
benign:
  - {persona: chat_app, count: 3, volume_per_day: {median: 6, sigma: 0.1}}
attackers:
  - {strategy: rival_evaluator, count: 1, volume_per_day: {median: 10, sigma: 0.1}}
hydras:
  - {strategy: harvester, size: 2, reseller: apexgate, volume_per_day: {median: 4, sigma: 0.1}}
"""


@pytest.mark.slow
def test_replay_through_gateway_logs_labelled_events(tmp_path: Path) -> None:
    up_port, gw_port = _free_port(), _free_port()
    settings = load_settings(
        None, data_dir=tmp_path / "gw", secret="sim-secret", admin_token=ADMIN_TOKEN,
        port=gw_port, trust_forwarded_for=True,
        upstreams=[{"name": "up", "base_url": f"http://127.0.0.1:{up_port}/v1"}],
        models=[{"name": "sim-model", "upstream": "up"}],
    )
    upgrade_database(settings.effective_database_url)
    scenario = parse_scenario(SCENARIO)
    with _Server(_upstream, up_port), _Server(create_app(settings), gw_port):
        base = f"http://127.0.0.1:{gw_port}"
        with pytest.raises(GatewayRunError, match="admin-token"):
            send_to_gateway(scenario, base, "wrong-token", rate=0, max_events=3)
        run = send_to_gateway(scenario, base, ADMIN_TOKEN, rate=0, max_events=25,
                              concurrency=4, forward_hints=True, out=tmp_path / "labels")
        assert run.sent == 25 and run.orgs == 6
        assert run.status == {200: 25}
    # the gateway's writer publishes its spool on shutdown
    events = read_events(settings.effective_events_dir).to_pylist()
    assert len(events) == 25
    labels = [orjson.loads(line) for line in (tmp_path / "labels" / "labels.jsonl").open("rb")]
    assert {e["org_id"] for e in events} <= {rec["org"] for rec in labels}
    hydra = {rec["org"] for rec in labels if rec["cluster"]}
    assert all(e["channel"] == "reseller:apexgate" for e in events if e["org_id"] in hydra)
    assert all(e["ip_hash"] for e in events)
    # the store knows each account's simulated sign-up time (linkage weighs sign-up bursts),
    # the same as the dataset's accounts table: the hydra's members signed up within days
    from datetime import timedelta

    from distillwarden.detect.engine import accounts_from_store
    from distillwarden.sim.accounts import created_iso, plan_accounts
    from distillwarden.store.db import make_engine, make_sessionmaker

    engine = make_engine(settings.effective_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            table = accounts_from_store(session)
    finally:
        engine.dispose()
    created = dict(zip(table.column("org_id").to_pylist(), table.column("created").to_pylist(),
                       strict=True))
    plans = {p.org_id: p for p in plan_accounts(scenario)}
    assert {o: created[o].isoformat() for o in plans} == {
        o: created_iso(p) for o, p in plans.items()}
    signups = sorted(created[o] for o in hydra)
    assert signups[-1] - signups[0] <= timedelta(days=3)
