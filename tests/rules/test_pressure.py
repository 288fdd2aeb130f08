"""`pressure`: channel weights decaying with a half-life; deferral until decay makes room."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from tactful import ContactStatus, Outcome, Policy, Verdict
from tactful.rules.base import Context
from tactful.rules.pressure import PressureRule
from tactful.state import CustomerState, pressure_at
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
    ts,
)

PRESSURE = policy(
    """
    - id: pressure
      kind: pressure
      scope: {purposes: [marketing, sales]}
      budget: 12
      half_life: 7d
      unanswered_factor: 2
      message: "pressure {pressure} of {budget}"
    """,
    header="weights: {call: 5, sms: 3, email: 1, visit: 15}\n",
)
HALF_LIFE = 7 * 86400.0


def pressure(st: CustomerState, when: datetime, now: datetime = TUESDAY) -> float:
    rule = PRESSURE.rule("pressure")
    assert isinstance(rule, PressureRule)
    return rule.at(Context(st, propose("call", "sales"), PRESSURE, ts(now)), ts(when))


def test_weights_add_and_halve_every_half_life() -> None:
    st = state(contact("call", "sales", TUESDAY), contact("email", "marketing", TUESDAY))
    assert pressure(st, TUESDAY) == pytest.approx(6.0)
    assert pressure(st, TUESDAY + 7 * DAY) == pytest.approx(3.0)
    assert pressure(st, TUESDAY + 14 * DAY) == pytest.approx(1.5)
    # Before a contact happened, it adds nothing.
    assert pressure(st, TUESDAY - HOUR) == 0.0


def test_pressure_matches_the_state_helper() -> None:
    st = state(
        contact("call", "sales", TUESDAY - 3 * DAY),
        contact("sms", "marketing", TUESDAY - DAY),
        contact("email", "marketing", TUESDAY - HOUR),
    )
    rule = PRESSURE.rule("pressure")
    assert isinstance(rule, PressureRule)
    ctx = Context(st, propose("call", "sales"), PRESSURE, ts(TUESDAY))
    direct = pressure_at(st.contacts, ts(TUESDAY), lambda c: rule.weight(ctx, c), HALF_LIFE)
    expected = 5 * 2 ** (-3 / 7) + 3 * 2 ** (-1 / 7) + 1 * 2 ** (-1 / (7 * 24))
    assert direct == pytest.approx(expected)
    assert pressure(st, TUESDAY) == pytest.approx(expected)


def test_an_unanswered_call_counts_double() -> None:
    st = state(contact("call", "sales", TUESDAY, outcome=Outcome.NO_ANSWER))
    assert pressure(st, TUESDAY) == pytest.approx(10.0)
    st = state(contact("call", "sales", TUESDAY, outcome=Outcome.VOICEMAIL))
    assert pressure(st, TUESDAY) == pytest.approx(10.0)
    st = state(contact("call", "sales", TUESDAY, outcome=Outcome.ANSWERED))
    assert pressure(st, TUESDAY) == pytest.approx(5.0)


def test_contacts_the_customer_asked_for_weigh_nothing() -> None:
    st = state(
        contact("call", "service", TUESDAY, trigger="callback_requested"),
        contact("call", "sales", TUESDAY, trigger="help_requested", outcome=Outcome.NO_ANSWER),
    )
    assert pressure(st, TUESDAY) == 0.0


def test_every_counting_contact_adds_whatever_its_purpose() -> None:
    # Current behaviour: the scope says which proposals are held back, but pressure is
    # how much contact the customer is under, so receipts and service calls weigh too.
    st = state(contact("call", "service", TUESDAY), contact("email", "transactional", TUESDAY))
    assert pressure(st, TUESDAY) == pytest.approx(6.0)


def test_holds_weigh_until_they_expire_and_cancelled_contacts_never() -> None:
    st = state(
        contact("call", "sales", TUESDAY, status=ContactStatus.HELD, hold_expires=TUESDAY + HOUR),
        contact("call", "sales", TUESDAY, status=ContactStatus.CANCELLED),
    )
    assert pressure(st, TUESDAY, now=TUESDAY) == pytest.approx(5.0)
    assert pressure(st, TUESDAY + 2 * HOUR, now=TUESDAY + 2 * HOUR) == 0.0


def test_over_budget_defers_until_decay_makes_room() -> None:
    st = state(contact("call", "sales", TUESDAY), contact("call", "sales", TUESDAY))
    d = decide(PRESSURE, st, propose("call", "sales"), TUESDAY)
    assert d.verdict is Verdict.DEFER and rules_of(d) == {"pressure"}
    # 10 * 2^(-x / 7d) = 12 - 5  =>  x = 7d * log2(10 / 7)
    expected = ts(TUESDAY) + HALF_LIFE * math.log2(10 / 7)
    assert d.not_before is not None
    assert ts(d.not_before) == pytest.approx(expected, abs=1e-3)
    assert pressure(st, d.not_before) + 5 == pytest.approx(12.0)
    assert d.reasons[0].message == "pressure 10.0 of 12"
    assert decide(PRESSURE, st, propose("call", "sales"), d.not_before).allowed


def test_past_the_last_contact_the_wait_is_the_same_whenever_one_asks() -> None:
    # Pressure only decays after the last contact: asked at any instant before the
    # contact fits, the answer is the one instant it fits from, to the last float, and
    # from that instant on it is allowed (no tolerance sliver allowed just before it).
    st = state(contact("call", "sales", TUESDAY), contact("call", "sales", TUESDAY))
    rule = PRESSURE.rule("pressure")
    ctx = Context(st, propose("call", "sales"), PRESSURE, ts(TUESDAY))
    u = rule.check(ctx, ts(TUESDAY))
    assert u > ts(TUESDAY)
    for t in (ts(TUESDAY) + 1.0, ts(TUESDAY) + DAY.total_seconds(), (ts(TUESDAY) + u) / 2):
        assert rule.check(ctx, t) == u
    below = math.nextafter(u, -math.inf)
    assert rule.check(ctx, below) == u and rule.check(ctx, u) == u
    assert rule.check(ctx, u + 1.0) == u + 1.0


def test_unanswered_pressure_waits_longer() -> None:
    st = state(contact("call", "sales", TUESDAY, outcome=Outcome.NO_ANSWER))
    d = decide(PRESSURE, st, propose("call", "sales"), TUESDAY)
    assert d.not_before is not None
    assert ts(d.not_before) == pytest.approx(ts(TUESDAY) + HALF_LIFE * math.log2(10 / 7), abs=1e-3)


def test_a_lighter_channel_fits_where_a_heavier_one_does_not() -> None:
    st = state(
        *(contact("call", "sales", TUESDAY) for _ in range(2)), contact("email", "sales", TUESDAY)
    )
    assert pressure(st, TUESDAY) == pytest.approx(11.0)
    assert decide(PRESSURE, st, propose("email", "marketing"), TUESDAY).allowed  # 12 <= 12
    assert not decide(PRESSURE, st, propose("sms", "marketing"), TUESDAY).allowed


def test_a_contact_heavier_than_the_budget_is_never_allowed() -> None:
    d = decide(PRESSURE, state(), propose("visit", "sales"), TUESDAY)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"pressure"}


def test_future_holds_must_stay_within_budget_too() -> None:
    booked = TUESDAY + DAY
    st = state(contact("call", "sales", booked), contact("call", "sales", booked))
    # Now is quiet, but a call now would push tomorrow's bookings over the budget.
    d = decide(PRESSURE, st, propose("call", "sales"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before is not None
    assert ts(d.not_before) == pytest.approx(ts(booked) + HALF_LIFE * math.log2(10 / 7), abs=1e-3)
    # Far enough ahead of the bookings, a call fits.
    early = TUESDAY - 30 * DAY
    assert decide(PRESSURE, st, propose("call", "sales", at=early), early).allowed


def test_service_and_requested_contacts_are_not_held_back() -> None:
    st = state(
        *(contact("call", "sales", TUESDAY) for _ in range(3)), ev("help_requested", TUESDAY)
    )
    assert decide(PRESSURE, st, propose("call", "service"), TUESDAY).allowed
    assert decide(PRESSURE, st, propose("call", "sales", trigger="help_requested"), TUESDAY).allowed
    assert not decide(PRESSURE, st, propose("call", "sales"), TUESDAY).allowed


def test_courtesy_weights() -> None:
    pol = Policy.load("courtesy")
    assert [pol.weight(c) for c in ("call", "visit", "sms", "push", "email", "chat", "in_app")] == [
        5,
        5,
        3,
        1,
        1,
        1,
        0.5,
    ]
    assert pol.weight("carrier-pigeon") == 1.0
    # An unanswered call and a day of marketing: 10 + 1 + 1 leaves no room for a 3-weight SMS.
    st = state(
        contact("call", "sales", TUESDAY - HOUR, outcome=Outcome.NO_ANSWER),
        contact("email", "marketing", TUESDAY - 2 * HOUR),
        contact("push", "marketing", TUESDAY - 2 * HOUR),
    )
    d = decide(pol, st, propose("sms", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER and "pressure" in rules_of(d)
    assert d.not_before is not None and d.not_before - TUESDAY < timedelta(days=3)


def test_two_policies_sharing_a_rule_id_do_not_share_cached_pressure() -> None:
    # (This was a bug: the pressure cache was keyed by rule id, not by the rule.)
    rules = """
        - id: p
          kind: pressure
          budget: 5.5
          half_life: 7d
          message: m
    """
    heavy = policy(rules, header="weights: {call: 5}\n")
    light = policy(rules, header="weights: {call: 1}\n")
    for first in (heavy, light):
        st = state(contact("call", "sales", TUESDAY - HOUR))
        decide(first, st, propose("email", "sales"), TUESDAY)
        assert decide(heavy, st, propose("email", "sales"), TUESDAY).verdict is Verdict.DEFER
        assert decide(light, st, propose("email", "sales"), TUESDAY).allowed


def test_not_before_is_a_time_the_same_question_is_allowed_at() -> None:
    """Pressure eases at an instant known to a fraction of a microsecond; `not_before` is
    the first whole microsecond at or after it, not the one before (found by the property
    test at 1,500 examples: asked again at `not_before`, the contact was deferred again)."""
    courtesy = Policy.load("courtesy")
    sent = TUESDAY  # five contacts just made: pressure 12 of 12
    st = state(
        contact("email", "sales", sent),
        contact("sms", "marketing", sent, outcome="no_answer"),
        contact("sms", "marketing", sent),
        contact("email", "marketing", sent),
        contact("email", "marketing", sent),
    )
    asked = propose("email", "marketing")
    first = decide(courtesy, st, asked, TUESDAY)
    assert first.verdict is Verdict.DEFER and "pressure" in rules_of(first)
    assert first.not_before is not None
    eases = next(r.until for r in first.reasons if r.rule == "pressure")
    assert eases is not None and first.not_before >= eases
    assert decide(courtesy, st, asked, first.not_before).verdict is Verdict.ALLOW


class _Counting(dict):  # type: ignore[type-arg]
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.reads = 0

    def get(self, key: object, default: object = None) -> object:
        if isinstance(key, tuple) and key[0] == "pressure":
            self.reads += 1
        return super().get(key, default)


def test_one_decision_looks_up_the_pressure_terms_once_however_often_asked() -> None:
    """The search asks pressure again at each instant it tries: the terms (the counting
    contacts, summed) are looked up once per decision and kept on its context; the
    answers are those of a context that looks them up every time."""
    st = state(*(contact("call", "sales", TUESDAY - i * HOUR) for i in range(4)))
    rule = PRESSURE.rule("pressure")
    assert isinstance(rule, PressureRule)
    instants = [ts(TUESDAY + k * DAY) for k in range(6)]
    fresh = [
        rule.check(Context(st, propose("call", "sales"), PRESSURE, ts(TUESDAY)), t)
        for t in instants
    ]
    st.contact_memo = counting = _Counting(st.contact_memo)
    ctx = Context(st, propose("call", "sales"), PRESSURE, ts(TUESDAY))
    assert [rule.check(ctx, t) for t in instants] == fresh
    assert fresh[0] > instants[0]  # over budget: the answers are waits, not a trivial allow
    assert counting.reads == 1
