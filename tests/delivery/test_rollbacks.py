"""Deferred delivery when the database rolls transactions back (a deadlock, a
serialization failure): every write runs again, and the story ends as it would have,
each release delivered once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from psycopg.errors import DeadlockDetected
from sqlalchemy import exc

from tactful.store.delivery import delivery_store
from tactful.store.sql import SqlStore
from tests.conftest import Clock
from tests.delivery.conftest import Desk
from tests.delivery.test_release import _propose, _snooze


class EveryWriteRolledBackOnce:
    """Each write transaction of `store` is rolled back by the database the first time it
    runs (after its statements, before its commit), as PostgreSQL does to one side of a
    deadlock; the run that follows it goes through."""

    def __init__(self, store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rollbacks = 0
        self._next_fails = True
        real, real_driver = store._transaction, store._driver_transaction

        @contextmanager
        def transaction(*, write: bool) -> Iterator[Any]:
            with real(write=write) as conn:
                yield conn
                if write:
                    self._fail()

        @contextmanager
        def driver_transaction() -> Iterator[Any]:
            with real_driver() as cur:
                yield cur
                self._fail()

        monkeypatch.setattr(store, "_transaction", transaction)
        monkeypatch.setattr(store, "_driver_transaction", driver_transaction)

    def _fail(self) -> None:
        failing, self._next_fails = self._next_fails, not self._next_fails
        if failing:
            self.rollbacks += 1
            raise exc.OperationalError("COMMIT", {}, DeadlockDetected("deadlock detected"))


def test_a_queued_contact_is_released_and_delivered_once_through_rollbacks(
    desk: Desk, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(desk.store, SqlStore)
    faults = EveryWriteRolledBackOnce(desk.store, monkeypatch)
    hook = desk.subscribe("shop")
    _snooze(desk, "ann", 1)
    _snooze(desk, "bob", 1)
    kept = _propose(desk, "ann", campaign="kept", source="shop")
    withdrawn = _propose(desk, "bob", campaign="withdrawn", source="shop")
    assert kept["queued"] and withdrawn["queued"]
    r = desk.client.delete(f"/v1/queue/{withdrawn['queued']['id']}", headers=desk.auth("decide"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"

    clock.advance(days=1, seconds=1)
    desk.work()
    released = desk.receiver.of_kind("queue.released")
    assert [d.body["proposal"]["campaign"] for d in released] == ["kept"]
    assert desk.receiver.duplicates == []
    deliveries = delivery_store(desk.store).list_deliveries(webhook_id=hook)
    assert [(d.state, d.attempts) for d in deliveries] == [("delivered", 1)]
    # The attempt whose record was rolled back left no row: one attempt, one row.
    assert len(delivery_store(desk.store).get_delivery(deliveries[0].id).history) == 1

    # Sent again by hand, then the webhook removed: both go through a rollback too.
    again = desk.post(f"/v1/deliveries/{deliveries[0].id}/redeliver")
    assert again["state"] == "pending"
    desk.work()
    # The same id again: the receiver, which keeps one copy per id, counts it a duplicate.
    assert desk.receiver.duplicates == [deliveries[0].id]
    r = desk.client.delete(f"/v1/webhooks/{hook}", headers=desk.auth("admin"))
    assert r.status_code == 200, r.text
    assert desk.get("/v1/webhooks")["webhooks"] == []
    assert faults.rollbacks >= 10


def test_keys_and_policies_are_written_once_through_a_rollback(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = desk.store
    assert isinstance(store, SqlStore)
    faults = EveryWriteRolledBackOnce(store, monkeypatch)
    before = len(store.list_keys())
    key, secret = store.create_key(["read"], name="after-a-rollback", now=desk.clock())
    assert len(store.list_keys()) == before + 1
    assert store.check_key(secret) is not None
    store.revoke_key(key.key_id)
    assert store.check_key(secret) is None
    saved = store.save_policy("one-a-day", "2", "name: one-a-day", author="t", now=desk.clock())
    assert [p.version for p in store.policy_history()].count(saved.version) == 1
    assert faults.rollbacks == 3
