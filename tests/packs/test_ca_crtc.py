"""ca-crtc, case by case from the CRTC Unsolicited Telecommunications Rules, Part III.

Telemarketing telecommunications only between 9:00 a.m. and 9:30 p.m. on weekdays
(Monday to Friday) and between 10:00 a.m. and 6:00 p.m. on weekends, in the time of the
person called; requests to be put on the telemarketer's internal do not call list are
honoured. Collection, survey and service calls are not telemarketing.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tactful import CustomerState, Verdict
from tests.packs._helpers import ask, customer, event, pack, proposal, rules_of

TORONTO = ZoneInfo("America/Toronto")
VANCOUVER = ZoneInfo("America/Vancouver")
CRTC = pack("ca-crtc")


def ontarian() -> CustomerState:
    return customer(phones=("+14169672222",))  # Toronto, ON


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Monday 23 November 2026.
        (datetime(2026, 11, 23, 8, 59, 59), datetime(2026, 11, 23, 9, 0)),
        (datetime(2026, 11, 23, 9, 0, 0), None),
        (datetime(2026, 11, 23, 21, 29, 59), None),
        (datetime(2026, 11, 23, 21, 30, 0), datetime(2026, 11, 24, 9, 0)),
        # Friday night -> Saturday 10:00; Saturday 18:00 -> Sunday 10:00; Sunday -> Monday.
        (datetime(2026, 11, 27, 21, 30), datetime(2026, 11, 28, 10, 0)),
        (datetime(2026, 11, 28, 9, 59, 59), datetime(2026, 11, 28, 10, 0)),
        (datetime(2026, 11, 28, 17, 59, 59), None),
        (datetime(2026, 11, 28, 18, 0), datetime(2026, 11, 29, 10, 0)),
        (datetime(2026, 11, 29, 18, 0), datetime(2026, 11, 30, 9, 0)),
    ],
)
def test_calling_hours_weekdays_and_weekends(when: datetime, expected: datetime | None) -> None:
    """Part III calling hours: weekdays 09:00-21:30, weekends 10:00-18:00, edges to the second."""
    d = ask(CRTC, ontarian(), proposal("call", "sales"), when.replace(tzinfo=TORONTO))
    if expected is None:
        assert d.verdict is Verdict.ALLOW
    else:
        assert d.verdict is Verdict.DEFER
        assert d.not_before == expected.replace(tzinfo=TORONTO)
        assert rules_of(d) == ["ca-crtc.calling-hours"]
        assert "Unsolicited Telecommunications Rules" in d.reasons[0].message


def test_calling_hours_are_the_recipients_time() -> None:
    """Part III: the recipient's time. 12:30 in Toronto is 09:30 in Vancouver: weekday
    hours have begun there; at 21:45 Toronto time it is 18:45 in Vancouver, still fine."""
    bc = customer(phones=("+16045550123",))
    assert (
        ask(CRTC, bc, proposal(), datetime(2026, 11, 23, 12, 30, tzinfo=TORONTO)).verdict
        is Verdict.ALLOW
    )
    d = ask(CRTC, bc, proposal(), datetime(2026, 11, 23, 8, 30, tzinfo=VANCOUVER))
    assert d.not_before == datetime(2026, 11, 23, 9, tzinfo=VANCOUVER)


def test_holidays_are_not_closed_by_the_crtc_rules() -> None:
    """Part III sets weekday and weekend hours only: Canada Day (Wednesday 1 July 2026) is a
    weekday for it. (Provincial holiday bans are not covered by this pack.)"""
    d = ask(CRTC, ontarian(), proposal(), datetime(2026, 7, 1, 12, tzinfo=TORONTO))
    assert d.verdict is Verdict.ALLOW


def test_collections_and_service_calls_are_not_telemarketing() -> None:
    """Part III applies to telemarketing; a collection call at 22:00 is not its concern."""
    late = datetime(2026, 11, 23, 22, tzinfo=TORONTO)
    assert ask(CRTC, ontarian(), proposal("call", "collections"), late).verdict is Verdict.ALLOW
    assert ask(CRTC, ontarian(), proposal("call", "service"), late).verdict is Verdict.ALLOW


def test_internal_do_not_call_request_is_honoured() -> None:
    """Part III: a consumer's request not to be called is put on the internal list."""
    st = customer(
        phones=("+14169672222",),
        events=[event("opted_out", datetime(2026, 11, 23, 12, tzinfo=TORONTO), channel="call")],
    )
    d = ask(CRTC, st, proposal(), datetime(2026, 11, 24, 12, tzinfo=TORONTO))
    assert d.verdict is Verdict.DENY and rules_of(d) == ["ca-crtc.internal-dnc"]


def test_only_customers_who_may_be_in_canada() -> None:
    """The CRTC rules protect consumers in Canada; a Chicago number at 22:00 is not covered."""
    st = customer(phones=("+13125550142",))
    late = datetime(2026, 11, 23, 22, tzinfo=ZoneInfo("America/Chicago"))
    assert ask(CRTC, st, proposal(), late).verdict is Verdict.ALLOW
