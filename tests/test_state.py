"""Folding a customer's ledger: sessions, checkout, snooze, call-back, declines, engagement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    CustomerState,
    Event,
    Outcome,
    Trigger,
)
from tactful.state import SESSION_TIMEOUT, LedgerContact, LedgerEvent, Scope
from tests.rules.conftest import CHICAGO, DAY, HOUR, MINUTE, TUESDAY, contact, ev, state, ts

T = TUESDAY
SECOND = timedelta(seconds=1)


# -- sessions ---------------------------------------------------------------------------------


def test_sessions_by_id_even_when_interleaved() -> None:
    st = state(
        ev("session_started", T, session_id="a"),
        ev("session_started", T + MINUTE, session_id="b"),
        ev("page_viewed", T + 2 * MINUTE, session_id="a"),
        ev("page_viewed", T + 3 * MINUTE, session_id="b"),
        ev("session_ended", T + 4 * MINUTE, session_id="a"),
    )
    a, b = st.derived.sessions
    assert (a.key, a.start, a.last, a.ended) == (
        "id:a",
        ts(T),
        ts(T + 4 * MINUTE),
        ts(T + 4 * MINUTE),
    )
    assert (b.key, b.start, b.last, b.ended) == ("id:b", ts(T + MINUTE), ts(T + 3 * MINUTE), None)
    assert a.duration == 240.0
    # After a ended, the latest visit started is b, still live.
    assert st.session_at(ts(T + 5 * MINUTE)) is b
    assert st.last_session_before(ts(T + 30 * SECOND)) is a
    assert st.session_at(ts(T + 40 * MINUTE)) is None


def test_sessions_by_thirty_minute_gap_without_ids() -> None:
    st = state(
        ev("page_viewed", T),
        ev("page_viewed", T + 29 * MINUTE),
        ev("page_viewed", T + 59 * MINUTE),  # 30 min after the last: same visit
        ev("page_viewed", T + 89 * MINUTE + SECOND),  # 30 min 1 s: a new visit
    )
    first, second = st.derived.sessions
    assert first.start == ts(T) and first.last == ts(T + 59 * MINUTE)
    assert second.start == ts(T + 89 * MINUTE + SECOND)
    # Live up to exactly 30 minutes after its last activity, then over.
    assert st.session_at(ts(T + 59 * MINUTE) + SESSION_TIMEOUT) is first
    assert st.session_at(ts(T + 59 * MINUTE) + SESSION_TIMEOUT + 0.5) is None
    assert st.session_at(ts(T + 89 * MINUTE + SECOND)) is second


def test_a_session_started_event_without_id_always_opens_a_new_visit() -> None:
    st = state(ev("session_started", T), ev("session_started", T + MINUTE))
    assert len(st.derived.sessions) == 2


def test_a_session_end_closes_the_gap_session() -> None:
    st = state(
        ev("page_viewed", T), ev("session_ended", T + MINUTE), ev("page_viewed", T + 2 * MINUTE)
    )
    first, second = st.derived.sessions
    assert first.ended == ts(T + MINUTE)
    assert not first.active_at(ts(T + MINUTE))
    assert second.start == ts(T + 2 * MINUTE)


def test_non_activity_events_do_not_make_a_session() -> None:
    st = state(ev("opted_in", T), ev("contact_replied", T + MINUTE))
    assert st.derived.sessions == []
    assert st.last_activity(ts(T + HOUR)) is None


def test_session_facts() -> None:
    st = state(
        ev("session_started", T, session_id="s"),
        ev("content_downloaded", T + 10 * SECOND, session_id="s"),
        ev("help_requested", T + 20 * SECOND, session_id="s"),
        ev("chat_dismissed", T + 30 * SECOND, session_id="s"),
    )
    (s,) = st.derived.sessions
    assert s.engaged_at == ts(T + 10 * SECOND)  # the first help request or download
    assert s.chat_dismissed_at == ts(T + 30 * SECOND)


# -- checkout ---------------------------------------------------------------------------------


def test_checkout_open_then_closed_by_the_order() -> None:
    st = state(ev("checkout_started", T, session_id="s"))
    (s,) = st.derived.sessions
    assert s.checkout_started_at == ts(T)
    assert st.derived.checkouts == [ts(T)] and st.derived.orders == []
    st.add_event(ev("order_completed", T + 5 * MINUTE, session_id="s"))
    (s,) = st.derived.sessions
    assert s.checkout_started_at is None
    assert st.first_event_after("order_completed", ts(T)) == ts(T + 5 * MINUTE)
    assert st.last_event("checkout_started", ts(T + HOUR)) == ts(T)


# -- customer-set pace ----------------------------------------------------------------------------


def test_snooze_until_duration_and_the_latest_wins() -> None:
    st = state(ev("snooze_requested", T, duration="3 weeks"))
    assert st.derived.snooze == (ts(T), ts(T + timedelta(weeks=3)))
    st.add_event(ev("snooze_requested", T + DAY, until="2027-01-01T00:00:00Z"))
    assert st.derived.snooze == (
        ts(T + DAY),
        ts(datetime.fromisoformat("2027-01-01T00:00:00+00:00")),
    )
    st.add_event(ev("snooze_requested", T + 2 * DAY))  # no end: lifts it
    assert st.derived.snooze is None


def test_callback_requested_and_cancelled() -> None:
    when = datetime(2026, 12, 8, 10, 30, tzinfo=CHICAGO)
    st = state(ev("callback_requested", T, at=when.isoformat(), channel="call"))
    assert st.derived.callback == (ts(T), ts(when), "call")
    st.add_event(ev("callback_requested", T + HOUR, callback_at=(when + DAY).isoformat()))
    assert st.derived.callback == (ts(T + HOUR), ts(when + DAY), None)
    st.add_event(ev("callback_requested", T + 2 * HOUR, cancelled=True))
    assert st.derived.callback is None


def test_declines_keep_their_offer() -> None:
    st = state(ev("offer_declined", T, offer="gold"), ev("not_interested", T + HOUR))
    assert st.derived.declines == [(ts(T), "gold"), (ts(T + HOUR), None)]


# -- consent scopes -------------------------------------------------------------------------------


def test_opt_out_scopes() -> None:
    st = state(
        ev("unsubscribed", T, channel="email"),
        ev("unsubscribed", T, purpose="marketing"),
        ev("complained", T + MINUTE),
    )
    assert set(st.derived.optouts) == {("email", None), (None, "marketing"), ("email", "marketing")}
    hit = st.optout_covering("email", "marketing")
    assert hit is not None and hit[2] == Scope("email", None)  # the earliest covering one
    assert st.optout_covering("sms", "sales") is None
    st.add_event(ev("opted_in", T + HOUR))
    assert st.derived.optouts == {}


# -- engagement ---------------------------------------------------------------------------------


def test_engagement_from_events_and_from_contact_outcomes() -> None:
    st = state(ev("page_viewed", T), ev("contact_replied", T + HOUR))
    assert st.derived.engagements == [ts(T + HOUR)]
    st.add_contact(contact("call", "sales", T + 2 * HOUR, contact_id="k", outcome=Outcome.ANSWERED))
    assert st.last_engagement(ts(T + 3 * HOUR)) == ts(T + 2 * HOUR)


def test_an_outcome_recorded_later_refreshes_engagement() -> None:
    st = state(contact("call", "sales", T, contact_id="k"))
    assert st.last_engagement(ts(T + HOUR)) is None
    st.add_contact(contact("call", "sales", T, contact_id="k", outcome=Outcome.REPLIED))
    assert st.last_engagement(ts(T + HOUR)) == ts(T)
    st.add_contact(contact("call", "sales", T, contact_id="k", outcome=Outcome.NO_ANSWER))
    assert st.last_engagement(ts(T + HOUR)) is None


# -- duplicates, late arrivals, ties --------------------------------------------------------------


def test_duplicate_event_ids_count_once() -> None:
    st = state()
    assert st.add_event(ev("page_viewed", T, "e1"))
    assert not st.add_event(ev("page_viewed", T, "e1"))
    assert not st.add_event(ev("opted_out", T + HOUR, "e1"))  # the id decides, not the content
    assert len(st.events) == 1 and st.derived.optouts == {}
    # Events without an id cannot be told apart: both are kept.
    st.add_event(ev("page_viewed", T))
    st.add_event(ev("page_viewed", T))
    assert len(st.events) == 3


def test_late_events_are_folded_by_event_time() -> None:
    st = state(ev("page_viewed", T + HOUR))
    st.add_event(ev("page_viewed", T))
    st.add_event(ev("page_viewed", T + 30 * MINUTE))
    assert [e.ts for e in st.events] == [ts(T), ts(T + 30 * MINUTE), ts(T + HOUR)]
    assert st.last_activity(ts(T + 45 * MINUTE)) == ts(T + 30 * MINUTE)
    # One visit: each gap is 30 minutes.
    assert len(st.derived.sessions) == 1


def test_same_instant_events_fold_in_a_fixed_order() -> None:
    a = [
        ev("session_ended", T, session_id="s"),
        ev("opted_in", T),
        ev("page_viewed", T, session_id="s"),
        ev("opted_out", T),
        ev("session_started", T, session_id="s"),
    ]
    one, other = (
        CustomerState(CustomerProfile("c"), a),
        CustomerState(CustomerProfile("c"), a[::-1]),
    )
    assert [e.kind for e in one.events] == [e.kind for e in other.events]
    assert one.events[0].kind == "session_started"
    assert one.events[-1].kind == "session_ended"
    # The opt-out wins a tie with an opt-in: when in doubt, do not contact.
    assert one.optout_covering("email", "marketing") is not None
    assert other.optout_covering("email", "marketing") is not None


def test_same_instant_contacts_fold_in_a_fixed_order() -> None:
    x = contact("call", "sales", T, contact_id="x", outcome=Outcome.NO_ANSWER)
    y = contact("call", "sales", T, contact_id="y", outcome=Outcome.ANSWERED)
    one, other = state(x, y), state(y, x)
    assert (
        [c.contact_id for c in one.contacts] == [c.contact_id for c in other.contacts] == ["x", "y"]
    )


# -- contacts ---------------------------------------------------------------------------------


def test_a_contact_is_replaced_by_id_and_kept_in_time_order() -> None:
    st = state(
        contact("email", "marketing", T, contact_id="a"),
        contact("email", "marketing", T + HOUR, contact_id="b"),
    )
    st.add_contact(contact("email", "marketing", T + 2 * HOUR, contact_id="a"))
    assert [c.contact_id for c in st.contacts] == ["b", "a"]
    assert st.contact("a") is not None and st.contact("zzz") is None


@pytest.mark.parametrize(
    "proposal",
    [
        ContactProposal("c1", "email", "marketing", at=T),
        ContactProposal(
            "c1",
            "call",
            "sales",
            at=T,
            trigger=Trigger("checkout_started", T - HOUR),
            offer="o",
            campaign="spring",
            source="crm",
            content=Content("s", "b", True, ("greeting",)),
            tags={"account": "42"},
        ),
        ContactProposal("c1", "call", "service", at=T, trigger=Trigger("callback_requested")),
    ],
)
@pytest.mark.parametrize("outcome", [None, "voicemail", "declined"])
def test_a_sent_contact_from_its_proposal_is_the_contact_a_replay_would_make(
    proposal: ContactProposal, outcome: str | None
) -> None:
    made = Contact.from_proposal("row:7", proposal, T, status=ContactStatus.SENT, outcome=outcome)
    assert LedgerContact.sent("row:7", proposal, ts(T), outcome) == LedgerContact.of(made)


def test_a_contact_known_to_be_new_is_added_as_add_contact_would() -> None:
    made = [contact("email", "marketing", T + i * HOUR, contact_id=f"row:{i}") for i in range(3)]
    slow, fast = state(), state()
    for c in made:
        slow.add_contact(c)
        fast.add_ledger_contact(LedgerContact.of(c), new=True)
        # The same facts memoised and extended along the way.
        assert fast.hold_epoch(ts(T)) == slow.hold_epoch(ts(T))
    assert fast.contacts == slow.contacts


@pytest.mark.parametrize(
    ("status", "expires", "at", "counts"),
    [
        (ContactStatus.SENT, None, T + DAY, True),
        (ContactStatus.HELD, None, T + DAY, True),
        (ContactStatus.HELD, T + HOUR, T + 30 * MINUTE, True),
        (ContactStatus.HELD, T + HOUR, T + HOUR, False),
        (ContactStatus.CANCELLED, None, T, False),
    ],
)
def test_counts_at(
    status: ContactStatus, expires: datetime | None, at: datetime, counts: bool
) -> None:
    c = LedgerContact.of(contact("email", "marketing", T, status=status, hold_expires=expires))
    assert c.counts_at(ts(at)) is counts


def test_requested_and_unanswered_flags() -> None:
    c = LedgerContact.of(
        contact("call", "service", T, trigger="callback_requested", outcome="voicemail")
    )
    assert c.requested and c.unanswered


def test_copy_is_independent() -> None:
    st = state(ev("page_viewed", T), contact("email", "marketing", T))
    assert st.derived.activity == [ts(T)]
    other = st.copy()
    other.add_event(ev("opted_out", T + HOUR))
    other.add_contact(Contact("only-in-the-copy", "c", "email", "marketing", T + HOUR))
    assert st.derived.optouts == {} and len(st.contacts) == 1
    assert other.derived.optouts != {} and len(other.contacts) == 2


# -- memoised facts ------------------------------------------------------------------------


def test_hold_epoch_counts_the_hold_expiries_passed() -> None:
    st = state(
        contact("email", "marketing", T, status=ContactStatus.HELD, hold_expires=T + HOUR),
        contact("sms", "marketing", T, status=ContactStatus.HELD, hold_expires=T + 2 * HOUR),
        contact("call", "sales", T, status=ContactStatus.HELD, hold_expires=T + HOUR),
        contact("push", "marketing", T),
    )
    epochs = [st.hold_epoch(ts(at)) for at in (T, T + HOUR - SECOND, T + HOUR, T + 3 * HOUR)]
    assert epochs == [0, 0, 1, 2]  # which contacts count changes only at an expiry
    assert state(contact("push", "marketing", T)).hold_epoch(ts(T + DAY)) == 0


def test_a_copy_shares_memoised_facts_until_either_changes() -> None:
    st = state(contact("email", "marketing", T))
    st.memo["fact"] = 1
    other = st.copy()
    assert other.memo is st.memo
    other.add_contact(Contact("only-in-the-copy", "c", "email", "marketing", T + HOUR))
    assert other.memo == {} and st.memo == {"fact": 1}  # replaced, not cleared
    st.add_event(ev("page_viewed", T))
    assert st.memo == {}


def test_a_new_profile_forgets_memoised_facts() -> None:
    st = state()
    st.memo["zones"] = "stale"
    st.profile = CustomerProfile("c", timezone="Europe/Paris")
    assert st.memo == {}


def test_a_pickled_state_leaves_its_memo_behind() -> None:
    import pickle

    st = state(ev("page_viewed", T), contact("email", "marketing", T))
    st.memo["fact"] = object()
    back = pickle.loads(pickle.dumps(st))
    assert back.memo == {} and len(back.contacts) == 1 and back.derived.activity == [ts(T)]


def test_events_keep_their_properties() -> None:
    e = Event("c", "page_viewed", T, "p1", {"url": "/pricing"})
    st = CustomerState(CustomerProfile("c"), [e])
    assert st.events[0].properties == {"url": "/pricing"} and st.events[0].event_id == "p1"


def test_an_event_in_the_ledger_form_folds_as_the_event() -> None:
    """The replay adds events as `LedgerEvent`s: the same ledger, facts and duplicates."""
    events = [
        ev("session_started", T, "e1", session_id="s1"),
        ev("page_viewed", T + MINUTE, "e2", session_id="s1"),
        ev("opted_out", T + HOUR, "e3", channel="sms"),
        ev("page_viewed", T + MINUTE, "e2", session_id="s1"),  # a duplicate id
    ]
    st = state(*events)
    ledger = CustomerState(CustomerProfile("c", timezone="America/Chicago", country="US"))
    added = [
        ledger.add_ledger_event(LedgerEvent(e.at.timestamp(), e.kind, e.event_id, e.properties))
        for e in events
    ]
    assert added == [True, True, True, False]
    assert ledger.events == st.events and ledger.derived == st.derived


# -- facts of the contacts alone ----------------------------------------------------------


def _counting_facts(st: CustomerState) -> tuple[list[str], list[list[str]]]:
    """A contact fact that records when it is built and when it is extended."""
    built: list[list[str]] = []

    def build(contacts: Sequence[LedgerContact]) -> list[str]:
        built.append([c.contact_id for c in contacts])
        return [c.contact_id for c in contacts]

    extended: list[str] = []

    def extend(ids: list[str], added: Sequence[LedgerContact]) -> list[str]:
        extended.extend(c.contact_id for c in added)
        return ids + [c.contact_id for c in added]

    st.contact_fact(("ids",), build, extend)
    return extended, built


def test_contact_facts_are_kept_when_an_event_arrives() -> None:
    st = state(contact("email", "marketing", T, contact_id="a"))
    st.contact_memo["fact"] = 1
    st.add_event(ev("page_viewed", T + HOUR))
    assert st.contact_memo == {"fact": 1} and st.memo == {}
    st.add_contact(contact("email", "marketing", T + DAY, contact_id="b"))
    assert st.contact_memo == {}


def test_contact_facts_are_extended_when_contacts_are_only_appended() -> None:
    st = state(contact("email", "marketing", T, contact_id="a"))
    extended, built = _counting_facts(st)
    assert built == [["a"]]
    # Sent and later than every other: extended from the contacts added, twice in a row.
    st.add_contact(contact("email", "marketing", T + HOUR, contact_id="b"))
    st.add_contact(contact("sms", "marketing", T + 2 * HOUR, contact_id="c"))
    extended, built = _counting_facts(st)
    assert (extended, built) == (["b", "c"], [])
    assert st.contact_memo[("ids",)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "change",
    [
        contact("email", "marketing", T - HOUR, contact_id="early"),  # before the others
        contact("email", "marketing", T, contact_id="same-instant"),  # not strictly later
        contact(
            "email", "marketing", T + HOUR, status=ContactStatus.HELD, hold_expires=T + DAY
        ),  # a hold brings an expiry: epochs change meaning
        contact("email", "marketing", T + HOUR, contact_id="a", outcome="answered"),  # replaced
    ],
    ids=["earlier", "same-instant", "held", "replaced"],
)
def test_contact_facts_are_built_afresh_after_any_other_change(change: Contact) -> None:
    st = state(contact("email", "marketing", T, contact_id="a"))
    _counting_facts(st)
    st.add_contact(change)
    extended, built = _counting_facts(st)
    assert extended == [] and built == [[c.contact_id for c in st.contacts]]
    # And a later append extends from there.
    st.add_contact(contact("sms", "marketing", T + DAY, contact_id="z"))
    extended, built = _counting_facts(st)
    assert (extended, built) == (["z"], [])


def test_a_copy_extends_contact_facts_without_touching_its_original() -> None:
    st = state(contact("email", "marketing", T, contact_id="a"))
    _counting_facts(st)
    other = st.copy()
    assert other.contact_memo is st.contact_memo
    other.add_contact(contact("email", "marketing", T + HOUR, contact_id="b"))
    st.add_contact(contact("sms", "marketing", T + 2 * HOUR, contact_id="c"))
    assert _counting_facts(other) == (["b"], [])
    assert _counting_facts(st) == (["c"], [])
    assert other.contact_fact(("ids",), lambda cs: []) == ["a", "b"]
    assert st.contact_fact(("ids",), lambda cs: []) == ["a", "c"]


def test_opt_out_facts_outlast_contacts_and_visits_not_opt_outs_or_a_new_profile() -> None:
    import pickle

    st = state(ev("page_viewed", T))
    st.signal_memo["fact"] = kept = object()
    st.add_event(Event("c", "page_viewed", T + MINUTE))
    st.add_event(Event("c", "session_ended", T + 2 * MINUTE))
    st.add_event(Event("c", "offer_declined", T + 3 * MINUTE))
    st.add_contact(contact("email", "marketing", T + 4 * MINUTE, outcome="declined"))
    assert st.signal_memo["fact"] is kept and st.memo == {}
    copy = st.copy()
    assert copy.signal_memo is st.signal_memo
    for change in (
        lambda s: s.add_event(Event("c", "opted_out", T + HOUR)),
        lambda s: s.add_event(Event("c", "unsubscribed", T + HOUR)),
        lambda s: s.add_event(Event("c", "subscribed", T + HOUR)),
        # Out of order: the whole fold is redone.
        lambda s: s.add_event(Event("c", "page_viewed", T - HOUR)),
        lambda s: setattr(s, "profile", CustomerProfile("c", consent={"email": False})),
    ):
        changed = copy.copy()
        change(changed)
        assert changed.signal_memo == {}, "a change to the opt-outs or the profile"
        assert copy.signal_memo["fact"] is kept, "the state it was copied from keeps its facts"
    assert pickle.loads(pickle.dumps(st)).signal_memo == {}


def test_a_pickled_state_and_a_new_profile_leave_contact_facts_behind() -> None:
    import pickle

    st = state(contact("email", "marketing", T))
    _counting_facts(st)
    back = pickle.loads(pickle.dumps(st))
    assert back.contact_memo == {} and back._prefix == {}
    st.profile = CustomerProfile("c", timezone="Europe/Paris")
    assert st.contact_memo == {} and st._prefix == {}
