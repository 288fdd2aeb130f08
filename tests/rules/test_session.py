"""`session` (and session caps): proactive chat offers and greetings only when welcome."""

from __future__ import annotations

from datetime import timedelta

from tactful import Policy, Verdict
from tests.rules.conftest import (
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
SECOND = timedelta(seconds=1)
START = TUESDAY


def visit(*more: object, sid: str | None = "v1") -> list[object]:
    props = {"session_id": sid} if sid else {}
    return [ev("session_started", START, **props), *more]


def chat(**kw: object) -> object:
    return propose("chat", "service", **kw)  # type: ignore[arg-type]


def test_no_chat_offer_without_a_live_visit() -> None:
    d = decide(COURTESY, state(), chat(), TUESDAY)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY and "chat-live-session" in rules_of(d)
    # Forty minutes after the last activity the visit has lapsed.
    st = state(*visit())  # type: ignore[arg-type]
    d = decide(COURTESY, st, chat(), START + 40 * MINUTE)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY and "chat-live-session" in rules_of(d)


def test_dwell_thirty_seconds_or_a_help_request() -> None:
    st = state(*visit())  # type: ignore[arg-type]
    d = decide(COURTESY, st, chat(), START + 10 * SECOND)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DEFER and d.not_before == START + 30 * SECOND
    assert rules_of(d) == {"chat-dwell"}
    assert decide(COURTESY, st, chat(), START + 30 * SECOND).allowed  # type: ignore[arg-type]
    st = state(*visit(ev("help_requested", START + 5 * SECOND, session_id="v1")))  # type: ignore[arg-type]
    assert decide(COURTESY, st, chat(), START + 6 * SECOND).allowed  # type: ignore[arg-type]
    st = state(*visit(ev("content_downloaded", START + 5 * SECOND, session_id="v1")))  # type: ignore[arg-type]
    assert decide(COURTESY, st, chat(), START + 6 * SECOND).allowed  # type: ignore[arg-type]


def test_greetings_do_not_wait_for_dwell_but_come_once_per_visit() -> None:
    greeting = propose("in_app", "service", flags=("greeting",))
    st = state(*visit())  # type: ignore[arg-type]
    assert decide(COURTESY, st, greeting, START + SECOND).allowed
    st.add_contact(contact("in_app", "service", START + SECOND, flags=("greeting",)))
    d = decide(COURTESY, st, greeting, START + MINUTE)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"greeting-once"}
    # A chat offer is a different approach: the greeting does not use its slot.
    assert decide(COURTESY, st, chat(), START + MINUTE).allowed  # type: ignore[arg-type]


def test_one_chat_offer_per_visit_and_a_new_visit_starts_afresh() -> None:
    st = state(*visit(contact("chat", "service", START + 40 * SECOND)))  # type: ignore[arg-type]
    d = decide(COURTESY, st, chat(), START + 2 * MINUTE)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY and rules_of(d) == {"chat-offer-once"}
    st.add_event(ev("session_ended", START + 3 * MINUTE, session_id="v1"))
    st.add_event(ev("session_started", START + 2 * 60 * MINUTE, session_id="v2"))
    assert decide(COURTESY, st, chat(), START + 121 * MINUTE).allowed  # type: ignore[arg-type]


def test_never_after_a_dismissal_in_this_visit() -> None:
    st = state(*visit(ev("chat_dismissed", START + MINUTE, session_id="v1")))  # type: ignore[arg-type]
    d = decide(COURTESY, st, chat(), START + 5 * MINUTE)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY and "chat-dismissed" in rules_of(d)


def test_never_during_checkout_but_fine_after_the_order() -> None:
    st = state(*visit(ev("checkout_started", START + MINUTE, session_id="v1")))  # type: ignore[arg-type]
    d = decide(COURTESY, st, chat(), START + 2 * MINUTE)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY and "chat-not-in-checkout" in rules_of(d)
    st.add_event(ev("order_completed", START + 3 * MINUTE, session_id="v1"))
    assert decide(COURTESY, st, chat(), START + 4 * MINUTE).allowed  # type: ignore[arg-type]


def test_never_in_a_visit_shorter_than_ten_seconds() -> None:
    st = state(*visit(ev("session_ended", START + 5 * SECOND, session_id="v1")))  # type: ignore[arg-type]
    d = decide(COURTESY, st, chat(), START + 6 * SECOND)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY
    assert {"chat-short-visit", "chat-live-session"} <= rules_of(d)


def test_sessions_by_inactivity_gap_when_no_id_is_given() -> None:
    st = state(
        *visit(
            ev("page_viewed", START + 29 * MINUTE),
            ev("page_viewed", START + 58 * MINUTE),
            sid=None,
        )
    )  # type: ignore[arg-type]
    # Still the first visit (each gap under 30 minutes): its offer counts.
    st.add_contact(contact("chat", "service", START + MINUTE))
    assert decide(COURTESY, st, chat(), START + 59 * MINUTE).verdict is Verdict.DENY  # type: ignore[arg-type]
    # A page view 31 minutes after the last activity starts a new visit.
    st.add_event(ev("page_viewed", START + 89 * MINUTE))
    d = decide(COURTESY, st, chat(), START + 89 * MINUTE + 10 * SECOND)  # type: ignore[arg-type]
    assert d.verdict is Verdict.DEFER and rules_of(d) == {"chat-dwell"}
    assert d.not_before == START + 89 * MINUTE + 30 * SECOND
