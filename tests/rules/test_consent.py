"""`consent`: opt-outs, unsubscribes, complaints and explicit consent, in event-time order."""

from __future__ import annotations

from tactful import Policy, Verdict
from tests.rules.conftest import (
    CHANNELS,
    DAY,
    HOUR,
    MINUTE,
    TUESDAY,
    decide,
    ev,
    policy,
    profile,
    propose,
    rules_of,
    state,
)

COURTESY = Policy.load("courtesy")
CONSENT = policy("""
    - id: consent
      kind: consent
      message: "asked not to ({scope})"
""")
PURPOSES = ("service", "marketing", "sales", "collections")


def allowed(st: object, channel: str, purpose: str) -> bool:
    return decide(CONSENT, st, propose(channel, purpose), TUESDAY).allowed  # type: ignore[arg-type]


def test_opt_out_of_everything_denies_all_but_transactional() -> None:
    st = state(ev("opted_out", TUESDAY - DAY))
    for channel in CHANNELS:
        for purpose in PURPOSES:
            d = decide(CONSENT, st, propose(channel, purpose), TUESDAY)
            assert d.verdict is Verdict.DENY, (channel, purpose)
            assert d.reasons[0].until is None
        assert allowed(st, channel, "transactional")
    d = decide(CONSENT, st, propose("call", "sales"), TUESDAY)
    assert d.reasons[0].message == "asked not to (opted out from all contact)"


def test_opting_in_again_lifts_it() -> None:
    st = state(ev("opted_out", TUESDAY - DAY), ev("opted_in", TUESDAY - HOUR))
    assert allowed(st, "call", "sales")


def test_order_is_by_event_time_not_arrival() -> None:
    # The opt-in happened first but arrives last: the customer is still opted out.
    st = state(ev("opted_out", TUESDAY - HOUR))
    st.add_event(ev("opted_in", TUESDAY - DAY))
    assert not allowed(st, "email", "marketing")
    # Opt-out, opt-in, opt-out again: the last one stands.
    st = state(
        ev("opted_out", TUESDAY - 3 * DAY),
        ev("opted_out", TUESDAY - DAY),
        ev("opted_in", TUESDAY - 2 * DAY),
    )
    assert not allowed(st, "email", "marketing")


def test_same_instant_opt_out_and_opt_in_resolve_the_same_way_whatever_the_arrival() -> None:
    when = TUESDAY - HOUR
    a = state(ev("opted_out", when, "e1"), ev("opted_in", when, "e2"))
    b = state(ev("opted_in", when, "e2"), ev("opted_out", when, "e1"))
    assert allowed(a, "email", "marketing") == allowed(b, "email", "marketing")


def test_a_channel_unsubscribe_covers_that_channel_only() -> None:
    st = state(ev("unsubscribed", TUESDAY - HOUR, channel="email"))
    assert not allowed(st, "email", "marketing")
    assert not allowed(st, "email", "service")
    # Current behaviour: a channel unsubscribe covers every purpose on it, receipts too
    # (only a global opt-out leaves transactional alone).
    assert not allowed(st, "email", "transactional")
    assert allowed(st, "sms", "marketing")
    d = decide(CONSENT, st, propose("email", "marketing"), TUESDAY)
    assert d.reasons[0].message == "asked not to (unsubscribed from email)"


def test_a_purpose_unsubscribe_covers_that_purpose_on_every_channel() -> None:
    st = state(ev("unsubscribed", TUESDAY - HOUR, purpose="marketing"))
    assert not allowed(st, "email", "marketing")
    assert not allowed(st, "sms", "marketing")
    assert allowed(st, "email", "sales")
    assert allowed(st, "email", "transactional")


def test_a_channel_and_purpose_unsubscribe_is_that_pair() -> None:
    st = state(ev("unsubscribed", TUESDAY - HOUR, channel="sms", purpose="marketing"))
    assert not allowed(st, "sms", "marketing")
    assert allowed(st, "sms", "service")
    assert allowed(st, "email", "marketing")
    # Subscribing again to the same scope lifts it.
    st.add_event(ev("subscribed", TUESDAY - MINUTE, channel="sms", purpose="marketing"))
    assert allowed(st, "sms", "marketing")


def test_a_scoped_opt_in_does_not_lift_a_global_opt_out() -> None:
    # Current behaviour: only an unscoped opt-in lifts everything.
    st = state(ev("opted_out", TUESDAY - DAY), ev("opted_in", TUESDAY - HOUR, channel="email"))
    assert not allowed(st, "email", "marketing")


def test_an_opt_out_naming_only_a_purpose_is_global() -> None:
    # Current behaviour: `opted_out` without a channel is an opt-out of everything, even
    # when it names a purpose (a purpose-only unsubscribe is `unsubscribed`).
    st = state(ev("opted_out", TUESDAY - DAY, purpose="marketing"))
    assert not allowed(st, "call", "sales")


def test_a_spam_complaint_stops_marketing_on_its_channel() -> None:
    st = state(ev("complained", TUESDAY - HOUR))
    assert not allowed(st, "email", "marketing")
    assert allowed(st, "email", "service")
    assert allowed(st, "sms", "marketing")
    st = state(ev("complained", TUESDAY - HOUR, channel="sms"))
    assert not allowed(st, "sms", "marketing")
    assert allowed(st, "email", "marketing")


def test_profile_consent_keys_most_specific_first() -> None:
    refused = state(prof=profile(consent={"sms:marketing": False, "sms": True}))
    assert not allowed(refused, "sms", "marketing")
    assert allowed(refused, "sms", "service")
    everything = state(prof=profile(consent={"*": False}))
    assert not allowed(everything, "email", "marketing")
    assert allowed(everything, "email", "transactional")
    granted = state(prof=profile(consent={"*": False, "email": True}))
    assert allowed(granted, "email", "marketing")


def test_require_opt_in() -> None:
    pol = policy("""
        - id: tcpa
          kind: consent
          require_opt_in: ["sms:marketing"]
          message: "{scope}"
    """)
    d = decide(pol, state(), propose("sms", "marketing"), TUESDAY)
    assert (
        d.verdict is Verdict.DENY and d.reasons[0].message == "no opt-in recorded for sms:marketing"
    )
    assert decide(pol, state(), propose("sms", "service"), TUESDAY).allowed
    opted = state(prof=profile(consent={"sms": True}))
    assert decide(pol, opted, propose("sms", "marketing"), TUESDAY).allowed


def test_a_duplicate_opt_in_event_is_not_counted_twice() -> None:
    st = state(ev("opted_out", TUESDAY - DAY, "o1"), ev("opted_in", TUESDAY - 2 * DAY, "i1"))
    assert not st.add_event(ev("opted_in", TUESDAY - HOUR, "i1"))  # same id, later time: dropped
    assert not allowed(st, "email", "marketing")


def test_courtesy_opt_out_everywhere_from_every_team() -> None:
    st = state(ev("opted_out", TUESDAY - DAY))
    for source in ("sales-team", "partner-desk", None):
        d = decide(COURTESY, st, propose("call", "sales", source=source), TUESDAY)
        assert d.verdict is Verdict.DENY and "opt-out" in rules_of(d)
    assert decide(COURTESY, st, propose("email", "transactional"), TUESDAY).allowed
