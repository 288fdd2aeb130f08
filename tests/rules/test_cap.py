"""`cap`: rolling windows, local calendar periods (DST days too), sessions, `per` keys."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tactful import ContactStatus, Policy, Verdict
from tactful.rules.base import NEVER
from tactful.rules.cap import period_bounds, rolling_earliest
from tests.rules.conftest import (
    CHICAGO,
    DAY,
    HOUR,
    MINUTE,
    PARIS,
    TUESDAY,
    contact,
    decide,
    ev,
    policy,
    profile,
    propose,
    rules_of,
    state,
    ts,
)

ROLLING = policy("""
    - id: email-cap
      kind: cap
      scope: {channels: [email], purposes: [marketing]}
      count: 3
      window: 7d
      message: at most 3 per 7 days
""")


def calendar(window: str, count: int = 1) -> Policy:
    return policy(f"""
        - id: cap
          kind: cap
          scope: {{channels: [email]}}
          count: {count}
          window: {window}
          message: capped
    """)


# -- rolling_earliest, directly ---------------------------------------------------------


def test_rolling_earliest_under_the_count_is_now() -> None:
    assert rolling_earliest([], 100.0, 1, 10.0) == 100.0
    assert rolling_earliest([95.0, 99.0], 100.0, 3, 10.0) == 100.0


def test_rolling_earliest_waits_for_the_oldest_to_leave_the_window() -> None:
    # Window (x - 10, x]: the contact at 92 leaves at exactly 102.
    assert rolling_earliest([92.0, 95.0, 99.0], 100.0, 3, 10.0) == 102.0
    assert rolling_earliest([92.0, 95.0, 99.0], 100.0, 2, 10.0) == 105.0
    assert rolling_earliest([92.0, 95.0, 99.0], 100.0, 1, 10.0) == 109.0


def test_rolling_earliest_counts_future_holds() -> None:
    # A hold already placed at 105: a contact at 100 would share its window.
    assert rolling_earliest([105.0], 100.0, 1, 10.0) == 115.0
    # Far enough ahead of the hold, the slot before it is free.
    assert rolling_earliest([125.0], 100.0, 1, 10.0) == 100.0
    # Between two holds: both neighbouring windows must stay within the count.
    assert rolling_earliest([90.0, 108.0], 100.0, 1, 10.0) == 118.0
    assert rolling_earliest([90.0, 108.0], 100.0, 2, 10.0) == 100.0
    assert rolling_earliest([90.0, 112.0], 100.0, 1, 10.0) == 100.0


def test_rolling_earliest_result_fits_and_is_the_earliest() -> None:
    times = [0.0, 1.0, 2.0, 30.0, 31.0, 45.0]

    def fits(u: float, count: int) -> bool:
        merged = sorted([*times, u])
        # Every window that holds the new contact stays within the count.
        return all(
            sum(1 for a in merged if x - 20.0 < a <= x) <= count
            for x in merged
            if x - 20.0 < u <= x
        )

    for count in (1, 2, 3):
        u = rolling_earliest(times, 10.0, count, 20.0)
        assert fits(u, count)
        assert not any(fits(v, count) for v in range(10, int(u)))
    assert rolling_earliest(times, 10.0, 1, 20.0) == 65.0


# -- rolling windows through the engine ---------------------------------------------------


def test_rolling_cap_defers_until_the_oldest_contact_leaves_the_window() -> None:
    sent = [TUESDAY - timedelta(days=d) for d in (6, 4, 1)]
    st = state(*(contact("email", "marketing", s) for s in sent))
    d = decide(ROLLING, st, propose("email", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == sent[0] + timedelta(days=7)
    assert rules_of(d) == {"email-cap"}
    # Exactly seven days after the oldest, the window (x - 7d, x] no longer holds it.
    assert decide(ROLLING, st, propose("email", "marketing"), d.not_before).allowed


def test_rolling_cap_is_scoped_and_exempts_transactional() -> None:
    st = state(*(contact("email", "marketing", TUESDAY - timedelta(days=d)) for d in (1, 2, 3)))
    assert decide(ROLLING, st, propose("email", "sales"), TUESDAY).allowed
    assert decide(ROLLING, st, propose("sms", "marketing"), TUESDAY).allowed
    exempt = policy("""
        - id: all-email
          kind: cap
          scope: {channels: [email]}
          count: 1
          window: 7d
          message: one
    """)
    st = state(contact("email", "marketing", TUESDAY - HOUR))
    assert decide(exempt, st, propose("email", "transactional"), TUESDAY).allowed
    # ... and transactional contacts in the ledger do not use up the cap either.
    st = state(contact("email", "transactional", TUESDAY - HOUR))
    assert decide(exempt, st, propose("email", "marketing"), TUESDAY).allowed


def test_holds_count_until_they_expire_and_cancelled_contacts_never() -> None:
    two = [contact("email", "marketing", TUESDAY - timedelta(days=d)) for d in (1, 2)]
    live_hold = contact(
        "email",
        "marketing",
        TUESDAY - HOUR,
        status=ContactStatus.HELD,
        hold_expires=TUESDAY + 10 * MINUTE,
    )
    st = state(*two, live_hold)
    assert decide(ROLLING, st, propose("email", "marketing"), TUESDAY).verdict is Verdict.DEFER
    # Twenty minutes later the hold has expired unconfirmed: the slot is free again.
    later = TUESDAY + 20 * MINUTE
    assert decide(ROLLING, st, propose("email", "marketing"), later).allowed
    cancelled = contact("email", "marketing", TUESDAY - HOUR, status=ContactStatus.CANCELLED)
    assert decide(ROLLING, state(*two, cancelled), propose("email", "marketing"), TUESDAY).allowed


def test_future_at_proposal_is_judged_at_its_own_time() -> None:
    sent = [TUESDAY - timedelta(days=d) for d in (3, 2, 1)]
    st = state(*(contact("email", "marketing", s) for s in sent))
    assert not decide(ROLLING, st, propose("email", "marketing"), TUESDAY).allowed
    # "May I send it in five days?" By then the oldest has left the window.
    later = TUESDAY + timedelta(days=5)
    d = decide(ROLLING, st, propose("email", "marketing", at=later), TUESDAY)
    assert d.allowed and d.at == later


def test_future_holds_count_against_an_earlier_proposal() -> None:
    one = policy("""
        - id: one-a-week
          kind: cap
          scope: {channels: [email]}
          count: 1
          window: 7d
          message: one a week
    """)
    booked = TUESDAY + timedelta(days=3)
    st = state(contact("email", "marketing", booked))
    d = decide(one, st, propose("email", "marketing"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == booked + timedelta(days=7)
    # Eight days before the booking is fine.
    early = state(contact("email", "marketing", TUESDAY + timedelta(days=8)))
    assert decide(one, early, propose("email", "marketing"), TUESDAY).allowed


def test_a_contact_with_the_same_id_twice_counts_once() -> None:
    same = [contact("email", "marketing", TUESDAY - HOUR, contact_id="x") for _ in range(3)]
    st = state(*same, contact("email", "marketing", TUESDAY - DAY))
    assert len(st.contacts) == 2
    assert decide(ROLLING, st, propose("email", "marketing"), TUESDAY).allowed


def test_requested_contacts_neither_count_nor_are_capped() -> None:
    st = state(
        *(
            contact("email", "marketing", TUESDAY - timedelta(days=d), trigger="help_requested")
            for d in (1, 2, 3)
        )
    )
    assert decide(ROLLING, st, propose("email", "marketing"), TUESDAY).allowed
    full = state(
        ev("help_requested", TUESDAY - MINUTE),
        *(contact("email", "marketing", TUESDAY - timedelta(days=d)) for d in (1, 2, 3)),
    )
    assert not decide(ROLLING, full, propose("email", "marketing"), TUESDAY).allowed
    requested = propose("email", "marketing", trigger="help_requested")
    assert decide(ROLLING, full, requested, TUESDAY).allowed


# -- per keys --------------------------------------------------------------------------------


def test_per_offer_counts_each_offer_apart() -> None:
    pol = policy("""
        - id: per-offer
          kind: cap
          scope: {purposes: [sales]}
          count: 1
          window: 30d
          per: [offer]
          message: once per offer
    """)
    st = state(contact("email", "sales", TUESDAY - DAY, offer="gold"))
    assert not decide(pol, st, propose("email", "sales", offer="gold"), TUESDAY).allowed
    assert decide(pol, st, propose("email", "sales", offer="silver"), TUESDAY).allowed
    # A proposal without an offer is counted with the contacts without one.
    assert decide(pol, st, propose("email", "sales"), TUESDAY).allowed


def test_per_trigger_one_per_kind_of_browsing() -> None:
    pol = Policy.load("courtesy")
    st = state(
        ev("signed_in", TUESDAY - timedelta(days=3)),
        ev("page_viewed", TUESDAY - timedelta(days=2)),
        contact("email", "sales", TUESDAY - timedelta(days=2), trigger="signed_in"),
    )
    d = decide(pol, st, propose("email", "sales", trigger="signed_in"), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert "behaviour-trigger-cap" in rules_of(d)
    assert d.not_before is not None and d.not_before >= TUESDAY + timedelta(days=12)
    assert decide(pol, st, propose("email", "sales", trigger="page_viewed"), TUESDAY).allowed


def test_per_tag_counts_each_account_apart() -> None:
    pol = policy("""
        - id: reg-f
          kind: cap
          scope: {channels: [call], purposes: [collections]}
          count: 7
          window: 7d
          per: [tags.account]
          message: Reg F 7-in-7 per debt
    """)
    calls = [
        contact("call", "collections", TUESDAY - timedelta(hours=20 * i), tags={"account": "A"})
        for i in range(1, 8)
    ]
    st = state(*calls)
    d = decide(pol, st, propose("call", "collections", tags={"account": "A"}), TUESDAY)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == TUESDAY - timedelta(hours=140) + timedelta(days=7)
    assert decide(pol, st, propose("call", "collections", tags={"account": "B"}), TUESDAY).allowed


# -- local calendar periods -------------------------------------------------------------------


def test_calendar_day_is_the_customers_local_day() -> None:
    pol = calendar("day")
    late = datetime(2026, 11, 17, 23, 0, tzinfo=CHICAGO)  # 05:00 UTC on the 18th
    st = state(contact("email", "marketing", late))
    same_day = datetime(2026, 11, 17, 23, 30, tzinfo=CHICAGO)
    d = decide(pol, st, propose("email", "marketing"), same_day)
    assert d.verdict is Verdict.DEFER
    assert d.not_before == datetime(2026, 11, 18, 0, 0, tzinfo=CHICAGO)
    # Earlier the same local day (already the 17th in UTC too) is also taken.
    morning = datetime(2026, 11, 17, 8, 0, tzinfo=CHICAGO)
    assert not decide(pol, st, propose("email", "marketing"), morning).allowed


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (CHICAGO, (2026, 3, 8), 23),
        (CHICAGO, (2026, 11, 1), 25),
        (PARIS, (2026, 3, 29), 23),
        (PARIS, (2026, 10, 25), 25),
    ],
)
def test_calendar_day_on_a_dst_change_day(
    tz: object, day: tuple[int, int, int], hours: int
) -> None:
    start = datetime(*day, 0, 30, tzinfo=tz)  # type: ignore[arg-type]
    midnight = datetime(*day, tzinfo=tz)  # type: ignore[arg-type]
    next_midnight = midnight + timedelta(days=1)  # wall-clock arithmetic in the zone
    lo, hi = period_bounds(ts(start), "day", tz)  # type: ignore[arg-type]
    assert (lo, hi) == (ts(midnight), ts(next_midnight))
    assert hi - lo == hours * 3600
    pol = calendar("day")
    prof = profile(timezone=str(tz))
    st = state(contact("email", "marketing", start), prof=prof)
    last_minute = datetime(*day, 23, 59, tzinfo=tz)  # type: ignore[arg-type]
    d = decide(pol, st, propose("email", "marketing"), last_minute)
    assert d.verdict is Verdict.DEFER and d.not_before == next_midnight
    assert decide(pol, st, propose("email", "marketing"), next_midnight).allowed


def test_calendar_week_starts_on_local_monday() -> None:
    pol = calendar("week")
    monday = datetime(2026, 11, 16, 0, 30, tzinfo=CHICAGO)
    st = state(contact("email", "marketing", monday))
    sunday_night = datetime(2026, 11, 22, 23, 0, tzinfo=CHICAGO)
    d = decide(pol, st, propose("email", "marketing"), sunday_night)
    assert d.not_before == datetime(2026, 11, 23, tzinfo=CHICAGO)
    # In Paris, Monday 00:30 Chicago is already Monday morning: the same week either way,
    # but the previous Sunday 20:00 Chicago is Monday 03:00 in Paris.
    sunday_evening = datetime(2026, 11, 15, 20, 0, tzinfo=CHICAGO)
    paris = state(
        contact("email", "marketing", sunday_evening), prof=profile(timezone="Europe/Paris")
    )
    chicago = state(contact("email", "marketing", sunday_evening))
    wednesday = datetime(2026, 11, 18, 12, tzinfo=CHICAGO)
    assert not decide(pol, paris, propose("email", "marketing"), wednesday).allowed
    assert decide(pol, chicago, propose("email", "marketing"), wednesday).allowed


def test_calendar_week_across_the_autumn_dst_change() -> None:
    pol = calendar("week")
    st = state(contact("email", "marketing", datetime(2026, 10, 26, 9, tzinfo=CHICAGO)))
    d = decide(pol, st, propose("email", "marketing"), datetime(2026, 11, 1, 12, tzinfo=CHICAGO))
    assert d.not_before == datetime(2026, 11, 2, tzinfo=CHICAGO)
    assert d.not_before is not None
    assert d.not_before.astimezone(CHICAGO).utcoffset() == timedelta(hours=-6)


def test_calendar_month_and_the_year_end() -> None:
    pol = calendar("month", count=2)
    st = state(
        contact("email", "marketing", datetime(2026, 12, 1, 0, 5, tzinfo=CHICAGO)),
        contact("email", "marketing", datetime(2026, 12, 20, tzinfo=CHICAGO)),
    )
    d = decide(pol, st, propose("email", "marketing"), datetime(2026, 12, 31, 23, tzinfo=CHICAGO))
    assert d.not_before == datetime(2027, 1, 1, tzinfo=CHICAGO)
    # November's contacts are another month.
    assert decide(
        pol, st, propose("email", "marketing"), datetime(2026, 11, 30, tzinfo=CHICAGO)
    ).allowed


# -- session window -------------------------------------------------------------------------


def test_session_cap_is_one_per_visit() -> None:
    pol = calendar("session")
    start = TUESDAY
    st = state(
        ev("session_started", start, session_id="s1"),
        ev("page_viewed", start + MINUTE, session_id="s1"),
        contact("email", "marketing", start + MINUTE),
    )
    now = start + 2 * MINUTE
    d = decide(pol, st, propose("email", "marketing"), now)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"cap"}
    # Two hours later the visit is over (30 minutes without activity): no live session.
    assert decide(pol, st, propose("email", "marketing"), start + 2 * HOUR).allowed
    # A new visit starts afresh.
    st.add_event(ev("session_started", start + 3 * HOUR, session_id="s2"))
    assert decide(pol, st, propose("email", "marketing"), start + 3 * HOUR + MINUTE).allowed


def test_cap_with_nothing_counted_allows() -> None:
    for window in ("day", "session", "7d"):
        assert decide(calendar(window), state(), propose("email", "marketing"), TUESDAY).allowed


def test_rolling_cap_check_returns_never_only_for_impossible_inputs() -> None:
    # The last candidate always fits: a cap on its own never denies outright.
    assert rolling_earliest([1.0, 2.0, 3.0], 0.0, 1, 5.0) < NEVER


def test_two_policies_sharing_a_rule_id_do_not_share_cached_counts() -> None:
    # A pack and a team's override (or the live policy and a candidate under replay) may
    # hold different rules under one id; deciding under one must not leak into the other.
    # (This was a bug: the state's caches were keyed by rule id.)
    counts_greetings = calendar("7d")
    skips_greetings = policy("""
        - id: cap
          kind: cap
          scope: {channels: [email], exclude_flags: [greeting]}
          count: 1
          window: 7d
          message: capped
    """)
    proposal = propose("email", "marketing")
    for first in (counts_greetings, skips_greetings):
        st = state(contact("email", "marketing", TUESDAY - HOUR, flags=("greeting",)))
        decide(first, st, proposal, TUESDAY)
        assert decide(counts_greetings, st, proposal, TUESDAY).verdict is Verdict.DEFER
        assert decide(skips_greetings, st, proposal, TUESDAY).allowed
