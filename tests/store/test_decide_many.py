"""Deciding several proposals in one transaction (`Store.decide_many`, the service's group
commit) answers each as deciding them one after another would: a later proposal sees the
holds an earlier one placed, a repeated idempotency key is a replay, and one proposal's
failure is its own, with nothing of it kept and the others decided and kept once."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from tactful import Contact, ContactProposal, CustomerProfile, Decision, Event, Verdict
from tactful.state import CustomerState
from tactful.store import open_store
from tactful.store.base import DecideCall
from tactful.store.sql import SqlStore, decisions

from .conftest import NOW, courtesy

HOLD = 15 * 60.0


def call(
    customer: str, channel: str = "email", purpose: str = "marketing", **kw: Any
) -> DecideCall:
    return DecideCall(ContactProposal(customer, channel, purpose, **kw), courtesy, NOW, HOLD)


def stored(store: SqlStore, customer: str | None = None) -> int:
    query = select(func.count()).select_from(decisions)
    if customer is not None:
        query = query.where(decisions.c.customer_id == customer)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def verdicts(results: list[Any]) -> list[Verdict]:
    return [r[0].verdict for r in results]


def test_one_transaction_answers_as_one_decision_after_another(store: SqlStore) -> None:
    for customer in ("ann", "bob"):
        store.put_profile(CustomerProfile(customer, timezone="America/Chicago", country="US"))
    # Five marketing emails for each: courtesy lets one through, and the holds it places
    # count against the next ones (whether decided alone or together).
    alone = [store.decide(c.proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD)
             for c in [call("ann") for _ in range(5)]]  # fmt: skip
    together = store.decide_many([call("bob") for _ in range(5)])
    assert not any(isinstance(r, Exception) for r in together)
    assert verdicts(together) == verdicts(alone)
    assert verdicts(together).count(Verdict.ALLOW) >= 1
    assert Verdict.DEFER in verdicts(together)
    assert stored(store, "bob") == 5
    # What the transaction placed is the cached state afterwards, and it stands.
    later, _ = store.decide(call("bob").proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert later.verdict is verdicts(alone)[-1]


def test_a_repeated_idempotency_key_in_one_transaction_is_a_replay(store: SqlStore) -> None:
    first, again = store.decide_many(
        [call("cy", idempotency_key="k-1"), call("cy", idempotency_key="k-1")]
    )
    assert not isinstance(first, Exception) and not isinstance(again, Exception)
    assert first[1] is False and again[1] is True
    assert again[0].decision_id == first[0].decision_id
    assert stored(store, "cy") == 1


def test_one_failing_proposal_leaves_the_others_decided_once(store: SqlStore) -> None:
    def broken(state: CustomerState, proposal: ContactProposal, now: datetime) -> Decision:
        raise ValueError("the engine failed for this one")

    calls = [call("dee"), DecideCall(ContactProposal("eve", "sms", "service"), broken, NOW, HOLD),
             call("fay", "push", "service")]  # fmt: skip
    before = stored(store)
    results = store.decide_many(calls)
    assert isinstance(results[1], ValueError)
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert results[0][0].verdict is Verdict.ALLOW and results[2][0].verdict is Verdict.ALLOW
    # Each of the others once (the rolled-back transaction kept nothing), none for eve.
    assert stored(store) == before + 2
    assert stored(store, "eve") == 0


def test_a_transaction_rolled_back_leaves_no_state_behind(store: SqlStore, store_url: str) -> None:
    """The hold a transaction placed but did not commit never reaches the state cache,
    even once the customer's version moves on to the number it would have had."""
    answers: list[Decision] = []

    def once(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
        if answers:  # the second run (alone) fails too, and writes nothing
            raise ValueError("not again")
        answers.append(courtesy(state, p, now))
        return answers[-1]

    def failing(cur: object, decision: Decision) -> None:
        raise RuntimeError("a write after the decision failed")

    store.put_profile(CustomerProfile("gus", timezone="America/Chicago", country="US"))
    email = ContactProposal("gus", "email", "marketing")
    results = store.decide_many([
        DecideCall(email, once, NOW, HOLD),
        DecideCall(ContactProposal("hal", "sms", "service"), courtesy, NOW, HOLD, also=failing),
    ])  # fmt: skip
    assert [a.verdict for a in answers] == [Verdict.ALLOW]
    assert isinstance(results[0], ValueError) and isinstance(results[1], RuntimeError)
    # A write by another process gives gus the version the rolled-back hold had (a write
    # through this store object would drop gus from its cache anyway): still no hold.
    other = open_store(store_url)
    try:
        other.put_profile(CustomerProfile("gus", timezone="America/Chicago", country="US"))
    finally:
        other.close()
    again, _ = store.decide(email, courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert again.verdict is Verdict.ALLOW
    assert stored(store, "gus") == 1 and stored(store, "hal") == 0


def test_an_empty_list_writes_nothing(store: SqlStore) -> None:
    before = stored(store)
    assert store.decide_many([]) == []
    assert stored(store) == before


def test_two_ids_of_one_customer_in_one_transaction_see_each_others_holds(
    store: SqlStore,
) -> None:
    """On PostgreSQL the batch locks its customers up front: a row read then is stale
    for the second id of a merged customer once the first placed a hold."""
    for customer in ("mo", "mo-alias", "ned", "ned-alias"):
        store.put_profile(CustomerProfile(customer, timezone="America/Chicago", country="US"))
    for ids in (["mo", "mo-alias"], ["ned", "ned-alias"]):
        store.merge(ids, at=NOW, via="test", now=NOW)
    # The canonical customer's state cached at its version before the batch.
    store.decide(ContactProposal("mo", "push", "service"), courtesy, now=NOW,
                 hold_ttl_seconds=HOLD, hold=False)  # fmt: skip
    store.decide(ContactProposal("ned", "push", "service"), courtesy, now=NOW,
                 hold_ttl_seconds=HOLD, hold=False)  # fmt: skip
    alone = [
        store.decide(ContactProposal(c, "email", "marketing"), courtesy, now=NOW,
                     hold_ttl_seconds=HOLD)[0].verdict
        for c in ("ned", "ned-alias")
    ]  # fmt: skip
    together = store.decide_many([call("mo"), call("mo-alias")])
    assert verdicts(together) == alone == [Verdict.ALLOW, Verdict.DEFER]
    # And what the cache keeps afterwards is the ledger as stored.
    after, _ = store.decide(call("mo").proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert after.verdict is Verdict.DEFER


def test_decision_ids_are_uuids_that_sort_by_time(store: SqlStore) -> None:
    """Version 7 (RFC 9562): the audit log's key grows at one end of its index."""
    ids = []
    for n in range(4):
        decision, _ = store.decide(
            call(f"ida-{n}").proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD
        )
        ids.append(decision.decision_id)
        time.sleep(0.002)  # the next millisecond
    assert ids == sorted(ids) and len(set(ids)) == 4
    parsed = [uuid.UUID(i) for i in ids]
    assert {(p.version, p.variant) for p in parsed} == {(7, uuid.RFC_4122)}
    assert [str(p) for p in parsed] == ids


def test_customers_with_a_history_are_folded_alike_alone_and_together(
    store: SqlStore, store_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL a group reads the ledgers of its uncached customers in two statements
    for all of them; the states folded from them decide as one by one on an uncached store."""
    names = [f"hist-{n}" for n in range(4)]
    for n, name in enumerate(names):
        store.put_profile(CustomerProfile(name, timezone="America/Chicago", country="US"))
        store.add_events(
            [Event(name, "page_viewed", NOW - timedelta(days=2, minutes=k), f"{name}-e{k}")
             for k in range(n + 1)]
            + ([Event(name, "opted_out", NOW - timedelta(days=1), f"{name}-out",
                      {"channel": "email"})] if n == 3 else []),
            received_at=NOW,
        )  # fmt: skip
        store.add_contacts(
            Contact(f"{name}-c{k}", name, "email", "marketing", NOW - timedelta(days=3 + k))
            for k in range(n)
        )
    proposals = [ContactProposal(name, "email", "marketing") for name in names]
    uncached = open_store(store_url, state_cache=0)
    try:
        alone = [
            uncached.decide(p, courtesy, now=NOW, hold_ttl_seconds=HOLD, hold=False)[0]
            for p in proposals
        ]
    finally:
        uncached.close()
    store.states.clear()
    singles: list[str] = []
    real = store._sql.ledger
    monkeypatch.setattr(
        store._sql, "ledger", lambda cur, cid: singles.append(cid) or real(cur, cid)
    )
    together = store.decide_many(
        [DecideCall(p, courtesy, NOW, HOLD, hold=False) for p in proposals]
    )
    assert [(r[0].verdict, r[0].reasons) for r in together] == [
        (d.verdict, d.reasons) for d in alone
    ]
    assert {d.verdict for d in alone} >= {Verdict.DENY, Verdict.ALLOW}
    assert singles == ([] if backend == "postgresql" else names)
