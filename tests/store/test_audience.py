"""Audience checks against a store (SQLite and PostgreSQL): the batched read
(`Store.load_states`, a few queries per chunk) gives each id what a single decision sees
(the canonical customer's state, whether the id is erased, the suppression entries of the
customer's addresses), so every line equals the single decision, merged ids, addresses
suppressed through other records, erased and unknown ids included; with a hold, allowed
customers are held exactly as single decisions hold them, and an audience racing single
decisions never takes more slots than the cap allows."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from tactful import (
    ContactProposal,
    ContactStatus,
    CustomerProfile,
    CustomerState,
    Decision,
    Event,
    Verdict,
)
from tactful.engine import decide
from tactful.ingest.sendgrid import translate_sendgrid
from tactful.service.identity import address_check, customers_for
from tactful.service.runtime import ERASED
from tactful.store.audience import Summary, check_store
from tactful.store.sql import SqlStore
from tests.audience.cases import audience

from .conftest import COURTESY, NOW, courtesy
from .test_concurrency import one_slot_left

TEMPLATE = ContactProposal("", "email", "marketing", campaign="winter")


def _erased(state: CustomerState, p: ContactProposal, now: object) -> Decision:
    raise AssertionError("no customer here is erased")


def _fill(store: SqlStore, size: int) -> list[str]:
    states = audience(7, size, NOW)
    for s in states:
        store.put_profile(s.profile)
    for s in states:
        cid = s.profile.customer_id
        from tactful import Contact, Event

        store.add_events(
            [Event(cid, e.kind, _dt(e.ts), e.event_id, e.properties) for e in s.events],
            received_at=NOW,
        )
        store.add_contacts(
            Contact(
                c.contact_id + cid,
                cid,
                c.channel,
                c.purpose,
                _dt(c.ts),
                status=c.status,
                outcome=c.outcome,
                hold_expires=_dt(c.hold_expires) if c.hold_expires is not None else None,
                trigger_event=c.trigger_event,
                trigger_at=_dt(c.trigger_ts) if c.trigger_ts is not None else None,
                offer=c.offer,
                campaign=c.campaign,
                source=c.source,
                flags=c.flags,
                tags=dict(c.tags),
            )
            for c in s.contacts
        )
    return [s.profile.customer_id for s in states]


def _dt(ts: float):  # type: ignore[no-untyped-def]
    from tactful.model import from_ts

    return from_ts(ts)


def test_lines_equal_single_decisions(store: SqlStore) -> None:
    ids = _fill(store, 150)
    ids = [*ids, "never-seen", ids[3]]  # an unknown id, and one twice
    summary = Summary()
    lines = list(
        check_store(
            store,
            ids,
            TEMPLATE,
            COURTESY,
            lambda: NOW,
            if_suppressed=_erased,
            summary=summary,
            chunk=40,
        )
    )
    assert [line.customer_id for line in lines] == ids
    for line in lines:
        want = decide(
            store.load_state(line.customer_id),
            replace(TEMPLATE, customer_id=line.customer_id),
            COURTESY,
            NOW,
        )
        assert (line.verdict, line.not_before) == (want.verdict, want.not_before), line
        assert line.reasons == want.reasons, line
        assert line.decision_id is None
    assert summary.total == len(ids)
    assert set(summary.counts) == {"allow", "defer", "deny"}
    assert sum(summary.paths[p] for p in ("vector", "engine")) == len(ids)
    # Nothing was held or recorded by a check without hold.
    assert all(
        c.status is not ContactStatus.HELD or c.contact_id.startswith("k")
        for cid in ids
        for c in store.load_state(cid).contacts
    )


def test_hold_places_holds_as_single_decisions_do(store: SqlStore) -> None:
    ids = _fill(store, 60)

    def held(p: ContactProposal) -> Decision:
        return store.decide(p, courtesy, now=NOW, hold_ttl_seconds=900)[0]

    first = list(
        check_store(store, ids, TEMPLATE, COURTESY, lambda: NOW, if_suppressed=_erased, hold=held)
    )
    allowed = [line for line in first if line.verdict is Verdict.ALLOW]
    assert allowed, "some customers must be allowed"
    for line in allowed:
        assert line.decision_id is not None
        contact = store.load_state(line.customer_id).contact(line.decision_id)
        assert contact is not None and contact.status is ContactStatus.HELD
        assert store.get_decision(line.decision_id).verdict == "allow"
    # The holds count: a second check a minute later defers them all (20 h between emails).
    later = NOW + timedelta(minutes=1)
    again = {
        line.customer_id: line
        for line in check_store(
            store, ids, TEMPLATE, COURTESY, lambda: later, if_suppressed=_erased
        )
    }
    for line in allowed:
        assert again[line.customer_id].verdict is not Verdict.ALLOW


def test_audience_hold_racing_single_decisions_never_exceeds_the_cap(store: SqlStore) -> None:
    customers = [f"r{i}" for i in range(12)]
    for c in customers:
        one_slot_left(store, c)  # two of three marketing emails this week already sent
    start = threading.Barrier(2)
    results: dict[str, list[Verdict]] = {c: [] for c in customers}

    def held(p: ContactProposal) -> Decision:
        return store.decide(p, courtesy, now=NOW, hold_ttl_seconds=900)[0]

    def audience_side() -> None:
        start.wait()
        for line in check_store(
            store,
            customers,
            TEMPLATE,
            COURTESY,
            lambda: NOW,
            if_suppressed=_erased,
            hold=held,
            chunk=3,
        ):
            results[line.customer_id].append(line.verdict)

    def single_side() -> None:
        start.wait()
        for c in reversed(customers):
            results[c].append(held(replace(TEMPLATE, customer_id=c)).verdict)

    threads = [threading.Thread(target=audience_side), threading.Thread(target=single_side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in customers:
        assert results[c].count(Verdict.ALLOW) == 1, (c, results[c])
        held_now = [x for x in store.load_state(c).contacts if x.status is ContactStatus.HELD]
        assert len(held_now) == 1


# -- identity: aliases, suppression by address, erasure -------------------------------------

STOP_PHONE = "+13125550142"
SHAPES = (
    ContactProposal("", "email", "marketing", campaign="winter"),
    ContactProposal("", "sms", "marketing"),
    ContactProposal("", "call", "sales", offer="premium"),
    ContactProposal("", "sms", "transactional"),
    ContactProposal("", "email", "transactional"),
)


def _erased_deny(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
    at = max(now, p.at) if p.at else now
    return Decision(Verdict.DENY, (ERASED,), COURTESY.ref, at)


def _single(store: SqlStore, p: ContactProposal) -> Decision:
    """What a single decision without a hold answers (as `Runtime.decide(hold=False)`)."""
    decision, _ = store.decide(
        p,
        courtesy,
        now=NOW,
        hold_ttl_seconds=900,
        hold=False,
        if_suppressed=_erased_deny,
        address_check=address_check,
    )
    return decision


def _identity_audience(store: SqlStore) -> list[str]:
    """Varied customers, then: a phone that said STOP through another record, an email
    unsubscribed through SendGrid in another letter case (before anyone held it), merged
    ids, erased ids (one made again holding the stopped phone) and unknown ids."""
    ids = _fill(store, 240)
    store.put_profile(CustomerProfile("stopper", timezone="America/Chicago", phones=(STOP_PHONE,)))
    store.add_events(
        [Event("stopper", "opted_out", NOW - timedelta(hours=2), "stop-1", {"channel": "sms"})],
        received_at=NOW,
    )
    webhook = [
        {
            "email": "ANN@EXAMPLE.COM",
            "timestamp": int((NOW - timedelta(hours=1)).timestamp()),
            "event": "unsubscribe",
            "sg_event_id": "sg-1",
        }
    ]
    batch = translate_sendgrid(webhook, NOW)
    for item in batch.events:
        assert item.email is not None
        signals = [item.event(cid) for cid in customers_for(store, "email", item.email)]
        store.add_events([e for e in signals if e is not None], received_at=NOW)
    for i, cid in enumerate(ids):
        profile = store.get_profile(cid)
        assert profile is not None
        if i % 5 == 0:
            store.put_profile(replace(profile, phones=("+1 (312) 555-0142",)))
        elif i % 5 == 1:
            store.put_profile(replace(profile, emails=("Ann@Example.com",)))
        elif i % 5 == 2:
            store.put_profile(replace(profile, phones=(f"+1312555{1000 + i}",)))
    for i in range(3, len(ids) - 1, 9):
        store.merge([ids[i], ids[i + 1]], at=NOW, via="api", now=NOW)
    for i in range(6, len(ids), 23):
        store.erase(ids[i], now=NOW)
    store.put_profile(CustomerProfile(ids[6], timezone="America/Chicago", phones=(STOP_PHONE,)))
    return [*ids, "never-seen", "stopper", ids[4], "never-seen-2", ids[4]]


def test_lines_equal_single_decisions_across_ids_addresses_and_erasure(store: SqlStore) -> None:
    ids = _identity_audience(store)
    seen: set[tuple[str, str]] = set()
    aliases = 0
    for shape in SHAPES:
        for warm in (False, True):
            if not warm:
                store.states.clear()  # every state read from the ledger, then from the cache
            lines = list(
                check_store(
                    store,
                    ids,
                    shape,
                    COURTESY,
                    lambda: NOW,
                    if_suppressed=_erased_deny,
                    address_check=address_check,
                    chunk=37,
                )
            )
            assert [line.customer_id for line in lines] == ids
            for line in lines:
                want = _single(store, replace(shape, customer_id=line.customer_id))
                got = (line.verdict, line.not_before, line.reasons)
                assert got == (want.verdict, want.not_before, want.reasons), (shape, line)
                seen.update((r.rule, r.kind) for r in line.reasons)
                aliases += store.identity(line.customer_id).canonical_id != line.customer_id
    # The cases this test is about did occur (and were compared): suppression by address,
    # erasure, and a customer's own opt-out (the one that absorbed the unsubscribed email).
    rules = {rule for rule, _ in seen}
    assert {"address-suppressed", "erased"} <= rules
    assert any(kind == "consent" and rule != "address-suppressed" for rule, kind in seen)
    assert aliases > 0


def test_an_audience_template_naming_an_address_is_refused(store: SqlStore) -> None:
    template = replace(TEMPLATE, to="+13125550142")
    with pytest.raises(ValueError, match=r"^to: "):
        next(check_store(store, ["a"], template, COURTESY, lambda: NOW, if_suppressed=_erased))


def test_load_states_reads_a_chunk_in_a_few_queries_and_answers_as_single_reads(
    store: SqlStore,
) -> None:
    ids = _identity_audience(store)
    store.states.clear()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        loaded = store.load_states(ids)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    # Erased ids, rows (aliases resolved), events, contacts, suppression entries.
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) <= 5, reads
    assert set(loaded) == set(ids)
    for cid in ids:
        got = loaded[cid]
        single = store.load_state(cid)
        assert got.state.profile == single.profile
        assert got.state.events == single.events and got.state.contacts == single.contacts
        assert got.erased == store.suppressed(cid)
        assert sorted(got.hits, key=repr) == sorted(store.address_hits(cid), key=repr)
    assert any(loaded[c].hits for c in ids) and any(loaded[c].erased for c in ids)
    assert any(loaded[c].state.profile.customer_id != c for c in ids)
