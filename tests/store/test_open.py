"""Choosing a backend by URL, and what a store does when its database is out of reach."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tactful import ContactProposal, CustomerProfile, Event
from tactful.store import AuditQuery, StoreError, backend, open_store
from tactful.store.postgresql import PostgresStore
from tactful.store.sqlite import SqliteStore

from .conftest import NOW, courtesy

UNREACHABLE = "postgresql://postgres:hunter2@127.0.0.1:1/tactful"


def test_backends_are_chosen_by_scheme() -> None:
    assert backend("sqlite:///x.db") is SqliteStore
    assert backend("postgresql://u@h/db") is PostgresStore
    assert backend("postgres://u@h/db") is PostgresStore
    assert backend("postgresql+psycopg://u@h/db") is PostgresStore


def test_an_unknown_scheme_names_the_url_and_the_supported_ones() -> None:
    with pytest.raises(ValueError) as raised:
        open_store("mysql://root:s3cret@db/tactful")
    message = str(raised.value)
    assert "mysql://root:***@db/tactful" in message and "s3cret" not in message
    assert "sqlite://" in message and "postgresql://" in message
    with pytest.raises(ValueError):
        open_store("tactful.db")


def test_sqlite_defaults_to_tactful_db_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite://")
    try:
        store.put_profile(CustomerProfile("ann"))
    finally:
        store.close()
    assert (tmp_path / "tactful.db").exists()


def test_sqlite_in_memory_serves_threads_of_one_process() -> None:
    store = open_store("sqlite:///:memory:")
    try:
        store.add_events([Event("ann", "opted_out", NOW, event_id="o")], received_at=NOW)
        decision, _ = store.decide(
            ContactProposal("ann", "email", "marketing"), courtesy, now=NOW, hold_ttl_seconds=60
        )
        assert decision.verdict.value == "deny"
        assert len(store.audit(AuditQuery())) == 1
    finally:
        store.close()


def test_an_unreachable_postgresql_is_unhealthy_and_calls_raise_store_error() -> None:
    store = open_store(UNREACHABLE, migrate=False)
    try:
        assert store.healthy() is False
        with pytest.raises(StoreError) as raised:
            store.load_state("ann")
        assert "hunter2" not in str(raised.value)
        with pytest.raises(StoreError):
            store.add_events([Event("ann", "opted_out", NOW)], received_at=NOW)
        with pytest.raises(StoreError):
            store.decide(
                ContactProposal("ann", "email", "marketing"),
                courtesy,
                now=NOW,
                hold_ttl_seconds=60,
            )
        with pytest.raises(StoreError):
            store.check_key("tk_x")
    finally:
        store.close()
    with pytest.raises(StoreError):
        open_store(UNREACHABLE)


def test_sqlite_wal_starts_over_under_steady_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background checkpointer keeps the WAL bounded while writers never pause: once it
    is `RESTART_FRAMES` long, one short locked pass lets the next writer start it over
    (without that, it grows with every page written)."""
    import tactful.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "RESTART_FRAMES", 64)
    path = tmp_path / "wal.db"
    store = open_store(f"sqlite:///{path}", checkpoint_interval=0.01)
    wal = path.with_name(path.name + "-wal")
    try:
        body = {"text": "x" * 2000}
        written = 0
        largest = 0
        # ~8 MB of events in small transactions; the checkpointer gets its turns between
        # them. A WAL that never started over would be at least that long.
        for batch in range(4000):
            store.add_events([Event("c1", "page_viewed", NOW, f"e{batch}", body)], received_at=NOW)
            written += 2000
            largest = max(largest, wal.stat().st_size)
            if batch % 50 == 0:
                time.sleep(0.02)
        # Started over: near journal_size_limit (2 x 64 pages), far below what was written
        # (a WAL that never starts over grows past 2.5 MB here).
        assert largest < 1_500_000 < written, (largest, written)
        assert len(store.load_state("c1").events) == 4000
    finally:
        store.close()
