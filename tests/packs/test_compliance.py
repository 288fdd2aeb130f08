"""The opt-out audit: deadlines as checks, not delays.

CAN-SPAM (15 U.S.C. 7704(a)(4)(A)): no commercial email "more than 10 business days after
the receipt" of an opt-out. CASL (S.C. 2010, c. 23, s. 11(3)): give effect to an
unsubscribe "without delay, and in any event no later than 10 business days". FCC
(47 CFR 64.1200(a)(10), (d)(3)): honour a revocation or do-not-call request within a
reasonable time "not to exceed ten business days". tactful honours at once; the audit
shows, for each opt-out, when it was received, each deadline, and what followed.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tactful import ContactProposal, Content, Engine, Verdict
from tactful.compliance import REGIMES, last_business_day, optout_audit
from tests.conftest import Clock
from tests.packs._helpers import customer, event, pack, past

NY = ZoneInfo("America/New_York")
TORONTO = ZoneInfo("America/Toronto")


def test_can_spam_ten_business_days_skip_weekends_and_federal_holidays() -> None:
    """7704(a)(4)(A): received Friday 20 November 2026; Thanksgiving (26 November) and two
    weekends do not count: the tenth business day is Monday 7 December."""
    assert last_business_day(date(2026, 11, 20), 10, "US") == date(2026, 12, 7)


def test_casl_business_days_follow_canadian_holidays() -> None:
    """CASL s. 11(3): received Tuesday 30 June 2026; Canada Day is no business day."""
    assert last_business_day(date(2026, 6, 30), 10, "CA") == date(2026, 7, 15)


def test_email_unsubscribe_lists_what_followed_inside_and_after_the_deadline() -> None:
    """7704(a)(4)(A): an email sent within the 10 business days is inside the limit, one
    after it is late; a receipt (transactional) and a call are not covered."""
    received = datetime(2026, 11, 20, 15, tzinfo=NY)
    inside = past(datetime(2026, 11, 24, 10, tzinfo=NY), "email", "marketing")
    late = past(datetime(2026, 12, 8, 10, tzinfo=NY), "email", "marketing")
    receipt = past(datetime(2026, 11, 25, 10, tzinfo=NY), "email", "transactional")
    call = past(datetime(2026, 11, 23, 10, tzinfo=NY), "call", "sales")
    st = customer(
        tz="America/New_York",
        country="US",
        events=[event("unsubscribed", received, channel="email")],
        contacts=[inside, late, receipt, call],
    )
    [finding] = optout_audit(st)
    assert finding.kind == "unsubscribed" and finding.channels == ("email",)
    assert finding.received == received
    [deadline] = finding.deadlines
    assert deadline.regime == "CAN-SPAM" and "7704(a)(4)" in deadline.cite
    assert deadline.last_day == date(2026, 12, 7)
    assert deadline.due == datetime(2026, 12, 8, tzinfo=NY)
    assert [(c.contact_id, c.late_for) for c in finding.followed_by] == [
        (inside.contact_id, ()),
        (late.contact_id, ("CAN-SPAM",)),
    ]
    assert not finding.clean and finding.late
    assert finding.as_dict()["deadlines"][0]["last_day"] == "2026-12-07"


def test_a_global_opt_out_honoured_at_once_is_clean() -> None:
    """All three regimes: a global opt-out covers email, calls and texts; with a US
    customer, CAN-SPAM and the FCC apply, CASL does not."""
    st = customer(
        tz="America/New_York",
        country="US",
        events=[event("opted_out", datetime(2026, 11, 20, 15, tzinfo=NY))],
        contacts=[past(datetime(2026, 11, 23, 10, tzinfo=NY), "email", "transactional")],
    )
    [finding] = optout_audit(st)
    assert finding.clean and not finding.late
    assert [d.regime for d in finding.deadlines] == ["CAN-SPAM", "FCC"]


def test_a_stop_reply_is_a_revocation_with_the_fcc_deadline() -> None:
    """47 CFR 64.1200(a)(10): "STOP" in reply to a text revokes consent to calls and texts."""
    replied = datetime(2026, 11, 20, 15, tzinfo=NY)
    text = past(datetime(2026, 11, 21, 10, tzinfo=NY), "sms", "marketing")
    st = customer(
        country="US",
        phones=("+12125550123",),
        events=[event("contact_replied", replied, text="Stop")],
        contacts=[text],
    )
    [finding] = optout_audit(st)
    assert finding.kind == "revocation" and finding.text == "Stop"
    assert finding.channels == ("call", "sms")
    assert [d.regime for d in finding.deadlines] == ["FCC"]
    assert [c.contact_id for c in finding.followed_by] == [text.contact_id]
    assert finding.followed_by[0].late_for == ()


def test_canadian_customer_is_checked_against_casl() -> None:
    """CASL s. 11(3) for a Toronto customer's email unsubscribe."""
    st = customer(
        phones=("+14169672222",),
        events=[event("unsubscribed", datetime(2026, 6, 30, 12, tzinfo=TORONTO), channel="email")],
        contacts=[past(datetime(2026, 7, 16, 9, tzinfo=TORONTO), "email", "marketing")],
    )
    [finding] = optout_audit(st)
    assert [d.regime for d in finding.deadlines] == ["CASL"]
    assert finding.deadlines[0].last_day == date(2026, 7, 15)
    assert finding.followed_by[0].late_for == ("CASL",)


def test_an_opt_in_ends_what_the_audit_looks_at() -> None:
    """Contacts after the customer opted in again do not follow the opt-out."""
    st = customer(
        tz="America/New_York",
        country="US",
        events=[
            event("unsubscribed", datetime(2026, 11, 2, 10, tzinfo=NY), channel="email"),
            event("subscribed", datetime(2026, 11, 10, 10, tzinfo=NY), channel="email"),
        ],
        contacts=[past(datetime(2026, 11, 12, 10, tzinfo=NY), "email", "marketing")],
    )
    [finding] = optout_audit(st)
    assert finding.lifted == datetime(2026, 11, 10, 10, tzinfo=NY)
    assert finding.clean


def test_unknown_location_is_checked_against_every_regime() -> None:
    st = customer(events=[event("opted_out", datetime(2026, 11, 20, 15, tzinfo=NY))])
    [finding] = optout_audit(st)
    assert {d.regime for d in finding.deadlines} == {r.name for r in REGIMES}


def test_through_the_engine_nothing_non_exempt_follows_an_opt_out() -> None:
    """tactful honours opt-outs at once: after the opt-out every sales and marketing
    proposal is denied, a receipt goes out, and the audit finds the opt-out clean."""
    start = datetime(2026, 11, 20, 15, tzinfo=NY)
    clock = Clock(start)
    engine = Engine(pack("courtesy", "us-tcpa"), clock=clock)
    engine.profile(customer(tz="America/New_York", country="US").profile)
    engine.record(event("opted_out", clock.now))
    for day in (1, 3, 10, 30):
        clock.set(start + timedelta(days=day))
        for channel, purpose in (("call", "sales"), ("email", "marketing"), ("sms", "marketing")):
            d = engine.decide(ContactProposal("c1", channel, purpose))
            assert d.verdict is Verdict.DENY
    receipt = engine.decide(
        ContactProposal("c1", "email", "transactional", content=Content(subject="Your receipt"))
    )
    assert receipt.verdict is Verdict.ALLOW
    engine.sent(receipt.decision_id)  # type: ignore[arg-type]
    [finding] = optout_audit(engine.state("c1"))
    assert finding.clean
