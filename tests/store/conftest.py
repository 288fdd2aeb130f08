"""Every store test runs on each backend: SQLite (a file under tmp_path) and PostgreSQL.

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, user `postgres`). Each xdist
worker gets its own database, created at the start of the session and dropped at the
end; each test starts from empty tables. Without the server the PostgreSQL half skips,
or fails when TACTFUL_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from tactful import ContactProposal, Decision, Policy
from tactful.engine import decide
from tactful.state import CustomerState
from tactful.store import open_store
from tactful.store.sql import SqlStore, metadata
from tests.conftest import unavailable

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
#: Tuesday 24 November 2026, 14:00 in Chicago: a plain working afternoon.
NOW = datetime(2026, 11, 24, 14, 0, tzinfo=ZoneInfo("America/Chicago")).astimezone(UTC)
COURTESY = Policy.load("courtesy")


def courtesy(state: CustomerState, proposal: ContactProposal, now: datetime) -> Decision:
    """The engine under the default policy, as a store's decide_fn."""
    return decide(state, proposal, COURTESY, now)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=3,
    )


def pg_url(database: str) -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@pytest.fixture(scope="session")
def pg_server() -> None:
    """The PostgreSQL server is up (else skip, or fail when services are required)."""
    try:
        _admin().close()
    except psycopg.OperationalError as error:
        unavailable(f"PostgreSQL at {PG_HOST}:{PG_PORT} unreachable: {error}")


def _unique_name() -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"tactful_test_{worker}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def new_pg_database(pg_server: None) -> Iterator[str]:
    """A URL to a brand-new, empty database, dropped after the test."""
    name = _unique_name()
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield pg_url(name)
    with _admin() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def pg_database(pg_server: None) -> Iterator[str]:
    """This worker's database for the session, migrated once."""
    name = _unique_name()
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        open_store(pg_url(name)).close()
        yield pg_url(name)
    finally:
        with _admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A migrated, empty database on this backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/tactful.db"
    url = cast(str, request.getfixturevalue("pg_database"))
    data = [t.name for t in metadata.sorted_tables if t.name != "settings"]
    with psycopg.connect(url) as conn:
        conn.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in data)
            )
        )
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = cast(SqlStore, open_store(store_url))
    yield s
    s.close()


@pytest.fixture
def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A database no store has touched yet."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/sub/dir/fresh.db"
    return cast(str, request.getfixturevalue("new_pg_database"))
