"""`callback`: calls wait for the time the customer chose; the call-back itself goes through."""

from __future__ import annotations

from datetime import datetime, timedelta

from tactful import ContactStatus, Outcome, Policy, Trigger, Verdict
from tests.rules.conftest import (
    CHICAGO,
    DAY,
    HOUR,
    MINUTE,
    TUESDAY,
    contact,
    decide,
    ev,
    propose,
    rules_of,
    state,
)

COURTESY = Policy.load("courtesy")
WHEN = datetime(2026, 12, 8, 10, 30, tzinfo=CHICAGO)  # a Tuesday, inside calling hours


def requested(when: datetime = WHEN, **props: object) -> object:
    return ev("callback_requested", TUESDAY - HOUR, at=when.isoformat(), **props)


def test_calls_wait_for_the_chosen_time() -> None:
    st = state(requested())  # type: ignore[arg-type]
    for purpose in ("sales", "service"):
        d = decide(COURTESY, st, propose("call", purpose), TUESDAY)
        assert d.verdict is Verdict.DEFER and d.not_before == WHEN
        assert "callback-time" in rules_of(d)
    assert "2026-12-08 16:30 UTC" in next(r.message for r in d.reasons if r.rule == "callback-time")
    # Email is not held back by a call-back request.
    assert decide(COURTESY, st, propose("email", "service"), TUESDAY).allowed


def test_the_call_back_goes_through_whatever_the_caps_say() -> None:
    # Three sales calls this week, the last unanswered an hour before the chosen time.
    calls = [
        contact("call", "sales", WHEN - timedelta(days=d), outcome=Outcome.NO_ANSWER)
        for d in (5, 3)
    ] + [contact("call", "sales", WHEN - HOUR, outcome=Outcome.NO_ANSWER)]
    st = state(requested(), *calls)  # type: ignore[arg-type]
    plain = decide(COURTESY, st, propose("call", "sales"), WHEN)
    assert plain.verdict is Verdict.DEFER
    assert {"sales-call-gap", "sales-call-cap"} <= rules_of(plain)
    call_back = propose("call", "sales", trigger="callback_requested")
    assert decide(COURTESY, st, call_back, WHEN).allowed
    # Before its time even the call-back waits.
    early = decide(COURTESY, st, call_back, WHEN - 2 * HOUR)
    assert early.verdict is Verdict.DEFER and early.not_before == WHEN


def test_a_call_back_outside_calling_hours_waits_for_them() -> None:
    late = datetime(2026, 12, 8, 21, 0, tzinfo=CHICAGO)
    st = state(requested(late))  # type: ignore[arg-type]
    call_back = propose("call", "service", trigger="callback_requested")
    d = decide(COURTESY, st, call_back, late)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 12, 9, 9, tzinfo=CHICAGO)
    assert rules_of(d) == {"calling-hours"}


def test_once_called_back_the_request_is_done() -> None:
    st = state(requested(), contact("call", "service", WHEN - 10 * MINUTE))  # type: ignore[arg-type]
    assert decide(COURTESY, st, propose("call", "service"), WHEN - 5 * MINUTE).allowed
    # A hold does not count as the call-back: only a confirmed call does.
    held = contact(
        "call", "service", WHEN, status=ContactStatus.HELD, hold_expires=WHEN + 15 * MINUTE
    )
    st = state(requested(), held)  # type: ignore[arg-type]
    assert decide(COURTESY, st, propose("call", "service"), TUESDAY).verdict is Verdict.DEFER


def test_a_call_long_before_the_chosen_time_is_not_the_call_back() -> None:
    st = state(requested(), contact("call", "service", WHEN - DAY))  # type: ignore[arg-type]
    d = decide(COURTESY, st, propose("call", "service"), TUESDAY)
    assert d.not_before == WHEN


def test_cancelled_and_replaced_requests() -> None:
    st = state(requested())  # type: ignore[arg-type]
    st.add_event(ev("callback_requested", TUESDAY - MINUTE, cancelled=True))
    assert decide(COURTESY, st, propose("call", "service"), TUESDAY).allowed
    sooner = datetime(2026, 11, 19, 11, tzinfo=CHICAGO)
    st.add_event(ev("callback_requested", TUESDAY, at=sooner.isoformat()))
    assert decide(COURTESY, st, propose("call", "service"), TUESDAY).not_before == sooner


def test_a_call_back_without_a_request_in_the_ledger_is_not_privileged() -> None:
    st = state(
        *(contact("call", "sales", TUESDAY - timedelta(days=d)) for d in (1, 3, 5)),
    )
    d = decide(
        COURTESY, st, propose("call", "sales", trigger=Trigger("callback_requested")), TUESDAY
    )
    assert d.verdict is Verdict.DEFER
