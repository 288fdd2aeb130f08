"""Invariants of the core, checked with Hypothesis under the default `courtesy` policy:

- a cap (or a gap) is never exceeded by any sequence of allowed contacts;
- at `not_before` the same proposal is allowed, if nothing else happens, and not before;
- decisions do not depend on the order in which the ledger's entries arrived.
"""

from __future__ import annotations

import bisect
import copy
import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    CustomerState,
    Decision,
    Engine,
    Event,
    Outcome,
    Policy,
    Trigger,
    Verdict,
)
from tactful.engine import decide, pressure
from tactful.rules.base import contact_key
from tactful.rules.cap import CapRule
from tactful.rules.gap import GapRule
from tactful.state import Derived, LedgerContact
from tests.conftest import CHICAGO, Clock

COURTESY = Policy.load("courtesy")
#: Tuesday 17 November 2026, 08:00 in Chicago.
START = datetime(2026, 11, 17, 8, 0, tzinfo=CHICAGO)
NOW = datetime(2026, 11, 17, 14, 0, tzinfo=CHICAGO)
#: Raise for a long local hunt: TACTFUL_PROPERTY_EXAMPLES=5000 pytest tests/test_properties.py
FAST = settings(
    max_examples=int(os.environ.get("TACTFUL_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CHANNELS = ("email", "sms", "call", "push", "chat", "in_app")
PURPOSES = ("marketing", "sales", "service", "transactional")
BROWSING = ("signed_in", "page_viewed", "product_viewed", "content_downloaded", "checkout_started")
PROFILES = (
    CustomerProfile("ann", timezone="America/Chicago", country="US"),
    CustomerProfile("ann", timezone="Europe/Paris", country="FR"),
    # An Idaho number: two zones, US holidays from the number's region.
    CustomerProfile("ann", phones=("+12085550100",)),
)


# -- 1. caps and gaps are never exceeded ----------------------------------------------------------


@dataclass(frozen=True)
class Step:
    wait: timedelta  # clock advance before the proposal
    ahead: timedelta  # a future `at`, or zero for "now"
    channel: str
    purpose: str
    trigger: str | None
    outcome: str | None
    follow: bool  # on a defer, come back at `not_before` (where a cap is exactly full)


steps = st.builds(
    Step,
    wait=st.one_of(
        st.just(timedelta(0)),
        st.integers(1, 4 * 24 * 60).map(lambda m: timedelta(minutes=m)),
    ),
    ahead=st.one_of(
        st.just(timedelta(0)),
        st.integers(1, 5 * 24).map(lambda h: timedelta(hours=h)),
    ),
    channel=st.sampled_from(("email", "sms", "call")),
    purpose=st.sampled_from(("marketing", "sales")),
    trigger=st.one_of(st.none(), st.sampled_from(BROWSING[:4])),
    outcome=st.sampled_from((None, Outcome.NO_ANSWER, Outcome.ANSWERED, Outcome.DELIVERED)),
    follow=st.booleans(),
)


def _rolling_caps() -> list[CapRule]:
    return [r for r in COURTESY.rules if isinstance(r, CapRule) and isinstance(r.window, float)]


def _counted(
    rule: CapRule | GapRule, contacts: list[LedgerContact]
) -> dict[tuple[Any, ...], list[float]]:
    """The sent contacts a rule counts, grouped by its `per` keys, as sorted times."""
    groups: dict[tuple[Any, ...], list[float]] = {}
    for c in contacts:
        if c.requested or not rule.scope.counts(c, rule.exempt):
            continue
        key = tuple(contact_key(c, f) for f in rule.per)
        bisect.insort(groups.setdefault(key, []), c.ts)
    return groups


@FAST
@given(profile=st.sampled_from(PROFILES), plan=st.lists(steps, min_size=5, max_size=30))
def test_no_cap_or_gap_is_ever_exceeded(profile: CustomerProfile, plan: list[Step]) -> None:
    clock = Clock(START)
    engine = Engine(COURTESY, clock=clock)
    engine.profile(profile)
    downloaded = START - timedelta(days=2)
    for kind in BROWSING[:4]:
        engine.record(Event("ann", kind, downloaded, event_id=kind))
    for step in plan:
        clock.advance(seconds=step.wait.total_seconds())
        trigger = Trigger(step.trigger, downloaded) if step.trigger else None
        at = clock.now + step.ahead if step.ahead else None
        proposal = ContactProposal("ann", step.channel, step.purpose, at=at, trigger=trigger)
        d = engine.decide(proposal)
        if d.verdict is Verdict.DEFER and step.follow and d.not_before is not None:
            clock.set(max(clock.now, d.not_before))
            d = engine.decide(proposal)
        if d.verdict is Verdict.ALLOW:
            assert d.decision_id is not None
            engine.sent(d.decision_id)
            if step.outcome is not None:
                engine.outcome(d.decision_id, step.outcome)

    sent = [c for c in engine.state("ann").contacts if c.status is ContactStatus.SENT]
    event(f"sent: {min(len(sent) // 3 * 3, 12)}+")
    for cap in _rolling_caps():
        window = cap.window
        assert isinstance(window, float)
        for times in _counted(cap, sent).values():
            for x in times:  # the fullest windows end at a contact
                inside = bisect.bisect_right(times, x) - bisect.bisect_right(times, x - window)
                assert inside <= cap.count, (cap.id, [t - times[0] for t in times])
    for gap in (r for r in COURTESY.rules if isinstance(r, GapRule)):
        for times in _counted(gap, sent).values():
            assert all(b - a >= gap.gap for a, b in pairwise(times)), gap.id


# -- random customer states -----------------------------------------------------------------------

minutes_before = st.one_of(
    st.sampled_from((0, 1, 5, 30, 45, 90, 24 * 60)),  # shared instants make ties likely
    st.integers(0, 21 * 24 * 60),
)
micro = st.one_of(st.just(0), st.integers(0, 999_999))


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(
        st.sampled_from(
            (
                "session_started",
                "page_viewed",
                "product_viewed",
                "signed_in",
                "checkout_started",
                "order_completed",
                "content_downloaded",
                "help_requested",
                "chat_dismissed",
                "session_ended",
                "offer_declined",
                "not_interested",
                "contact_replied",
                "snooze_requested",
                "callback_requested",
                "unsubscribed",
                "subscribed",
                "opted_out",
                "opted_in",
                "complained",
            )
        )
    )
    at = NOW - timedelta(minutes=draw(minutes_before), microseconds=draw(micro))
    props: dict[str, Any] = {}
    if draw(st.booleans()):
        props["session_id"] = draw(st.sampled_from(("s1", "s2")))
    if kind == "offer_declined":
        props["offer"] = draw(st.sampled_from(("gold", "silver")))
    elif kind == "snooze_requested":
        props["duration"] = draw(st.sampled_from(("1h", "2d", "21d")))
    elif kind == "callback_requested":
        props["at"] = (NOW + timedelta(hours=draw(st.integers(-48, 24 * 10)))).isoformat()
    elif kind in ("unsubscribed", "subscribed", "complained", "opted_out", "opted_in"):
        if draw(st.booleans()):
            props["channel"] = draw(st.sampled_from(("email", "sms", "call")))
        if draw(st.booleans()):
            props["purpose"] = draw(st.sampled_from(("marketing", "sales")))
    return Event("ann", kind, at, event_id=None, properties=props)


@st.composite
def contacts(draw: st.DrawFn) -> Contact:
    at = NOW + timedelta(
        minutes=draw(
            st.one_of(st.sampled_from((0, -60, -24 * 60)), st.integers(-14 * 24 * 60, 2 * 24 * 60))
        ),
        microseconds=draw(micro),
    )
    status = draw(
        st.sampled_from((ContactStatus.SENT, ContactStatus.HELD, ContactStatus.CANCELLED))
    )
    expires = (
        at + timedelta(minutes=draw(st.integers(1, 120))) if status is ContactStatus.HELD else None
    )
    return Contact(
        contact_id=f"k{draw(st.integers(0, 10**9))}",
        customer_id="ann",
        channel=draw(st.sampled_from(CHANNELS)),
        purpose=draw(st.sampled_from(PURPOSES)),
        at=at,
        status=status,
        hold_expires=expires,
        outcome=draw(
            st.sampled_from(
                (None, "no_answer", "voicemail", "answered", "replied", "delivered", "declined")
            )
        ),
        trigger_event=draw(
            st.sampled_from((None, "signed_in", "callback_requested", "checkout_started"))
        ),
        offer=draw(st.sampled_from((None, "gold"))),
        flags=draw(st.sampled_from(((), ("greeting",)))),
    )


@st.composite
def proposals(draw: st.DrawFn, ledger: list[Event]) -> ContactProposal:
    trigger = None
    if draw(st.booleans()):
        kind = draw(st.sampled_from((*BROWSING, "callback_requested", "help_requested")))
        # A trigger with its time, or one the ledger knows: an unknown trigger is taken to
        # happen at decision time (see tests/rules/test_trigger.py), which moves with `now`.
        known = any(e.kind == kind for e in ledger)
        at = (
            None if known and draw(st.booleans()) else NOW - timedelta(minutes=draw(minutes_before))
        )
        trigger = Trigger(kind, at)
    content = None
    if draw(st.booleans()):
        content = Content(
            subject=draw(st.sampled_from((None, "Hello", "URGENT: read"))),
            discount=draw(st.booleans()),
            flags=draw(st.sampled_from(((), ("greeting",)))),
        )
    ahead = draw(st.sampled_from((None, 0, 30, 24 * 60, 5 * 24 * 60)))
    return ContactProposal(
        "ann",
        draw(st.sampled_from(CHANNELS)),
        draw(st.sampled_from(PURPOSES)),
        at=None if ahead is None else NOW + timedelta(minutes=ahead),
        trigger=trigger,
        offer=draw(st.sampled_from((None, "gold", "silver"))),
        content=content,
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[CustomerProfile, list[Event], list[Contact], ContactProposal]:
    profile = draw(st.sampled_from(PROFILES))
    ledger = draw(st.lists(events(), max_size=12))
    made = draw(st.lists(contacts(), max_size=10, unique_by=lambda c: c.contact_id))
    return profile, ledger, made, draw(proposals(ledger))


# -- 2. not_before really is allowed --------------------------------------------------------------


@FAST
@given(scenarios())
def test_at_not_before_the_same_proposal_is_allowed(
    scenario: tuple[CustomerProfile, list[Event], list[Contact], ContactProposal],
) -> None:
    profile, ledger, made, proposal = scenario
    state = CustomerState(profile, ledger, made)
    first = decide(state, proposal, COURTESY, NOW)
    event(f"first: {first.verdict.value}")
    if first.verdict is not Verdict.DEFER:
        return
    assert first.not_before is not None and first.not_before > NOW
    again = decide(state, proposal, COURTESY, first.not_before)
    assert again.verdict is Verdict.ALLOW, (first, again)


@FAST
@given(scenarios())
def test_not_before_is_the_earliest_allowed_instant(
    scenario: tuple[CustomerProfile, list[Event], list[Contact], ContactProposal],
) -> None:
    """Asked from the same `now` "may I do it a millisecond before `not_before`?": no."""
    profile, ledger, made, proposal = scenario
    state = CustomerState(profile, ledger, made)
    first = decide(state, proposal, COURTESY, NOW)
    if first.verdict is not Verdict.DEFER or first.not_before is None:
        return
    earlier = first.not_before - timedelta(milliseconds=1)
    if earlier <= first.at:
        return
    d = decide(state, replace(proposal, at=earlier), COURTESY, NOW)
    assert d.verdict is not Verdict.ALLOW, (first, d)


# -- 3. decisions do not depend on arrival order --------------------------------------------------


def _summary(d: Decision) -> tuple[Any, ...]:
    return (
        d.verdict,
        d.not_before,
        tuple((r.rule, r.message, r.until) for r in d.reasons),
        tuple(r.rule for r in d.flags),
    )


@FAST
@given(scenario=scenarios(), data=st.data())
def test_decisions_do_not_depend_on_arrival_order(
    scenario: tuple[CustomerProfile, list[Event], list[Contact], ContactProposal],
    data: st.DataObject,
) -> None:
    profile, ledger, made, proposal = scenario
    # Some entries arrive twice (a retried delivery): same id, same content.
    dupes = data.draw(st.lists(st.sampled_from(ledger), max_size=3)) if ledger else []
    with_ids = [
        Event(e.customer_id, e.kind, e.at, f"e{i}", e.properties) for i, e in enumerate(ledger)
    ]
    retried = [with_ids[ledger.index(e)] for e in dupes]
    arrivals = data.draw(st.permutations(with_ids + retried))
    contact_arrivals = data.draw(st.permutations(made))

    one = CustomerState(profile, with_ids, made)
    other = CustomerState(profile, arrivals, contact_arrivals)
    assert [(e.ts, e.kind) for e in one.events] == [(e.ts, e.kind) for e in other.events]
    assert _summary(decide(one, proposal, COURTESY, NOW)) == _summary(
        decide(other, proposal, COURTESY, NOW)
    )
    # Events without ids (told apart by content alone), in two orders, fold the same too.
    plain = CustomerState(profile, ledger, made)
    shuffled = CustomerState(profile, data.draw(st.permutations(ledger)), made)
    assert _summary(decide(plain, proposal, COURTESY, NOW)) == _summary(
        decide(shuffled, proposal, COURTESY, NOW)
    )


# -- the incremental fold ---------------------------------------------------------------------


def _refolded(state: CustomerState) -> Derived:
    fresh = CustomerState(state.profile)
    fresh.events, fresh.contacts = list(state.events), list(state.contacts)
    return fresh.derived


@given(
    items=st.lists(
        st.tuples(
            st.one_of(events(), contacts()),
            st.integers(0, 3),  # contact id: a few, so contacts get replaced too
            st.booleans(),  # look at the facts after this item
            st.booleans(),  # fork: go on with a copy taken before this item
        ),
        max_size=40,
    )
)
@settings(max_examples=300, deadline=None)
def test_folding_as_the_ledger_grows_gives_the_facts_of_a_fresh_fold(
    items: list[tuple[Event | Contact, int, bool, bool]],
) -> None:
    """Derived facts kept up item by item (events in and out of order, contacts new and
    replaced, on copies sharing facts with the state they came from) equal a full fold of
    the same ledger, and a change to a copy never leaks into its original."""
    live = CustomerState(CustomerProfile("ann", timezone="America/Chicago"))
    for item, cid, look, fork in items:
        original = live
        snapshot = copy.deepcopy(original.derived) if fork else None
        target = original.copy() if fork else original
        if isinstance(item, Event):
            target.add_event(item)
        else:
            target.add_contact(replace(item, contact_id=f"k{cid}"))
        if look:
            assert target.derived == _refolded(target)
        if snapshot is not None:
            assert original.derived == snapshot
        live = target
    assert live.derived == _refolded(live)


@FAST
@given(profile=st.sampled_from(PROFILES), data=st.data())
def test_a_state_grown_in_time_order_decides_as_a_fresh_one(
    profile: CustomerProfile, data: st.DataObject
) -> None:
    """A state lived the way a replay lives it: events and sent contacts added in time
    order, decisions in between (now and then a hold, a late contact, a contact replaced,
    a copy taken). Facts kept across events and extended as contacts are appended (the
    pressure's terms and sum, counted contacts, hold expiries) decide exactly as a state
    built afresh from the same ledger: same decision, same pressure to the last bit."""
    clock = START
    live = CustomerState(profile)
    ledger: list[Event] = []
    made: dict[str, Contact] = {}
    for i in range(data.draw(st.integers(1, 40))):
        clock += timedelta(
            minutes=data.draw(st.integers(0, 3 * 24 * 60)), microseconds=data.draw(micro)
        )
        move = data.draw(
            st.sampled_from(
                ("event", "sent", "sent", "held", "late", "replace", "decide", "decide")
            )
        )
        if data.draw(st.booleans()):
            live = live.copy()
        if move == "event":
            e = replace(data.draw(events()), at=clock)
            ledger.append(e)
            live.add_event(e)
        elif move == "replace" and made:
            was = made[data.draw(st.sampled_from(sorted(made)))]
            c = replace(was, status=ContactStatus.SENT, hold_expires=None, outcome="answered")
            made[c.contact_id] = c
            live.add_contact(c)
        elif move in ("sent", "held", "late"):
            at = clock - timedelta(hours=data.draw(st.integers(1, 72))) if move == "late" else clock
            held = move == "held"
            c = replace(
                data.draw(contacts()),
                contact_id=f"k{i}",
                at=at,
                status=ContactStatus.HELD if held else ContactStatus.SENT,
                hold_expires=at + timedelta(minutes=data.draw(st.integers(1, 600)))
                if held
                else None,
            )
            made[c.contact_id] = c
            live.add_contact(c)
        else:
            proposal = replace(data.draw(proposals(ledger)), at=None)
            fresh = CustomerState(profile, ledger, made.values())
            assert decide(live, proposal, COURTESY, clock) == decide(
                fresh, proposal, COURTESY, clock
            )
            assert pressure(live, COURTESY, clock) == pressure(fresh, COURTESY, clock)
