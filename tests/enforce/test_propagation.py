"""A status change reaches every gateway replica within 1 s, measured with two real
``distillwarden serve`` processes: one SQLite store (embedded default, change-feed polling)
and PostgreSQL + Redis (scale deployment, pub/sub push).

The process-based tests start real servers (~30 s on a busy machine) and are marked slow; an
in-process two-replica variant runs in the default suite.

Set ``DW_PROPAGATION_ROUNDS`` for more rounds and ``DW_PROPAGATION_OUT`` to a JSON file to
record the measured distribution (``bench/enforce/propagation.py`` does both).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from distillwarden.enforce.actions import take_action
from distillwarden.enforce.propagation import (
    measure_propagation,
    publish_plans,
    wait_for_replicas,
)
from distillwarden.store import services
from distillwarden.store.db import make_engine, make_sessionmaker, session_scope
from distillwarden.store.migrate import upgrade_database

from .replicas import GatewayProcess, InProcessGateway, write_config

SECRET = "propagation-test-secret"
ROUNDS = int(os.environ.get("DW_PROPAGATION_ROUNDS", "3"))


def _record(variant: str, result: dict[str, Any]) -> None:
    out = os.environ.get("DW_PROPAGATION_OUT")
    if not out:
        return
    path = Path(out)
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc.setdefault("propagation", {})[variant] = result
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))


def _deployment(tmp_path: Path, database_url: str | None, **extra: Any
                ) -> Iterator[tuple[list[GatewayProcess], Any, str, str]]:
    data = tmp_path / "data"
    data.mkdir()
    settings: dict[str, Any] = {"data_dir": data, "secret": SECRET, "admin_token": "t" * 24,
                                "status_poll_s": 0.5, **extra}
    if database_url:
        settings["database_url"] = database_url
    url = database_url or f"sqlite:///{(data / 'distillwarden.db').resolve()}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as s:
        services.create_org(s, org_id="canary", name="Canary", actor="test")
        _, key = services.create_api_key(s, SECRET.encode(), "canary", actor="test")
        services.create_org(s, org_id="victim", name="Victim", actor="test")
        _, vkey = services.create_api_key(s, SECRET.encode(), "victim", actor="test")
    config = write_config(tmp_path / "config.yaml", **settings)
    replicas = [GatewayProcess(config, tmp_path / f"gw{i}.log") for i in range(2)]
    try:
        for r in replicas:
            r.wait_ready()
        yield replicas, sessions, key, vkey
    finally:
        for r in replicas:
            r.stop()
        engine.dispose()


def _check(replicas: list[GatewayProcess], sessions: Any, key: str, vkey: str, variant: str,
           redis_url: str | None = None) -> None:
    result = measure_propagation(sessions, "canary", key, [r.url for r in replicas],
                                 rounds=ROUNDS, redis_url=redis_url)
    summary = result.to_dict()
    _record(variant, summary)
    assert summary["suspend"]["n"] == 2 * ROUNDS
    assert summary["suspend"]["max"] < 1.0, summary
    assert summary["reinstate"]["max"] < 1.0, summary

    # the enforcement path itself: take_action + publish, then a chat request is refused
    with session_scope(sessions) as s:
        plans = take_action(s, "suspend", org_ids=["victim"], actor="t", reason="test",
                            notify=False)
    publish_plans(redis_url, plans)
    body = {"model": "any", "messages": [{"role": "user", "content": "hi"}]}
    delays = wait_for_replicas([r.url for r in replicas], vkey, True, timeout_s=1.0)
    assert len(delays) == 2
    for r in replicas:
        resp = httpx.post(r.url + "/v1/chat/completions", json=body, trust_env=False,
                          headers={"authorization": f"Bearer {vkey}"})
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "account_suspended"


def test_two_in_process_replicas_see_policy_suspension_within_1s(tmp_path: Path) -> None:
    """Fast variant for the default suite: two gateway apps (own caches and pollers) in this
    process, one SQLite store; the suspension comes from a policy run."""
    from distillwarden.config import load_settings
    from distillwarden.enforce.actions import apply_policy
    from distillwarden.enforce.policy import default_policy_path, load_policy

    settings = load_settings(None, data_dir=tmp_path / "data", secret=SECRET,
                             admin_token="t" * 24, status_poll_s=0.5)
    upgrade_database(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    sessions = make_sessionmaker(engine)
    with session_scope(sessions) as s:
        services.create_org(s, org_id="acme", name="Acme", actor="t")
        _, key = services.create_api_key(s, SECRET.encode(), "acme", actor="t")
    replicas = [InProcessGateway(settings) for _ in range(2)]
    try:
        for r in replicas:
            r.start()
        urls = [r.url for r in replicas]
        wait_for_replicas(urls, key, False, timeout_s=5.0)
        with session_scope(sessions) as s:
            plans = apply_policy(s, [{"org_id": "acme", "risk": 9.0, "threshold_fpr": 0.001}],
                                 load_policy(default_policy_path()), actor="policy:default")
        assert [p.new_status for p in plans] == ["suspended"]
        delays = wait_for_replicas(urls, key, True, timeout_s=1.0)
        assert set(delays) == set(urls) and max(delays.values()) < 1.0
    finally:
        for r in replicas:
            r.stop()
        engine.dispose()


@pytest.mark.slow
def test_two_replicas_sharing_sqlite_see_suspension_within_1s(tmp_path: Path) -> None:
    for replicas, sessions, key, vkey in _deployment(tmp_path, None):
        _check(replicas, sessions, key, vkey, "sqlite_poll")


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_two_replicas_on_postgres_and_redis_see_suspension_within_1s(
    tmp_path: Path, postgres_db_url: str, redis_url: str
) -> None:
    for replicas, sessions, key, vkey in _deployment(tmp_path, postgres_db_url,
                                                     redis_url=redis_url):
        _check(replicas, sessions, key, vkey, "postgres_redis_push", redis_url=redis_url)
