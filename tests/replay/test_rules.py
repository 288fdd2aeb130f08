"""Hand-made logs through the replay: every courtesy rule fires, and the fold's semantics
(suppressed contacts do not count, their outcomes are not observed) hold."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import polars as pl
import pytest

from tactful.policy.document import Policy
from tactful.replay.io import load_log
from tactful.replay.run import run_engine
from tests.replay.conftest import LogBuilder

COURTESY = Policy.load("courtesy")
D = "2026-03-0"  # Monday 2 March 2026 onwards; customers without a profile live in UTC


def replayed(log: LogBuilder, policy: Policy = COURTESY) -> list[dict[str, object]]:
    contacts, events, customers = log.write()
    loaded = load_log(contacts, events, customers=customers, strict=True)
    frame: pl.DataFrame = run_engine(loaded, [policy], workers=1)[0]
    return frame.sort("row").to_dicts()


def last(log: LogBuilder) -> tuple[str, list[str]]:
    row = replayed(log)[-1]
    return str(row["verdict"]), str(row["rules"] or "").split(";") if row["rules"] else []


Case = Callable[[LogBuilder], None]


def opt_out(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "opted_out")
    log.contact("c", f"{D}2T10:00:00Z", "call", "service")


def declined_offer(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "offer_declined", offer="gold")
    log.contact("c", f"{D}3T10:00:00Z", "email", "sales", offer="gold")


def declined_no_calls(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "not_interested")
    log.contact("c", f"{D}3T10:00:00Z", "call", "sales", offer="silver")


def calling_hours(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T07:30:00Z", "call", "service")


def sales_call_gap(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:00:00Z", "call", "sales", outcome="answered")
    log.contact("c", f"{D}2T12:00:00Z", "call", "sales")


def sales_call_cap(log: LogBuilder) -> None:
    # Answered, over 48 h apart and light enough on pressure: three in 7 days, then the cap.
    for at in ("3T09:00", "6T19:00", "9T18:00"):
        log.contact("c", f"{D}{at}:00Z", "call", "sales", outcome="answered")
    log.contact("c", f"{D}9T19:00:00Z", "call", "sales")


def sales_call_backoff(log: LogBuilder) -> None:
    # Three weeks apart (clear of gaps, caps and pressure): six unanswered, then stop.
    for day in ("03-02", "03-23", "04-13", "05-04", "05-25", "06-15", "07-06"):
        log.contact("c", f"2026-{day}T10:00:00Z", "call", "sales", outcome="no_answer")


def marketing_email_cap(log: LogBuilder) -> None:
    for day in (2, 3, 4, 5):
        log.contact("c", f"{D}{day}T10:00:00Z", "email", "marketing")


def marketing_email_gap(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:00:00Z", "email", "marketing")
    log.contact("c", f"{D}2T20:00:00Z", "email", "marketing")


def sales_email_cap(log: LogBuilder) -> None:
    for day in (2, 3, 4):
        log.contact("c", f"{D}{day}T10:00:00Z", "email", "sales", subject="Just following up")


def marketing_sms_cap(log: LogBuilder) -> None:
    for day in (2, 3, 4):
        log.contact("c", f"{D}{day}T10:00:00Z", "sms", "marketing")


def customer_active(log: LogBuilder) -> None:
    log.event("c", f"{D}2T10:00:00Z", "page_viewed")
    log.contact("c", f"{D}2T10:05:00Z", "email", "marketing")


def checkout_open(log: LogBuilder) -> None:
    log.event("c", f"{D}2T10:00:00Z", "checkout_started")
    log.contact("c", f"{D}2T10:40:00Z", "email", "marketing")


def order_completed(log: LogBuilder) -> None:
    log.event("c", f"{D}2T10:00:00Z", "checkout_started")
    log.event("c", f"{D}2T10:10:00Z", "order_completed")
    log.contact("c", f"{D}2T15:00:00Z", "email", "marketing", trigger="checkout_started")


def behaviour_trigger_delay(log: LogBuilder) -> None:
    log.event("c", f"{D}2T10:00:00Z", "signed_in")
    log.contact("c", f"{D}2T13:00:00Z", "call", "sales", trigger="signed_in")


def behaviour_trigger_cap(log: LogBuilder) -> None:
    log.event("c", f"{D}2T10:00:00Z", "signed_in")
    log.contact("c", f"{D}3T12:00:00Z", "email", "sales", trigger="signed_in")
    log.event("c", f"{D}4T10:00:00Z", "signed_in")
    log.contact("c", f"{D}5T12:00:00Z", "email", "sales", trigger="signed_in")


def session(log: LogBuilder, start: str = f"{D}2T10:00:00Z") -> None:
    log.event("c", start, "session_started", session_id="s")


def chat_offer_once(log: LogBuilder) -> None:
    session(log)
    log.contact("c", f"{D}2T10:01:00Z", "chat", "service")
    log.event("c", f"{D}2T10:03:00Z", "page_viewed", session_id="s")
    log.contact("c", f"{D}2T10:04:00Z", "chat", "service")


def greeting_once(log: LogBuilder) -> None:
    session(log)
    log.contact("c", f"{D}2T10:01:00Z", "in_app", "service", flags="greeting")
    log.contact("c", f"{D}2T10:02:00Z", "in_app", "service", flags="greeting")


def chat_live_session(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:01:00Z", "chat", "service")


def chat_short_visit(log: LogBuilder) -> None:
    session(log)
    log.event("c", f"{D}2T10:00:05Z", "session_ended", session_id="s")
    log.contact("c", f"{D}2T10:00:20Z", "chat", "sales")


def chat_dwell(log: LogBuilder) -> None:
    session(log)
    log.contact("c", f"{D}2T10:00:10Z", "chat", "service")


def chat_dismissed(log: LogBuilder) -> None:
    session(log)
    log.event("c", f"{D}2T10:01:00Z", "chat_dismissed", session_id="s")
    log.contact("c", f"{D}2T10:02:00Z", "chat", "service", flags="greeting")


def chat_not_in_checkout(log: LogBuilder) -> None:
    session(log)
    log.event("c", f"{D}2T10:01:00Z", "checkout_started", session_id="s")
    log.contact("c", f"{D}2T10:02:00Z", "chat", "service")


def snooze(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "snooze_requested", until="2026-03-20T00:00:00Z")
    log.contact("c", f"{D}3T10:00:00Z", "email", "service")


def callback_time(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "callback_requested", callback_at="2026-03-06T15:00:00Z")
    log.contact("c", f"{D}3T10:00:00Z", "call", "service")


def pressure(log: LogBuilder) -> None:
    # Calls weigh 5, unanswered ones double: 10 already, a marketing SMS (3) would pass 12.
    log.contact("c", f"{D}2T10:00:00Z", "call", "service", outcome="no_answer")
    log.contact("c", f"{D}2T11:00:00Z", "sms", "marketing")


def reveals_tracking(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:00:00Z", "email", "sales", body="I saw you were looking at shoes")


def fake_urgency(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:00:00Z", "email", "marketing", subject="ACT NOW: 50% off")


CASES: dict[str, tuple[Case, str]] = {
    "opt-out": (opt_out, "deny"),
    "declined-offer": (declined_offer, "deny"),
    "declined-no-calls": (declined_no_calls, "deny"),
    "calling-hours": (calling_hours, "defer"),
    "sales-call-gap": (sales_call_gap, "defer"),
    "sales-call-cap": (sales_call_cap, "defer"),
    "sales-call-backoff": (sales_call_backoff, "deny"),
    "marketing-email-cap": (marketing_email_cap, "defer"),
    "marketing-email-gap": (marketing_email_gap, "defer"),
    "sales-email-cap": (sales_email_cap, "defer"),
    "marketing-sms-cap": (marketing_sms_cap, "defer"),
    "customer-active": (customer_active, "defer"),
    "checkout-open": (checkout_open, "defer"),
    "order-completed": (order_completed, "deny"),
    "behaviour-trigger-delay": (behaviour_trigger_delay, "defer"),
    "behaviour-trigger-cap": (behaviour_trigger_cap, "defer"),
    "chat-offer-once": (chat_offer_once, "deny"),
    "greeting-once": (greeting_once, "deny"),
    "chat-live-session": (chat_live_session, "deny"),
    "chat-short-visit": (chat_short_visit, "deny"),
    "chat-dwell": (chat_dwell, "defer"),
    "chat-dismissed": (chat_dismissed, "deny"),
    "chat-not-in-checkout": (chat_not_in_checkout, "deny"),
    "snooze": (snooze, "defer"),
    "callback-time": (callback_time, "defer"),
    "pressure": (pressure, "defer"),
    "reveals-tracking": (reveals_tracking, "deny"),
    "fake-urgency": (fake_urgency, "deny"),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_fires_in_a_replay(rule: str, log: LogBuilder) -> None:
    build, verdict = CASES[rule]
    build(log)
    got, rules = last(log)
    assert got == verdict
    assert rule in rules


def test_every_courtesy_rule_has_a_case() -> None:
    # Preferences live in a profile the customers file does not carry; the discount flag
    # is checked below.
    untested = {r.id for r in COURTESY.rules} - set(CASES)
    assert untested == {"customer-preferences", "abandoned-cart-discount"}


def test_a_flag_allows_and_is_reported(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "checkout_started")
    log.contact(
        "c", f"{D}2T15:00:00Z", "email", "marketing", trigger="checkout_started", discount="yes"
    )
    (row,) = replayed(log)
    assert row["verdict"] == "allow"
    assert row["flags"] == "abandoned-cart-discount"


def test_a_suppressed_contact_does_not_count_against_later_caps(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:00:00Z", "email", "marketing")  # allowed
    log.contact("c", f"{D}2T12:00:00Z", "email", "marketing")  # deferred by the 20 h gap
    log.contact("c", f"{D}3T10:00:00Z", "email", "marketing")  # allowed: only one counts
    log.contact("c", f"{D}4T10:00:00Z", "email", "marketing")  # allowed: the third
    log.contact("c", f"{D}5T10:00:00Z", "email", "marketing")  # the fourth in 7 days
    rows = replayed(log)
    assert [r["verdict"] for r in rows] == ["allow", "defer", "allow", "allow", "defer"]
    assert rows[1]["not_before"] == datetime(2026, 3, 3, 6, tzinfo=UTC)
    assert rows[4]["rules"] == "marketing-email-cap"
    assert rows[1]["pressure_logged"] > rows[1]["pressure_replayed"]


def test_outcomes_of_suppressed_contacts_are_not_observed(log: LogBuilder) -> None:
    log.event("c", f"{D}2T09:00:00Z", "page_viewed")
    # Deferred (the customer is active): its unsubscribe never happened in the replay.
    log.contact("c", f"{D}2T09:10:00Z", "email", "marketing", outcome="unsubscribed")
    log.contact("c", f"{D}3T10:00:00Z", "email", "marketing", outcome="unsubscribed")
    log.contact("c", f"{D}4T10:00:00Z", "email", "marketing")
    rows = replayed(log)
    assert [r["verdict"] for r in rows] == ["defer", "allow", "deny"]
    assert [r["outcome_observed"] for r in rows] == [False, True, False]
    assert rows[2]["rules"] == "opt-out"


def test_unanswered_calls_are_only_counted_when_they_were_allowed(log: LogBuilder) -> None:
    # Logged: three unanswered calls in 5 minutes. Replayed: only the first is made, so
    # there is no back-off streak, and a call a week later is fine.
    log.contact("c", f"{D}2T10:00:00Z", "call", "sales", outcome="no_answer")
    log.contact("c", f"{D}2T10:01:00Z", "call", "sales", outcome="no_answer")
    log.contact("c", f"{D}2T10:04:00Z", "call", "sales", outcome="no_answer")
    log.contact("c", f"{D}9T10:30:00Z", "call", "sales")
    rows = replayed(log)
    assert [r["verdict"] for r in rows] == ["allow", "defer", "defer", "allow"]


def test_a_deferred_contact_carries_not_before_and_reasons(log: LogBuilder) -> None:
    log.contact("c", f"{D}7T19:00:00Z", "call", "service")  # Saturday evening
    log.contact("c", f"{D}8T10:00:00Z", "call", "service")  # Sunday
    rows = replayed(log)
    assert rows[1]["verdict"] == "defer"
    assert rows[1]["not_before"] == datetime(2026, 3, 9, 9, tzinfo=UTC)
    assert rows[1]["rules"] == "calling-hours"
    assert "09:00-20:00" in str(rows[1]["reasons"])


def test_profiles_set_local_time(log: LogBuilder) -> None:
    log.profile("c", timezone="America/Chicago", country="US")
    log.contact("c", f"{D}2T10:00:00Z", "call", "service")  # 04:00 in Chicago
    (row,) = replayed(log)
    assert row["verdict"] == "defer"
    assert row["not_before"] == datetime(2026, 3, 2, 15, tzinfo=UTC)


def test_customers_are_independent(log: LogBuilder) -> None:
    log.event("a", f"{D}2T09:00:00Z", "opted_out")
    log.contact("a", f"{D}2T10:00:00Z", "email", "marketing")
    log.contact("b", f"{D}2T10:00:00Z", "email", "marketing")
    assert [r["verdict"] for r in replayed(log)] == ["deny", "allow"]


def test_events_at_the_same_instant_come_before_the_contact(log: LogBuilder) -> None:
    log.contact("c", f"{D}2T10:00:00Z", "email", "marketing")
    log.event("c", f"{D}2T10:00:00Z", "opted_out")
    (row,) = replayed(log)
    assert row["verdict"] == "deny"
