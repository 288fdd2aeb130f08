"""`preferences`: the channels and the pace the customer chose in the preference centre."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

from tactful import Policy, Verdict
from tactful.rules.preferences import pace_of
from tests.rules.conftest import (
    DAY,
    HOUR,
    TUESDAY,
    contact,
    decide,
    ev,
    policy,
    profile,
    propose,
    rules_of,
    state,
)

PREFS = policy("""
    - id: prefs
      kind: preferences
      message: "their choice: {why}"
""")


def test_no_preferences_no_limits() -> None:
    st = state(*(contact("email", "marketing", TUESDAY - timedelta(hours=h)) for h in (1, 2, 3)))
    assert decide(PREFS, st, propose("email", "marketing"), TUESDAY).allowed


def test_only_the_chosen_channels() -> None:
    st = state(prof=profile(preferences={"channels": ["email"]}))
    assert decide(PREFS, st, propose("email", "marketing"), TUESDAY).allowed
    d = decide(PREFS, st, propose("sms", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].message == "their choice: sms is not among the channels they chose"
    # Receipts go wherever they must.
    assert decide(PREFS, st, propose("sms", "transactional"), TUESDAY).allowed


def test_an_empty_channel_list_means_none() -> None:
    st = state(prof=profile(preferences={"channels": []}))
    assert decide(PREFS, st, propose("email", "marketing"), TUESDAY).verdict is Verdict.DENY


def test_the_customers_pace_is_a_rolling_cap_over_everything_in_scope() -> None:
    prefs = {"pace": {"count": 1, "per": "7d"}}
    sent = TUESDAY - 2 * DAY
    st = state(contact("sms", "sales", sent), prof=profile(preferences=prefs))
    d = decide(PREFS, st, propose("email", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER and d.not_before == sent + 7 * DAY
    assert d.reasons[0].message == "their choice: their pace is at most 1 per 7d"
    assert decide(PREFS, st, propose("email", "transactional"), TUESDAY).allowed


def test_a_requested_contact_is_not_held_to_the_pace() -> None:
    prefs = {"pace": {"count": 1, "per": "7d"}}
    st = state(
        contact("call", "sales", TUESDAY - DAY),
        ev("callback_requested", TUESDAY - HOUR),
        prof=profile(preferences=prefs),
    )
    assert decide(
        PREFS, st, propose("call", "service", trigger="callback_requested"), TUESDAY
    ).allowed


def test_pace_of() -> None:
    assert pace_of({}) is None
    assert pace_of({"pace": {"count": 2, "per": "1w"}}) == (2, 7 * 86400.0)


def test_courtesy_preferences() -> None:
    pol = Policy.load("courtesy")
    st = state(prof=profile(preferences={"channels": ["email", "call"]}))
    d = decide(pol, st, propose("push", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"customer-preferences"}


def test_preferences_in_any_mapping() -> None:
    # (This was a bug: the pace was read only from a `dict`, so a read-only mapping such as
    # a MappingProxyType silently lost it while its channel list still applied.)
    prefs = MappingProxyType({"channels": ["email"], "pace": {"count": 1, "per": "7d"}})
    assert pace_of(prefs) == (1, 7 * 86400.0)
    st = state(contact("email", "sales", TUESDAY - DAY), prof=profile(preferences=prefs))
    assert decide(PREFS, st, propose("email", "marketing"), TUESDAY).verdict is Verdict.DEFER
