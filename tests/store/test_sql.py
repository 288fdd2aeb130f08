"""The Store contract, on every backend."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table, func, select

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    Event,
    Trigger,
    Verdict,
)
from tactful.store import AuditQuery, Conflict, NotFound, open_store
from tactful.store.sql import (
    SqlStore,
    alembic_config,
    api_keys,
    contacts,
    customers,
    decisions,
    events,
    metadata,
    proposal_data,
    proposal_of,
    suppressions,
)

from .conftest import NOW, courtesy

HOLD = 15 * 60.0
ANN = CustomerProfile(
    "ann",
    timezone="America/Chicago",
    country="US",
    subdivision="IL",
    phones=("+13125550142",),
    emails=("Ann@Example.com",),
    consent={"email": True, "sms:marketing": False},
)


def email(customer: str = "ann", **kw: Any) -> ContactProposal:
    return ContactProposal(customer, "email", "marketing", **kw)


def rows(store: SqlStore, table: Table) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def count(store: SqlStore, table: Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- migrations ---------------------------------------------------------------------------


def test_migrations_create_a_fresh_database_and_reopen_idempotently(fresh_url: str) -> None:
    first = cast(SqlStore, open_store(fresh_url))
    secret = first.secret()
    assert len(secret) == 32
    first.put_profile(ANN)
    first.close()

    again = cast(SqlStore, open_store(fresh_url))
    try:
        assert again.secret() == secret  # made once, on the first migration
        assert again.get_profile("ann") == ANN
        heads = ScriptDirectory.from_config(alembic_config()).get_heads()
        with again.engine.connect() as conn:
            # Independent schema branches (identity, delivery) are all applied.
            assert set(MigrationContext.configure(conn).get_current_heads()) == set(heads)
            # The migrations build exactly the tables the code defines.
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, metadata) == []
    finally:
        again.close()


def test_migrations_ship_inside_the_package() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert {"0001", "0002", "0003_identity", "0004_delivery", "0005"} <= {
        r.revision for r in script.walk_revisions()
    }
    assert script.get_heads() == ["0006_address_lifts"]  # one head: a new migration has one parent
    assert script.dir and (script.dir + "/script.py.mako")


def test_healthy(store: SqlStore) -> None:
    assert store.healthy()


# -- customers ----------------------------------------------------------------------------


def test_profile_round_trip_and_listing(store: SqlStore) -> None:
    assert store.get_profile("ann") is None
    store.put_profile(ANN)
    assert store.get_profile("ann") == ANN
    changed = replace(
        ANN,
        timezone="Europe/Paris",
        country="FR",
        phones=(),
        preferences={"channels": ["email"], "pace": {"count": 1, "per": "7d"}},
    )
    store.put_profile(changed)
    assert store.get_profile("ann") == changed
    for cid in ("cid-3", "cid-1", "cid-2"):
        store.put_profile(CustomerProfile(cid))
    assert store.list_customers(limit=2) == ["ann", "cid-1"]
    assert store.list_customers(limit=2, after="cid-1") == ["cid-2", "cid-3"]
    assert store.list_customers(after="cid-3") == []


def test_load_state_of_an_unknown_customer_is_blank(store: SqlStore) -> None:
    state = store.load_state("nobody")
    assert state.profile == CustomerProfile("nobody")
    assert state.events == [] and state.contacts == []


# -- events -------------------------------------------------------------------------------


def test_events_are_deduplicated_by_event_id(store: SqlStore) -> None:
    opt_out = Event("ann", "opted_out", NOW, event_id="m-1")
    assert store.add_events([opt_out], received_at=NOW) == 1
    assert store.add_events([opt_out], received_at=NOW) == 0  # a retry writes nothing
    batch = [
        Event("ann", "page_viewed", NOW, event_id="m-2"),
        Event("ann", "page_viewed", NOW, event_id="m-2"),
        Event("ann", "page_viewed", NOW),
        Event("ann", "page_viewed", NOW),
        Event("bob", "page_viewed", NOW, event_id="m-1"),  # ids are per customer
    ]
    assert store.add_events(batch, received_at=NOW) == 4
    assert count(store, events) == 5
    assert store.add_events([], received_at=NOW) == 0


def test_late_events_take_their_place_by_event_time(store: SqlStore) -> None:
    store.put_profile(ANN)
    later = Event("ann", "page_viewed", NOW - timedelta(minutes=5), event_id="e2")
    earlier = Event("ann", "session_started", NOW - timedelta(minutes=40), event_id="e1")
    store.add_events([later], received_at=NOW)
    store.add_events([earlier], received_at=NOW)
    state = store.load_state("ann")
    assert [e.kind for e in state.events] == ["session_started", "page_viewed"]
    # A late opt-out still counts: it happened before the proposal.
    store.add_events(
        [Event("ann", "opted_out", NOW - timedelta(days=2), event_id="e0")], received_at=NOW
    )
    decision, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert decision.verdict is Verdict.DENY
    assert decision.reasons[0].rule == "opt-out"


def test_event_properties_keep_their_values(store: SqlStore) -> None:
    until = datetime(2026, 12, 15, tzinfo=UTC)
    snooze = Event(
        "ann", "snooze_requested", NOW, event_id="s", properties={"until": until, "n": [1, 2]}
    )
    store.add_events([snooze], received_at=NOW)
    (stored,) = store.load_state("ann").events
    assert stored.properties == {"until": until.isoformat(), "n": [1, 2]}
    decision, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert decision.verdict is Verdict.DEFER
    assert decision.not_before == until


# -- decisions and holds ------------------------------------------------------------------


def test_holds_count_against_caps(store: SqlStore) -> None:
    store.put_profile(ANN)
    verdicts = []
    for day in range(4):
        now = NOW + timedelta(days=day)
        decision, replayed = store.decide(email(), courtesy, now=now, hold_ttl_seconds=86400 * 7)
        assert not replayed
        verdicts.append(decision.verdict)
    # Three held marketing emails fill the 7-day cap; nothing was confirmed sent.
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.DEFER]
    state = store.load_state("ann")
    assert [c.status for c in state.contacts] == [ContactStatus.HELD] * 3
    last = store.audit(AuditQuery(customer_id="ann", limit=1))[0]
    assert last.verdict == "defer"
    assert "marketing-email-cap" in [r["rule"] for r in last.reasons]


def test_decide_places_a_hold_built_from_the_proposal(store: SqlStore) -> None:
    proposal = ContactProposal(
        "ann",
        "email",
        "marketing",
        trigger=Trigger("cart_updated", NOW - timedelta(hours=3)),
        offer="winter-sale",
        campaign="w26",
        source="crm",
        content=Content(subject="Hello", flags=("digest",)),
        tags={"account": "A-1"},
    )
    decision, _ = store.decide(proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert decision.verdict is Verdict.ALLOW and decision.decision_id
    (held,) = store.load_state("ann").contacts
    expected = Contact.from_proposal(
        decision.decision_id,
        proposal,
        decision.at,
        status=ContactStatus.HELD,
        hold_expires=NOW + timedelta(seconds=HOLD),
    )
    assert held.contact_id == expected.contact_id
    assert held.hold_expires == (NOW + timedelta(seconds=HOLD)).timestamp()
    assert (held.trigger_event, held.offer, held.campaign, held.source) == (
        "cart_updated",
        "winter-sale",
        "w26",
        "crm",
    )
    assert held.flags == ("digest",) and held.tags == {"account": "A-1"}
    # As of the decision: the hold stands (the wall clock passed its expiry long ago).
    record = store.get_decision(decision.decision_id, now=NOW)
    assert record.status == "held"
    assert store.get_decision(decision.decision_id, now=NOW + timedelta(seconds=HOLD)).status == (
        "expired"
    )
    assert record.proposal["content"]["subject"] == "Hello"
    assert record.proposal["trigger"]["event"] == "cart_updated"


def test_a_dry_run_places_no_hold(store: SqlStore) -> None:
    decision, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD, hold=False)
    assert decision.verdict is Verdict.ALLOW
    assert count(store, contacts) == 0
    assert count(store, decisions) == 1


def test_an_idempotency_key_replays_and_writes_nothing_twice(store: SqlStore) -> None:
    first, replayed = store.decide(
        email(idempotency_key="k-1"), courtesy, now=NOW, hold_ttl_seconds=HOLD
    )
    assert not replayed
    again, replayed = store.decide(
        email(idempotency_key="k-1"), courtesy, now=NOW + timedelta(hours=1), hold_ttl_seconds=HOLD
    )
    assert replayed
    assert again == first
    assert count(store, decisions) == 1 and count(store, contacts) == 1
    # A replayed deny keeps its reasons and policy.
    store.add_events([Event("bob", "opted_out", NOW, event_id="o")], received_at=NOW)
    deny, _ = store.decide(
        email("bob", idempotency_key="k-2"), courtesy, now=NOW, hold_ttl_seconds=HOLD
    )
    replay, replayed = store.decide(
        email("bob", idempotency_key="k-2"), courtesy, now=NOW, hold_ttl_seconds=HOLD
    )
    assert replayed and replay == deny and deny.verdict is Verdict.DENY


def test_flags_are_kept_and_replayed(store: SqlStore) -> None:
    proposal = email(
        trigger=Trigger("cart_updated", NOW - timedelta(hours=3)),
        content=Content(subject="10% off", discount=True),
        idempotency_key="flagged",
    )
    decision, _ = store.decide(proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert decision.flags, "the courtesy pack flags a discount on an abandoned cart"
    replay, _ = store.decide(proposal, courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert replay.flags == decision.flags
    rule = decision.flags[0].rule
    assert [r.decision_id for r in store.audit(AuditQuery(rule=rule))] == [decision.decision_id]


# -- sent, cancel, outcome ----------------------------------------------------------------


def _allow(store: SqlStore, customer: str = "ann", now: datetime = NOW) -> str:
    decision, _ = store.decide(email(customer), courtesy, now=now, hold_ttl_seconds=HOLD)
    assert decision.verdict is Verdict.ALLOW and decision.decision_id
    return decision.decision_id


def test_sent_turns_a_hold_into_a_contact(store: SqlStore) -> None:
    did = _allow(store)
    sent = store.mark_sent(did, at=None, now=NOW)
    assert sent.status is ContactStatus.SENT and sent.hold_expires is None
    assert sent.at == NOW
    assert store.mark_sent(did, at=None, now=NOW) == sent  # idempotent
    later = NOW + timedelta(minutes=3)
    moved = store.mark_sent(did, at=later, now=later)
    assert moved.at == later
    (stored,) = store.load_state("ann").contacts
    assert stored.status is ContactStatus.SENT and stored.ts == later.timestamp()
    assert store.get_decision(did).status == "sent"
    with pytest.raises(Conflict):
        store.cancel(did, now=NOW)


def test_cancel_releases_a_hold(store: SqlStore) -> None:
    did = _allow(store)
    cancelled = store.cancel(did, now=NOW)
    assert cancelled.status is ContactStatus.CANCELLED
    assert store.cancel(did, now=NOW) == cancelled
    with pytest.raises(Conflict):
        store.mark_sent(did, at=None, now=NOW)
    with pytest.raises(Conflict):
        store.record_outcome(did, "delivered", now=NOW)
    # The slot is free again.
    _allow(store, now=NOW + timedelta(minutes=1))


def test_outcome_of_a_hold_makes_it_sent(store: SqlStore) -> None:
    did = _allow(store)
    contact = store.record_outcome(did, "delivered", now=NOW)
    assert (contact.status, contact.outcome, contact.hold_expires) == (
        ContactStatus.SENT,
        "delivered",
        None,
    )
    replied = store.record_outcome(did, "replied", now=NOW)
    assert replied.outcome == "replied"
    assert store.get_decision(did).outcome == "replied"
    with pytest.raises(ValueError):
        store.record_outcome(did, "loved-it", now=NOW)


def test_unknown_ids_and_holdless_decisions(store: SqlStore) -> None:
    for call in (
        lambda: store.mark_sent("nope", at=None, now=NOW),
        lambda: store.cancel("nope", now=NOW),
        lambda: store.record_outcome("nope", "delivered", now=NOW),
        lambda: store.get_decision("nope"),
    ):
        with pytest.raises(NotFound):
            call()
    store.add_events([Event("bob", "opted_out", NOW, event_id="o")], received_at=NOW)
    deny, _ = store.decide(email("bob"), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert deny.decision_id
    with pytest.raises(Conflict):
        store.mark_sent(deny.decision_id, at=None, now=NOW)


def test_an_expired_hold_stops_counting_but_a_late_send_is_recorded(store: SqlStore) -> None:
    first = _allow(store)
    # Inside the hold, the 20 h gap between marketing emails holds the next one back.
    held_back, _ = store.decide(
        email(), courtesy, now=NOW + timedelta(minutes=10), hold_ttl_seconds=HOLD
    )
    assert held_back.verdict is Verdict.DEFER
    # Past hold_expires, the unconfirmed hold no longer counts.
    after = NOW + timedelta(seconds=HOLD + 60)
    second = _allow(store, now=after)
    assert store.get_decision(first, now=after).status == "expired"
    # The sender confirms the first after all: the ledger says it was sent.
    sent = store.mark_sent(first, at=None, now=after)
    assert sent.status is ContactStatus.SENT and sent.hold_expires is None
    state = store.load_state("ann")
    assert {c.contact_id: c.status for c in state.contacts} == {
        first: ContactStatus.SENT,
        second: ContactStatus.HELD,
    }


def test_imported_contacts_count_and_are_replaced_by_id(store: SqlStore) -> None:
    past = [
        Contact(f"h-{i}", "ann", "email", "marketing", NOW - timedelta(days=i + 1))
        for i in range(3)
    ]
    assert store.add_contacts(past) == 3
    decision, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert decision.verdict is Verdict.DEFER
    assert store.add_contacts([replace(past[0], status=ContactStatus.CANCELLED)]) == 1
    assert count(store, contacts) == 3
    decision, _ = store.decide(email(), courtesy, now=NOW, hold_ttl_seconds=HOLD)
    assert decision.verdict is Verdict.ALLOW
    assert store.add_contacts([]) == 0


# -- erasure ------------------------------------------------------------------------------


def test_erase_removes_the_customer_and_keeps_a_keyed_suppression(store: SqlStore) -> None:
    store.put_profile(ANN)
    viewed = Event("ann", "page_viewed", NOW - timedelta(days=1), event_id="p")
    store.add_events([viewed], received_at=NOW)
    did = _allow(store)
    store.mark_sent(did, at=None, now=NOW)
    _allow(store, "bob")

    assert not store.suppressed("ann")
    assert store.erase("ann", now=NOW) is True
    assert store.get_profile("ann") is None
    assert store.load_state("ann").contacts == []
    assert store.audit(AuditQuery(customer_id="ann")) == []
    with pytest.raises(NotFound):
        store.get_decision(did)
    assert store.suppressed("ann") and not store.suppressed("bob")
    for table in (customers, events, contacts, decisions):
        assert all(r.customer_id != "ann" for r in rows(store, table))
    # Bob is untouched.
    assert len(store.load_state("bob").contacts) == 1

    stored = rows(store, suppressions)
    assert len(stored) == 3  # the id, the phone and the email
    dump = repr(stored).lower()
    for raw in ("ann", "3125550142", "example.com"):
        assert raw not in dump
    # A second erasure of an id nobody knows still suppresses it.
    assert store.erase("ghost", now=NOW) is False
    assert store.suppressed("ghost")
    assert store.erase("ann", now=NOW) is False


# -- API keys -----------------------------------------------------------------------------


def test_api_keys_are_stored_hashed_and_can_be_revoked(store: SqlStore) -> None:
    key, secret = store.create_key(["decide", "read"], name="crm", now=NOW)
    assert secret.startswith("tk_") and len(secret) > 40
    assert key.scopes == {"decide", "read"} and not key.revoked
    (row,) = rows(store, api_keys)
    assert secret not in repr(row)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()

    assert store.check_key(secret) == key
    assert store.check_key(secret + "x") is None
    assert store.check_key("") is None
    other, _ = store.create_key(["admin"], name=None, now=NOW + timedelta(seconds=1))
    assert store.list_keys() == [key, other]

    store.revoke_key(key.key_id)
    assert store.check_key(secret) is None
    assert [k.revoked for k in store.list_keys()] == [True, False]
    with pytest.raises(NotFound):
        store.revoke_key("nope")


# -- policies -----------------------------------------------------------------------------


def test_policies_keep_one_active_version_and_a_history(store: SqlStore) -> None:
    assert store.active_policy() is None and store.policy_history() == []
    v1 = store.save_policy("courtesy", "1", "name: courtesy\n", author="ops", now=NOW)
    assert v1.active and store.active_policy() == v1
    later = NOW + timedelta(hours=1)
    v2 = store.save_policy("courtesy", "2", "name: courtesy\n# v2\n", author=None, now=later)
    assert store.active_policy() == v2
    history = store.policy_history()
    assert [(p.version, p.active) for p in history] == [("2", True), ("1", False)]
    assert history[1].author == "ops" and history[1].created_at == NOW
    # Saving the active version again changes nothing.
    assert store.save_policy("courtesy", "2", v2.text, author=None, now=later) == v2
    assert len(store.policy_history()) == 2
    # Going back to v1 makes it active again, as a new entry.
    store.save_policy("courtesy", "1", v1.text, author="ops", now=later + timedelta(hours=1))
    active = store.active_policy()
    assert active is not None and active.version == "1"
    assert [p.version for p in store.policy_history(limit=2)] == ["1", "2"]


# -- audit --------------------------------------------------------------------------------


def test_audit_filters_and_pages_newest_first(store: SqlStore) -> None:
    store.add_events([Event("bob", "opted_out", NOW, event_id="o")], received_at=NOW)
    made = []
    for i in range(6):
        now = NOW + timedelta(minutes=i)
        customer = "ann" if i % 2 == 0 else "bob"
        proposal = ContactProposal(customer, "email" if i < 4 else "sms", "marketing")
        decision, _ = store.decide(proposal, courtesy, now=now, hold_ttl_seconds=HOLD)
        made.append(decision)
    newest_first = [d.decision_id for d in reversed(made)]

    everything = store.audit(AuditQuery())
    assert [r.decision_id for r in everything] == newest_first
    assert [r.verdict for r in everything][-1] == "allow"

    ann = store.audit(AuditQuery(customer_id="ann"))
    assert {r.customer_id for r in ann} == {"ann"} and len(ann) == 3
    denied = store.audit(AuditQuery(verdict="deny"))
    assert {r.customer_id for r in denied} == {"bob"} and len(denied) == 3
    by_rule = store.audit(AuditQuery(rule="opt-out"))
    assert [r.decision_id for r in by_rule] == [r.decision_id for r in denied]
    assert store.audit(AuditQuery(rule="opt")) == []  # whole rule ids only
    assert store.audit(AuditQuery(rule="%")) == []
    sms = store.audit(AuditQuery(channel="sms"))
    assert [r.channel for r in sms] == ["sms", "sms"]
    assert len(store.audit(AuditQuery(channel="email", purpose="marketing"))) == 4
    assert store.audit(AuditQuery(purpose="sales")) == []
    window = store.audit(
        AuditQuery(since=NOW + timedelta(minutes=1), until=NOW + timedelta(minutes=3))
    )
    assert [r.decision_id for r in window] == newest_first[3:5]

    pages, before = [], None
    while True:
        page = store.audit(AuditQuery(limit=4, before=before))
        if not page:
            break
        pages.append([r.decision_id for r in page])
        before = (page[-1].decided_at, page[-1].decision_id)
    assert pages == [newest_first[:4], newest_first[4:]]

    record = store.get_decision(made[0].decision_id or "", now=NOW)
    assert record.decided_at == NOW and record.at == NOW
    assert record.policy_name == "courtesy" and record.policy_version == "1"
    assert record.status == "held"
    denial = store.get_decision(made[1].decision_id or "")
    assert denial.status is None
    assert denial.reasons[0]["rule"] == "opt-out" and denial.reasons[0]["message"]


@pytest.mark.parametrize(
    "proposal",
    [
        ContactProposal("ann", "email", "marketing"),
        ContactProposal(
            "ann",
            "call",
            "sales",
            at=datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
            trigger=Trigger("content_downloaded", datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),
            offer="premium-plan",
            campaign="autumn",
            source="sales-east",
            priority=7,
            content=Content("Following up", "Hello", True, ("urgent",)),
            idempotency_key="k-1",
            tags={"region": "midwest"},
            to="+13125550142",
        ),
    ],
)
def test_a_recorded_proposal_reads_back_as_itself(proposal: ContactProposal) -> None:
    """The audit log and the queue keep proposals as `proposal_data`; `proposal_of` (the
    what-if, the worker's releases) must read back every field, `to` included."""
    assert proposal_of(json.loads(json.dumps(proposal_data(proposal)))) == proposal
