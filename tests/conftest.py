"""Shared test fixtures: one conformance suite over every storage backend.

``backend`` is parametrised over SQLite and PostgreSQL and hands each test an empty, migrated database:

* SQLite: migrations run once per session into a template file; each test gets its own copy.
* PostgreSQL: one uniquely named database per session on the server in ``ACCORD_TEST_DATABASE_URL``
  (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``), migrated once, every table emptied
  (sequences restarted, rows seeded by the migrations put back) before each test, dropped at the end.
  No server → the PostgreSQL tests are skipped with the reason, unless ``CI=true``: then they fail.

Nothing here is autouse: a test only gets a database when it asks for one.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from accord.store.db import Database
from accord.store.migrate import upgrade

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Backend:
    """A migrated, empty database for one test."""

    name: str  # "sqlite" | "postgresql"
    url: str


@dataclass
class _PgSession:
    server_url: str
    url: str = ""
    tables: list[str] = field(default_factory=list)  # children before parents (foreign keys)
    sequences: list[str] = field(default_factory=list)
    seed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None
    extra: list[str] = field(default_factory=list)  # more databases to drop at the end


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


def _pg_admin(server_url: str) -> sa.Engine:
    return sa.create_engine(
        server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5}
    )


def _create_pg_database(server_url: str, name: str) -> str:
    admin = _pg_admin(server_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            # a throwaway database: commits need not wait for the disk
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(server_url: str, name: str) -> None:
    admin = _pg_admin(server_url)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every migration applied, copied for each test."""
    path = tmp_path_factory.mktemp("accord-template") / "template.db"
    db = Database(f"sqlite:///{path}")
    try:
        upgrade(db)
    finally:
        db.dispose()  # closing the last connection checkpoints the WAL into the main file
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


@pytest.fixture(scope="session")
def _pg_session() -> Iterator[_PgSession]:
    server_url = os.environ.get("ACCORD_TEST_DATABASE_URL") or DEFAULT_PG_URL
    state = _PgSession(server_url)
    name = f"accord_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        state.url = _create_pg_database(server_url, name)
    except Exception as exc:  # no server, refused, bad credentials: all mean "not available"
        state.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        yield state
        return
    try:
        db = Database(state.url)
        try:
            upgrade(db)
            reflected = sa.MetaData()
            reflected.reflect(db.engine)
            state.tables = [t.name for t in reversed(reflected.sorted_tables) if t.name != "alembic_version"]
            with db.engine.connect() as conn:
                state.sequences = list(
                    conn.exec_driver_sql(
                        "SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'"
                    ).scalars()
                )
                for table in state.tables:
                    rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings().all()
                    if rows:
                        state.seed[table] = [dict(r) for r in rows]
                conn.rollback()
        finally:
            db.dispose()
        yield state
    finally:
        _drop_pg_database(server_url, name)
        for extra in state.extra:
            _drop_pg_database(server_url, extra)


def _pg_reset(state: _PgSession) -> None:
    """Empty every table, restart identities and put back what the migrations seeded (meta.config_version = 1).

    DELETE rather than TRUNCATE: on a handful of small tables it is several times faster.
    """
    engine = sa.create_engine(state.url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for table in state.tables:
                conn.exec_driver_sql(f'DELETE FROM "{table}"')
            for seq in state.sequences:
                conn.exec_driver_sql(f'ALTER SEQUENCE "{seq}" RESTART')
            for table, rows in state.seed.items():
                tbl = sa.table(table, *(sa.column(c) for c in rows[0]))
                conn.execute(sa.insert(tbl), rows)
    finally:
        engine.dispose()


@pytest.fixture
def pg_url(_pg_session: _PgSession) -> str:
    """URL of the session's PostgreSQL database, emptied for this test."""
    if _pg_session.error is not None:
        _unavailable(_pg_session.error)
    _pg_reset(_pg_session)
    return _pg_session.url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh, migrated SQLite file for this test."""
    path = tmp_path / "accord.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Backend:
    """A migrated, empty database on each backend in turn."""
    name: str = request.param
    if name == "sqlite":
        return Backend(name, request.getfixturevalue("sqlite_url"))
    return Backend(name, request.getfixturevalue("pg_url"))


@pytest.fixture
def empty_backend(request: pytest.FixtureRequest, backend: Backend, tmp_path: Path) -> Backend:
    """A database on the same backend that exists but was never migrated (`accord init` not run)."""
    if backend.name == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp_path / 'uninitialised.db'}")
    state: _PgSession = request.getfixturevalue("_pg_session")
    name = f"{sa.engine.make_url(state.url).database}_empty"
    if name not in state.extra:
        state.extra.append(name)
        _create_pg_database(state.server_url, name)
    url = sa.engine.make_url(state.url).set(database=name).render_as_string(False)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:  # whatever an earlier test created there is gone
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()
    return Backend("postgresql", url)
