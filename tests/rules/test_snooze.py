"""`snooze`: "not now, try me in three weeks" defers everything but transactional."""

from __future__ import annotations

from datetime import timedelta

from tactful import Policy, Verdict
from tests.rules.conftest import (
    DAY,
    HOUR,
    TUESDAY,
    decide,
    ev,
    policy,
    propose,
    rules_of,
    state,
)

SNOOZE = policy("""
    - id: snooze
      kind: snooze
      message: "snoozed until {until}"
""")


def test_snooze_for_a_duration_defers_until_it_ends() -> None:
    st = state(ev("snooze_requested", TUESDAY - HOUR, duration="3 weeks"))
    until = TUESDAY - HOUR + timedelta(weeks=3)
    for channel, purpose in (("email", "marketing"), ("call", "service"), ("push", "sales")):
        d = decide(SNOOZE, st, propose(channel, purpose), TUESDAY)
        assert d.verdict is Verdict.DEFER and d.not_before == until
    d = decide(SNOOZE, st, propose("email", "marketing"), TUESDAY)
    assert d.reasons[0].message == "snoozed until 2026-12-08 19:00 UTC"
    assert decide(SNOOZE, st, propose("email", "marketing"), until).allowed


def test_snooze_until_a_date() -> None:
    st = state(ev("snooze_requested", TUESDAY, until="2027-01-04T09:00:00-06:00"))
    d = decide(SNOOZE, st, propose("email", "marketing"), TUESDAY + HOUR)
    assert d.not_before is not None and d.not_before.isoformat() == "2027-01-04T15:00:00+00:00"


def test_transactional_is_exempt() -> None:
    st = state(ev("snooze_requested", TUESDAY, duration="7d"))
    assert decide(SNOOZE, st, propose("email", "transactional"), TUESDAY).allowed


def test_the_latest_snooze_wins_by_event_time() -> None:
    st = state(
        ev("snooze_requested", TUESDAY - DAY, duration="30d"),
        ev("snooze_requested", TUESDAY - HOUR, duration="2d"),
    )
    d = decide(SNOOZE, st, propose("email", "marketing"), TUESDAY)
    assert d.not_before == TUESDAY - HOUR + 2 * DAY
    # A late-arriving older snooze does not replace the newer one.
    st.add_event(ev("snooze_requested", TUESDAY - 2 * DAY, duration="90d"))
    assert decide(SNOOZE, st, propose("email", "marketing"), TUESDAY).not_before == d.not_before


def test_a_snooze_without_an_end_lifts_the_snooze() -> None:
    # Current behaviour: a snooze request with neither `until` nor `duration` clears it.
    st = state(
        ev("snooze_requested", TUESDAY - DAY, duration="30d"),
        ev("snooze_requested", TUESDAY - HOUR),
    )
    assert decide(SNOOZE, st, propose("email", "marketing"), TUESDAY).allowed


def test_a_past_snooze_holds_nothing_back() -> None:
    st = state(ev("snooze_requested", TUESDAY - 10 * DAY, duration="3d"))
    assert decide(SNOOZE, st, propose("email", "marketing"), TUESDAY).allowed


def test_a_requested_contact_passes_a_snooze() -> None:
    st = state(
        ev("snooze_requested", TUESDAY - DAY, duration="30d"),
        ev("help_requested", TUESDAY - HOUR),
    )
    assert decide(
        SNOOZE, st, propose("email", "service", trigger="help_requested"), TUESDAY
    ).allowed


def test_courtesy_snooze() -> None:
    pol = Policy.load("courtesy")
    st = state(ev("snooze_requested", TUESDAY - HOUR, duration="21d"))
    d = decide(pol, st, propose("email", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER and "snooze" in rules_of(d)
