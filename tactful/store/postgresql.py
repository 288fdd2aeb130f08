"""The server backend: PostgreSQL through psycopg 3 (`postgresql://user@host/db`).

A pool of connections serves the threads of one process and many processes share the
database. `decide` serializes per customer, not globally: it makes sure the customer row
exists (`INSERT ... ON CONFLICT DO NOTHING`) and locks it (`SELECT ... FOR NO KEY UPDATE`,
which still lets events for that customer be inserted meanwhile) for the rest of its
transaction. Migrations take an advisory lock so that two processes never run them at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import psycopg
from sqlalchemy import Table, create_engine, event, exc, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.sql.dml import Insert

from tactful.model import Contact
from tactful.store.cache import DEFAULT_SIZE
from tactful.store.sql import SqlStore, json_dumps
from tactful.store.statements import (
    CONTACT_COLUMNS,
    DECISION_COLUMNS,
    Cursor,
    Spelling,
    Statements,
    marks,
    postgresql_spelling,
)

#: pg_advisory_xact_lock key for migrations ("tactful" in ASCII, fits a bigint).
MIGRATION_LOCK = 0x7461637466756C


#: A pooled connection idle longer than this is pinged before use.
IDLE_PING_SECONDS = 1.0


def _note_use(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["used"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    used = record.info.get("used")
    if used is None or time.monotonic() - used < IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except psycopg.Error as error:
        # SQLAlchemy drops this connection and checks out another (or a new one).
        raise exc.DisconnectionError(f"stale connection: {error}") from error


class PostgresStatements(Statements):
    """A decision's writes in one statement: on PostgreSQL each statement is a round trip
    and some 100 µs of client and server CPU, the resource that runs out first."""

    def __init__(self, spelling: Spelling) -> None:
        super().__init__(spelling)
        # The hold and the version bump happen only if the decision row went in, i.e.
        # unless its idempotency key was taken (the caller then replays).
        self._record_hold = (
            f"WITH d AS (INSERT INTO decisions ({DECISION_COLUMNS}) VALUES ({marks(17)}) "
            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING customer_id), "
            f"c AS (INSERT INTO contacts ({CONTACT_COLUMNS}) SELECT {marks(15)} FROM d), "
            "u AS (UPDATE customers SET version = version + 1 "
            "WHERE customer_id IN (SELECT customer_id FROM d)) "
            "SELECT count(*) FROM d"
        ).replace("?", spelling.param)

    def record(
        self, cur: Cursor, decision: Sequence[Any], hold: Contact | None, customer_id: str
    ) -> bool:
        if hold is None:
            return self.insert_decision(cur, decision)
        cur.execute(self._record_hold, (*decision, *self.contact_values(hold)))
        row = cur.fetchone()
        return bool(row and row[0])


class PostgresStore(SqlStore):
    """The ledger in PostgreSQL."""

    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres", "postgresql+psycopg")
    remote = True

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_timeout: float = 10.0,
        connect_timeout: int = 5,
        lock_timeout_ms: int = 10_000,
        state_cache: int = DEFAULT_SIZE,
    ) -> None:
        sa_url = make_url(url)
        if sa_url.drivername in ("postgresql", "postgres"):
            sa_url = sa_url.set(drivername="postgresql+psycopg")
        engine = create_engine(
            sa_url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            # A restarted server leaves dead connections in the pool: `_ping_if_idle`
            # tests one before use when it has been idle (a ping on every use would add
            # a round trip to every decision).
            pool_recycle=1800,
            connect_args={
                "connect_timeout": connect_timeout,
                "application_name": "tactful",
                # A decider stuck behind a lock fails (503) rather than waiting forever.
                "options": f"-c lock_timeout={lock_timeout_ms}",
            },
            json_serializer=json_dumps,
        )
        event.listen(engine, "checkout", _ping_if_idle)
        event.listen(engine, "checkin", _note_use)
        super().__init__(
            url,
            engine,
            PostgresStatements(postgresql_spelling(json_dumps)),
            state_cache=state_cache,
        )

    def _lock_migrations(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})

    def _insert_ignoring(self, table: Table, index_elements: Sequence[str]) -> Insert:
        return pg_insert(table).on_conflict_do_nothing(index_elements=list(index_elements))

    def _insert_or_update(
        self, table: Table, index_elements: Sequence[str], set_: Mapping[str, Any]
    ) -> Insert:
        return pg_insert(table).on_conflict_do_update(
            index_elements=list(index_elements), set_=dict(set_)
        )
