"""The server backend: PostgreSQL through psycopg 3 (`postgresql://user@host/db`).

A pool of connections serves the threads of one process and many processes share the
database. `decide` serializes per customer, not globally: it makes sure the customer row
exists (`INSERT ... ON CONFLICT DO NOTHING`) and locks it (`SELECT ... FOR NO KEY UPDATE`,
which still lets events for that customer be inserted meanwhile) for the rest of its
transaction. Migrations take an advisory lock so that two processes never run them at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import Table, create_engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.dml import Insert

from tactful.store.cache import DEFAULT_SIZE
from tactful.store.sql import SqlStore, json_dumps
from tactful.store.statements import Statements, postgresql_spelling

#: pg_advisory_xact_lock key for migrations ("tactful" in ASCII, fits a bigint).
MIGRATION_LOCK = 0x7461637466756C


class PostgresStore(SqlStore):
    """The ledger in PostgreSQL."""

    schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres", "postgresql+psycopg")

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
            # A restarted server leaves dead connections in the pool: test before use.
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args={
                "connect_timeout": connect_timeout,
                "application_name": "tactful",
                # A decider stuck behind a lock fails (503) rather than waiting forever.
                "options": f"-c lock_timeout={lock_timeout_ms}",
            },
            json_serializer=json_dumps,
        )
        super().__init__(
            url, engine, Statements(postgresql_spelling(json_dumps)), state_cache=state_cache
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
