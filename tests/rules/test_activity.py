"""`activity`: never interrupt an active customer, nor one in the middle of checkout."""

from __future__ import annotations

from datetime import timedelta

from tactful import Policy, Verdict
from tests.rules.conftest import (
    MINUTE,
    TUESDAY,
    check,
    decide,
    ev,
    policy,
    propose,
    rules_of,
    state,
    ts,
)

COURTESY = Policy.load("courtesy")
ACTIVE = policy("""
    - id: active
      kind: activity
      scope: {channels: [call, sms, email], purposes: [sales, marketing]}
      when: active
      quiet: 30m
      message: active
    - id: checkout
      kind: activity
      scope: {channels: [call, sms, email], purposes: [sales, marketing]}
      when: checkout
      quiet: 60m
      message: checkout
""")


def test_active_customer_defers_until_quiet_after_the_last_activity() -> None:
    last = TUESDAY - 10 * MINUTE
    st = state(ev("session_started", TUESDAY - 20 * MINUTE), ev("page_viewed", last))
    d = decide(ACTIVE, st, propose("email", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == last + 30 * MINUTE
    assert rules_of(d) == {"active"}
    assert decide(ACTIVE, st, propose("email", "marketing"), d.not_before).allowed


def test_activity_rule_is_scoped() -> None:
    st = state(ev("page_viewed", TUESDAY - MINUTE))
    assert decide(ACTIVE, st, propose("email", "service"), TUESDAY).allowed
    assert decide(ACTIVE, st, propose("email", "transactional"), TUESDAY).allowed
    assert decide(ACTIVE, st, propose("push", "marketing"), TUESDAY).allowed


def test_non_activity_events_do_not_count() -> None:
    st = state(ev("contact_replied", TUESDAY - MINUTE), ev("opted_in", TUESDAY - MINUTE))
    assert decide(ACTIVE, st, propose("email", "marketing"), TUESDAY).allowed


def test_open_checkout_waits_an_hour_after_the_last_activity() -> None:
    started = TUESDAY - 2 * MINUTE
    st = state(ev("checkout_started", started))
    d = decide(ACTIVE, st, propose("call", "sales"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == started + 60 * MINUTE
    assert rules_of(d) == {"active", "checkout"}


def test_completed_checkout_is_only_activity() -> None:
    st = state(
        ev("checkout_started", TUESDAY - 5 * MINUTE),
        ev("order_completed", TUESDAY - 2 * MINUTE),
    )
    d = decide(ACTIVE, st, propose("call", "sales"), TUESDAY)
    assert d.not_before == TUESDAY - 2 * MINUTE + 30 * MINUTE
    assert rules_of(d) == {"active"}
    assert check(ACTIVE, "checkout", st, propose("call", "sales"), TUESDAY) == ts(TUESDAY)


def test_a_new_checkout_after_an_earlier_order_is_open_again() -> None:
    st = state(
        ev("checkout_started", TUESDAY - timedelta(days=2)),
        ev("order_completed", TUESDAY - timedelta(days=2) + 5 * MINUTE),
        ev("checkout_started", TUESDAY - 5 * MINUTE),
    )
    d = decide(ACTIVE, st, propose("call", "sales"), TUESDAY)
    assert d.not_before == TUESDAY + 55 * MINUTE


def test_late_activity_is_folded_by_event_time() -> None:
    st = state(ev("page_viewed", TUESDAY - 50 * MINUTE))
    assert decide(ACTIVE, st, propose("email", "marketing"), TUESDAY).allowed
    # A page view from 5 minutes ago arrives after one from 50 minutes ago.
    st.add_event(ev("page_viewed", TUESDAY - 5 * MINUTE))
    d = decide(ACTIVE, st, propose("email", "marketing"), TUESDAY)
    assert d.not_before == TUESDAY + 25 * MINUTE
    # And an older one arriving last changes nothing.
    st.add_event(ev("page_viewed", TUESDAY - 40 * MINUTE))
    assert decide(ACTIVE, st, propose("email", "marketing"), TUESDAY).not_before == d.not_before


def test_a_request_from_the_customer_waives_the_activity_rule() -> None:
    st = state(ev("help_requested", TUESDAY - MINUTE))
    assert not decide(ACTIVE, st, propose("call", "sales"), TUESDAY).allowed
    assert decide(ACTIVE, st, propose("call", "sales", trigger="help_requested"), TUESDAY).allowed


def test_courtesy_checkout_story_at_the_edges() -> None:
    started = TUESDAY - 2 * MINUTE
    st = state(ev("checkout_started", started))
    d = decide(COURTESY, st, propose("call", "sales", trigger="checkout_started"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == started + 60 * MINUTE
    assert {"customer-active", "checkout-open"} <= rules_of(d)
