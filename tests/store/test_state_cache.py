"""The folded states a store keeps between decisions are never stale: every write to a
customer's ledger, through this store, another store object or another process, bumps the
customer's version, and a decision reuses a cached state only at the version it read.
Also: verified API keys are cached briefly, and a revoke through the store drops them."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy import select

import tactful.store.sql as sql_module
from tactful import Contact, ContactProposal, CustomerProfile, Event, Verdict
from tactful.store import open_store
from tactful.store.sql import SqlStore, customers

from .conftest import NOW, courtesy

HOLD = 15 * 60.0


def email(customer: str = "ann", **kw: Any) -> ContactProposal:
    return ContactProposal(customer, "email", "marketing", **kw)


def version(store: SqlStore, customer: str = "ann") -> int | None:
    with store.engine.connect() as conn:
        found = conn.execute(
            select(customers.c.version).where(customers.c.customer_id == customer)
        ).scalar()
    return None if found is None else int(found)


def opt_out(store: SqlStore, customer: str = "ann", event_id: str = "out") -> None:
    store.add_events(
        [Event(customer, "opted_out", NOW - timedelta(minutes=5), event_id=event_id)],
        received_at=NOW,
    )


def test_a_decision_reuses_the_state_only_while_the_version_holds(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("ann", timezone="America/Chicago", country="US"))
    first, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert first.verdict is Verdict.ALLOW
    # The state with the new hold is cached at the version the hold wrote.
    assert len(store.states) == 1
    assert store.states.get("ann", cast(int, version(store))) is not None
    hits = store.states.hits
    second, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert store.states.hits == hits + 1
    assert second.verdict is Verdict.DEFER  # the cached state counted the first hold


def test_every_write_to_a_ledger_bumps_the_version(store: SqlStore) -> None:
    seen = []

    def bumped() -> None:
        now = version(store)
        assert now is not None and now not in seen
        seen.append(now)

    store.put_profile(CustomerProfile("ann", timezone="America/Chicago", country="US"))
    bumped()
    store.add_events([Event("ann", "page_viewed", NOW - timedelta(days=2), "p")], received_at=NOW)
    bumped()
    store.add_contacts([Contact("old", "ann", "sms", "service", NOW - timedelta(days=3))])
    bumped()
    decision, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    bumped()
    store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD, hold=False)
    assert version(store) == seen[-1]  # a dry run writes no hold
    assert decision.decision_id is not None
    store.mark_sent(decision.decision_id, at=None, now=NOW)
    bumped()
    store.record_outcome(decision.decision_id, "delivered", now=NOW)
    bumped()
    held, _ = store.decide(
        ContactProposal("ann", "push", "service"), courtesy, now=NOW, hold_ttl_seconds=HOLD
    )
    bumped()
    assert held.decision_id is not None
    store.cancel(held.decision_id, now=NOW)
    bumped()


def test_an_event_through_another_store_object_is_seen_at_once(store_url: str) -> None:
    deciding = cast(SqlStore, open_store(store_url))
    ingesting = cast(SqlStore, open_store(store_url))
    try:
        allowed, _ = deciding.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
        assert allowed.verdict is Verdict.ALLOW
        opt_out(ingesting)
        denied, _ = deciding.decide(
            ContactProposal("ann", "push", "marketing"), courtesy, now=NOW, hold_ttl_seconds=HOLD
        )
        assert denied.verdict is Verdict.DENY
        assert deciding.load_state("ann").derived.optouts
    finally:
        deciding.close()
        ingesting.close()


def _opt_out_in_process(url: str) -> None:
    store = cast(SqlStore, open_store(url, migrate=False))
    try:
        opt_out(store, event_id="from-another-process")
    finally:
        store.close()


def test_an_event_from_another_process_is_seen_at_once(store: SqlStore, store_url: str) -> None:
    allowed, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert allowed.verdict is Verdict.ALLOW and len(store.states) == 1
    ctx = multiprocessing.get_context("spawn")
    other = ctx.Process(target=_opt_out_in_process, args=(store_url,))
    other.start()
    other.join(timeout=120)
    assert other.exitcode == 0
    denied, _ = store.decide(
        ContactProposal("ann", "sms", "marketing"), courtesy, now=NOW, hold_ttl_seconds=HOLD
    )
    assert denied.verdict is Verdict.DENY


def test_a_customer_erased_and_made_again_starts_from_nothing(store_url: str) -> None:
    deciding = cast(SqlStore, open_store(store_url))
    erasing = cast(SqlStore, open_store(store_url))
    try:
        for _ in range(2):
            deciding.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
        assert len(deciding.load_state("ann").contacts) == 1
        erasing.erase("ann", now=NOW)
        # Another write makes the row again; its version starts afresh.
        erasing.put_profile(CustomerProfile("ann", timezone="America/Chicago", country="US"))
        state = deciding.load_state("ann")
        assert state.contacts == []
        decision, _ = deciding.decide(
            ContactProposal("ann", "push", "service"), courtesy, now=NOW, hold_ttl_seconds=HOLD
        )
        assert decision.verdict is Verdict.ALLOW
        assert [c.channel for c in deciding.load_state("ann").contacts] == ["push"]
    finally:
        deciding.close()
        erasing.close()


def test_a_replayed_idempotency_key_leaves_the_cached_state_alone(store: SqlStore) -> None:
    first, _ = store.decide(email(idempotency_key="k"), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    before = version(store)
    again, replayed = store.decide(
        email(idempotency_key="k"), courtesy, now=NOW, hold_ttl_seconds=HOLD
    )
    assert replayed and again == first
    assert version(store) == before
    assert len(store.load_state("ann").contacts) == 1


def test_verified_keys_are_cached_briefly_and_revoking_drops_them(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(sql_module.time, "monotonic", lambda: clock[0])
    checking = cast(SqlStore, open_store(store_url))
    revoking = cast(SqlStore, open_store(store_url))
    try:
        key, secret = checking.create_key(["decide"], name="crm", now=NOW)
        assert checking.check_key(secret) == key
        # Revoked by another process (here: another store): trusted until the cache ages.
        revoking.revoke_key(key.key_id)
        assert checking.check_key(secret) == key
        clock[0] += sql_module.KEY_CACHE_SECONDS + 0.1
        assert checking.check_key(secret) is None
        # Revoked through the same store: dropped at once.
        other, other_secret = checking.create_key(["read"], name=None, now=NOW)
        assert checking.check_key(other_secret) == other
        checking.revoke_key(other.key_id)
        assert checking.check_key(other_secret) is None
    finally:
        checking.close()
        revoking.close()
