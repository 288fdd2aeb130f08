"""`gap`: a minimum time between two contacts in scope, before and after."""

from __future__ import annotations

from datetime import timedelta

from tactful import ContactStatus, Policy, Verdict
from tests.rules.conftest import (
    HOUR,
    MINUTE,
    TUESDAY,
    check,
    contact,
    decide,
    policy,
    propose,
    rules_of,
    state,
    ts,
)

GAP = policy("""
    - id: call-gap
      kind: gap
      scope: {channels: [call], purposes: [sales]}
      gap: 48h
      message: 48 hours apart
""")


def test_gap_after_the_last_contact() -> None:
    st = state(contact("call", "sales", TUESDAY))
    d = decide(GAP, st, propose("call", "sales"), TUESDAY + HOUR)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == TUESDAY + timedelta(hours=48)
    assert rules_of(d) == {"call-gap"}
    assert decide(GAP, st, propose("call", "sales"), TUESDAY + timedelta(hours=48)).allowed
    just_before = TUESDAY + timedelta(hours=48) - timedelta(seconds=1)
    assert not decide(GAP, st, propose("call", "sales"), just_before).allowed


def test_gap_before_a_future_hold() -> None:
    # A call is already booked in ten hours: one now would be too close to it.
    st = state(contact("call", "sales", TUESDAY + 10 * HOUR))
    assert check(GAP, "call-gap", st, propose("call", "sales"), TUESDAY) == ts(TUESDAY + 58 * HOUR)
    # A booking 100 hours out leaves room now.
    far = state(contact("call", "sales", TUESDAY + 100 * HOUR))
    assert decide(GAP, far, propose("call", "sales"), TUESDAY).allowed


def test_gap_pushes_past_a_chain_of_contacts() -> None:
    st = state(contact("call", "sales", TUESDAY), contact("call", "sales", TUESDAY + 47 * HOUR))
    d = decide(GAP, st, propose("call", "sales"), TUESDAY + HOUR)
    assert d.not_before == TUESDAY + 95 * HOUR


def test_gap_ignores_cancelled_expired_out_of_scope_and_transactional() -> None:
    st = state(
        contact("call", "sales", TUESDAY - HOUR, status=ContactStatus.CANCELLED),
        contact(
            "call",
            "sales",
            TUESDAY - HOUR,
            status=ContactStatus.HELD,
            hold_expires=TUESDAY - 30 * MINUTE,
        ),
        contact("call", "service", TUESDAY - HOUR),
        contact("email", "sales", TUESDAY - HOUR),
    )
    assert decide(GAP, st, propose("call", "sales"), TUESDAY).allowed
    any_purpose = policy("""
        - id: g
          kind: gap
          scope: {channels: [call]}
          gap: 1h
          message: an hour apart
    """)
    st = state(contact("call", "sales", TUESDAY - MINUTE))
    assert decide(any_purpose, st, propose("call", "transactional"), TUESDAY).allowed
    st = state(contact("call", "transactional", TUESDAY - MINUTE))
    assert decide(any_purpose, st, propose("call", "sales"), TUESDAY).allowed


def test_gap_per_source() -> None:
    pol = policy("""
        - id: per-team
          kind: gap
          gap: 1d
          per: [source]
          message: a day apart per team
    """)
    st = state(contact("email", "sales", TUESDAY - HOUR, source="team-a"))
    assert not decide(pol, st, propose("email", "sales", source="team-a"), TUESDAY).allowed
    assert decide(pol, st, propose("email", "sales", source="team-b"), TUESDAY).allowed


def test_courtesy_marketing_email_gap_is_20_hours() -> None:
    pol = Policy.load("courtesy")
    st = state(contact("email", "marketing", TUESDAY - 19 * HOUR))
    d = decide(pol, st, propose("email", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER and d.not_before == TUESDAY + HOUR
    assert "marketing-email-gap" in rules_of(d)
