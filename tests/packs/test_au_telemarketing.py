"""au-telemarketing, case by case from the Telecommunications (Telemarketing and Research
Calls) Industry Standard 2017, calling times.

Telemarketing calls: weekdays 9:00 a.m.-8:00 p.m., Saturday 9:00 a.m.-5:00 p.m., no calls
on Sunday or on a national public holiday, in the call recipient's local time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tactful import CustomerState, Verdict
from tests.packs._helpers import ask, customer, pack, proposal, rules_of

SYDNEY = ZoneInfo("Australia/Sydney")
PERTH = ZoneInfo("Australia/Perth")
AU = pack("au-telemarketing")


def sydneysider(**kw: Any) -> CustomerState:
    return customer(phones=("+61298765432",), **kw)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Monday 23 November 2026.
        (datetime(2026, 11, 23, 8, 59, 59), datetime(2026, 11, 23, 9, 0)),
        (datetime(2026, 11, 23, 9, 0, 0), None),
        (datetime(2026, 11, 23, 19, 59, 59), None),
        (datetime(2026, 11, 23, 20, 0, 0), datetime(2026, 11, 24, 9, 0)),
        # Saturday until 17:00; Sunday closed.
        (datetime(2026, 11, 28, 16, 59, 59), None),
        (datetime(2026, 11, 28, 17, 0, 0), datetime(2026, 11, 30, 9, 0)),
        (datetime(2026, 11, 29, 12, 0), datetime(2026, 11, 30, 9, 0)),
    ],
)
def test_calling_times(when: datetime, expected: datetime | None) -> None:
    """Calling times: weekdays 09:00-20:00, Saturday 09:00-17:00, never Sunday."""
    d = ask(AU, sydneysider(), proposal("call", "sales"), when.replace(tzinfo=SYDNEY))
    if expected is None:
        assert d.verdict is Verdict.ALLOW
    else:
        assert d.verdict is Verdict.DEFER
        assert d.not_before == expected.replace(tzinfo=SYDNEY)
        assert rules_of(d) == ["au-telemarketing.calling-times"]
        assert "Industry Standard 2017" in d.reasons[0].message


def test_national_public_holiday_is_closed() -> None:
    """Calling times: no calls on a national public holiday (Australia Day, Monday
    26 January 2026)."""
    d = ask(AU, sydneysider(), proposal(), datetime(2026, 1, 26, 11, tzinfo=SYDNEY))
    assert d.not_before == datetime(2026, 1, 27, 9, tzinfo=SYDNEY)
    reason = next(r for r in d.reasons if r.rule == "au-telemarketing.national-holidays")
    assert "Australia Day" in reason.message


def test_a_holiday_on_a_weekend_closes_its_substitute_day() -> None:
    """National public holidays that fall on a weekend (the stricter reading): Anzac Day
    is Saturday 25 April 2026; the Monday a state declares in lieu is closed too."""
    d = ask(AU, sydneysider(), proposal(), datetime(2026, 4, 25, 10, tzinfo=SYDNEY))
    assert d.not_before == datetime(2026, 4, 28, 9, tzinfo=SYDNEY)
    # Christmas 2027 is a Saturday and Boxing Day a Sunday: both substitutes are closed.
    d = ask(AU, sydneysider(), proposal(), datetime(2027, 12, 24, 20, tzinfo=SYDNEY))
    assert d.not_before == datetime(2027, 12, 29, 9, tzinfo=SYDNEY)


def test_state_only_holidays_are_not_national() -> None:
    """Calling times name national public holidays: Melbourne Cup day (Tuesday 3 November
    2026, Victoria only) is not one."""
    st = customer(phones=("+61398765432",), subdivision="VIC")
    melbourne = ZoneInfo("Australia/Melbourne")
    assert (
        ask(AU, st, proposal(), datetime(2026, 11, 3, 11, tzinfo=melbourne)).verdict
        is Verdict.ALLOW
    )


def test_a_mobile_number_may_ring_anywhere_so_only_common_hours() -> None:
    """Calling times in the recipient's local time, location unknown: a mobile number may
    ring from the Cocos Islands (UTC+6:30) to Lord Howe (UTC+11 in January), so a weekday
    call waits until 09:00 in the west, 13:30 in Sydney."""
    st = customer(phones=("+61412345678",))
    d = ask(AU, st, proposal(), datetime(2026, 1, 12, 10, tzinfo=SYDNEY))
    assert d.not_before == datetime(2026, 1, 12, 13, 30, tzinfo=SYDNEY)


def test_recipients_time_in_the_west() -> None:
    """Calling times in the recipient's time: an 08 number rings in Adelaide or Perth; at
    09:00 in Sydney it is 06:00 in Perth, so the call waits for 09:00 in Perth."""
    st = customer(phones=("+61892345678",))
    d = ask(AU, st, proposal(), datetime(2026, 11, 23, 9, tzinfo=SYDNEY))
    assert d.not_before == datetime(2026, 11, 23, 9, tzinfo=PERTH)


def test_scope_is_telemarketing_calls() -> None:
    """The Standard's telemarketing calling times: not collections, not email."""
    sunday = datetime(2026, 11, 29, 12, tzinfo=SYDNEY)
    assert ask(AU, sydneysider(), proposal("call", "collections"), sunday).verdict is Verdict.ALLOW
    assert ask(AU, sydneysider(), proposal("email", "marketing"), sunday).verdict is Verdict.ALLOW
