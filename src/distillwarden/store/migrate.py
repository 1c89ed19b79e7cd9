"""Create or upgrade the store's schema with Alembic.

The migration scripts live in the repository's ``migrations/`` folder and, in an installed
wheel, in ``distillwarden/_migrations``; :func:`migrations_dir` finds either. Concurrent
upgrades (several gateway replicas starting at once) serialise: on PostgreSQL through an
advisory lock, on SQLite through a lock file beside the database.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, pool, text

from .db import make_engine
from .errors import StoreError
from .models import Base

__all__ = [
    "MigrationError",
    "alembic_config",
    "current_revision",
    "head_revision",
    "migrations_dir",
    "schema_drift",
    "upgrade_database",
]

_PG_LOCK_KEY = 0x64_77_6D_69_67  # "dwmig"


class MigrationError(StoreError):
    """The schema cannot be brought up to date; the message says why and what to do."""

    code = "migration_error"


def migrations_dir() -> Path:
    """The folder holding ``env.py`` and ``versions/`` (source checkout or installed wheel)."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "_migrations", here.parents[3] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise MigrationError(
        "cannot find the distillwarden migration scripts (looked for distillwarden/_migrations "
        "and the repository's migrations/ folder); reinstall the package"
    )


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision shipped with this version of distillwarden."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise MigrationError("the migration scripts contain no revision; reinstall the package")
    return head


@contextmanager
def _upgrade_lock(url: str, conn: Connection) -> Iterator[None]:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
        return
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if not path or path == ":memory:":
        yield
        return
    lock_path = Path(path + ".migrate.lock")
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _diffs(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


def upgrade_database(url: str, revision: str = "head") -> str:
    """Create the schema in an empty database or upgrade an existing one; returns the
    revision the database is at afterwards. Safe to call at every start-up."""
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn, _upgrade_lock(url, conn):
            tables = set(inspect(conn).get_table_names())
            if tables and "alembic_version" not in tables:
                # Created by metadata.create_all (e.g. an older test helper): adopt it only
                # if it is exactly the current schema.
                if _diffs(conn):
                    raise MigrationError(
                        f"the database at {engine.url!r} has tables but no migration history "
                        "and differs from the current schema; back it up and point "
                        "database_url at an empty database"
                    )
                command.stamp(alembic_config(url, conn), "head")
            else:
                command.upgrade(alembic_config(url, conn), revision)
            conn.commit()
            rev = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return rev or ""


def current_revision(url: str) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def schema_drift(url: str) -> list[Any]:
    """Differences between the database and the models (empty when in sync), as Alembic's
    autogenerate reports them; what ``alembic check`` would complain about."""
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return _diffs(conn)
    finally:
        engine.dispose()
