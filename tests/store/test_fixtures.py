"""The shared server fixtures really start working servers on loopback."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from distillwarden.config import Settings
from distillwarden.store.db import make_engine


@pytest.mark.postgres
def test_postgres_server_answers(postgres_url: str) -> None:
    assert "@127.0.0.1:" in postgres_url
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1 + 1")).scalar() == 2
        assert conn.execute(text("SHOW listen_addresses")).scalar() == "127.0.0.1"
    engine.dispose()


@pytest.mark.redis
def test_redis_server_answers(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()


def test_tmp_settings_is_migrated(tmp_settings: Settings) -> None:
    assert tmp_settings.admin_token and tmp_settings.secret
    engine = make_engine(tmp_settings.effective_database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM organizations")).scalar() == 0
    engine.dispose()
