"""Story S20: two senders ask at the same instant for the last slot under a cap; exactly
one gets it. Threads sharing one store, and processes each with their own, on every backend.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

from tactful import Contact, ContactProposal, ContactStatus, CustomerProfile, Verdict
from tactful.store import open_store
from tactful.store.sql import SqlStore

from .conftest import NOW, courtesy

THREADS = 16
PROCESSES = 6


def one_slot_left(store: SqlStore, customer: str = "ann") -> None:
    """Courtesy allows 3 marketing emails per 7 days, 20 h apart: two were sent."""
    store.put_profile(CustomerProfile(customer, timezone="America/Chicago", country="US"))
    store.add_contacts(
        Contact(
            f"{customer}-past-{days}", customer, "email", "marketing", NOW - timedelta(days=days)
        )
        for days in (5, 2)
    )


def proposal(customer: str = "ann") -> ContactProposal:
    return ContactProposal(customer, "email", "marketing", campaign="weekly")


def test_threads_sharing_a_store_take_the_last_slot_once(store: SqlStore) -> None:
    one_slot_left(store)
    start = threading.Barrier(THREADS)

    def ask(_: int) -> Verdict:
        start.wait()
        decision, _replayed = store.decide(proposal(), courtesy, now=NOW, hold_ttl_seconds=900)
        return decision.verdict

    with ThreadPoolExecutor(THREADS) as pool:
        verdicts = list(pool.map(ask, range(THREADS)))
    assert verdicts.count(Verdict.ALLOW) == 1
    assert verdicts.count(Verdict.DEFER) == THREADS - 1
    held = [c for c in store.load_state("ann").contacts if c.status is ContactStatus.HELD]
    assert len(held) == 1


def test_threads_for_different_customers_do_not_block_each_other(store: SqlStore) -> None:
    customers = [f"c{i}" for i in range(8)]
    for c in customers:
        one_slot_left(store, c)
    start = threading.Barrier(len(customers) * 2)

    def ask(customer: str) -> tuple[str, Verdict]:
        start.wait()
        decision, _ = store.decide(proposal(customer), courtesy, now=NOW, hold_ttl_seconds=900)
        return customer, decision.verdict

    with ThreadPoolExecutor(len(customers) * 2) as pool:
        results = list(pool.map(ask, customers * 2))
    allowed = sorted(c for c, v in results if v is Verdict.ALLOW)
    assert allowed == customers  # each customer's last slot went exactly once


def _decide_in_process(url: str, start: Any, results: Any) -> None:
    store = open_store(url, migrate=False)
    try:
        start.wait(timeout=60)
        decision, _ = store.decide(proposal(), courtesy, now=NOW, hold_ttl_seconds=900)
        results.put(decision.verdict.value)
    except BaseException as error:  # the parent reports it
        results.put(f"error: {error!r}")
    finally:
        store.close()


def test_processes_each_with_their_own_store_take_the_last_slot_once(
    store: SqlStore, store_url: str
) -> None:
    one_slot_left(store)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_decide_in_process, args=(store_url, start, results))
        for _ in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    verdicts = [cast(str, results.get(timeout=120)) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert sorted(verdicts) == ["allow"] + ["defer"] * (PROCESSES - 1)
