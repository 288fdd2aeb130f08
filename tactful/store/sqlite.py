"""The embedded backend: one SQLite file (`sqlite:///path`, by default ./tactful.db).

SQLite allows one writer at a time. Every write transaction begins with `BEGIN IMMEDIATE`,
so it takes the write lock before it reads: a `decide` reads the customer's ledger and
places its hold with no other writer in between, across threads and processes alike.
Writers also queue on locks that hand over faster than SQLite's busy-wait (which sleeps
1, 2, 5, 10... ms between tries): a lock per process for its threads, and a file lock
(`<database>-lock`, flock) between the processes serving one file, e.g. `tactful serve
--workers 2`. WAL lets readers go on while one writes; `synchronous=NORMAL` keeps every
commit through a crash of the process (`kill -9`), not through a power cut.

Checkpoints (copying the WAL back into the database file, with fsyncs) run in a
background thread every `checkpoint_interval` seconds, not in whichever commit crosses
SQLite's 1000-page mark: that commit, and every writer queued behind it, would wait tens
of milliseconds, several times a second under load. Writers go on during the copy; only
once the WAL is `RESTART_FRAMES` long does the thread hold the write lock for one short
pass, so that the WAL starts over (one pause of ~20 ms per ~65,000 pages written).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql.dml import Insert

from tactful.store.base import StoreError
from tactful.store.cache import DEFAULT_SIZE
from tactful.store.sql import SqlStore, json_dumps
from tactful.store.statements import Statements, sqlite_spelling

DEFAULT_PATH = "tactful.db"

_BEGIN_MODE = "tactful_begin"
#: A WAL this many frames (pages) long is started over after the next checkpoint.
RESTART_FRAMES = 65536


class WriterLock:
    """An exclusive flock on a file beside the database, shared by every process that
    writes to it. Waiting polls (50 µs to 1 ms apart) so that it can give up in time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        pause = 0.00005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _begin(conn: Connection) -> None:
    # The sqlite3 module's own BEGIN is turned off (isolation_level = None): we say which.
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN_MODE, 'DEFERRED')}")


class SqliteStore(SqlStore):
    """The ledger in a SQLite file; `sqlite:///:memory:` keeps it in this process only."""

    schemes: ClassVar[tuple[str, ...]] = ("sqlite", "sqlite+pysqlite")

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 10.0,
        synchronous: str = "NORMAL",
        state_cache: int = DEFAULT_SIZE,
        checkpoint_interval: float | None = 0.5,
    ) -> None:
        sa_url = make_url(url)
        database = sa_url.database or DEFAULT_PATH
        self.memory = database == ":memory:"
        self.busy_timeout = busy_timeout
        self._synchronous = synchronous
        #: None leaves checkpoints to SQLite (in the commit that fills 1000 WAL pages).
        self._checkpoint_interval = None if self.memory else checkpoint_interval
        self._writer: WriterLock | None = None
        self._depth = 0  # nesting of the write lock in the thread holding it
        self._closed = threading.Event()
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
            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = WriterLock(path.with_name(path.name + "-lock"))
            self._path = path
            engine = create_engine(
                sa_url.set(drivername="sqlite+pysqlite", database=str(path)),
                pool_size=8,
                max_overflow=24,
                # The connection used last has the warmest page cache: hand it out again.
                pool_use_lifo=True,
                pool_timeout=busy_timeout,
                connect_args={"check_same_thread": False, "timeout": busy_timeout},
                json_serializer=json_dumps,
            )
        # Writers in this process queue here (for :memory:, everyone does).
        self._lock = threading.RLock()
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", _begin)
        super().__init__(
            url, engine, Statements(sqlite_spelling(json_dumps)), state_cache=state_cache
        )
        self._immediate = engine.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
        self._checkpointer: threading.Thread | None = None
        if self._checkpoint_interval:
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="tactful-sqlite-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _checkpoints(self) -> None:
        """Copy the WAL into the database file now and then, on a connection of its own.

        The bulk is copied while writers go on. Then, once the WAL is long, a second pass
        under the write lock copies the little written meanwhile, so that the next writer
        finds every frame copied and starts the WAL over instead of growing it."""
        assert self._checkpoint_interval
        conn: sqlite3.Connection | None = None
        while not self._closed.wait(self._checkpoint_interval):
            try:
                if conn is None:
                    conn = sqlite3.connect(self._path, timeout=self.busy_timeout)
                # PASSIVE waits for no reader or writer; another process's checkpoint
                # running at the same time makes this one return at once.
                frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
                if frames >= RESTART_FRAMES:
                    with self._queue():
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (sqlite3.Error, StoreError):
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._closed.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=10)
        super().close()
        if self._writer is not None:
            self._writer.close()

    def _on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not self.memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute(f"PRAGMA synchronous = {self._synchronous}")
                if self._checkpoint_interval:
                    cursor.execute("PRAGMA wal_autocheckpoint = 0")
                    # A WAL that grew past twice its usual length shrinks back when it
                    # starts over. Not less: truncating the file on every restart costs the
                    # first commit after it tens of milliseconds (a limit of 1 KB a frame,
                    # below the 4 KB pages, once made that every 3 s: p99 92 ms -> 34 ms).
                    page = cursor.execute("PRAGMA page_size").fetchone()[0]
                    cursor.execute(f"PRAGMA journal_size_limit = {2 * RESTART_FRAMES * page}")
        finally:
            cursor.close()

    def _begin(self, *, write: bool) -> AbstractContextManager[Connection]:
        if not (write or self.memory):
            return self.engine.begin()
        return self._locked(self._immediate if write else self.engine)

    _driver_begin = "BEGIN IMMEDIATE"

    def _write_queue(self) -> AbstractContextManager[object]:
        return self._queue()

    @contextmanager
    def _locked(self, engine: Engine) -> Iterator[Connection]:
        with self._queue(), engine.begin() as conn:
            yield conn

    @contextmanager
    def _queue(self) -> Iterator[None]:
        started = time.monotonic()
        if not self._lock.acquire(timeout=self.busy_timeout):
            raise StoreError(f"{self.url}: timed out waiting for the write lock")
        try:
            if self._writer is not None and self._depth == 0:
                left = self.busy_timeout - (time.monotonic() - started)
                if not self._writer.acquire(max(0.0, left)):
                    raise StoreError(f"{self.url}: timed out waiting for the write lock")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._writer is not None and self._depth == 0:
                    self._writer.release()
        finally:
            self._lock.release()

    def _insert_ignoring(self, table: Table, index_elements: Sequence[str]) -> Insert:
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(index_elements))

    def _insert_or_update(
        self, table: Table, index_elements: Sequence[str], set_: Mapping[str, Any]
    ) -> Insert:
        return sqlite_insert(table).on_conflict_do_update(
            index_elements=list(index_elements), set_=dict(set_)
        )
