"""fr-demarchage, case by case from Code de la consommation art. D223-9 (décret 2022-1313).

Al. 1: calls for commercial prospecting only Monday to Friday, not on days that are public
holidays under Labour Code art. L3133-1, and only 10:00-13:00 and 14:00-20:00, in the
consumer's time zone. Al. 3: no more than four calls or attempts to the same consumer
within thirty calendar days; after a refusal during the conversation, no contact or
attempt before sixty full calendar days from the refusal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tactful import CustomerState, Verdict
from tests.packs._helpers import ask, customer, event, pack, past, proposal, rules_of

PARIS = ZoneInfo("Europe/Paris")
FR = pack("fr-demarchage")


def french(**kw: Any) -> CustomerState:
    return customer(phones=("+33612345678",), **kw)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Monday 23 November 2026.
        (datetime(2026, 11, 23, 9, 59, 59), datetime(2026, 11, 23, 10, 0)),
        (datetime(2026, 11, 23, 10, 0, 0), None),
        (datetime(2026, 11, 23, 12, 59, 59), None),
        (datetime(2026, 11, 23, 13, 0, 0), datetime(2026, 11, 23, 14, 0)),
        (datetime(2026, 11, 23, 19, 59, 59), None),
        (datetime(2026, 11, 23, 20, 0, 0), datetime(2026, 11, 24, 10, 0)),
        # Friday evening, Saturday, Sunday -> Monday 10:00.
        (datetime(2026, 11, 27, 20, 0), datetime(2026, 11, 30, 10, 0)),
        (datetime(2026, 11, 28, 11, 0), datetime(2026, 11, 30, 10, 0)),
        (datetime(2026, 11, 29, 15, 0), datetime(2026, 11, 30, 10, 0)),
    ],
)
def test_al1_days_and_hours(when: datetime, expected: datetime | None) -> None:
    """D223-9 al. 1: Monday-Friday, 10:00-13:00 and 14:00-20:00, edges to the second."""
    d = ask(FR, french(), proposal("call", "sales"), when.replace(tzinfo=PARIS))
    if expected is None:
        assert d.verdict is Verdict.ALLOW
    else:
        assert d.verdict is Verdict.DEFER
        assert d.not_before == expected.replace(tzinfo=PARIS)
        assert rules_of(d) == ["fr-demarchage.days-and-hours"]
        assert "D223-9" in d.reasons[0].message


def test_al1_hours_are_the_consumers_time_zone() -> None:
    """D223-9 al. 1 "ces heures correspondant à celles du fuseau horaire du consommateur":
    a consumer in La Réunion (UTC+4) at 09:30 there waits until 10:00 there."""
    st = customer(tz="Indian/Reunion", country="FR")
    reunion = ZoneInfo("Indian/Reunion")
    d = ask(FR, st, proposal(), datetime(2026, 11, 23, 9, 30, tzinfo=reunion))
    assert d.not_before == datetime(2026, 11, 23, 10, tzinfo=reunion)


@pytest.mark.parametrize(
    ("holiday", "next_open", "name"),
    [
        (datetime(2026, 7, 14, 11), datetime(2026, 7, 15, 10), "National Day"),
        (datetime(2026, 5, 14, 11), datetime(2026, 5, 15, 10), "Ascension Day"),
        (datetime(2026, 5, 25, 11), datetime(2026, 5, 26, 10), "Pentecost Monday"),
        (datetime(2026, 12, 25, 11), datetime(2026, 12, 28, 10), "Christmas Day"),
    ],
)
def test_al1_not_on_public_holidays(holiday: datetime, next_open: datetime, name: str) -> None:
    """D223-9 al. 1 + Code du travail L3133-1: no calls on a public holiday."""
    d = ask(FR, french(), proposal(), holiday.replace(tzinfo=PARIS))
    assert d.verdict is Verdict.DEFER
    assert d.not_before == next_open.replace(tzinfo=PARIS)
    reason = next(r for r in d.reasons if r.rule == "fr-demarchage.public-holidays")
    assert name in reason.message and "L3133-1" in reason.message


def test_al1_a_holiday_on_a_weekend_moves_nothing() -> None:
    """D223-9 al. 1: France has no substitute holidays. 15 August 2026 is a Saturday and
    1 November a Sunday: the Mondays after are ordinary working days."""
    d = ask(FR, french(), proposal(), datetime(2026, 8, 15, 11, tzinfo=PARIS))
    assert d.not_before == datetime(2026, 8, 17, 10, tzinfo=PARIS)
    monday = datetime(2026, 11, 2, 10, 30, tzinfo=PARIS)
    assert ask(FR, french(), proposal(), monday).verdict is Verdict.ALLOW


def test_al1_only_the_labour_code_list_not_local_holidays() -> None:
    """D223-9 al. 1 refers to L3133-1, the national list: Good Friday, a holiday only in
    Alsace-Moselle, is not one of them."""
    st = french(subdivision="57")
    good_friday = datetime(2026, 4, 3, 11, tzinfo=PARIS)
    assert ask(FR, st, proposal(), good_friday).verdict is Verdict.ALLOW


def test_al3_four_calls_or_attempts_per_thirty_calendar_days() -> None:
    """D223-9 al. 3: calls (unanswered: attempts count) on 5, 8, 12 and 15 October; the
    fifth may come on 4 November, the 31st calendar day, from 10:00 (the period spans the
    25 October change of time, which calendar days ignore)."""
    st = french(
        contacts=[
            past(datetime(2026, 10, d, 19, 30, tzinfo=PARIS), outcome="no_answer")
            for d in (5, 8, 12, 15)
        ]
    )
    d = ask(FR, st, proposal(), datetime(2026, 10, 19, 11, tzinfo=PARIS))
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 4, 10, tzinfo=PARIS)
    assert "fr-demarchage.four-per-30-days" in rules_of(d)
    # On 3 November, day 30, it is still too soon.
    d = ask(FR, st, proposal(), datetime(2026, 11, 3, 19, 59, tzinfo=PARIS))
    assert d.not_before == datetime(2026, 11, 4, 10, tzinfo=PARIS)


def test_al3_calls_the_consumer_asked_for_count_too() -> None:
    """D223-9 al. 3 counts every call by the professional (the stricter reading: even one
    the consumer asked for)."""
    st = french(
        contacts=[
            past(datetime(2026, 10, d, 11, tzinfo=PARIS), trigger="callback_requested")
            for d in (5, 6, 7, 8)
        ]
    )
    d = ask(FR, st, proposal(), datetime(2026, 10, 9, 11, tzinfo=PARIS))
    assert d.verdict is Verdict.DEFER


def test_al3_sixty_full_calendar_days_of_silence_after_a_refusal() -> None:
    """D223-9 al. 3: refused on Tuesday 6 October; the sixty days run 7 October to
    5 December ("révolus à compter de ce refus"): nothing until 6 December 00:00, and the
    first call on Monday 7 December."""
    refused = datetime(2026, 10, 6, 11, tzinfo=PARIS)
    st = french(contacts=[past(refused, outcome="declined")])
    d = ask(FR, st, proposal(), datetime(2026, 10, 7, 11, tzinfo=PARIS))
    assert d.verdict is Verdict.DENY
    reason = next(r for r in d.reasons if r.rule == "fr-demarchage.refusal-60-days")
    assert reason.until == datetime(2026, 12, 6, tzinfo=PARIS)
    assert "2026-10-06" in reason.message
    friday = datetime(2026, 12, 4, 19, 59, tzinfo=PARIS)
    assert ask(FR, st, proposal(), friday).verdict is Verdict.DENY
    assert ask(FR, st, proposal(), datetime(2026, 12, 7, 10, tzinfo=PARIS)).verdict is Verdict.ALLOW


def test_al3_a_refusal_recorded_as_an_event_counts_the_same() -> None:
    """D223-9 al. 3: "not interested" said on the call, recorded as an event."""
    st = french(events=[event("not_interested", datetime(2026, 10, 6, 11, tzinfo=PARIS))])
    d = ask(FR, st, proposal("call", "marketing"), datetime(2026, 11, 2, 11, tzinfo=PARIS))
    assert d.verdict is Verdict.DENY


def test_scope_is_commercial_prospecting_by_phone_in_france() -> None:
    """D223-9 covers prospecting calls: not service calls, not emails, not Belgians."""
    saturday = datetime(2026, 11, 28, 11, tzinfo=PARIS)
    assert ask(FR, french(), proposal("call", "service"), saturday).verdict is Verdict.ALLOW
    assert ask(FR, french(), proposal("email", "marketing"), saturday).verdict is Verdict.ALLOW
    belgian = customer(phones=("+32470123456",))
    assert ask(FR, belgian, proposal(), saturday).verdict is Verdict.ALLOW
