"""Real `tactful worker` processes against a real receiver: killed mid-delivery, a receiver
failing twice, two workers competing. Every release reaches the receiver (which keeps one
copy per delivery id) exactly once, and none is lost."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import cast

from tactful.model import ContactProposal, Event
from tactful.service.config import Settings
from tactful.service.routes.queue import decide_or_queue
from tactful.service.runtime import Runtime
from tactful.service.schemas import DecisionOut
from tactful.service.testing import TACTFUL
from tactful.store import open_store
from tactful.store.base import AuditQuery
from tactful.store.delivery import delivery_store
from tactful.store.sql import SqlStore
from tests.delivery.receiver import Receiver

ENV = {
    "TACTFUL_WORKER_POLL_SECONDS": "0.1",
    "TACTFUL_WORKER_LEASE_SECONDS": "3",
    "TACTFUL_WORKER_RETRY_BASE_SECONDS": "0.3",
    "TACTFUL_WORKER_HTTP_TIMEOUT": "2",
    "TACTFUL_WORKER_BATCH": "5",
}


def _queue(url: str, customers: int, hook_url: str, secret: str) -> SqlStore:
    """`customers` marketing emails queued behind a snooze that ended half an hour ago."""
    store = cast(SqlStore, open_store(url))
    past = datetime.now(UTC) - timedelta(hours=1)
    runtime = Runtime(Settings(database_url=url), store, clock=lambda: past)
    ds = delivery_store(store)
    ds.add_webhook(hook_url, source="shop", secret=secret, now=past)
    ids = [f"c{i:03d}" for i in range(customers)]
    store.add_events(
        [Event(c, "snooze_requested", past, f"s-{c}", {"duration": "30m"}) for c in ids],
        received_at=past,
    )
    for c in ids:
        out = decide_or_queue(
            runtime,
            ContactProposal(c, "email", "marketing", source="shop"),
            None,
            lambda r, p, d, replayed: DecisionOut.of(d, replayed=replayed),
        )
        assert out.queued is not None
    return store


@contextmanager
def _worker(url: str, name: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [*TACTFUL, "worker", "--database-url", url, "--name", name],
        env={**os.environ, **ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def _all_delivered(store: SqlStore, n: int) -> bool:
    ds = delivery_store(store)
    found = ds.list_deliveries(limit=1000)
    return len(found) == n and all(d.state == "delivered" for d in found)


def _check_exactly_once(store: SqlStore, receiver: Receiver, n: int) -> None:
    ds = delivery_store(store)
    items = ds.list_queue(limit=1000)
    assert len(items) == n and {i.status for i in items} == {"released"}
    deliveries = ds.list_deliveries(limit=1000)
    assert len(deliveries) == n
    got = receiver.of_kind("queue.released")
    assert sorted(r.delivery_id for r in got) == sorted(d.id for d in deliveries)
    assert sorted(r.body["queued_id"] for r in got) == sorted(i.id for i in items)
    # One hold per customer in the audit log: no release was decided twice.
    for item in items:
        allows = store.audit(AuditQuery(customer_id=item.customer_id, verdict="allow"))
        assert [a.decision_id for a in allows] == [item.decision_id]
    assert receiver.rejected == []


def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_nothing(store_url: str) -> None:
    hold = threading.Event()
    with Receiver(hold=hold) as receiver:
        store = _queue(store_url, 6, receiver.url, receiver.secret)
        try:
            with _worker(store_url, "doomed") as doomed:
                assert receiver.arrived.wait(60), "no delivery arrived"
                doomed.kill()  # SIGKILL while the receiver holds the first delivery
                doomed.wait(10)
            hold.set()
            with _worker(store_url, "heir"):
                _until(lambda: _all_delivered(store, 6))
            _check_exactly_once(store, receiver, 6)
            # The delivery in flight at the kill arrived, then came again under its id.
            assert len(receiver.duplicates) >= 1
            assert set(receiver.duplicates) <= set(receiver.deliveries)
        finally:
            store.close()


def test_a_receiver_failing_twice_gets_the_delivery_on_the_third_try(store_url: str) -> None:
    with Receiver(statuses=[500, 500]) as receiver:
        store = _queue(store_url, 1, receiver.url, receiver.secret)
        try:
            with _worker(store_url, "patient"):
                _until(lambda: _all_delivered(store, 1))
            _check_exactly_once(store, receiver, 1)
            (delivery,) = delivery_store(store).list_deliveries()
            assert [a.status for a in delivery.history] == [500, 500, 200]
            assert delivery.attempts == 3
            gaps = [
                (b.at - a.at).total_seconds()
                for a, b in zip(delivery.history, delivery.history[1:], strict=False)
            ]
            assert gaps[1] >= gaps[0] >= 0.3  # backed off, doubling
        finally:
            store.close()


def test_two_workers_competing_release_and_deliver_each_item_once(store_url: str) -> None:
    with Receiver() as receiver:
        store = _queue(store_url, 30, receiver.url, receiver.secret)
        try:
            with _worker(store_url, "one"), _worker(store_url, "two"):
                _until(lambda: _all_delivered(store, 30))
            _check_exactly_once(store, receiver, 30)
            assert receiver.duplicates == []
            workers = {
                a.worker
                for d in delivery_store(store).list_deliveries(limit=100)
                for a in d.history
            }
            assert workers <= {"one", "two"}
        finally:
            store.close()
