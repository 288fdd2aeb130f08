"""Identity in the store, on SQLite and PostgreSQL: merges (associative, idempotent,
serialized with deciders) and the suppression list by address (keyed hashes only)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tactful import Contact, ContactProposal, ContactStatus, CustomerProfile, Event, Verdict
from tactful.service.identity import address_check
from tactful.store import open_store
from tactful.store.sql import (
    SqlStore,
    address_suppressions,
    customers,
    identity_log,
    suppressions,
)

from .conftest import NOW, courtesy

PHONE = "+13125550142"
EMAIL = "ann@example.com"


def decide(store: SqlStore, proposal: ContactProposal, hold: bool = True) -> Verdict:
    decision, _ = store.decide(
        proposal,
        courtesy,
        now=NOW,
        hold_ttl_seconds=900,
        hold=hold,
        address_check=address_check,
    )
    return decision.verdict


def optout(customer: str, minutes_ago: float, **scope: str) -> Event:
    return Event(
        customer,
        "unsubscribed" if scope else "opted_out",
        NOW - timedelta(minutes=minutes_ago),
        f"{customer}-optout-{minutes_ago}",
        scope,
    )


def table_text(store: SqlStore, *tables: Any) -> str:
    with store.engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for t in tables for row in conn.execute(select(t)))


# -- merges --------------------------------------------------------------------------------


def test_merge_moves_the_ledger_and_is_idempotent(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("crm-b", timezone="America/Chicago", phones=(PHONE,)))
    store.put_profile(CustomerProfile("crm-c", emails=(EMAIL,), consent={"sms": False}))
    store.add_events(
        [Event("crm-c", "page_viewed", NOW - timedelta(hours=3), "p1")], received_at=NOW
    )
    store.add_contacts([Contact("k1", "crm-b", "call", "sales", NOW - timedelta(days=1))])

    first = store.merge(["crm-c", "crm-b"], at=NOW, via="api", now=NOW)
    assert first.canonical_id == "crm-b" and first.merged == ("crm-c",)
    again = store.merge(["crm-b", "crm-c"], at=NOW, via="api", now=NOW)
    assert again.merged == ()

    state = store.load_state("crm-c")
    assert state.profile.customer_id == "crm-b"
    assert state.profile.phones == (PHONE,) and state.profile.emails == (EMAIL,)
    assert state.profile.consent == {"sms": False}
    assert [e.event_id for e in state.events] == ["p1"]
    assert [c.contact_id for c in state.contacts] == ["k1"]
    assert store.customers_with_address("email", "ANN@example.com") == ["crm-b"]
    ident = store.identity("crm-c")
    assert (ident.canonical_id, ident.aliases) == ("crm-b", ("crm-c",))
    assert [m.merged_ids for m in ident.merges] == [("crm-c",)]
    assert store.list_customers() == ["crm-b"]
    # A write under the alias lands on the canonical customer.
    store.add_events([Event("crm-c", "signed_in", NOW - timedelta(hours=1), "s1")], received_at=NOW)
    assert [e.event_id for e in store.load_state("crm-b").events] == ["p1", "s1"]


def test_decisions_for_any_alias_share_the_canonical_ledger(store: SqlStore) -> None:
    for cid in ("crm-a", "crm-b"):
        store.put_profile(CustomerProfile(cid, timezone="America/Chicago", country="US"))
    store.merge(["crm-a", "crm-b"], at=NOW, via="api", now=NOW)
    verdicts = [decide(store, ContactProposal(c, "email", "marketing")) for c in ("crm-b", "crm-a")]
    assert verdicts == [Verdict.ALLOW, Verdict.DEFER]  # 20 h between marketing emails
    [record] = [r for r in store.audit(_query("crm-b")) if r.verdict == "allow"]
    assert record.customer_id == "crm-a"
    assert record.proposal["customer_id"] == "crm-b"  # the id the sender named


def _query(customer_id: str) -> Any:
    from tactful.store.base import AuditQuery

    return AuditQuery(customer_id=customer_id)


def test_merged_deciders_take_the_last_slot_once(store: SqlStore) -> None:
    """S20 across ids: senders naming either id of one customer serialize on one lock."""
    store.put_profile(CustomerProfile("a-1", timezone="America/Chicago", country="US"))
    store.add_contacts(
        Contact(f"past-{d}", cid, "email", "marketing", NOW - timedelta(days=d))
        for d, cid in ((5, "a-1"), (2, "b-1"))
    )
    store.merge(["b-1", "a-1"], at=NOW, via="api", now=NOW)
    threads = 12
    start = threading.Barrier(threads)

    def ask(i: int) -> Verdict:
        start.wait()
        return decide(store, ContactProposal("a-1" if i % 2 else "b-1", "email", "marketing"))

    with ThreadPoolExecutor(threads) as pool:
        verdicts = list(pool.map(ask, range(threads)))
    assert verdicts.count(Verdict.ALLOW) == 1
    held = [c for c in store.load_state("b-1").contacts if c.status is ContactStatus.HELD]
    assert len(held) == 1


def test_a_merge_racing_deciders_never_lets_both_ledgers_fill_the_cap(store_url: str) -> None:
    """Deciders for two records while they are merged: the cap (3 marketing emails per 7
    days) holds for the merged customer, whichever side of the merge each decision fell."""
    store = cast(SqlStore, open_store(store_url))
    try:
        for cid in ("m-1", "m-2"):
            store.put_profile(CustomerProfile(cid, timezone="America/Chicago", country="US"))
        start = threading.Barrier(9)

        def ask(i: int) -> Verdict:
            start.wait()
            if i == 8:
                store.merge(["m-1", "m-2"], at=NOW, via="api", now=NOW)
                return Verdict.DENY
            return decide(store, ContactProposal(f"m-{i % 2 + 1}", "email", "marketing"))

        with ThreadPoolExecutor(9) as pool:
            verdicts = list(pool.map(ask, range(9)))
        # Before the merge each record may take one (two ledgers); after it, none more.
        assert 1 <= verdicts.count(Verdict.ALLOW) <= 2
        state = store.load_state("m-2")
        assert state.profile.customer_id == "m-1"
        assert len(state.contacts) == verdicts.count(Verdict.ALLOW)
    finally:
        store.close()


# -- merges are associative and order-independent (Hypothesis, SQLite in memory) ----------

IDS = ("c-1", "c-2", "c-3")
_event = st.tuples(
    st.sampled_from(IDS),
    st.sampled_from(["page_viewed", "checkout_started", "unsubscribed", "offer_declined"]),
    st.integers(1, 600),
)
_contact = st.tuples(
    st.sampled_from(IDS), st.sampled_from(["email", "call", "sms"]), st.integers(1, 200)
)
_profile = st.tuples(
    st.sampled_from(IDS),
    st.sampled_from([None, "America/Chicago", "Europe/Paris"]),
    st.sampled_from([(), (PHONE,), ("+33142685300",)]),
)
PROPOSALS = [
    ContactProposal("c-2", "email", "marketing"),
    ContactProposal("c-3", "call", "sales"),
    ContactProposal("c-1", "sms", "service"),
]


def _build(data: tuple[list[Any], list[Any], list[Any]]) -> SqlStore:
    events, contacts, profiles = data
    store = cast(SqlStore, open_store("sqlite:///:memory:"))
    for cid, tz, phones in profiles:
        store.put_profile(CustomerProfile(cid, timezone=tz, phones=phones))
    store.add_events(
        [
            Event(cid, kind, NOW - timedelta(minutes=m), f"{cid}-{kind}-{m}", {"channel": "email"})
            for cid, kind, m in events
        ],
        received_at=NOW,
    )
    store.add_contacts(
        Contact(f"k-{i}", cid, ch, "marketing", NOW - timedelta(hours=h))
        for i, (cid, ch, h) in enumerate(contacts)
    )
    return store


def _view(store: SqlStore) -> Any:
    state = store.load_state("c-3")
    verdicts = [decide(store, p, hold=False) for p in PROPOSALS]
    return (
        state.profile,
        sorted((e.kind, e.ts, e.event_id) for e in state.events),
        sorted((c.contact_id, c.channel, c.ts) for c in state.contacts),
        verdicts,
        store.identity("c-2").canonical_id,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.tuples(
        st.lists(_event, max_size=8), st.lists(_contact, max_size=6), st.lists(_profile, max_size=4)
    ),
    st.permutations(IDS),
)
def test_merging_is_associative_and_order_independent(
    data: tuple[list[Any], list[Any], list[Any]], order: list[str]
) -> None:
    a, b, c = order
    left, right, flat = _build(data), _build(data), _build(data)
    try:
        left.merge([a, b], at=NOW, via="api", now=NOW)  # merge(merge(a, b), c)
        left.merge([a, c], at=NOW, via="api", now=NOW)
        right.merge([b, c], at=NOW, via="api", now=NOW)  # merge(a, merge(b, c))
        right.merge([c, a], at=NOW, via="api", now=NOW)
        flat.merge([c, b, a], at=NOW, via="api", now=NOW)
        assert _view(left) == _view(right) == _view(flat)
    finally:
        for s in (left, right, flat):
            s.close()


# -- suppression by address -----------------------------------------------------------------


def test_opt_out_suppresses_a_new_record_holding_the_address(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("ann", timezone="America/Chicago", phones=(PHONE,)))
    store.add_events([optout("ann", 5, channel="sms")], received_at=NOW)
    store.put_profile(
        CustomerProfile("crm-9", timezone="America/Chicago", phones=("+1 312 555 0142",))
    )
    assert decide(store, ContactProposal("crm-9", "sms", "marketing")) is Verdict.DENY
    assert decide(store, ContactProposal("crm-9", "call", "service")) is Verdict.DENY
    # A re-subscribe through the record that holds the number lifts it.
    store.add_events(
        [Event("ann", "subscribed", NOW - timedelta(minutes=1), "resub", {"channel": "sms"})],
        received_at=NOW,
    )
    assert decide(store, ContactProposal("crm-9", "sms", "service")) is Verdict.ALLOW


def test_an_opt_in_older_than_the_opt_out_lifts_nothing(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("ann", emails=(EMAIL,)))
    store.add_events([optout("ann", 5)], received_at=NOW)
    store.add_events(
        [Event("ann", "opted_in", NOW - timedelta(minutes=30), "old-optin")], received_at=NOW
    )
    assert [h.reason for h in store.address_hits("ann")] == ["opted_out"]


def test_a_late_opt_out_older_than_a_later_opt_in_suppresses_nothing(store: SqlStore) -> None:
    """By event time, as the ledger's own fold: the opt-in at -10 min is the customer's
    latest word, so an opt-out of -30 min that arrives after it changes nothing; one of
    -5 min does."""
    store.put_profile(CustomerProfile("ann", timezone="America/Chicago", phones=(PHONE,)))
    store.put_profile(
        CustomerProfile("crm-9", timezone="America/Chicago", phones=("+1 312 555 0142",))
    )
    store.add_events(
        [Event("ann", "opted_in", NOW - timedelta(minutes=10), "optin")], received_at=NOW
    )
    store.add_events([optout("ann", 30)], received_at=NOW)
    assert store.address_hits("ann") == []
    assert decide(store, ContactProposal("crm-9", "sms", "service")) is Verdict.ALLOW
    # A scoped opt-out older than the (scopeless) opt-in: lifted as well.
    store.add_events([optout("ann", 20, channel="sms")], received_at=NOW)
    assert store.address_hits("ann") == []
    # Same instant: the suppression wins, as in the fold.
    store.add_events([optout("ann", 10, channel="call")], received_at=NOW)
    assert [(h.channel, h.reason) for h in store.address_hits("ann")] == [("call", "unsubscribed")]
    # Newer than the opt-in: in force.
    store.add_events([optout("ann", 5)], received_at=NOW)
    assert decide(store, ContactProposal("crm-9", "sms", "marketing")) is Verdict.DENY


def test_a_scoped_opt_in_lifts_only_its_scope_against_late_opt_outs(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("ann", emails=(EMAIL,)))
    store.add_events(
        [Event("ann", "subscribed", NOW - timedelta(minutes=10), "sub", {"channel": "email"})],
        received_at=NOW,
    )
    # Late: an email unsubscribe from before the re-subscribe, and an opt-out of everything.
    store.add_events([optout("ann", 30, channel="email")], received_at=NOW)
    store.add_events([optout("ann", 20)], received_at=NOW)
    assert [(h.channel, h.reason) for h in store.address_hits("ann")] == [(None, "opted_out")]


def test_suppression_tables_hold_no_raw_address(store: SqlStore) -> None:
    store.put_profile(
        CustomerProfile("ann", timezone="America/Chicago", phones=(PHONE,), emails=(EMAIL,))
    )
    store.add_events([optout("ann", 5)], received_at=NOW)
    store.erase("ann", now=NOW)
    text = table_text(store, address_suppressions, suppressions, identity_log)
    assert text.count("opted_out") == 2  # the phone and the email, global scope
    # Keys are 64-digit hex digests; a digest may hold "555" by chance, so they are
    # checked for shape and taken out before looking for the address in what is left.
    digests = re.findall(r"'([0-9a-f]{64})'", text)
    assert len(digests) >= 2
    rest = re.sub(r"'[0-9a-f]{64}'", "'<digest>'", text)
    for raw in ("3125550142", "555", "ann@", "example.com", "ANN@"):
        assert raw not in rest


def test_erasure_keeps_the_address_hashes(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("ann", phones=(PHONE,), emails=(EMAIL,)))
    store.add_events([optout("ann", 5, channel="email")], received_at=NOW)
    before = table_text(store, address_suppressions)
    assert store.erase("ann", now=NOW)
    after = table_text(store, address_suppressions)
    assert all(line in after for line in before.splitlines())
    with store.engine.connect() as conn:
        assert conn.execute(select(customers)).first() is None
    # Erasure itself suppresses every address of the customer, for everything.
    store.put_profile(CustomerProfile("again", timezone="America/Chicago", phones=(PHONE,)))
    assert decide(store, ContactProposal("again", "sms", "marketing")) is Verdict.DENY
    assert decide(store, ContactProposal("again", "sms", "transactional")) is Verdict.ALLOW


def test_cold_outreach_to_an_unknown_address_gets_a_pseudo_customer(store: SqlStore) -> None:
    cid = store.customer_for_address("phone", "+1 312 555 0177", create=True)
    assert cid is not None and cid.startswith("addr:phone:") and "0177" not in cid
    assert store.customer_for_address("phone", "+13125550177", create=False) == cid
    store.put_profile(CustomerProfile("crm-1", phones=("+13125550177",)))
    # The record that now holds the number absorbed the pseudo customer.
    assert store.identity(cid).canonical_id == "crm-1"
    assert store.customer_for_address("phone", "+13125550177", create=False) == "crm-1"
