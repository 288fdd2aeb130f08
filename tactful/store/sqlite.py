"""The embedded backend: one SQLite file (`sqlite:///path`, by default ./tactful.db).

SQLite allows one writer at a time. Every write transaction begins with `BEGIN IMMEDIATE`,
so it takes the write lock before it reads: a `decide` reads the customer's ledger and
places its hold with no other writer in between, across threads and processes alike.
Within a process writers also queue on a lock, which hands over faster than SQLite's
busy-wait. WAL lets readers go on while one writes; `synchronous=NORMAL` keeps every
commit through a crash of the process (`kill -9`), not through a power cut.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.dml import Insert

from tactful.store.base import StoreError
from tactful.store.sql import SqlStore, json_dumps

DEFAULT_PATH = "tactful.db"

_BEGIN_MODE = "tactful_begin"


def _begin(conn: Connection) -> None:
    # The sqlite3 module's own BEGIN is turned off (isolation_level = None): we say which.
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_MODE, 'DEFERRED')}")


class SqliteStore(SqlStore):
    """The ledger in a SQLite file; `sqlite:///:memory:` keeps it in this process only."""

    schemes: ClassVar[tuple[str, ...]] = ("sqlite", "sqlite+pysqlite")

    def __init__(
        self, url: str, *, busy_timeout: float = 10.0, synchronous: str = "NORMAL"
    ) -> None:
        sa_url = make_url(url)
        database = sa_url.database or DEFAULT_PATH
        self.memory = database == ":memory:"
        self.busy_timeout = busy_timeout
        self._synchronous = synchronous
        engine: Engine
        if self.memory:
            # One connection shared by every thread, so every use goes through the lock.
            engine = create_engine(
                "sqlite://",
                poolclass=StaticPool,
                connect_args={"check_same_thread": False},
                json_serializer=json_dumps,
            )
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                sa_url.set(drivername="sqlite+pysqlite", database=str(Path(database).expanduser())),
                pool_size=8,
                max_overflow=24,
                pool_timeout=busy_timeout,
                connect_args={"check_same_thread": False, "timeout": busy_timeout},
                json_serializer=json_dumps,
            )
        # Writers in this process queue here (for :memory:, everyone does).
        self._lock = threading.RLock()
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", _begin)
        super().__init__(url, engine)
        self._immediate = engine.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})

    def _on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not self.memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
        finally:
            cursor.close()

    def _begin(self, *, write: bool) -> AbstractContextManager[Connection]:
        if not (write or self.memory):
            return self.engine.begin()
        return self._locked(self._immediate if write else self.engine)

    @contextmanager
    def _locked(self, engine: Engine) -> Iterator[Connection]:
        with self._queue(), engine.begin() as conn:
            yield conn

    @contextmanager
    def _queue(self) -> Iterator[None]:
        if not self._lock.acquire(timeout=self.busy_timeout):
            raise StoreError(f"{self.url}: timed out waiting for the write lock")
        try:
            yield
        finally:
            self._lock.release()

    def _insert_ignoring(self, table: Table, index_elements: Sequence[str]) -> Insert:
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
