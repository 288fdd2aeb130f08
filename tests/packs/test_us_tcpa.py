"""us-tcpa, case by case from 47 CFR 64.1200.

(c)(1): "No person or entity shall initiate any telephone solicitation to any residential
telephone subscriber before the hour of 8 a.m. or after 9 p.m. (local time at the called
party's location)." (a)(10): consent may be revoked by any reasonable means, a reply of
"stop", "quit", "end", "revoke", "opt out", "cancel" or "unsubscribe" among them; (a)(12)
allows one confirmation text. (d)(3): a do-not-call request to the company is honoured.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tactful import CustomerState, Verdict
from tests.packs._helpers import ask, customer, event, pack, proposal, rules_of

NY = ZoneInfo("America/New_York")
CHICAGO = ZoneInfo("America/Chicago")
DENVER = ZoneInfo("America/Denver")
LA = ZoneInfo("America/Los_Angeles")
TCPA = pack("us-tcpa")


def ny_customer(**kw: Any) -> CustomerState:
    return customer(tz="America/New_York", country="US", **kw)


# -- (c)(1) calling window -------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected", "not_before"),
    [
        ((7, 59, 59), Verdict.DEFER, (8, 0, 0)),
        ((8, 0, 0), Verdict.ALLOW, None),
        ((20, 59, 59), Verdict.ALLOW, None),
        ((21, 0, 0), Verdict.DEFER, "next-day"),
    ],
)
def test_c1_window_edges_to_the_second(
    local: tuple[int, int, int], expected: Verdict, not_before: object
) -> None:
    """64.1200(c)(1): not before 8 a.m., not after 9 p.m.; 21:00:00 is already closed."""
    now = datetime(2026, 11, 24, *local, tzinfo=NY)
    d = ask(TCPA, ny_customer(), proposal("call", "sales"), now)
    assert d.verdict is expected
    if not_before == "next-day":
        assert d.not_before == datetime(2026, 11, 25, 8, tzinfo=NY)
    elif not_before is not None:
        assert d.not_before == datetime(2026, 11, 24, *not_before, tzinfo=NY)  # type: ignore[misc]
    if expected is Verdict.DEFER:
        assert rules_of(d) == ["us-tcpa.calling-window"]
        assert "47 CFR 64.1200(c)(1)" in d.reasons[0].message


def test_c1_covers_texts_and_marketing_not_service() -> None:
    """64.1200(c)(1) + (f)(15): a text is a call; service calls are no solicitation."""
    late = datetime(2026, 11, 24, 22, 30, tzinfo=NY)
    st = ny_customer()
    assert ask(TCPA, st, proposal("sms", "marketing"), late).verdict is Verdict.DEFER
    assert ask(TCPA, st, proposal("call", "service"), late).verdict is Verdict.ALLOW
    assert ask(TCPA, st, proposal("email", "marketing"), late).verdict is Verdict.ALLOW


def test_c1_is_the_called_partys_location_from_the_phone_number() -> None:
    """64.1200(c)(1) "local time at the called party's location": no profile zone, so the
    number decides. 07:30 in Los Angeles is 10:30 in New York: still too early."""
    st = customer(phones=("+12135550123",))  # Los Angeles
    now = datetime(2026, 11, 24, 7, 30, tzinfo=LA)
    d = ask(TCPA, st, proposal(), now)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 24, 8, tzinfo=LA)


def test_c1_area_code_spanning_zones_allows_only_hours_open_in_every_zone() -> None:
    """64.1200(c)(1) with the location uncertain: 605 (South Dakota) rings in Mountain and
    Central time. 08:00-21:00 in both is 09:00-21:00 Central, i.e. 08:00-20:00 Mountain."""
    st = customer(phones=("+16055550123",))
    early = datetime(2026, 11, 24, 8, 30, tzinfo=CHICAGO)  # 07:30 in Denver
    d = ask(TCPA, st, proposal(), early)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 24, 8, 0, tzinfo=DENVER)
    late = datetime(2026, 11, 24, 20, 30, tzinfo=DENVER)  # 21:30 in Chicago
    d = ask(TCPA, st, proposal(), late)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 25, 8, 0, tzinfo=DENVER)
    fine = datetime(2026, 11, 24, 19, 59, 59, tzinfo=DENVER)
    assert ask(TCPA, st, proposal(), fine).verdict is Verdict.ALLOW


def test_c1_on_the_23_hour_day_the_window_opens_at_local_8() -> None:
    """64.1200(c)(1) on 8 March 2026 (US clocks spring forward at 02:00): 08:00 EDT."""
    d = ask(TCPA, ny_customer(), proposal(), datetime(2026, 3, 8, 1, 30, tzinfo=NY))
    assert d.not_before == datetime(2026, 3, 8, 8, tzinfo=NY)
    assert d.not_before == datetime(2026, 3, 8, 12, tzinfo=UTC)


def test_c1_on_the_25_hour_day_the_window_opens_at_local_8() -> None:
    """64.1200(c)(1) on 1 November 2026 (clocks fall back at 02:00): 08:00 EST."""
    d = ask(TCPA, ny_customer(), proposal(), datetime(2026, 11, 1, 5, 30, tzinfo=UTC))
    assert d.not_before == datetime(2026, 11, 1, 8, tzinfo=NY)
    assert d.not_before == datetime(2026, 11, 1, 13, tzinfo=UTC)


def test_c1_applies_only_where_the_customer_may_be_in_the_us() -> None:
    """64.1200(c)(1) protects US subscribers: a Paris customer at 22:30 is not its concern."""
    st = customer(tz="Europe/Paris", country="FR", phones=("+33612345678",))
    d = ask(TCPA, st, proposal(), datetime(2026, 11, 24, 22, 30, tzinfo=ZoneInfo("Europe/Paris")))
    assert d.verdict is Verdict.ALLOW


# -- (d)(3) company-specific do-not-call -------------------------------------------------


def test_d3_do_not_call_request_is_honoured_at_once() -> None:
    """64.1200(d)(3): the request is recorded and honoured (tactful: immediately)."""
    asked = datetime(2026, 11, 24, 10, tzinfo=NY)
    st = ny_customer(events=[event("opted_out", asked, channel="call")])
    d = ask(TCPA, st, proposal("call", "sales"), datetime(2026, 11, 24, 10, 1, tzinfo=NY))
    assert d.verdict is Verdict.DENY
    assert rules_of(d) == ["us-tcpa.company-dnc"]
    assert "64.1200(d)(3)" in d.reasons[0].message


# -- (a)(10) revocation by any reasonable means ------------------------------------------


@pytest.mark.parametrize(
    "reply", ["STOP", "Stop.", "quit", "END", "revoke", "Opt-Out", "cancel", "Unsubscribe"]
)
def test_a10_each_keyword_reply_revokes_consent(reply: str) -> None:
    """64.1200(a)(10): each of the seven words, in any case or punctuation, revokes."""
    replied = datetime(2026, 11, 24, 10, tzinfo=NY)
    st = ny_customer(events=[event("contact_replied", replied, text=reply, channel="sms")])
    later = datetime(2026, 11, 25, 11, tzinfo=NY)
    for channel in ("sms", "call"):
        for purpose in ("marketing", "service", "collections"):
            d = ask(TCPA, st, proposal(channel, purpose), later)
            assert d.verdict is Verdict.DENY, (reply, channel, purpose)
            assert rules_of(d) == ["us-tcpa.revocation"]
            assert "64.1200(a)(10)" in d.reasons[0].message


def test_a10_other_reasonable_wording_revokes_but_ordinary_replies_do_not() -> None:
    """64.1200(a)(10) "any reasonable means": "please stop texting me" revokes; a reply that
    merely contains "end" in a sentence does not."""
    t = datetime(2026, 11, 24, 10, tzinfo=NY)
    later = datetime(2026, 11, 24, 12, tzinfo=NY)
    st = ny_customer(events=[event("contact_replied", t, text="Please stop texting me!")])
    assert ask(TCPA, st, proposal("sms", "marketing"), later).verdict is Verdict.DENY
    st = ny_customer(events=[event("contact_replied", t, text="Call me at the end of the day")])
    assert ask(TCPA, st, proposal("sms", "marketing"), later).verdict is Verdict.ALLOW


def test_a12_one_confirmation_text_may_follow_and_an_opt_in_lifts_it() -> None:
    """64.1200(a)(12): a one-time text confirming the opt-out is allowed; opting in again
    restores consent."""
    t = datetime(2026, 11, 24, 10, tzinfo=NY)
    st = ny_customer(events=[event("contact_replied", t, text="STOP")])
    confirm = proposal("sms", "service", flags=("optout_confirmation",))
    assert ask(TCPA, st, confirm, t).verdict is Verdict.ALLOW
    st.add_event(event("opted_in", datetime(2026, 11, 26, 10, tzinfo=NY)))
    later = datetime(2026, 11, 27, 10, tzinfo=NY)
    assert ask(TCPA, st, proposal("sms", "marketing"), later).verdict is Verdict.ALLOW
