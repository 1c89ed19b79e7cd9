"""Shared test fixtures: settings on a temporary data dir, a migrated SQLite store, and real
PostgreSQL and Redis servers started on loopback for the session.

PostgreSQL refuses to run as root, so when the tests run as root (CI containers) the server
runs as the ``postgres`` (or ``nobody``) user through ``runuser``. The servers are skipped
only when their binaries are absent; ``.ci/run`` makes sure they are present.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from distillwarden.config import Settings, load_settings
from distillwarden.store.db import make_engine, make_sessionmaker
from distillwarden.store.migrate import upgrade_database
from distillwarden.store.pgtemp import PostgresUnavailable, TemporaryPostgres

TEST_SECRET = "test-installation-secret"
TEST_ADMIN_TOKEN = "test-admin-token-0123456789"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store made once per session; tests get copies (much faster than
    running the migrations for every test)."""
    path = tmp_path_factory.mktemp("store-template") / "distillwarden.db"
    upgrade_database(f"sqlite:///{path}")
    assert not path.with_name(path.name + "-wal").exists(), "template not checkpointed"
    return path


def _fresh_sqlite(template: Path, target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def tmp_settings(tmp_path: Path, _sqlite_template: Path) -> Settings:
    """Settings on a fresh data dir with a migrated SQLite store and fixed secrets."""
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        secret=TEST_SECRET,
        admin_token=TEST_ADMIN_TOKEN,
    )
    _fresh_sqlite(_sqlite_template, tmp_path / "data" / "distillwarden.db")
    return settings


@pytest.fixture
def session_factory(tmp_settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory on the ``tmp_settings`` SQLite store."""
    engine = make_engine(tmp_settings.effective_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a real PostgreSQL server on a free 127.0.0.1 port (trust auth, user
    ``postgres``, database ``postgres``), started once per test session."""
    server = TemporaryPostgres()
    try:
        server.start()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _postgres_template(postgres_url: str) -> str:
    """A migrated PostgreSQL database used as the template of per-test databases."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "dw_template"')
    upgrade_database(postgres_url.rsplit("/", 1)[0] + "/dw_template")
    return "dw_template"


@pytest.fixture
def postgres_store_url(postgres_url: str, _postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (dropped afterwards)."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_postgres_template}"')
    yield postgres_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> str:
    """A migrated store URL, once on SQLite and once on PostgreSQL (tests run on both)."""
    if request.param == "sqlite":
        return _fresh_sqlite(_sqlite_template, tmp_path / "store.db")
    return str(request.getfixturevalue("postgres_store_url"))


@pytest.fixture
def store_sessions(store_url: str) -> Iterator[sessionmaker[Session]]:
    """A session factory on ``store_url`` (SQLite and PostgreSQL)."""
    engine = make_engine(store_url)
    yield make_sessionmaker(engine)
    engine.dispose()


# --------------------------------------------------------------------------- Redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real redis-server on a free 127.0.0.1 port, without persistence."""
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not _wait_port(port):
            proc.kill()
            raise RuntimeError("redis-server did not start listening within 20 s")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
