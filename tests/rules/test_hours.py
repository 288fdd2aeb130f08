"""`hours`: local calling hours, Sundays, public holidays, DST days, numbers in two zones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tactful import Policy, PolicyError, Verdict
from tactful.rules.base import NEVER
from tactful.rules.hours import parse_schedule
from tests.rules.conftest import (
    CHICAGO,
    PARIS,
    at_utc,
    check,
    decide,
    policy,
    profile,
    propose,
    rules_of,
    state,
    ts,
)

COURTESY = Policy.load("courtesy")
DAILY = policy("""
    - id: hours
      kind: hours
      schedule: {daily: "09:00-20:00"}
      holidays: false
      message: "it is {local}"
""")
BOISE = ZoneInfo("America/Boise")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
#: An Idaho number: phonenumbers maps it to both America/Boise and America/Los_Angeles.
IDAHO_PHONE = "+12085550100"


def calling_hours(now: datetime, **prof: object) -> float:
    """When courtesy's calling-hours rule would let a sales call through."""
    st = state(prof=profile(**prof))  # type: ignore[arg-type]
    return check(COURTESY, "calling-hours", st, propose("call", "sales"), now)


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ((8, 59, 59), (9, 0, 0)),
        ((9, 0, 0), (9, 0, 0)),
        ((19, 59, 59), (19, 59, 59)),
    ],
)
def test_calling_hours_edges(local: tuple[int, int, int], expected: tuple[int, int, int]) -> None:
    now = datetime(2026, 11, 17, *local, tzinfo=CHICAGO)
    assert calling_hours(now) == ts(datetime(2026, 11, 17, *expected, tzinfo=CHICAGO))


def test_twenty_hundred_is_closed_until_next_morning() -> None:
    now = datetime(2026, 11, 17, 20, 0, 0, tzinfo=CHICAGO)
    assert calling_hours(now) == ts(datetime(2026, 11, 18, 9, tzinfo=CHICAGO))
    d = decide(COURTESY, state(), propose("call", "sales"), now)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 18, 9, tzinfo=CHICAGO)
    assert "Tuesday 20:00 America/Chicago" in d.reasons[0].message


def test_saturday_evening_and_sunday_wait_for_monday() -> None:
    monday = ts(datetime(2026, 11, 23, 9, tzinfo=CHICAGO))
    assert calling_hours(datetime(2026, 11, 21, 20, 30, tzinfo=CHICAGO)) == monday
    assert calling_hours(datetime(2026, 11, 22, 12, tzinfo=CHICAGO)) == monday
    assert calling_hours(datetime(2026, 11, 21, 19, tzinfo=CHICAGO)) == ts(
        datetime(2026, 11, 21, 19, tzinfo=CHICAGO)
    )


def test_sms_is_held_to_calling_hours_but_email_is_not() -> None:
    night = datetime(2026, 11, 17, 23, tzinfo=CHICAGO)
    assert decide(COURTESY, state(), propose("sms", "service"), night).verdict is Verdict.DEFER
    assert decide(COURTESY, state(), propose("email", "service"), night).allowed


def test_transactional_calls_stay_inside_calling_hours() -> None:
    night = datetime(2026, 11, 17, 23, tzinfo=CHICAGO)
    d = decide(COURTESY, state(), propose("call", "transactional"), night)
    assert d.verdict is Verdict.DEFER and rules_of(d) == {"calling-hours"}


# -- holidays ----------------------------------------------------------------------------------


def test_thanksgiving_by_the_profiles_country() -> None:
    thanksgiving = datetime(2026, 11, 26, 11, tzinfo=CHICAGO)
    friday = ts(datetime(2026, 11, 27, 9, tzinfo=CHICAGO))
    assert calling_hours(thanksgiving) == friday
    # Without a country (and no phone to tell), no holiday is known.
    assert calling_hours(thanksgiving, country=None) == ts(thanksgiving)


def test_thanksgiving_by_the_phone_numbers_region() -> None:
    thanksgiving = datetime(2026, 11, 26, 11, tzinfo=CHICAGO)
    friday = ts(datetime(2026, 11, 27, 9, tzinfo=CHICAGO))
    assert calling_hours(thanksgiving, country=None, phones=("+13125550142",)) == friday
    d = decide(
        COURTESY,
        state(prof=profile(country=None, phones=("+13125550142",))),
        propose("call", "sales"),
        thanksgiving,
    )
    assert "Thanksgiving" in d.reasons[0].message


def test_french_national_day_by_country_and_by_phone() -> None:
    bastille = datetime(2026, 7, 14, 11, tzinfo=PARIS)  # a Tuesday
    next_morning = ts(datetime(2026, 7, 15, 9, tzinfo=PARIS))
    assert calling_hours(bastille, timezone="Europe/Paris", country="FR") == next_morning
    # No country, no time zone: the French number gives both Paris time and France's holidays.
    assert calling_hours(bastille, timezone=None, country=None, phones=("+33142685300",)) == (
        next_morning
    )
    # The same day is an ordinary Tuesday for a customer in the US.
    assert calling_hours(bastille, timezone="Europe/Paris", country="US") == ts(bastille)


def test_holidays_can_be_switched_off() -> None:
    thanksgiving = datetime(2026, 11, 26, 11, tzinfo=CHICAGO)
    assert check(DAILY, "hours", state(), propose("call", "sales"), thanksgiving) == ts(
        thanksgiving
    )


# -- DST change days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "utc_open", "utc_close"),
    [
        # Chicago springs forward at 02:00 on 8 March: 09:00 is CDT (UTC-5).
        ("America/Chicago", (2026, 3, 8), (2026, 3, 8, 14), (2026, 3, 9, 1)),
        # ... and falls back at 02:00 on 1 November: 09:00 is CST (UTC-6).
        ("America/Chicago", (2026, 11, 1), (2026, 11, 1, 15), (2026, 11, 2, 2)),
        ("Europe/Paris", (2026, 3, 29), (2026, 3, 29, 7), (2026, 3, 29, 18)),
        ("Europe/Paris", (2026, 10, 25), (2026, 10, 25, 8), (2026, 10, 25, 19)),
    ],
)
def test_schedule_on_dst_change_days(
    zone: str,
    day: tuple[int, int, int],
    utc_open: tuple[int, int, int, int],
    utc_close: tuple[int, int, int, int],
) -> None:
    tz = ZoneInfo(zone)
    st = state(prof=profile(timezone=zone))
    one_am = datetime(*day, 1, 0, tzinfo=tz)  # before the change
    assert check(DAILY, "hours", st, propose("call", "sales"), one_am) == ts(at_utc(*utc_open))
    # 19:59 local is open, 20:00 local is closed (next day 09:00).
    before_close = at_utc(*utc_close) - timedelta(minutes=1)
    assert check(DAILY, "hours", st, propose("call", "sales"), before_close) == ts(before_close)
    next_open = datetime(*day, 9, tzinfo=tz) + timedelta(days=1)
    assert check(DAILY, "hours", st, propose("call", "sales"), at_utc(*utc_close)) == ts(next_open)


def test_courtesy_over_the_spring_forward_weekend() -> None:
    # 8 March 2026 is a Sunday: Saturday night waits for Monday 09:00 CDT (14:00 UTC).
    saturday_night = datetime(2026, 3, 7, 21, tzinfo=CHICAGO)
    assert calling_hours(saturday_night) == ts(at_utc(2026, 3, 9, 14))
    # Autumn: Monday 2 November 09:00 CST is 15:00 UTC.
    assert calling_hours(datetime(2026, 10, 31, 21, tzinfo=CHICAGO)) == ts(at_utc(2026, 11, 2, 15))


def test_a_window_through_the_skipped_hour_opens_at_an_instant_that_exists() -> None:
    pol = policy("""
        - id: night
          kind: hours
          schedule: {daily: "02:00-04:00"}
          holidays: false
          message: night shift
    """)
    st = state()
    midnight = datetime(2026, 3, 8, 0, 0, tzinfo=CHICAGO)
    # 02:00 does not exist that night; the window opens at 08:00 UTC, which is 03:00 CDT.
    opens = check(pol, "night", st, propose("call", "sales"), midnight)
    assert opens == ts(at_utc(2026, 3, 8, 8))
    assert datetime.fromtimestamp(opens, CHICAGO).hour == 3


# -- several zones -----------------------------------------------------------------------------


def test_a_number_spanning_two_zones_must_be_open_in_both() -> None:
    prof = {"timezone": None, "phones": (IDAHO_PHONE,)}
    st = state(prof=profile(**prof))  # type: ignore[arg-type]
    from tactful.localtime import customer_zones

    assert {z.key for z in customer_zones(st.profile)} == {"America/Boise", "America/Los_Angeles"}
    # 08:30 Boise is 07:30 in Los Angeles: wait for 09:00 Pacific (10:00 Mountain).
    early = datetime(2026, 11, 17, 8, 30, tzinfo=BOISE)
    opens = datetime(2026, 11, 17, 9, 0, tzinfo=LOS_ANGELES)
    assert calling_hours(early, **prof) == ts(opens)
    # 19:30 Pacific is 20:30 in Boise: closed until the next 09:00 Pacific.
    late = datetime(2026, 11, 17, 19, 30, tzinfo=LOS_ANGELES)
    assert calling_hours(late, **prof) == ts(datetime(2026, 11, 18, 9, tzinfo=LOS_ANGELES))
    # 19:59 Boise (18:59 Pacific) is open in both.
    fine = datetime(2026, 11, 17, 19, 59, tzinfo=BOISE)
    assert calling_hours(fine, **prof) == ts(fine)
    # Every instant in the result is open in every zone.
    for zone in (BOISE, LOS_ANGELES):
        assert 9 <= datetime.fromtimestamp(calling_hours(early, **prof), zone).hour < 20


def test_an_explicit_time_zone_wins_over_the_phone() -> None:
    late = datetime(2026, 11, 17, 19, 30, tzinfo=LOS_ANGELES)
    assert calling_hours(late, timezone="America/Los_Angeles", phones=(IDAHO_PHONE,)) == ts(late)


def test_nothing_known_means_utc() -> None:
    now = at_utc(2026, 11, 17, 8)
    assert calling_hours(now, timezone=None, country=None) == ts(at_utc(2026, 11, 17, 9))


# -- schedules ---------------------------------------------------------------------------------


def test_split_schedule_and_wrapping_day_ranges() -> None:
    pol = policy("""
        - id: split
          kind: hours
          schedule: {sat-mon: ["10:00-12:00", "14:00-16:00"], tue-fri: closed}
          holidays: false
          message: split
    """)
    lunch = datetime(2026, 11, 21, 12, 30, tzinfo=CHICAGO)  # Saturday
    assert check(pol, "split", state(), propose("call", "sales"), lunch) == ts(
        datetime(2026, 11, 21, 14, tzinfo=CHICAGO)
    )
    monday_evening = datetime(2026, 11, 23, 17, tzinfo=CHICAGO)
    assert check(pol, "split", state(), propose("call", "sales"), monday_evening) == ts(
        datetime(2026, 11, 28, 10, tzinfo=CHICAGO)
    )


def test_a_schedule_closed_every_day_never_opens() -> None:
    pol = policy("""
        - id: shut
          kind: hours
          schedule: {daily: closed}
          message: shut
    """)
    assert check(pol, "shut", state(), propose("call", "sales"), at_utc(2026, 1, 1)) == NEVER
    assert (
        decide(pol, state(), propose("call", "sales"), at_utc(2026, 1, 1)).verdict is Verdict.DENY
    )


def test_parse_schedule_forms() -> None:
    s = parse_schedule({"mon-fri": "09:00-17:00", "sat": ["10:00-12:00"], "sun": "closed"})
    assert s[0] == ((540, 1020),) and s[5] == ((600, 720),) and s[6] == ()
    assert parse_schedule({"daily": "00:00-24:00"})[3] == ((0, 1440),)
    for bad in ({"mon": "9-5"}, {"funday": "09:00-10:00"}, {"mon": "18:00-09:00"}, {}):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_bad_schedule_is_a_policy_error() -> None:
    with pytest.raises(PolicyError) as info:
        policy("""
            - id: h
              kind: hours
              schedule: {mon-fri: "18:00-09:00"}
              message: m
        """)
    assert info.value.field == "rules[0].schedule"
