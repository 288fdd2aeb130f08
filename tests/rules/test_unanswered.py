"""`unanswered`: back off as attempts go unanswered, then stop until the customer engages."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tactful import Outcome, Verdict
from tactful.rules.base import NEVER
from tests.rules.conftest import (
    DAY,
    HOUR,
    TUESDAY,
    check,
    contact,
    decide,
    ev,
    policy,
    propose,
    rules_of,
    state,
    ts,
)

BACKOFF = policy("""
    - id: backoff
      kind: unanswered
      scope: {channels: [call], purposes: [sales]}
      after: 3
      gap: 48h
      stop_after: 6
      message: "{unanswered} unanswered"
""")


def unanswered_calls(n: int, last: datetime = TUESDAY - HOUR) -> list[object]:
    return [
        contact("call", "sales", last - timedelta(days=3 * i), outcome=Outcome.NO_ANSWER)
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("n", "wait_hours"),
    [(0, 0), (1, 0), (2, 0), (3, 96), (4, 192), (5, 384)],
)
def test_gap_doubles_after_three_unanswered(n: int, wait_hours: int) -> None:
    last = TUESDAY - HOUR
    st = state(*unanswered_calls(n, last))  # type: ignore[arg-type]
    expected = max(ts(TUESDAY), ts(last + timedelta(hours=wait_hours)))
    assert check(BACKOFF, "backoff", st, propose("call", "sales"), TUESDAY) == expected


def test_six_unanswered_in_a_row_stop_until_the_customer_engages() -> None:
    st = state(*unanswered_calls(6))  # type: ignore[arg-type]
    d = decide(BACKOFF, st, propose("call", "sales"), TUESDAY)
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].message == "6 unanswered" and d.reasons[0].until is None
    st.add_event(ev("contact_replied", TUESDAY))
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY + HOUR).allowed


@pytest.mark.parametrize(
    "kind", ["contact_answered", "session_started", "signed_in", "help_requested"]
)
def test_engagement_events_reset_the_streak(kind: str) -> None:
    st = state(*unanswered_calls(6), ev(kind, TUESDAY - HOUR / 2))  # type: ignore[arg-type]
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY).allowed


def test_page_views_are_not_engagement() -> None:
    st = state(*unanswered_calls(6), ev("page_viewed", TUESDAY - HOUR / 2))  # type: ignore[arg-type]
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY).verdict is Verdict.DENY


def test_an_answered_call_breaks_the_streak_and_voicemail_continues_it() -> None:
    calls = unanswered_calls(4, TUESDAY - 10 * DAY)
    answered = contact("call", "sales", TUESDAY - 5 * DAY, outcome=Outcome.ANSWERED)
    voicemail = contact("call", "sales", TUESDAY - 2 * DAY, outcome=Outcome.VOICEMAIL)
    st = state(*calls, answered, voicemail)  # type: ignore[arg-type]
    assert check(BACKOFF, "backoff", st, propose("call", "sales"), TUESDAY) == ts(TUESDAY)


def test_calls_without_an_outcome_yet_are_skipped_not_breaking() -> None:
    pending = contact("call", "sales", TUESDAY - HOUR / 2)
    st = state(*unanswered_calls(6), pending)  # type: ignore[arg-type]
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY).verdict is Verdict.DENY


def test_other_channels_do_not_feed_the_call_streak() -> None:
    emails = [
        contact("email", "sales", TUESDAY - timedelta(days=i), outcome=Outcome.NO_ANSWER)
        for i in range(1, 8)
    ]
    assert decide(BACKOFF, state(*emails), propose("call", "sales"), TUESDAY).allowed


def test_a_reply_recorded_on_a_contact_after_the_fact_resets_the_streak() -> None:
    # The email's outcome arrives after a decision was made: the state must not keep a
    # stale idea of the customer's engagement (this was a bug: derived facts were not
    # refreshed when a contact's outcome changed).
    email = contact("email", "sales", TUESDAY - HOUR / 2, contact_id="mail-1")
    st = state(*unanswered_calls(6), email)  # type: ignore[arg-type]
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY).verdict is Verdict.DENY
    replied = contact("email", "sales", TUESDAY - HOUR / 2, contact_id="mail-1", outcome="replied")
    st.add_contact(replied)
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY).allowed
    # ... and back again if the outcome is corrected.
    st.add_contact(email)
    assert decide(BACKOFF, st, propose("call", "sales"), TUESDAY).verdict is Verdict.DENY


def test_deferred_backoff_names_the_rule() -> None:
    st = state(*unanswered_calls(3))  # type: ignore[arg-type]
    d = decide(BACKOFF, st, propose("call", "sales"), TUESDAY)
    assert d.verdict is Verdict.DEFER and rules_of(d) == {"backoff"}
    assert d.not_before == TUESDAY - HOUR + timedelta(hours=96)
    assert check(BACKOFF, "backoff", st, propose("call", "sales"), TUESDAY) < NEVER
