"""us-reg-f, case by case from 12 CFR 1006.14(b) and 1006.6(b)(1)(i).

1006.14(b)(2)(i): a debt collector is presumed to comply if it places a telephone call to a
person in connection with a particular debt neither (A) more than seven times within
seven consecutive days, nor (B) within seven consecutive days after a telephone
conversation about that debt, the date of the conversation being the first day.
(b)(3): calls with the person's direct prior consent (within seven days) and calls that
do not connect do not count. 1006.6(b)(1)(i): a convenient time is after 8:00 a.m. and
before 9:00 p.m. at the consumer's location, whatever the medium.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tactful import Contact, ContactProposal, CustomerState, Verdict
from tests.packs._helpers import ask, customer, event, pack, past, proposal, rules_of

NY = ZoneInfo("America/New_York")
REG_F = pack("us-reg-f")
A = {"account": "A-100"}
B = {"account": "B-200"}
#: Monday 9 November 2026.
MONDAY = datetime(2026, 11, 9, tzinfo=NY)


def debtor(**kw: Any) -> CustomerState:
    return customer(tz="America/New_York", country="US", **kw)


def calls(
    days: range, hour: int = 10, tags: dict[str, str] = A, outcome: str = "no_answer"
) -> list[Contact]:
    return [
        past(
            MONDAY + timedelta(days=d, hours=hour),
            "call",
            "collections",
            outcome=outcome,
            tags=tags,
        )
        for d in days
    ]


def collect(
    tags: dict[str, str] | None = A, channel: str = "call", trigger: str | None = None
) -> ContactProposal:
    return proposal(channel, "collections", tags=tags, trigger=trigger)


# -- 1006.14(b)(2)(i)(A): seven calls within seven consecutive days ------------------------


def test_b2iA_eighth_call_in_seven_consecutive_days_waits_for_day_eight() -> None:
    """1006.14(b)(2)(i)(A): calls Monday to Sunday about debt A; the eighth waits until
    Monday, the eighth calendar day, from the start of its convenient hours."""
    st = debtor(contacts=calls(range(7)))
    sunday_noon = MONDAY + timedelta(days=6, hours=12)
    d = ask(REG_F, st, collect(), sunday_noon)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 16, 8, 1, tzinfo=NY)
    assert "us-reg-f.seven-in-seven" in rules_of(d)
    assert "debt A-100" in d.reasons[0].message and "1006.14(b)(2)(i)(A)" in d.reasons[0].message


def test_b2iA_counts_calendar_days_in_the_consumers_zone_not_rolling_hours() -> None:
    """1006.14(b)(2)(i)(A) "seven consecutive days": seven calls all on Monday at 16:00-16:06;
    the next is allowed on the following Monday from 08:01, not 168 hours later at 16:00."""
    st = debtor(
        contacts=[
            past(MONDAY + timedelta(hours=16, minutes=m), "call", "collections", tags=A)
            for m in range(7)
        ]
    )
    d = ask(REG_F, st, collect(), MONDAY + timedelta(days=3, hours=12))
    assert d.not_before == datetime(2026, 11, 16, 8, 1, tzinfo=NY)


def test_b2iA_across_the_23_hour_day() -> None:
    """1006.14(b)(2)(i)(A) across 8 March 2026 (a 23-hour day in New York): calls on 2-8
    March; the eighth is allowed on 9 March, calendar day eight."""
    start = datetime(2026, 3, 2, 10, tzinfo=NY)
    st = debtor(
        contacts=[past(start + timedelta(days=d), "call", "collections", tags=A) for d in range(7)]
    )
    d = ask(REG_F, st, collect(), datetime(2026, 3, 8, 18, tzinfo=NY))
    assert d.not_before == datetime(2026, 3, 9, 8, 1, tzinfo=NY)


def test_b2iA_is_per_debt_from_the_proposal_tags() -> None:
    """1006.14(b)(2)(i)(A) "a particular debt": seven calls about A do not hold back B; a
    proposal that names no debt counts against every debt (the stricter reading)."""
    st = debtor(contacts=calls(range(7)))
    sunday_noon = MONDAY + timedelta(days=6, hours=12)
    assert ask(REG_F, st, collect(B), sunday_noon).verdict is Verdict.ALLOW
    assert ask(REG_F, st, collect(None), sunday_noon).verdict is Verdict.DEFER


def test_b2iA_only_telephone_calls_count() -> None:
    """1006.14(b)(2): the frequencies are for telephone calls; emails and texts are not."""
    st = debtor(contacts=calls(range(7)))
    sunday_noon = MONDAY + timedelta(days=6, hours=12)
    assert ask(REG_F, st, collect(channel="email"), sunday_noon).verdict is Verdict.ALLOW


def test_b3ii_calls_that_did_not_connect_do_not_count() -> None:
    """1006.14(b)(3)(ii): a call that does not connect to the dialed number is excluded."""
    st = debtor(contacts=calls(range(7), outcome="bounced"))
    assert ask(REG_F, st, collect(), MONDAY + timedelta(days=6, hours=12)).verdict is Verdict.ALLOW


def test_b3i_calls_with_consent_given_within_seven_days_are_excluded() -> None:
    """1006.14(b)(3)(i): after seven calls, the consumer asks to be called back; that call
    is excluded, while the consent is at most seven days old."""
    asked = MONDAY + timedelta(days=5, hours=9)  # Saturday
    st = debtor(
        contacts=calls(range(7)), events=[event("callback_requested", asked, account="A-100")]
    )
    sunday_noon = MONDAY + timedelta(days=6, hours=12)
    d = ask(REG_F, st, collect(trigger="callback_requested"), sunday_noon)
    assert d.verdict is Verdict.ALLOW


def test_b3i_consent_older_than_seven_days_no_longer_excludes() -> None:
    """1006.14(b)(3)(i): a request made on 1 November no longer covers a call on Sunday
    15 November (its seventh day was 7 November)."""
    asked = datetime(2026, 11, 1, 12, tzinfo=NY)
    st = debtor(contacts=calls(range(7)), events=[event("callback_requested", asked)])
    d = ask(REG_F, st, collect(trigger="callback_requested"), MONDAY + timedelta(days=6, hours=12))
    assert d.verdict is Verdict.DEFER
    assert "us-reg-f.seven-in-seven" in rules_of(d)


# -- 1006.14(b)(2)(i)(B): seven days after a conversation --------------------------------


def test_b2iB_no_call_within_seven_days_after_a_conversation_day_one_is_its_date() -> None:
    """1006.14(b)(2)(i)(B): a conversation about A on Tuesday 10 November (day 1) means no
    call about A until Tuesday 17 November (day 8)."""
    talked = datetime(2026, 11, 10, 15, tzinfo=NY)
    st = debtor(contacts=[past(talked, "call", "collections", outcome="answered", tags=A)])
    d = ask(REG_F, st, collect(), datetime(2026, 11, 11, 10, tzinfo=NY))
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 17, 8, 1, tzinfo=NY)
    reason = next(r for r in d.reasons if r.rule == "us-reg-f.after-conversation")
    assert "2026-11-10" in reason.message and "1006.14(b)(2)(i)(B)" in reason.message
    # The last minute of day 7 is still inside the period.
    late = datetime(2026, 11, 16, 20, 59, 59, tzinfo=NY)
    assert ask(REG_F, st, collect(), late).verdict is Verdict.DEFER


def test_b2iB_is_per_debt_and_counts_a_conversation_the_consumer_started() -> None:
    """1006.14(b)(2)(i)(B): the period is for the debt discussed; a conversation on a call
    the consumer placed (a `contact_answered` event naming the debt) counts too."""
    talked = datetime(2026, 11, 10, 15, tzinfo=NY)
    st = debtor(events=[event("contact_answered", talked, channel="call", account="A-100")])
    next_day = datetime(2026, 11, 11, 10, tzinfo=NY)
    assert ask(REG_F, st, collect(A), next_day).verdict is Verdict.DEFER
    assert ask(REG_F, st, collect(B), next_day).verdict is Verdict.ALLOW


def test_b3i_a_call_the_consumer_asks_for_after_the_conversation_is_excluded() -> None:
    """1006.14(b)(3)(i): during the conversation the consumer asks for a call on Thursday."""
    talked = datetime(2026, 11, 10, 15, tzinfo=NY)
    st = debtor(
        contacts=[past(talked, "call", "collections", outcome="answered", tags=A)],
        events=[event("callback_requested", talked + timedelta(minutes=5), account="A-100")],
    )
    thursday = datetime(2026, 11, 12, 10, tzinfo=NY)
    assert ask(REG_F, st, collect(trigger="callback_requested"), thursday).verdict is Verdict.ALLOW
    assert ask(REG_F, st, collect(), thursday).verdict is Verdict.DEFER


# -- 1006.6(b)(1)(i): inconvenient times, every medium -----------------------------------


@pytest.mark.parametrize("channel", ["call", "sms", "email"])
@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        ((7, 59, 59), False),
        ((8, 0, 0), False),
        ((8, 1, 0), True),
        ((20, 59, 59), True),
        ((21, 0, 0), False),
    ],
)
def test_6b1i_only_after_8_and_before_9_on_every_channel(
    channel: str, local: tuple[int, int, int], allowed: bool
) -> None:
    """1006.6(b)(1)(i): "after 8:00 a.m. and before 9:00 p.m."; 08:00:00 is not after 8:00
    (the stricter reading opens at 08:01), 21:00:00 is not before 9:00 p.m."""
    now = datetime(2026, 11, 24, *local, tzinfo=NY)
    d = ask(REG_F, debtor(), collect(channel=channel), now)
    assert (d.verdict is Verdict.ALLOW) is allowed
    if not allowed:
        assert rules_of(d) == ["us-reg-f.inconvenient-time"]
        assert "1006.6(b)(1)(i)" in d.reasons[0].message


def test_6b1i_conflicting_locations_need_a_time_convenient_in_all() -> None:
    """1006.6(b)(1)(i) with conflicting location information: numbers in New York and Los
    Angeles; 10:00 in New York is 07:00 in Los Angeles, too early there."""
    st = customer(country="US", phones=("+12125550123", "+12135550123"))
    d = ask(REG_F, st, collect(), datetime(2026, 11, 24, 10, tzinfo=NY))
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 24, 8, 1, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_reg_f_does_not_touch_other_purposes() -> None:
    """Reg F governs debt collection only: a sales call at 07:30 is not its concern."""
    d = ask(REG_F, debtor(), proposal("call", "sales"), datetime(2026, 11, 24, 7, 30, tzinfo=NY))
    assert d.verdict is Verdict.ALLOW
