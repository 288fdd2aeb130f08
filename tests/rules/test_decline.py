"""`decline`: "no thanks" holds back sales about that offer, and sales calls at all."""

from __future__ import annotations

from datetime import timedelta

from tactful import Outcome, Policy, Verdict
from tests.rules.conftest import (
    DAY,
    HOUR,
    TUESDAY,
    contact,
    decide,
    ev,
    policy,
    propose,
    rules_of,
    state,
)

COURTESY = Policy.load("courtesy")
DECLINE = policy("""
    - id: same-offer
      kind: decline
      scope: {purposes: [sales]}
      same_offer: true
      window: 90d
      message: "declined {offer} on {declined_on}"
    - id: no-calls
      kind: decline
      scope: {channels: [call], purposes: [sales]}
      window: 30d
      message: no sales calls
""")


def test_declined_offer_denies_sales_about_it_for_the_window() -> None:
    declined = TUESDAY - HOUR
    st = state(ev("offer_declined", declined, offer="gold"))
    d = decide(DECLINE, st, propose("email", "sales", offer="gold"), TUESDAY)
    assert d.verdict is Verdict.DENY
    reason = d.reasons[0]
    assert reason.rule == "same-offer"
    assert reason.message == "declined gold on 2026-11-17"
    assert reason.until == declined + timedelta(days=90)
    # Another offer by email is fine; any sales call is not, for 30 days.
    assert decide(DECLINE, st, propose("email", "sales", offer="silver"), TUESDAY).allowed
    d = decide(DECLINE, st, propose("call", "sales", offer="silver"), TUESDAY)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"no-calls"}
    assert d.reasons[0].until == declined + timedelta(days=30)


def test_windows_expire() -> None:
    declined = TUESDAY
    st = state(ev("offer_declined", declined, offer="gold"))
    day31 = declined + 31 * DAY
    assert decide(DECLINE, st, propose("call", "sales", offer="silver"), day31).allowed
    assert not decide(DECLINE, st, propose("call", "sales", offer="gold"), day31).allowed
    day90 = declined + 90 * DAY
    assert decide(DECLINE, st, propose("call", "sales", offer="gold"), day90).allowed


def test_other_purposes_are_untouched() -> None:
    st = state(ev("offer_declined", TUESDAY - HOUR, offer="gold"))
    assert decide(DECLINE, st, propose("call", "service", offer="gold"), TUESDAY).allowed
    assert decide(DECLINE, st, propose("email", "marketing", offer="gold"), TUESDAY).allowed


def test_a_decline_naming_no_offer_covers_every_offer() -> None:
    # Design choice: "not interested" without an offer is taken to mean all of them.
    st = state(ev("not_interested", TUESDAY - HOUR))
    d = decide(DECLINE, st, propose("email", "sales", offer="gold"), TUESDAY)
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].message == "declined our offer on 2026-11-17"
    assert not decide(DECLINE, st, propose("email", "sales"), TUESDAY).allowed


def test_a_proposal_naming_no_offer_is_not_about_a_named_declined_offer() -> None:
    st = state(ev("offer_declined", TUESDAY - HOUR, offer="gold"))
    assert decide(DECLINE, st, propose("email", "sales"), TUESDAY).allowed


def test_a_declined_outcome_on_a_contact_counts_as_a_decline() -> None:
    st = state(contact("call", "sales", TUESDAY - HOUR, offer="gold", outcome=Outcome.DECLINED))
    assert not decide(DECLINE, st, propose("email", "sales", offer="gold"), TUESDAY).allowed
    assert decide(DECLINE, st, propose("email", "sales", offer="silver"), TUESDAY).allowed


def test_a_late_decline_counts_by_its_event_time() -> None:
    st = state()
    st.add_event(ev("offer_declined", TUESDAY - 100 * DAY, offer="gold"))
    assert decide(DECLINE, st, propose("email", "sales", offer="gold"), TUESDAY).allowed
    st.add_event(ev("offer_declined", TUESDAY - 10 * DAY, offer="gold"))
    d = decide(DECLINE, st, propose("email", "sales", offer="gold"), TUESDAY)
    assert d.reasons[0].until == TUESDAY + 80 * DAY


def test_a_future_proposal_past_the_window_is_allowed() -> None:
    st = state(ev("offer_declined", TUESDAY - HOUR, offer="gold"))
    later = TUESDAY + 91 * DAY
    assert decide(DECLINE, st, propose("email", "sales", offer="gold", at=later), TUESDAY).allowed


def test_a_call_back_the_customer_asked_for_is_not_held_back_by_a_decline() -> None:
    st = state(
        ev("offer_declined", TUESDAY - DAY, offer="gold"),
        ev("callback_requested", TUESDAY - HOUR),
    )
    requested = propose("call", "sales", offer="gold", trigger="callback_requested")
    assert decide(DECLINE, st, requested, TUESDAY).allowed


def test_courtesy_decline_messages() -> None:
    st = state(ev("offer_declined", TUESDAY - HOUR, offer="free consultation"))
    d = decide(COURTESY, st, propose("call", "sales", offer="free consultation"), TUESDAY)
    assert d.verdict is Verdict.DENY
    assert {"declined-offer", "declined-no-calls"} <= rules_of(d)
