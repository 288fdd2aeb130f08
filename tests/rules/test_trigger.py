"""`trigger`: behaviour-prompted contact waits, and lapses once the trigger is moot."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tactful import Policy, PolicyError, Trigger, Verdict
from tactful.engine import pin_trigger
from tests.rules.conftest import (
    DAY,
    HOUR,
    MINUTE,
    TUESDAY,
    decide,
    ev,
    policy,
    propose,
    rules_of,
    state,
)

COURTESY = Policy.load("courtesy")
DELAY = policy("""
    - id: delay
      kind: trigger
      scope: {purposes: [sales], triggers: [signed_in, page_viewed]}
      delay: 24h
      message: wait a day
    - id: moot
      kind: trigger
      scope: {triggers: [checkout_started]}
      cancelled_by: [order_completed]
      mode: deny
      message: order done
""")


def test_delay_counts_from_the_trigger_time_given() -> None:
    signed_in = TUESDAY - HOUR
    d = decide(
        DELAY, state(), propose("call", "sales", trigger=Trigger("signed_in", signed_in)), TUESDAY
    )
    assert d.verdict is Verdict.DEFER and d.not_before == signed_in + DAY
    assert rules_of(d) == {"delay"}


def test_delay_takes_the_latest_such_event_from_the_ledger() -> None:
    st = state(ev("signed_in", TUESDAY - 3 * DAY), ev("signed_in", TUESDAY - 2 * HOUR))
    d = decide(DELAY, st, propose("call", "sales", trigger="signed_in"), TUESDAY)
    assert d.not_before == TUESDAY - 2 * HOUR + DAY
    # A sign-in later than `now` is not the trigger of a proposal made now.
    st.add_event(ev("signed_in", TUESDAY + HOUR))
    d = decide(DELAY, st, propose("call", "sales", trigger="signed_in"), TUESDAY)
    assert d.not_before == TUESDAY - 2 * HOUR + DAY


def test_unknown_trigger_is_taken_to_have_happened_now() -> None:
    # Documented design: the ledger has no sign-in, so the trigger is "now". Asking again
    # at the suggested time with the same unknown trigger defers again: senders should
    # pass `trigger.at` (or send the event) for `not_before` to hold. (A queued proposal
    # is kept with its trigger's time: `pin_trigger`, tests/delivery/test_trigger_pinned.py.)
    d = decide(DELAY, state(), propose("call", "sales", trigger="signed_in"), TUESDAY)
    assert d.not_before == TUESDAY + DAY
    again = decide(DELAY, state(), propose("call", "sales", trigger="signed_in"), TUESDAY + DAY)
    assert again.verdict is Verdict.DEFER and again.not_before == TUESDAY + 2 * DAY


def test_a_pinned_trigger_decides_alike_now_and_holds_later() -> None:
    """`pin_trigger` names the time a decision takes the trigger to be; the queue keeps
    proposals pinned so that deciding again at `not_before` lets them go."""
    unknown = propose("call", "sales", trigger="signed_in")
    pinned = pin_trigger(state(), unknown, TUESDAY)
    assert pinned.trigger == Trigger("signed_in", TUESDAY)
    assert decide(DELAY, state(), pinned, TUESDAY) == decide(DELAY, state(), unknown, TUESDAY)
    assert decide(DELAY, state(), pinned, TUESDAY + DAY).allowed
    # A sign-in the ledger knows: its time, the last one by then.
    st = state(ev("signed_in", TUESDAY - 3 * HOUR), ev("signed_in", TUESDAY - HOUR),
               ev("signed_in", TUESDAY + HOUR))  # fmt: skip
    known = pin_trigger(st, unknown, TUESDAY)
    assert known.trigger == Trigger("signed_in", TUESDAY - HOUR)
    assert decide(DELAY, st, known, TUESDAY) == decide(DELAY, st, unknown, TUESDAY)
    # Named already, or none: as it was.
    given = propose("call", "sales", trigger=Trigger("signed_in", TUESDAY - DAY))
    assert pin_trigger(st, given, TUESDAY) is given
    plain = propose("call", "sales")
    assert pin_trigger(st, plain, TUESDAY) is plain


def test_untriggered_or_other_triggers_are_out_of_scope() -> None:
    st = state(ev("signed_in", TUESDAY - MINUTE))
    assert decide(DELAY, st, propose("call", "sales"), TUESDAY).allowed
    assert decide(
        DELAY, st, propose("call", "sales", trigger="content_downloaded"), TUESDAY
    ).allowed
    assert decide(DELAY, st, propose("call", "service", trigger="signed_in"), TUESDAY).allowed


def test_cancelled_once_the_order_completes_after_the_checkout() -> None:
    started = TUESDAY - 3 * HOUR
    st = state(ev("checkout_started", started))
    proposal = propose("email", "marketing", trigger="checkout_started")
    assert decide(DELAY, st, proposal, TUESDAY).allowed
    st.add_event(ev("order_completed", TUESDAY - HOUR))
    d = decide(DELAY, st, proposal, TUESDAY)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"moot"}


def test_an_order_before_the_checkout_does_not_cancel_it() -> None:
    st = state(
        ev("order_completed", TUESDAY - 2 * DAY),
        ev("checkout_started", TUESDAY - 3 * HOUR),
    )
    assert decide(
        DELAY, st, propose("email", "marketing", trigger="checkout_started"), TUESDAY
    ).allowed


def test_future_order_cancels_a_future_proposal_only_once_it_happens() -> None:
    st = state(ev("checkout_started", TUESDAY - 3 * HOUR), ev("order_completed", TUESDAY + HOUR))
    proposal = propose("email", "marketing", trigger="checkout_started")
    assert decide(DELAY, st, proposal, TUESDAY).allowed
    later = propose("email", "marketing", trigger="checkout_started", at=TUESDAY + 2 * HOUR)
    assert decide(DELAY, st, later, TUESDAY).verdict is Verdict.DENY


def test_courtesy_trigger_delay_and_per_kind_cap() -> None:
    signed_in = TUESDAY - HOUR
    st = state(ev("signed_in", signed_in))
    d = decide(COURTESY, st, propose("call", "sales", trigger="signed_in"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == signed_in + DAY
    assert "behaviour-trigger-delay" in rules_of(d)


def test_a_trigger_rule_needs_a_delay_or_a_cancellation() -> None:
    with pytest.raises(PolicyError) as info:
        policy("""
            - id: empty
              kind: trigger
              message: nothing
        """)
    assert "needs `delay`" in str(info.value)


def test_delay_in_days_is_parsed() -> None:
    pol = policy("""
        - id: d
          kind: trigger
          delay: 2 days
          message: two days
    """)
    d = decide(
        pol, state(), propose("email", "sales", trigger=Trigger("searched", TUESDAY)), TUESDAY
    )
    assert d.not_before == TUESDAY + timedelta(days=2)
