"""Migrations give exactly the models' schema on SQLite and PostgreSQL, with no drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from distillwarden.store.db import make_engine
from distillwarden.store.migrate import (
    MigrationError,
    current_revision,
    head_revision,
    migrations_dir,
    schema_drift,
    upgrade_database,
)
from distillwarden.store.models import Base


def _tables(url: str) -> dict[str, set[str]]:
    engine = make_engine(url)
    try:
        insp = inspect(engine)
        return {
            t: {c["name"] for c in insp.get_columns(t)}
            for t in insp.get_table_names()
            if t != "alembic_version"
        }
    finally:
        engine.dispose()


def _expected() -> dict[str, set[str]]:
    return {name: {c.name for c in t.columns} for name, t in Base.metadata.tables.items()}


def test_migrations_dir_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert head_revision()


def test_sqlite_and_postgres_match_models(tmp_path: Path, postgres_db_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'm.db'}"
    for url in (sqlite_url, postgres_db_url):
        assert current_revision(url) is None
        assert upgrade_database(url) == head_revision()
        assert _tables(url) == _expected()
        assert schema_drift(url) == []
        assert upgrade_database(url) == head_revision()  # idempotent


def test_adopts_create_all_database_and_refuses_foreign_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adopt.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    assert upgrade_database(url) == head_revision()

    foreign = f"sqlite:///{tmp_path / 'foreign.db'}"
    engine = make_engine(foreign)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE something_else (x INTEGER)")
    engine.dispose()
    with pytest.raises(MigrationError, match="no migration history"):
        upgrade_database(foreign)
