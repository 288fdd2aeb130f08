"""Story S20: two senders ask at the same instant for the last slot under a cap; exactly
one gets it. Threads sharing one store, and processes each with their own, on every backend.

Then every kind of writer at once (decisions, events, profiles, merges, erasures) over
customers sharing addresses: no deadlock, no "vanished" customer, no acknowledged write
lost (see the lock order in `tactful.store.sql`); and, on PostgreSQL, a decision queued
behind a merge or an erasure in a known order.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
import pytest
from psycopg.errors import DeadlockDetected
from sqlalchemy import exc, func, select

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    CustomerProfile,
    Decision,
    Event,
    Verdict,
)
from tactful.service.identity import address_check
from tactful.service.runtime import ERASED
from tactful.state import CustomerState
from tactful.store import AuditQuery, NotFound, StoreError, identity, open_store
from tactful.store.sql import (
    WRITE_ATTEMPTS,
    SqlStore,
    contacts,
    customers,
    decisions,
    erased_alias,
    events,
    keyed_hash,
    normalize_address,
)

from .conftest import COURTESY, NOW, courtesy

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


# -- writers of every kind at once over customers that share addresses --------------------

STRESS_THREADS = 8
STRESS_OPS = 120
#: Two families of three records; each family shares one phone (and its emails).
FAMILIES = {f: tuple(f"f{f}-{m}" for m in "abc") for f in range(2)}
FAMILY_OF = {cid: f for f, ids in FAMILIES.items() for cid in ids}
#: (upper bound of a random draw, operation): the mix each thread runs.
OPS = (
    (0.40, "decide"),
    (0.60, "add_events"),
    (0.75, "put_profile"),
    (0.85, "merge"),
    (0.93, "cold"),
    (1.01, "erase"),
)


def family_phone(f: int) -> str:
    return f"+1312555{100 + f:04d}"


def family_profile(customer_id: str) -> CustomerProfile:
    f = FAMILY_OF[customer_id]
    return CustomerProfile(
        customer_id,
        timezone="America/Chicago",
        country="US",
        phones=(family_phone(f),),
        emails=tuple(f"{m}.f{f}@example.com" for m in FAMILIES[f]),
    )


def erased(state: CustomerState, proposal: ContactProposal, now: datetime) -> Decision:
    """The service's answer for an erased id (`Runtime.decide`)."""
    return Decision(Verdict.DENY, (ERASED,), COURTESY.ref, now)


def stress_decide(
    store: SqlStore, customer_id: str, channel: str = "email", hold: bool = True
) -> Decision:
    decision, _ = store.decide(
        ContactProposal(customer_id, channel, "marketing"),
        courtesy,
        now=NOW,
        hold_ttl_seconds=900,
        hold=hold,
        if_suppressed=erased,
        address_check=address_check,
    )
    return decision


@dataclass
class Acknowledged:
    """What the store acknowledged while the threads ran (the end must still show it)."""

    opted_out: set[str] = field(default_factory=set)
    erased: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _stress_worker(
    store: SqlStore, seed: int, start: threading.Barrier, seen: Acknowledged
) -> None:
    rng = random.Random(seed)
    ids = sorted(FAMILY_OF)
    secret = store.secret()
    start.wait()
    for n in range(STRESS_OPS):
        cid = rng.choice(ids)
        f = FAMILY_OF[cid]
        roll = rng.random()
        op = next(name for limit, name in OPS if roll < limit)
        try:
            if op == "decide":
                stress_decide(store, cid, rng.choice(("email", "email", "sms")))
            elif op == "add_events":
                kind = "opted_out" if rng.random() < 0.2 else "page_viewed"
                at = NOW - timedelta(minutes=rng.randint(1, 600))
                store.add_events([Event(cid, kind, at, f"{seed}-{n}")], received_at=NOW)
                if kind == "opted_out":
                    with seen.lock:
                        seen.opted_out.add(cid)
            elif op == "put_profile":
                store.put_profile(family_profile(cid))
            elif op == "merge":
                store.merge(
                    [cid, rng.choice(FAMILIES[f])], at=NOW, via="api", reference=None, now=NOW
                )
            elif op == "cold":
                # Cold outreach to the family's phone: a record known only by the number,
                # which the next family profile written merges (put_profile -> merge).
                normal = normalize_address("phone", family_phone(f))
                addr = identity.address_customer_id("phone", keyed_hash(secret, "phone", normal))
                store.put_profile(identity.pseudo_profile(addr, "phone", normal))
            else:
                store.erase(cid, now=NOW)
                with seen.lock:
                    seen.erased.add(cid)
        except Exception as error:  # reported by the test, with every other
            with seen.lock:
                seen.errors.append(f"{op} {cid} (thread {seed}, op {n}): {error!r}")


def test_writers_of_every_kind_at_once_neither_deadlock_nor_lose_a_write(
    store: SqlStore,
) -> None:
    """Decisions, events (with opt-outs), profiles (which merge records known only by an
    address), merges and erasures for a few customers sharing phones, from many threads:
    nothing fails, and the end state keeps every promise the store acknowledged."""
    for cid in FAMILY_OF:
        store.put_profile(family_profile(cid))
    seen = Acknowledged()
    start = threading.Barrier(STRESS_THREADS)
    workers = [
        threading.Thread(target=_stress_worker, args=(store, seed, start, seen))
        for seed in range(STRESS_THREADS)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert seen.errors == []

    with store.engine.connect() as conn:
        canonical = {
            r.customer_id
            for r in conn.execute(select(customers).where(customers.c.canonical_id.is_(None)))
        }
        # Every ledger row and every decision belongs to a customer that exists and is
        # nobody's alias (a merge moved it, an erasure took it along).
        for table in (decisions, contacts, events):
            owners = set(conn.execute(select(table.c.customer_id).distinct()).scalars())
            assert owners <= canonical, table.name
        # Every hold belongs with its decision, on the same customer.
        holds = conn.execute(
            select(
                contacts.c.contact_id, contacts.c.customer_id, decisions.c.customer_id
            ).select_from(
                contacts.outerjoin(decisions, decisions.c.decision_id == contacts.c.contact_id)
            )
        ).all()
        assert [h for h in holds if h[1] != h[2]] == []
        # The cap: one marketing email per 20 hours, so at most one per record merged in.
        for cid in canonical:
            group = len(store.identity(cid).aliases) + 1
            placed = conn.execute(
                select(func.count())
                .select_from(contacts)
                .where(
                    contacts.c.customer_id == cid,
                    contacts.c.channel == "email",
                    contacts.c.purpose == "marketing",
                )
            ).scalar_one()
            assert placed <= group, cid

    # Every acknowledged opt-out still stops marketing to its id (its own ledger, or the
    # erasure's suppression of the id) ...
    for cid in sorted(seen.opted_out):
        assert stress_decide(store, cid, hold=False).verdict is Verdict.DENY, cid
    # ... and the family's shared phone, which every profile in the family holds, is on
    # the suppression list for everything: by the opt-out itself, or by an erasure before
    # it (the first erasure in a family takes a profile holding the phone).
    for f in sorted({FAMILY_OF[c] for c in seen.opted_out | seen.erased}):
        hits = store.address_hits("nobody", to=family_phone(f))
        assert any(h.channel is None and h.purpose is None for h in hits), f
    for cid in sorted(seen.erased):
        assert store.suppressed(cid)


# -- a decision queued behind a merge or an erasure (PostgreSQL: the order is the lock queue's)

ONLY_POSTGRESQL = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)]
)


def waiting_for_locks(url: str, count: int) -> None:
    """Return once `count` sessions of this database wait for a lock (fail after 60 s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(6000):
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row is not None and row[0] >= count:
                return
            time.sleep(0.01)
    raise AssertionError(f"{count} sessions never waited for a lock")


@contextmanager
def row_locked(url: str, customer_id: str) -> Iterator[None]:
    """Hold the customer's row as a decider does, until the block ends."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "SELECT 1 FROM customers WHERE customer_id = %s FOR NO KEY UPDATE", (customer_id,)
        )
        yield
        conn.rollback()


@ONLY_POSTGRESQL
def test_a_decision_queued_behind_a_merge_follows_it(store: SqlStore, store_url: str) -> None:
    for cid in ("m-a", "m-b", "m-z"):
        store.put_profile(CustomerProfile(cid, timezone="America/Chicago", country="US"))
    with ThreadPoolExecutor(2) as pool, row_locked(store_url, "m-z"):
        # The merge locks m-a and m-b, then waits for m-z; the decider waits for m-b.
        merged = pool.submit(store.merge, ["m-a", "m-b", "m-z"], at=NOW, via="api", now=NOW)
        waiting_for_locks(store_url, 1)
        decided = pool.submit(stress_decide, store, "m-b")
        waiting_for_locks(store_url, 2)
    assert merged.result().canonical_id == "m-a"
    decision = decided.result()
    assert decision.verdict is Verdict.ALLOW
    record = store.get_decision(str(decision.decision_id))
    assert record.customer_id == "m-a"  # decided and held as the canonical customer's
    assert record.proposal["customer_id"] == "m-b"
    assert [c.contact_id for c in store.load_state("m-a").contacts] == [decision.decision_id]


@ONLY_POSTGRESQL
def test_a_decision_queued_behind_an_erasure_finds_the_id_erased(
    store: SqlStore, store_url: str
) -> None:
    store.put_profile(family_profile("f0-a"))
    with ThreadPoolExecutor(2) as pool, row_locked(store_url, "f0-a"):
        erasing = pool.submit(store.erase, "f0-a", now=NOW)
        waiting_for_locks(store_url, 1)
        decided = pool.submit(stress_decide, store, "f0-a")
        waiting_for_locks(store_url, 2)
    assert erasing.result() is True
    decision = decided.result()
    assert decision.verdict is Verdict.DENY
    assert [r.rule for r in decision.reasons] == [ERASED.rule]


@ONLY_POSTGRESQL
def test_a_decision_ahead_of_an_erasure_is_erased_with_the_customer(
    store: SqlStore, store_url: str
) -> None:
    store.put_profile(family_profile("f0-a"))
    with ThreadPoolExecutor(2) as pool, row_locked(store_url, "f0-a"):
        decided = pool.submit(stress_decide, store, "f0-a")
        waiting_for_locks(store_url, 1)
        erasing = pool.submit(store.erase, "f0-a", now=NOW)
        waiting_for_locks(store_url, 2)
    decision = decided.result()
    assert decision.verdict is Verdict.ALLOW
    assert erasing.result() is True
    with pytest.raises(NotFound):
        store.get_decision(str(decision.decision_id))
    assert store.load_state("f0-a").contacts == []


@ONLY_POSTGRESQL
def test_an_erasure_queued_behind_a_merge_erases_every_id_it_joined(
    store: SqlStore, store_url: str
) -> None:
    for cid in ("f0-a", "f0-b"):
        store.put_profile(family_profile(cid))
    store.add_events([Event("f0-b", "page_viewed", NOW, "seen")], received_at=NOW)
    with ThreadPoolExecutor(2) as pool, row_locked(store_url, "f0-a"):
        merged = pool.submit(store.merge, ["f0-a", "f0-b"], at=NOW, via="api", now=NOW)
        waiting_for_locks(store_url, 1)
        erasing = pool.submit(store.erase, "f0-a", now=NOW)
        waiting_for_locks(store_url, 2)
    assert merged.result().merged == ("f0-b",)
    assert erasing.result() is True
    # f0-b was joined to f0-a before the erasure ran: it is erased too, not left pointing
    # at a customer that is gone.
    assert store.suppressed("f0-b")
    assert store.load_state("f0-b").events == []
    decision = stress_decide(store, "f0-b")
    assert [r.rule for r in decision.reasons] == [ERASED.rule]
    # The decision about the erased id is logged under its keyed hash, not under the id.
    alias = erased_alias(keyed_hash(store.secret(), "id", "f0-b"))
    with store.engine.connect() as conn:
        assert conn.execute(select(customers.c.customer_id)).scalars().all() == [alias]


# -- what the lock order cannot rule out: a transaction rolled back for a deadlock --------


def deadlock() -> exc.OperationalError:
    """What the database raises in the transaction it rolls back to break a deadlock."""
    return exc.OperationalError("UPDATE ...", {}, DeadlockDetected("deadlock detected"))


def test_a_decision_rolled_back_for_a_deadlock_runs_again(store: SqlStore) -> None:
    store.put_profile(family_profile("f0-a"))
    attempts: list[Decision] = []

    def also(cur: Any, decision: Decision) -> None:
        attempts.append(decision)
        if len(attempts) == 1:
            raise deadlock()

    decision, replayed = store.decide(
        ContactProposal("f0-a", "email", "marketing"),
        courtesy,
        now=NOW,
        hold_ttl_seconds=900,
        also=also,
    )
    assert (decision.verdict, replayed, len(attempts)) == (Verdict.ALLOW, False, 2)
    # The first attempt's decision and hold were rolled back: one of each is left.
    assert [r.decision_id for r in store.audit(AuditQuery())] == [decision.decision_id]
    assert [c.contact_id for c in store.load_state("f0-a").contacts] == [decision.decision_id]


def test_a_decision_that_keeps_deadlocking_gives_up_unavailable(store: SqlStore) -> None:
    def also(cur: Any, decision: Decision) -> None:
        raise deadlock()

    with pytest.raises(StoreError, match=f"gave up after {WRITE_ATTEMPTS} attempts"):
        store.decide(
            ContactProposal("f0-a", "email", "marketing"),
            courtesy,
            now=NOW,
            hold_ttl_seconds=900,
            also=also,
        )
    assert store.audit(AuditQuery()) == []
    assert store.load_state("f0-a").contacts == []
