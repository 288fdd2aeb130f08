"""The rule kinds the law packs brought: `frequency`, `cooldown`, `holiday`, `revocation`,
and the `regions` scope with the candidate locations behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tactful import CustomerProfile, Policy, Verdict
from tactful.jurisdiction import customer_regions, in_regions, phone_locations
from tactful.rules.base import Context
from tactful.rules.revocation import normalise, says_revoke
from tests.packs._helpers import ask, customer, event, past, proposal

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def inline(rules: str) -> Policy:
    return Policy.from_text("name: t\nversion: '1'\nrules:\n" + rules)


# -- regions ------------------------------------------------------------------------------


def test_phone_numbers_give_country_and_state() -> None:
    assert phone_locations("+13055550123") == ("US", "US-FL")
    assert phone_locations("+18504321234") == ("US", "US-FL")  # "Pensacola, FL"
    assert phone_locations("+14169672222") == ("CA", "CA-ON")  # "Toronto, ON"
    assert phone_locations("+33612345678") == ("FR", "FR-*")  # no subdivision known
    assert phone_locations("+18005550199") == ("US", "US-*")  # toll free: anywhere
    assert phone_locations("not a number") == ()


def test_profile_country_and_subdivision_count_as_candidates() -> None:
    assert customer_regions(CustomerProfile("c", country="us", subdivision="FL")) == {"US", "US-FL"}
    assert customer_regions(CustomerProfile("c", subdivision="MD")) == {"US", "US-MD"}
    assert customer_regions(CustomerProfile("c", subdivision="US-OK")) == {"US", "US-OK"}
    both = customer_regions(CustomerProfile("c", phones=("+12125550123", "+14169672222")))
    assert both == {"US", "US-NY", "CA", "CA-ON"}


def test_a_country_known_without_its_state_may_be_any_state() -> None:
    """A profile saying only "US" may be in Florida: state rules apply (stricter)."""
    regions = customer_regions(CustomerProfile("c", country="US", timezone="America/Chicago"))
    assert regions == {"US", "US-*"}
    assert in_regions(regions, ("US-FL",)) and not in_regions(regions, ("CA-ON",))
    # A known state closes the question.
    assert not in_regions(
        customer_regions(CustomerProfile("c", country="US", subdivision="NY")), ("US-FL",)
    )


def test_a_country_covers_its_subdivisions() -> None:
    assert in_regions({"US", "US-FL"}, ("US",))
    assert in_regions({"US-FL"}, ("US",))
    assert in_regions({"US", "US-FL"}, ("US-FL",))
    assert not in_regions({"US", "US-NY"}, ("US-FL",))


def test_nothing_known_means_every_regional_rule_applies() -> None:
    policy = inline(
        "  - {id: r, kind: hours, schedule: {daily: '10:00-11:00'}, holidays: false,"
        " scope: {regions: [FR]}, message: m}\n"
    )
    unknown = customer()
    assert (
        ask(policy, unknown, proposal(), datetime(2026, 11, 24, 12, tzinfo=UTC)).verdict
        is Verdict.DEFER
    )
    american = customer(country="US")
    assert (
        ask(policy, american, proposal(), datetime(2026, 11, 24, 12, tzinfo=UTC)).verdict
        is Verdict.ALLOW
    )


# -- frequency ----------------------------------------------------------------------------

FREQ = inline("  - {id: f, kind: frequency, count: 3, days: 5, per: [tags.account], message: m}\n")


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=20 * 24 * 4), max_size=12),
    probe=st.integers(min_value=0, max_value=20 * 24 * 4),
)
def test_frequency_never_lets_a_window_exceed_its_count(offsets: list[int], probe: int) -> None:
    """Invariant: after adding the contact at the instant `frequency` allows, no run of
    `days` consecutive local days holds more than `count` contacts; and that instant is
    itself allowed."""
    start = datetime(2026, 10, 20, tzinfo=PARIS)  # the window spans the 25 October change
    times = sorted(start + timedelta(minutes=15 * o) for o in offsets)
    # Build a history that respects the rule, as the engine would have.
    st_ = customer(tz="Europe/Paris")
    rule = FREQ.rule("f")
    kept = []
    for t in times:
        ctx = Context(st_, proposal(tags={"account": "A"}), FREQ, t.timestamp())
        if rule.check(ctx, t.timestamp()) == t.timestamp():
            st_.add_contact(past(t, tags={"account": "A"}))
            kept.append(t)
    now = start + timedelta(minutes=15 * probe)
    ctx = Context(st_, proposal(tags={"account": "A"}), FREQ, now.timestamp())
    u = rule.check(ctx, now.timestamp())
    assert rule.check(ctx, u) == u
    allowed = datetime.fromtimestamp(u, PARIS)
    days = sorted(d.date() for d in [*kept, allowed])
    for d in days:
        inside = [x for x in days if d <= x < d + timedelta(days=5)]
        assert len(inside) <= 3


def test_frequency_needs_days_or_window() -> None:
    with pytest.raises(ValueError, match="either `days` or `window`"):
        inline("  - {id: f, kind: frequency, count: 3, days: 2, window: 24h, message: m}\n")


# -- cooldown -----------------------------------------------------------------------------


def test_cooldown_ends_at_local_midnight_across_the_change_of_time() -> None:
    """Day 1 the day after, 3 days: a refusal on Saturday 24 October 2026 (Paris) ends at
    Wednesday 28 October 00:00, across the 25-hour Sunday."""
    policy = inline(
        "  - {id: c, kind: cooldown, days: 3, first_day: next, after_events: [not_interested],"
        " message: 'until {until}'}\n"
    )
    st_ = customer(
        tz="Europe/Paris",
        events=[event("not_interested", datetime(2026, 10, 24, 18, tzinfo=PARIS))],
    )
    d = ask(policy, st_, proposal(), datetime(2026, 10, 25, 12, tzinfo=PARIS))
    assert d.not_before == datetime(2026, 10, 28, tzinfo=PARIS)
    assert "2026-10-27 23:00 UTC" in d.reasons[0].message


def test_cooldown_with_several_zones_ends_at_the_latest_midnight() -> None:
    policy = inline(
        "  - {id: c, kind: cooldown, days: 1, after_outcomes: [answered], message: m}\n"
    )
    st_ = customer(
        phones=("+12125550123", "+12135550123"),
        contacts=[past(datetime(2026, 11, 24, 12, tzinfo=NY), outcome="answered")],
    )
    d = ask(policy, st_, proposal(), datetime(2026, 11, 24, 13, tzinfo=NY))
    assert d.not_before == datetime(2026, 11, 25, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_cooldown_needs_a_trigger() -> None:
    with pytest.raises(ValueError, match="after_outcomes"):
        inline("  - {id: c, kind: cooldown, days: 3, message: m}\n")


# -- holiday ------------------------------------------------------------------------------


def test_holiday_is_closed_when_any_zone_is_on_the_holiday() -> None:
    """14 July in Paris begins while it is still 13 July in New York: a customer who may
    be in either is closed from Paris midnight until New York's 15 July begins."""
    policy = inline("  - {id: h, kind: holiday, country: FR, message: '{holiday}'}\n")
    st_ = customer(phones=("+33612345678", "+12125550123"))
    d = ask(policy, st_, proposal(), datetime(2026, 7, 13, 20, tzinfo=NY))  # 02:00 in Paris
    assert d.not_before == datetime(2026, 7, 15, tzinfo=NY)
    assert d.reasons[0].message == "National Day"


# -- revocation ---------------------------------------------------------------------------


def test_revocation_words_are_matched_after_folding_case_and_punctuation() -> None:
    assert normalise("  Opt-Out!! ") == "opt out"
    assert says_revoke("STOP.", ["stop"], [])
    assert not says_revoke("stopped by the store", ["stop"], [])
    assert says_revoke("Please, take me off your list", [], ["take me off"])
    assert not says_revoke("", ["stop"], ["stop"])
