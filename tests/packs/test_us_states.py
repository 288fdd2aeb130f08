"""us-fl-ftsa, us-ok, us-md, case by case from the state statutes.

Florida (Fla. Stat. s. 501.616(6)), Oklahoma (15 O.S. s. 775C.4) and Maryland (Md. Code,
Com. Law s. 14-4502) read alike: no solicitation (a) before 8 a.m. or after 8 p.m. at the
called party's location, (b) more than three times "from any number to a person over a
24-hour period on the same subject matter or issue, regardless of the phone number used".
Each state's law applies when any candidate location of the customer is in that state.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tactful import Verdict
from tests.packs._helpers import ask, customer, pack, past, proposal, rules_of

NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")

#: pack, its state, a number in the state, that number's zone, the clause cited.
STATES = [
    ("us-fl-ftsa", "FL", "+13055550123", NY, "501.616(6)"),
    ("us-ok", "OK", "+14055550123", CHICAGO, "775C.4"),
    ("us-md", "MD", "+14105550123", NY, "14-4502"),
]


@pytest.fixture(params=STATES, ids=[s[0] for s in STATES])
def state_pack(request: pytest.FixtureRequest) -> tuple[str, str, str, ZoneInfo, str]:
    return request.param  # type: ignore[no-any-return]


def test_a_window_closes_at_8_pm(state_pack: tuple[str, str, str, ZoneInfo, str]) -> None:
    """(a) 08:00-20:00: 07:59:59 waits, 08:00:00 and 19:59:59 go, 20:00:00 waits."""
    name, _, phone, tz, clause = state_pack
    policy = pack(name)
    st = customer(phones=(phone,))
    for local, ok in (
        ((7, 59, 59), False),
        ((8, 0, 0), True),
        ((19, 59, 59), True),
        ((20, 0, 0), False),
    ):
        d = ask(policy, st, proposal("call", "sales"), datetime(2026, 11, 24, *local, tzinfo=tz))
        assert (d.verdict is Verdict.ALLOW) is ok, (name, local)
        if not ok:
            assert rules_of(d) == [f"{name}.calling-window"]
            assert clause in d.reasons[0].message
    d = ask(policy, st, proposal("sms", "marketing"), datetime(2026, 11, 24, 20, tzinfo=tz))
    assert d.not_before == datetime(2026, 11, 25, 8, tzinfo=tz)


def test_b_three_per_rolling_24_hours_on_the_same_subject(
    state_pack: tuple[str, str, str, ZoneInfo, str],
) -> None:
    """(b) a fourth call on the same subject within 24 hours waits until the first of the
    three is 24 hours old: a rolling window, not the calendar day."""
    name, _, phone, tz, clause = state_pack
    policy = pack(name)
    monday = datetime(2026, 11, 23, tzinfo=tz)
    solar = {"subject": "solar"}
    st = customer(
        phones=(phone,),
        contacts=[
            past(monday + timedelta(hours=h), "call", "sales", tags=solar) for h in (9, 12, 15)
        ],
    )
    d = ask(policy, st, proposal("call", "sales", tags=solar), monday + timedelta(hours=18))
    assert d.verdict is Verdict.DEFER
    assert d.not_before == monday + timedelta(days=1, hours=9)
    assert rules_of(d) == [f"{name}.three-per-day"] and clause in d.reasons[0].message
    # Tuesday 08:30 is a new calendar day but not 24 hours after Monday 09:00.
    d = ask(
        policy,
        st,
        proposal("call", "sales", tags=solar),
        monday + timedelta(days=1, hours=8, minutes=30),
    )
    assert d.not_before == monday + timedelta(days=1, hours=9)
    # Another subject is another count; texts count toward the same one.
    roofing = proposal("call", "sales", tags={"subject": "roofing"})
    assert ask(policy, st, roofing, monday + timedelta(hours=18)).verdict is Verdict.ALLOW
    text = proposal("sms", "marketing", tags=solar)
    assert ask(policy, st, text, monday + timedelta(hours=18)).verdict is Verdict.DEFER


def test_b_a_contact_without_a_subject_counts_against_every_subject(
    state_pack: tuple[str, str, str, ZoneInfo, str],
) -> None:
    """(b) "on the same subject": unknown subjects are assumed the same (stricter)."""
    name, _, phone, tz, _ = state_pack
    monday = datetime(2026, 11, 23, tzinfo=tz)
    st = customer(
        phones=(phone,), contacts=[past(monday + timedelta(hours=h)) for h in (9, 10, 11)]
    )
    d = ask(pack(name), st, proposal(tags={"subject": "solar"}), monday + timedelta(hours=12))
    assert d.verdict is Verdict.DEFER


def test_b_rolling_24_hours_across_the_23_hour_day() -> None:
    """Fla. Stat. s. 501.616(6)(b) across 8 March 2026: 24 elapsed hours after Saturday
    09:00 EST is Sunday 10:00 EDT, not Sunday 09:00."""
    sat = datetime(2026, 3, 7, tzinfo=NY)
    st = customer(
        phones=("+13055550123",),
        contacts=[past(sat + timedelta(hours=h)) for h in (9, 10, 11)],
    )
    d = ask(pack("us-fl-ftsa"), st, proposal(), datetime(2026, 3, 8, 9, tzinfo=NY))
    assert d.not_before == datetime(2026, 3, 8, 10, tzinfo=NY)


def test_applies_when_any_candidate_location_is_in_the_state(
    state_pack: tuple[str, str, str, ZoneInfo, str],
) -> None:
    """A state law applies when any candidate location is in the state: a New York number
    and a number of the state; a profile subdivision alone; not a New Yorker."""
    name, code, phone, tz, _ = state_pack
    policy = pack(name)
    late = datetime(2026, 11, 24, 20, 30, tzinfo=tz)
    both = customer(phones=("+12125550123", phone))
    assert ask(policy, both, proposal(), late).verdict is Verdict.DEFER
    by_profile = customer(tz="America/New_York", country="US", subdivision=code)
    assert (
        ask(policy, by_profile, proposal(), datetime(2026, 11, 24, 20, 30, tzinfo=NY)).verdict
        is Verdict.DEFER
    )
    iso = customer(tz="America/New_York", country="US", subdivision=f"US-{code}")
    assert (
        ask(policy, iso, proposal(), datetime(2026, 11, 24, 20, 30, tzinfo=NY)).verdict
        is Verdict.DEFER
    )
    new_yorker = customer(tz="America/New_York", country="US", phones=("+12125550123",))
    assert (
        ask(policy, new_yorker, proposal(), datetime(2026, 11, 24, 20, 30, tzinfo=NY)).verdict
        is Verdict.ALLOW
    )


def test_a_pensacola_number_is_in_florida_on_central_time() -> None:
    """Fla. Stat. s. 501.616(6)(a) "local time at the called person's location": 850-432
    (Pensacola) rings on Central time; 19:30 there is 20:30 in Tallahassee, still fine."""
    st = customer(phones=("+18504321234",))
    d = ask(pack("us-fl-ftsa"), st, proposal(), datetime(2026, 11, 24, 19, 30, tzinfo=CHICAGO))
    assert d.verdict is Verdict.ALLOW


def test_requested_call_backs_are_not_solicitations() -> None:
    """A call the customer asked for is not an unsolicited sales call: not counted."""
    monday = datetime(2026, 11, 23, tzinfo=NY)
    st = customer(
        phones=("+13055550123",),
        contacts=[
            past(monday + timedelta(hours=h), trigger="callback_requested") for h in (9, 10, 11)
        ],
    )
    assert (
        ask(pack("us-fl-ftsa"), st, proposal(), monday + timedelta(hours=12)).verdict
        is Verdict.ALLOW
    )


def test_a_us_customer_whose_state_is_unknown_gets_every_state_law() -> None:
    """The location unknown within the US: the customer may be in the state, so its law
    applies (a profile with `country: US` and a time zone, but no state or number)."""
    st = customer(tz="America/New_York", country="US")
    late = datetime(2026, 11, 24, 20, 30, tzinfo=NY)
    for name, *_ in STATES:
        assert ask(pack(name), st, proposal(), late).verdict is Verdict.DEFER, name
