"""The acceptance stories S1-S22 of PRODUCT.md, under the default `courtesy` policy.

Each test reads as the story: what the customer did, what the company proposed, what
tactful answered. Stories that need the HTTP service (S16, S19, S20 end to end) have their
engine half here and their service half in tests/service/.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from tactful import ContactProposal, Content, Engine, Outcome, Trigger, Verdict
from tests.conftest import CHICAGO, Clock, event


def call(customer: str = "ann", purpose: str = "sales", **kw: object) -> ContactProposal:
    return ContactProposal(customer, "call", purpose, **kw)  # type: ignore[arg-type]


def email(customer: str = "ann", purpose: str = "marketing", **kw: object) -> ContactProposal:
    return ContactProposal(customer, "email", purpose, **kw)  # type: ignore[arg-type]


def rules_of(decision: object) -> set[str]:
    return {r.rule for r in decision.reasons}  # type: ignore[attr-defined]


def test_s1_no_call_during_checkout_and_none_after_the_order(engine: Engine, clock: Clock) -> None:
    started = clock.now - timedelta(minutes=2)
    engine.record(event("checkout_started", started))
    proposal = call(
        trigger=Trigger("checkout_started"), content=Content(body="to help with your order")
    )

    d = engine.decide(proposal)
    assert d.verdict is Verdict.DEFER
    assert d.not_before is not None and d.not_before >= started + timedelta(minutes=60)
    assert "checkout-open" in rules_of(d)

    engine.record(event("order_completed", clock.advance(minutes=3)))
    d = engine.decide(proposal)
    assert d.verdict is Verdict.DENY
    assert "order-completed" in rules_of(d)


def test_s2_no_second_or_third_call_minutes_after_an_unanswered_one(
    engine: Engine, clock: Clock
) -> None:
    first = engine.decide(call())
    assert first.verdict is Verdict.ALLOW
    engine.outcome(first.decision_id, Outcome.NO_ANSWER)  # type: ignore[arg-type]
    first_at = clock.now

    clock.advance(minutes=1)
    second = engine.decide(call())
    clock.advance(minutes=3)
    third = engine.decide(call())
    for d in (second, third):
        assert d.verdict is not Verdict.ALLOW
        assert d.not_before is not None and d.not_before >= first_at + timedelta(hours=48)
        assert "sales-call-gap" in rules_of(d)


def test_s3_declined_consultation_means_no_consultant_call(engine: Engine, clock: Clock) -> None:
    engine.record(
        event("offer_declined", clock.now - timedelta(minutes=20), offer="free consultation")
    )
    d = engine.decide(call(offer="free consultation"))
    assert d.verdict is Verdict.DENY
    reason = next(r for r in d.reasons if r.rule == "declined-offer")
    assert "declined free consultation" in reason.message
    assert reason.until is not None and reason.until > clock.now + timedelta(days=89)


def test_s4_weekly_follow_ups_after_a_download_back_off_and_stop(
    engine: Engine, clock: Clock
) -> None:
    downloaded = clock.now
    engine.record(event("content_downloaded", downloaded, title="Facebook Marketing ebook"))
    allowed = 0
    trigger = Trigger("content_downloaded", downloaded)
    for week in range(8):
        clock.set(downloaded + timedelta(days=1, hours=1) + timedelta(weeks=week))
        for proposal in (call(trigger=trigger), email(purpose="sales", trigger=trigger)):
            d = engine.decide(proposal)
            if d.verdict is Verdict.ALLOW:
                allowed += 1
                engine.sent(d.decision_id)  # type: ignore[arg-type]
                engine.outcome(
                    d.decision_id,
                    Outcome.NO_ANSWER if proposal.channel == "call" else Outcome.DELIVERED,
                )  # type: ignore[arg-type]
    assert allowed <= 5, allowed  # the story had 16


def test_s4_unanswered_calls_back_off_then_stop_until_the_customer_engages(
    engine: Engine, clock: Clock
) -> None:
    attempts: list[datetime] = []
    for _ in range(40):
        d = engine.decide(call())
        if d.verdict is Verdict.DENY:
            break
        if d.verdict is Verdict.DEFER:
            clock.set(d.not_before)  # type: ignore[arg-type]
            continue
        engine.sent(d.decision_id)  # type: ignore[arg-type]
        engine.outcome(d.decision_id, Outcome.NO_ANSWER)  # type: ignore[arg-type]
        attempts.append(clock.now)
    assert len(attempts) == 6
    gaps = [b - a for a, b in pairwise(attempts)]
    assert gaps[3] >= timedelta(hours=96) and gaps[4] >= timedelta(hours=192)
    assert "sales-call-backoff" in rules_of(d)
    # The customer replies: calls may resume.
    engine.record(event("contact_replied", clock.advance(days=1)))
    assert engine.decide(call(), hold=False).verdict is not Verdict.DENY


def test_s5_opt_out_stops_every_channel_and_every_team(engine: Engine, clock: Clock) -> None:
    engine.record(event("opted_out", clock.now, text="we're through"))
    for days in (1, 30, 400):
        clock.advance(days=days)
        for channel in ("call", "email", "sms", "push", "chat"):
            for source in ("sales-team", "partner-desk", "marketing"):
                d = engine.decide(ContactProposal("ann", channel, "sales", source=source))
                assert d.verdict is Verdict.DENY
                assert "opt-out" in rules_of(d)
    # A receipt still goes out.
    assert engine.decide(email(purpose="transactional")).verdict is Verdict.ALLOW


def test_s6_no_call_within_24h_of_a_sign_in_and_one_per_14_days(
    engine: Engine, clock: Clock
) -> None:
    allowed = []
    for day in range(28):
        signed_in = TUESDAY = clock.set(
            datetime(2026, 11, 24, 10, tzinfo=CHICAGO) + timedelta(days=day)
        )
        engine.record(event("signed_in", signed_in))
        clock.advance(minutes=45)
        d = engine.decide(call(trigger=Trigger("signed_in", TUESDAY)))
        assert d.verdict is not Verdict.ALLOW
        # Waiting until the suggested time, with no new sign-in, is fine at most once per 14 days.
        if d.verdict is Verdict.DEFER and d.not_before is not None:
            assert d.not_before >= signed_in + timedelta(hours=24)
    later = clock.advance(days=1)
    for offset in range(0, 28, 2):
        clock.set(later + timedelta(days=offset))
        d = engine.decide(call(trigger=Trigger("signed_in", later - timedelta(days=1))))
        if d.verdict is Verdict.ALLOW:
            allowed.append(clock.now)
            engine.sent(d.decision_id)  # type: ignore[arg-type]
            engine.outcome(d.decision_id, Outcome.ANSWERED)  # type: ignore[arg-type]
    assert allowed
    assert all(b - a >= timedelta(days=14) for a, b in pairwise(allowed))


def _visit(engine: Engine, clock: Clock, session: str = "v1") -> None:
    engine.record(event("session_started", clock.now, session_id=session))


def test_s7_one_greeting_per_visit(engine: Engine, clock: Clock) -> None:
    _visit(engine, clock)
    greeting = ContactProposal("ann", "in_app", "service", content=Content(flags=("greeting",)))
    results = []
    for _ in range(1, 6):
        engine.record(event("page_viewed", clock.advance(minutes=1), session_id="v1"))
        results.append(engine.decide(greeting).verdict)
    assert results.count(Verdict.ALLOW) == 1
    assert results[1:] == [Verdict.DENY] * 4


def test_s8_second_chat_offer_in_five_minutes_is_denied(engine: Engine, clock: Clock) -> None:
    _visit(engine, clock)
    engine.record(event("page_viewed", clock.advance(seconds=40), session_id="v1"))
    first = engine.decide(ContactProposal("ann", "chat", "service"))
    assert first.verdict is Verdict.ALLOW
    engine.record(event("page_viewed", clock.advance(minutes=4), session_id="v1"))
    second = engine.decide(ContactProposal("ann", "chat", "service"))
    assert second.verdict is Verdict.DENY
    assert "chat-offer-once" in rules_of(second)


def test_s9_daily_just_following_up_emails_at_most_two_a_week(engine: Engine, clock: Clock) -> None:
    sent = 0
    for day in range(7):
        clock.set(datetime(2026, 11, 24, 11, tzinfo=CHICAGO) + timedelta(days=day))
        d = engine.decide(email(purpose="sales", content=Content(subject="Just following up")))
        if d.verdict is Verdict.ALLOW:
            sent += 1
            engine.sent(d.decision_id)  # type: ignore[arg-type]
    assert sent == 2


def test_s10_call_back_in_three_weeks(engine: Engine, clock: Clock) -> None:
    when = datetime(2026, 12, 15, 10, 30, tzinfo=CHICAGO)
    engine.record(event("callback_requested", clock.now, at=when.isoformat(), channel="call"))
    d = engine.decide(call(purpose="service"))
    assert d.verdict is Verdict.DEFER and d.not_before == when
    assert "callback-time" in rules_of(d)
    # At the chosen time the call-back goes through, whatever the caps say.
    clock.set(when)
    d = engine.decide(call(purpose="service", trigger=Trigger("callback_requested")))
    assert d.verdict is Verdict.ALLOW


def test_s11_a_check_in_every_few_months_is_fine(engine: Engine, clock: Clock) -> None:
    for quarter in range(8):
        clock.set(datetime(2026, 1, 13, 11, tzinfo=CHICAGO) + timedelta(days=91 * quarter))
        d = engine.decide(call(content=Content(body="Checking in: anything we can help with?")))
        assert d.verdict is Verdict.ALLOW, d
        engine.sent(d.decision_id)  # type: ignore[arg-type]
        engine.outcome(d.decision_id, Outcome.ANSWERED)  # type: ignore[arg-type]


def test_s12_email_that_reveals_tracking_is_denied(engine: Engine) -> None:
    d = engine.decide(
        email(
            purpose="sales",
            content=Content(body="Hi! I saw you checked out these pages on our site."),
        )
    )
    assert d.verdict is Verdict.DENY
    assert "reveals-tracking" in rules_of(d)


def test_s13_fake_urgency_is_denied(engine: Engine) -> None:
    d = engine.decide(
        email(purpose="sales", content=Content(subject="URGENT: your chance to grow"))
    )
    assert d.verdict is Verdict.DENY
    assert "fake-urgency" in rules_of(d)


def test_s14_abandoned_cart_discount_is_flagged(engine: Engine, clock: Clock) -> None:
    engine.record(event("checkout_started", clock.now - timedelta(hours=5)))
    d = engine.decide(
        email(
            trigger=Trigger("checkout_started"), content=Content(subject="Your cart", discount=True)
        )
    )
    assert d.verdict is Verdict.ALLOW
    assert [f.rule for f in d.flags] == ["abandoned-cart-discount"]


def test_s15_no_chat_offer_to_a_visitor_who_left_after_five_seconds(
    engine: Engine, clock: Clock
) -> None:
    _visit(engine, clock)
    engine.record(event("session_ended", clock.advance(seconds=5), session_id="v1"))
    d = engine.decide(ContactProposal("ann", "chat", "sales"))
    assert d.verdict is Verdict.DENY
    assert {"chat-short-visit", "chat-live-session"} <= rules_of(d)


def test_s17_sales_calls_and_marketing_emails_share_one_ledger(
    engine: Engine, clock: Clock
) -> None:
    # Marketing emails three days running, then a rep wants to call after each browse.
    for day in range(3):
        clock.set(datetime(2026, 11, 24, 9, tzinfo=CHICAGO) + timedelta(days=day))
        d = engine.decide(email(source="marketing"))
        engine.sent(d.decision_id)  # type: ignore[arg-type]
    calls = 0
    for day in range(3, 10):
        clock.set(datetime(2026, 11, 24, 16, tzinfo=CHICAGO) + timedelta(days=day))
        d = engine.decide(call(source="rep-42"))
        if d.verdict is Verdict.ALLOW:
            calls += 1
            engine.sent(d.decision_id)  # type: ignore[arg-type]
            engine.outcome(d.decision_id, Outcome.NO_ANSWER)  # type: ignore[arg-type]
        else:
            assert rules_of(d) & {"pressure", "sales-call-gap", "sales-call-cap"}
    assert calls <= 2
    # The emails count in the same pressure as the calls.
    pressure = engine.policy.rule("pressure")
    assert pressure.at  # type: ignore[attr-defined]


def test_s18_calls_wait_for_calling_hours(engine: Engine, clock: Clock) -> None:
    # 07:30 on a Wednesday -> 09:00 the same day.
    clock.set(datetime(2026, 11, 25, 7, 30, tzinfo=CHICAGO))
    d = engine.decide(call(), hold=False)
    assert d.verdict is Verdict.DEFER and d.not_before == datetime(2026, 11, 25, 9, tzinfo=CHICAGO)
    # A Sunday -> Monday 09:00.
    clock.set(datetime(2026, 11, 29, 12, tzinfo=CHICAGO))
    d = engine.decide(call(), hold=False)
    assert d.not_before == datetime(2026, 11, 30, 9, tzinfo=CHICAGO)
    # Thanksgiving (Thursday 26 November 2026) -> Friday 09:00.
    clock.set(datetime(2026, 11, 26, 11, tzinfo=CHICAGO))
    d = engine.decide(call(), hold=False)
    assert d.not_before == datetime(2026, 11, 27, 9, tzinfo=CHICAGO)
    assert "calling-hours" in rules_of(d)
    assert "Thanksgiving" in d.reasons[0].message


def test_s20_engine_half_last_slot_under_a_cap_goes_once(engine: Engine, clock: Clock) -> None:
    for day in range(2):
        clock.set(datetime(2026, 11, 24, 9, tzinfo=CHICAGO) + timedelta(days=day))
        engine.sent(engine.decide(email()).decision_id)  # type: ignore[arg-type]
    clock.set(datetime(2026, 11, 27, 9, tzinfo=CHICAGO))
    first = engine.decide(email())
    second = engine.decide(email())
    assert [first.verdict, second.verdict] == [Verdict.ALLOW, Verdict.DEFER]
    assert "marketing-email-cap" in rules_of(second)


def test_s19_engine_half_erased_customer_starts_blank(engine: Engine, clock: Clock) -> None:
    engine.record(event("opted_out", clock.now))
    engine.ledger.erase("ann")
    assert engine.state("ann").events == []
