"""The replay kernel gives the engine's verdicts: every column of every verdict equal to
what `fold` gives, on synthetic logs and on hand-made ones that reach each corner of the
kinds it covers (searches, the horizon, flags, requests, contacts at one instant)."""

from __future__ import annotations

import calendar
import json
import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tactful import engine
from tactful.model import from_ts
from tactful.policy.document import Policy
from tactful.replay import kernel, local, native
from tactful.replay.io import TimelineBuilder, load_log
from tactful.replay.local import VERDICT_SCHEMA, replay_local
from tactful.replay.synthetic import write_log
from tactful.replay.timeline import TIMELINE_COLUMNS, fold_columns, to_us
from tests.replay.conftest import LogBuilder

FREQUENCY = Policy.load(Path(__file__).parents[2] / "bench" / "frequency.yaml")
COURTESY = Policy.load("courtesy")

#: Corners: a deny mode, a flag, per keys, a tight horizon, braces, quotes and non-ASCII
#: text in messages, a pressure rule shown twice in its message.
CORNERS = Policy.from_text(
    """
name: corners
version: "2"
horizon: 2d
weights: {call: 5, sms: 3, email: 1.5}
rules:
  - id: call-gap
    kind: gap
    scope: {channels: [call]}
    gap: 36h
    message: "Calls {{36 h}} apart, \\"please\\" — merci."
  - id: email-cap
    kind: cap
    scope: {channels: [email]}
    count: 2
    window: 2d
    per: [offer]
    message: "At most 2 emails per offer per 2 days ({offer})."
  - id: sms-deny
    kind: cap
    scope: {channels: [sms]}
    count: 1
    window: 7d
    mode: deny
    message: "One text a week."
  - id: sales-flag
    kind: gap
    scope: {purposes: [sales]}
    gap: 1h
    mode: flag
    message: "Sales contact within the hour."
  - id: long-cap
    kind: cap
    scope: {channels: [call], purposes: [sales]}
    count: 2
    window: 6d
    message: "Two sales calls per 6 days."
  - id: pressure
    kind: pressure
    scope: {purposes: [marketing, sales]}
    budget: 9.5
    half_life: 1d
    unanswered_factor: 3
    message: "Pressure {pressure} of {budget} (was {pressure})."
""",
    "corners.yaml",
)


#: Courtesy without its calling hours and visit rules, which the kernel does not cover yet:
#: caps, gaps, pressure, activity, triggers, content, unanswered attempts, and the kinds
#: whose customers it sends to the engine when they opted out, declined, snoozed...
PACED = Policy.from_text(
    """
name: paced
version: "1"
extends: [courtesy]
disable: [calling-hours, chat-offer-once, greeting-once, chat-live-session, chat-short-visit,
          chat-dwell, chat-dismissed, chat-not-in-checkout]
""",
    "paced.yaml",
)


#: Frequency rules the kernel covers besides the state packs': per an offer (a shape's
#: field), counting what the customer asked for, denying, and per tag.
COUNTED = Policy.from_text(
    """
name: counted
version: "1"
rules:
  - id: offer-emails
    kind: frequency
    scope: {channels: [email]}
    count: 2
    window: 2d
    per: [offer]
    message: "At most 2 emails per offer ({key}) in 2 days; {counted} already."
  - id: calls
    kind: frequency
    scope: {channels: [call]}
    count: 2
    window: 12h
    requested: count
    mode: deny
    message: "Two calls in 12 hours; {counted} already ({key})."
  - id: texts
    kind: frequency
    scope: {channels: [sms]}
    count: 1
    window: 1d
    per: [tags.subject]
    message: "One text a day on {key}; {counted} already."
  - id: push-keys
    kind: frequency
    scope: {channels: [push]}
    count: 2
    window: 3d
    per: [offer, tags.subject]
    message: "Two pushes per offer and subject ({key}) in 3 days; {counted} already."
""",
    "counted.yaml",
)


#: Caps per local calendar day, ISO week and month (in the customer's first zone).
PERIODS = Policy.from_text(
    """
name: periods
version: "1"
rules:
  - id: call-day
    kind: cap
    scope: {channels: [call]}
    count: 1
    window: day
    message: "One call a day."
  - id: email-week
    kind: cap
    scope: {channels: [email]}
    count: 2
    window: week
    per: [offer]
    message: "Two emails a week per offer ({offer})."
  - id: sales-month
    kind: cap
    scope: {purposes: [sales]}
    count: 3
    window: month
    mode: deny
    message: "Three sales contacts a month."
  - id: sms-gap
    kind: gap
    scope: {channels: [sms]}
    gap: 30h
    message: "Texts 30 hours apart."
""",
    "periods.yaml",
)


#: Courtesy with texts, and sales calls, that need an opt-in (which a replay's profile never
#: records): denied unless an opt-out denies them first, in its own words.
OPT_IN = Policy.from_text(
    COURTESY.text.replace("name: courtesy", "name: opt-in").replace(
        "kind: consent", 'kind: consent\n    require_opt_in: ["call:sales", sms]', 1
    ),
    "opt-in.yaml",
)


#: Caps and gaps keyed by tags (matched exactly: a contact without the tag is its own
#: key), with a shape's field beside a tag.
TAGGED = Policy.from_text(
    """
name: tagged
version: "1"
rules:
  - id: account-calls
    kind: cap
    scope: {channels: [call]}
    count: 2
    window: 1d
    per: [tags.account]
    message: "Two calls a day per account."
  - id: offer-account-emails
    kind: cap
    scope: {channels: [email]}
    count: 1
    window: week
    per: [offer, tags.account]
    message: "One email a week per offer and account."
  - id: account-texts
    kind: gap
    scope: {channels: [sms]}
    gap: 6h
    per: [tags.account, tags.subject]
    message: "Texts six hours apart per account and subject."
""",
    "tagged.yaml",
)


def python_fold(timeline: pl.DataFrame, policies: list[Policy]) -> pl.DataFrame:
    columns = {name: timeline.get_column(name).to_list() for name in TIMELINE_COLUMNS}
    return pl.DataFrame(fold_columns(columns, policies), schema=VERDICT_SCHEMA)


def files_of(timeline: pl.DataFrame) -> TimelineBuilder:
    """A builder of the timeline's contacts and events as the two files they came from."""
    files = [timeline.filter(pl.col("is_contact") == c).sort("row") for c in (True, False)]
    assert TimelineBuilder(files, None).full().equals(timeline)
    return TimelineBuilder(files, None)


def coded_fold(timeline: pl.DataFrame, policy: Policy, chunk_rows: int = 50) -> pl.DataFrame:
    """The kernel's verdicts of the slices a replay of the log's files folds: coded
    (`native.LogCodes`), from a builder of the timeline's files."""
    return replay_local(files_of(timeline), [policy], workers=1, chunk_rows=chunk_rows)[0]


def coded_handed(timeline: pl.DataFrame, policy: Policy) -> list[str]:
    """The customers the kernel hands to the engine when it folds the timeline's files
    coded, as one slice."""
    builder = files_of(timeline)
    codes = native.LogCodes(builder, tags=native.tagged([policy]))
    read = native.columns_for([policy], coded=True)
    handed: list[str] = []
    native.fold_frame(
        builder.frame(0, None, read), policy, codes=codes, whole=builder.frame,
        engine_folded=handed,
    )  # fmt: skip
    return handed


def assert_same(
    timeline: pl.DataFrame, policy: Policy, engine_folded: list[str] | None = None
) -> pl.DataFrame:
    """The kernel's verdicts equal the engine's, the slices of a replay's files coded
    (`coded_fold`) or not; `engine_folded`, if given, must name the customers the kernel
    handed to the engine."""
    assert native.unsupported(policy) == []
    handed: list[str] = []
    got = native.fold_frame(timeline, policy, engine_folded=handed)
    if engine_folded is not None:
        assert handed == engine_folded
        assert coded_handed(timeline, policy) == engine_folded
    want = python_fold(timeline, [policy])
    coded = coded_fold(timeline, policy)
    for name in want.columns:
        assert got.get_column(name).to_list() == want.get_column(name).to_list(), name
        if name != "run":
            assert coded.get_column(name).to_list() == want.get_column(name).to_list(), name
    assert got.schema == want.schema
    return got


@pytest.fixture(scope="module", params=[3, 11])
def synthetic(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> pl.DataFrame:
    files = write_log(tmp_path_factory.mktemp("log"), customers=60, seed=request.param)
    return load_log(files.contacts, files.events, customers=files.customers).timeline


@pytest.mark.parametrize(
    "policy",
    [
        FREQUENCY,
        CORNERS,
        PACED,
        COUNTED,
        Policy.load("us-tcpa"),
        Policy.load("au-telemarketing"),
        Policy.load("us-md"),
        Policy.load("fr-demarchage"),
        PERIODS,
        TAGGED,
        OPT_IN,
    ],
    ids=[
        "frequency",
        "corners",
        "paced",
        "counted",
        "us-tcpa",
        "au-telemarketing",
        "us-md",
        "fr-demarchage",
        "periods",
        "tagged",
        "opt-in",
    ],
)
def test_synthetic_logs_get_the_engines_verdicts(synthetic: pl.DataFrame, policy: Policy) -> None:
    got = assert_same(synthetic, policy)
    verdicts = set(got.get_column("verdict").to_list())
    assert {"allow", "defer"} <= verdicts


def test_the_corners_are_reached(synthetic: pl.DataFrame) -> None:
    got = native.fold_frame(synthetic, CORNERS)
    rules = ";".join(got.get_column("rules").drop_nulls().to_list()).split(";")
    assert {"call-gap", "email-cap", "sms-deny", "long-cap", "pressure", "horizon"} <= set(rules)
    assert "sales-flag" in set(got.get_column("flags").drop_nulls().to_list())


def test_the_paced_kinds_fire_in_the_kernel(synthetic: pl.DataFrame) -> None:
    got = native.fold_frame(synthetic, PACED)
    rules = set(";".join(got.get_column("rules").drop_nulls().to_list()).split(";"))
    assert {
        "customer-active",
        "checkout-open",
        "behaviour-trigger-delay",
        "pressure",
    } <= rules


def test_snoozes_and_call_backs(log: LogBuilder) -> None:
    log.event("a", "2026-03-02T09:00:00Z", "snooze_requested", duration="3d")
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing")
    log.event("a", "2026-03-02T11:00:00Z", "snooze_requested", until="2026-03-02T12:00:00Z")
    log.contact("a", "2026-03-02T11:30:00Z", "email", "marketing")
    log.contact("a", "2026-03-02T13:00:00Z", "email", "marketing")
    log.event("b", "2026-03-02T09:00:00Z", "callback_requested", callback_at="2026-03-03T15:00:00Z")
    log.contact("b", "2026-03-02T10:00:00Z", "call", "sales")
    log.contact("b", "2026-03-03T15:00:00Z", "call", "sales", trigger="callback_requested")
    log.contact("b", "2026-03-03T16:00:00Z", "call", "service")
    log.event("c", "2026-03-02T09:00:00Z", "callback_requested", callback_at="2026-03-04T10:00:00Z")
    log.event("c", "2026-03-02T09:30:00Z", "callback_requested", cancelled="true")
    log.contact("c", "2026-03-02T10:00:00Z", "call", "service")
    got = assert_same(timeline_of(log), COURTESY, engine_folded=[])
    assert got.get_column("rules").to_list()[:3] == ["snooze", "snooze", None]
    assert "until 2026-03-02 12:00 UTC" in got.get_column("reasons").to_list()[1]
    assert got.get_column("rules").to_list()[3] == "callback-time"
    assert got.get_column("verdict").to_list()[4:] == ["allow", "allow", "allow"]


def test_triggers_activity_content_and_backoff(log: LogBuilder) -> None:
    # A checkout left open, the contact it prompted, then the order that moots it.
    log.event("a", "2026-03-02T10:00:00Z", "checkout_started")
    log.contact("a", "2026-03-02T10:20:00Z", "email", "marketing", trigger="checkout_started")
    log.contact("a", "2026-03-02T12:00:00Z", "email", "marketing", trigger="checkout_started",
                discount="true")  # fmt: skip
    log.event("a", "2026-03-02T13:00:00Z", "order_completed")
    log.contact("a", "2026-03-02T15:00:00Z", "email", "marketing", trigger="checkout_started")
    # Browsing prompts a sales email a day later, once per 14 days per kind.
    log.event("b", "2026-03-02T10:00:00Z", "product_viewed")
    log.contact("b", "2026-03-02T12:00:00Z", "email", "sales", trigger="product_viewed")
    log.contact("b", "2026-03-03T12:00:00Z", "email", "sales", trigger="product_viewed",
                subject="URGENT: we saw you were looking")  # fmt: skip
    log.contact("b", "2026-03-03T13:00:00Z", "email", "sales", trigger="product_viewed")
    got = assert_same(timeline_of(log), PACED)
    assert got.get_column("rules").to_list()[:5] == [
        "customer-active;checkout-open",
        None,
        "order-completed;marketing-email-gap",
        "behaviour-trigger-delay",
        "reveals-tracking;fake-urgency",
    ]
    assert got.get_column("flags").to_list()[1] == "abandoned-cart-discount"


BACKOFF = Policy.from_text(
    """
name: backoff
version: "1"
rules:
  - id: backoff
    kind: unanswered
    scope: {channels: [call]}
    after: 2
    gap: 12h
    stop_after: 4
    message: "{unanswered} calls in a row went unanswered."
""",
    "backoff.yaml",
)


def test_unanswered_calls_back_off_then_stop_until_the_customer_engages(log: LogBuilder) -> None:
    for at, outcome in [
        ("2026-03-02T10:00", "no_answer"),
        ("2026-03-03T10:00", "voicemail"),
        ("2026-03-03T20:00", None),  # two in a row: wait 24 h after the last
        ("2026-03-04T10:00", "no_answer"),
        ("2026-03-05T10:00", None),  # three: 48 h
        ("2026-03-06T10:00", "no_answer"),
        ("2026-03-08T10:00", "answered"),  # four: stop
    ]:
        log.contact("c", f"{at}:00Z", "call", "sales", outcome=outcome)
    log.event("c", "2026-03-09T09:00:00Z", "signed_in")
    log.contact("c", "2026-03-09T10:00:00Z", "call", "sales")
    got = assert_same(timeline_of(log), BACKOFF, engine_folded=[])
    assert got.get_column("verdict").to_list() == [
        "allow", "allow", "defer", "allow", "defer", "allow", "deny", "allow"
    ]  # fmt: skip
    assert "4 calls in a row went unanswered." in got.get_column("reasons").to_list()[6]


HOURS = Policy.from_text(
    """
name: hours
version: "1"
rules:
  - id: calling-hours
    kind: hours
    scope: {channels: [call]}
    schedule: {mon-fri: ["09:00-12:00", "13:30-20:00"], sat: "10:00-14:00", sun: closed}
    holidays: true
    message: "Calls only in business hours ({local})."
  - id: call-gap
    kind: gap
    scope: {channels: [call]}
    gap: 20h
    message: "Calls 20 hours apart."
  - id: text-hours
    kind: hours
    scope: {channels: [sms]}
    schedule: {daily: "08:00-21:00"}
    holidays: false
    mode: flag
    message: "A text outside 08:00-21:00 ({local})."
""",
    "hours.yaml",
)


def test_calling_hours_across_zones_holidays_and_clock_changes(log: LogBuilder) -> None:
    # A US holiday on a Saturday; a number that spans two zones; the night Paris moves
    # its clocks; a gap that pushes a call into the lunch break and the night.
    log.profile("ny", timezone="America/New_York", country="US", subdivision="NY")
    log.contact("ny", "2026-07-04T15:00:00Z", "call", "sales")
    log.contact("ny", "2026-07-06T13:05:00Z", "call", "sales")
    log.contact("ny", "2026-07-07T08:00:00Z", "call", "sales")
    log.profile("id", phones="+12085550123;+16055550123")
    log.contact("id", "2026-03-02T15:30:00Z", "call", "service")
    log.contact("id", "2026-03-02T16:30:00Z", "sms", "service")
    log.contact("id", "2026-03-03T03:00:00Z", "sms", "service")
    log.profile("fr", timezone="Europe/Paris", country="FR")
    log.contact("fr", "2026-03-27T10:00:00Z", "call", "sales")
    log.contact("fr", "2026-03-28T06:30:00Z", "call", "sales")
    log.contact("fr", "2026-03-30T06:30:00Z", "call", "sales")
    log.contact("fr", "2026-05-01T08:00:00Z", "call", "sales")  # Fête du Travail
    got = assert_same(timeline_of(log), HOURS, engine_folded=[])
    rules = got.get_column("rules").to_list()
    assert rules.count("calling-hours") >= 4
    reasons = "".join(r for r in got.get_column("reasons").to_list() if r)
    assert "Independence Day" in reasons
    assert "America/Boise" in reasons
    assert got.get_column("flags").to_list().count("text-hours") == 1


def test_local_times_are_worded_column_by_column_as_one_by_one(log: LogBuilder) -> None:
    """`Hours.local_all` words every instant as `Hours.local` does, on plain days (read off
    the days laid out), on the days clocks change and near the ends of the days laid out
    (worded one by one), on holidays, for each rule and each place."""
    import json

    from tactful.replay.io import PROFILE_COLUMNS, customer_bounds
    from tactful.rules.hours import HoursRule

    log.profile("ny", timezone="America/New_York", country="US", subdivision="NY")
    log.contact("ny", "2026-03-01T15:00:00Z", "call", "sales")
    log.profile("id", phones="+12085550123;+16055550123")
    log.contact("id", "2026-03-02T15:30:00Z", "call", "service")
    log.profile("fr", timezone="Europe/Paris", country="FR")
    log.contact("fr", "2026-03-27T10:00:00Z", "call", "sales")
    timeline = timeline_of(log)
    starts = customer_bounds(timeline.get_column("customer_id"))
    ts = timeline.get_column("at_us").to_numpy() / 1e6
    profiles = timeline.select(PROFILE_COLUMNS).gather(starts[:-1])
    hours = native.Hours(HOURS, len(starts) - 1, lambda: profiles, ts)
    # Every 37 minutes and 13.25 seconds from late February past the laid-out days' end:
    # the clock changes of New York (8 March) and Paris (29 March), Easter Monday in
    # France, and instants no day laid out holds.
    instants = np.arange(_seconds("2026-02-20"), _seconds("2026-12-31"), 2233.25)
    places = np.resize(np.arange(len(hours.places)), len(instants)).astype(np.int32)
    worded: list[str] = []
    for rule in (r for r in HOURS.rules if isinstance(r, HoursRule)):
        got = hours.local_all(rule, places, instants).to_list()
        want = [
            json.dumps(hours.local(rule, int(p), float(t)), ensure_ascii=False)[1:-1]
            for p, t in zip(places.tolist(), instants.tolist(), strict=True)
        ]
        assert got == want
        worded += got
    assert any("(Independence Day)" in w for w in worded)
    assert any("Europe/Paris (Easter Monday)" in w for w in worded)


def _seconds(day: str) -> float:
    """Seconds since the epoch at the start of `day`, UTC."""
    from datetime import UTC, datetime

    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def test_a_search_beyond_the_days_laid_out_goes_to_the_engine(log: LogBuilder) -> None:
    seldom = Policy.from_text(
        HOURS.text.replace("gap: 20h", "gap: 200d").replace("name: hours", "name: seldom"),
        "seldom.yaml",
    )
    log.profile("a", timezone="Europe/Paris", country="FR")
    log.contact("a", "2026-03-02T10:00:00Z", "call", "sales")
    log.contact("a", "2026-03-03T10:00:00Z", "call", "sales")  # 200 days on: not laid out
    log.profile("b", timezone="Europe/Paris", country="FR")
    log.contact("b", "2026-03-03T10:00:00Z", "call", "sales")
    got = assert_same(timeline_of(log), seldom, engine_folded=["a"])
    assert got.get_column("verdict").to_list() == ["allow", "defer", "allow"]


def test_courtesy_in_the_kernel(synthetic: pl.DataFrame) -> None:
    got = assert_same(synthetic, COURTESY)
    rules = set(";".join(got.get_column("rules").drop_nulls().to_list()).split(";"))
    assert {"chat-live-session", "chat-dwell", "calling-hours", "opt-out"} <= rules


def test_visits_for_chat_offers_and_greetings(log: LogBuilder) -> None:
    def visit(customer: str, sid: str | None, *events: tuple[str, str]) -> None:
        for at, kind in events:
            if sid is None:
                log.event(customer, f"2026-03-02T{at}Z", kind)
            else:
                log.event(customer, f"2026-03-02T{at}Z", kind, session_id=sid)

    def chat(customer: str, at: str, **fields: str) -> None:
        log.contact(customer, f"2026-03-02T{at}Z", "chat", "sales", **fields)

    # A visit by session id: too early, then after the dwell, a second offer, a greeting.
    visit("a", "s1", ("10:00:00", "session_started"), ("10:00:40", "page_viewed"))
    chat("a", "10:00:05")
    chat("a", "10:00:45")
    chat("a", "10:00:50")
    chat("a", "10:00:55", flags="greeting")
    chat("a", "10:00:58", flags="greeting")
    # Visits by inactivity: a help request lets an offer in at once; a dismissal; a visit
    # that timed out; a checkout open in the visit, then the order.
    visit("b", None, ("10:00:00", "page_viewed"), ("10:00:02", "help_requested"))
    chat("b", "10:00:03")
    visit("b", None, ("11:00:00", "page_viewed"), ("11:00:50", "chat_dismissed"))
    chat("b", "11:01:00")
    chat("b", "12:00:00")
    visit("b", None, ("13:00:00", "page_viewed"), ("13:00:40", "checkout_started"))
    chat("b", "13:01:00")
    visit("b", None, ("13:02:00", "order_completed"))
    chat("b", "13:03:00")
    # A visit that ended within 10 seconds; events at one instant, in the ledger's order;
    # two visits started at one instant without an id (the engine's).
    visit("c", "s9", ("10:00:00", "session_started"), ("10:00:05", "session_ended"))
    chat("c", "10:00:30")
    visit("d", None, ("10:00:00", "page_viewed"), ("10:00:00", "session_started"))
    chat("d", "10:01:00")
    visit("e", None, ("10:00:00", "session_started"), ("10:00:00", "session_started"))
    chat("e", "10:01:00")
    # Session ids given in a JSON `properties` column, the key escaped, the ids not ASCII
    # (the log keeps them escaped): a greeting in the second visit, then an offer too
    # early in it (the engine's current visit is the one started last).
    for at, sid in (("10:00:00", "\\u00e91"), ("10:00:20", "\\u00e92")):
        text = f'{{"session\\u005fid": "{sid}"}}'
        log.event("f", f"2026-03-02T{at}Z", "session_started", properties=text)
    log.event("f", "2026-03-02T10:00:40Z", "page_viewed", properties='{"session_id": "é1"}')
    chat("f", "10:00:45")
    chat("f", "10:00:25", flags="greeting")
    # A session id of null is none: two visits started at one instant, the engine's.
    for _ in range(2):
        log.event("g", "2026-03-02T10:00:00Z", "session_started", properties='{"session_id": null}')
    chat("g", "10:01:00")
    # One visit ends as another starts, logged in the other order: the ledger puts the
    # start first, each with its own session id.
    log.event("h", "2026-03-02T09:59:00Z", "session_started", session_id="h1")
    log.event("h", "2026-03-02T10:00:00Z", "session_ended", session_id="h1")
    log.event("h", "2026-03-02T10:00:00Z", "session_started", session_id="h2")
    chat("h", "10:00:05")
    got = assert_same(timeline_of(log), COURTESY, engine_folded=["e", "g"])
    rules = got.get_column("rules").to_list()
    assert rules[-1] == "chat-dwell"
    assert rules[:5] == [
        "chat-dwell",
        None,
        "chat-offer-once",
        None,
        "greeting-once",
    ]
    assert rules[5:11] == [
        None,
        "chat-dismissed",
        "chat-live-session",
        "chat-not-in-checkout",
        None,
        "chat-live-session;chat-short-visit",
    ]
    assert rules[13:15] == [None, "chat-dwell"]


def test_opt_outs_and_declines(log: LogBuilder) -> None:
    # Scoped and global opt-outs, a complaint, an opt-in that lifts one scope, then all.
    log.event("a", "2026-03-02T09:00:00Z", "unsubscribed", channel="email", purpose="marketing")
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing")
    log.contact("a", "2026-03-02T11:00:00Z", "email", "sales", offer="gold")
    log.event("a", "2026-03-02T12:00:00Z", "complained")
    log.event("a", "2026-03-02T12:30:00Z", "opted_out", purpose="sales")  # no channel: all
    log.contact("a", "2026-03-02T13:00:00Z", "email", "transactional")
    log.contact("a", "2026-03-02T13:30:00Z", "sms", "service")
    log.event("a", "2026-03-02T14:00:00Z", "subscribed", channel="email", purpose="marketing")
    log.contact("a", "2026-03-02T15:00:00Z", "email", "marketing")
    log.event("a", "2026-03-02T16:00:00Z", "opted_in")
    log.contact("a", "2026-03-02T17:00:00Z", "email", "marketing")
    # Unsubscribing through a contact; an opt-out and an opt-in at one instant (the opt-out
    # wins); an unsubscribe and a contact's at one instant (the engine's).
    log.contact("b", "2026-03-02T10:00:00Z", "email", "marketing", outcome="unsubscribed")
    log.contact("b", "2026-03-03T10:00:00Z", "email", "marketing")
    log.contact("b", "2026-03-03T11:00:00Z", "sms", "marketing")
    log.event("c", "2026-03-02T09:00:00Z", "opted_out")
    log.event("c", "2026-03-02T09:00:00Z", "opted_in")
    log.contact("c", "2026-03-02T10:00:00Z", "email", "marketing")
    log.event("e", "2026-03-02T10:00:00Z", "unsubscribed", channel="sms")
    log.contact("e", "2026-03-02T10:00:00Z", "email", "marketing", outcome="unsubscribed")
    log.contact("e", "2026-03-02T11:00:00Z", "email", "marketing")
    # Declines: of an offer, by event and by outcome, and a "not interested" in general.
    log.event("d", "2026-03-02T09:00:00Z", "offer_declined", offer="gold")
    log.contact("d", "2026-03-03T10:00:00Z", "email", "sales", offer="gold")
    log.contact("d", "2026-03-03T11:00:00Z", "email", "sales", offer="silver")
    log.contact("d", "2026-03-04T10:00:00Z", "email", "sales", offer="silver", outcome="declined")
    log.contact("d", "2026-03-05T10:00:00Z", "email", "sales", offer="silver")
    log.event("d", "2026-03-06T09:00:00Z", "not_interested")
    log.contact("d", "2026-03-07T10:00:00Z", "call", "sales", offer="bronze")
    got = assert_same(timeline_of(log), COURTESY, engine_folded=["e"])
    rules = got.get_column("rules").to_list()
    reasons = got.get_column("reasons").to_list()
    assert rules[:6] == ["opt-out", None, None, "opt-out", "opt-out", None]
    assert "unsubscribed from marketing email" in reasons[0]
    assert "opted out from all contact" in reasons[3]
    assert rules[6:10] == [None, "opt-out", None, "opt-out"]
    assert rules[10:15] == [
        "declined-offer",
        None,
        None,
        "declined-offer;sales-email-cap",
        "declined-offer;declined-no-calls",
    ]
    assert "declined gold on 2026-03-02" in reasons[10]
    assert "declined our offer on 2026-03-06" in reasons[14]


def test_an_event_id_seen_before_is_not_folded_again(log: LogBuilder) -> None:
    log.event("a", "2026-03-02T10:00:00Z", "page_viewed", event_id="x")
    log.event("a", "2026-03-02T11:00:00Z", "page_viewed", event_id="x")  # a repeat: ignored
    log.contact("a", "2026-03-02T11:10:00Z", "email", "marketing")
    log.event("b", "2026-03-02T11:00:00Z", "page_viewed", event_id="y")
    log.contact("b", "2026-03-02T11:10:00Z", "email", "marketing")
    got = assert_same(timeline_of(log), COURTESY, engine_folded=[])
    assert got.get_column("verdict").to_list() == ["allow", "defer"]


def timeline_of(log: LogBuilder) -> pl.DataFrame:
    contacts, events, customers = log.write()
    return load_log(contacts, events, customers=customers, strict=True).timeline


def test_contacts_at_one_instant_enter_the_ledger_in_the_engines_order(log: LogBuilder) -> None:
    # Rows 1..12 at one instant: the ledger orders them by id as text (row:10 before
    # row:2), which decides the order pressure adds their weights in.
    for i in range(12):
        channel = ("call", "sms", "email")[i % 3]
        log.contact("a", "2026-03-02T10:00:00Z", channel, "marketing", outcome="no_answer")
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing")
    log.contact("a", "2026-03-03T09:00:00Z", "email", "sales")
    got = assert_same(timeline_of(log), CORNERS)
    assert "pressure" in got.get_column("rules").drop_nulls().to_list()[-1]


def test_a_request_waives_the_rules_that_yield_to_it(log: LogBuilder) -> None:
    log.contact("b", "2026-03-02T10:00:00Z", "call", "sales", outcome="answered")
    # Asked for, but the customer has not asked (yet): held back by the gap.
    log.contact("b", "2026-03-02T11:00:00Z", "call", "sales", trigger="callback_requested")
    log.event("b", "2026-03-02T11:30:00Z", "callback_requested")
    log.contact("b", "2026-03-02T12:00:00Z", "call", "sales", trigger="callback_requested")
    log.contact("b", "2026-03-02T13:00:00Z", "call", "sales")
    got = assert_same(timeline_of(log), CORNERS)
    assert got.get_column("verdict").to_list() == ["allow", "defer", "allow", "defer"]


def test_a_search_past_the_horizon_denies(log: LogBuilder) -> None:
    for day in (2, 3, 4, 5):
        log.contact("c", f"2026-03-0{day}T10:00:00Z", "call", "sales", outcome="voicemail")
    log.contact("c", "2026-03-05T11:00:00Z", "call", "sales")
    got = assert_same(timeline_of(log), CORNERS)
    assert "horizon" in (got.get_column("rules").to_list()[-1] or "")


def test_workers_get_only_the_columns_a_self_contained_policy_reads(
    synthetic: pl.DataFrame, log: LogBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert native.self_contained(FREQUENCY) and not native.self_contained(COURTESY)
    assert "properties" not in native.columns_for([FREQUENCY])
    assert "properties" in native.columns_for([FREQUENCY, COURTESY])
    # Events at one instant, which a policy reading visits would put in the ledger's order.
    log.event("a", "2026-03-02T10:00:00Z", "page_viewed", session_id="s")
    log.event("a", "2026-03-02T10:00:00Z", "session_started", session_id="s")
    log.contact("a", "2026-03-02T10:30:00Z", "email", "marketing")
    for timeline in (synthetic, timeline_of(log)):
        got = replay_local(timeline, [FREQUENCY], workers=1, chunk_rows=3000)
        with monkeypatch.context() as engine:
            engine.setenv(native.NATIVE_ENV, "0")
            assert got[0].equals(replay_local(timeline, [FREQUENCY], workers=1)[0])


def test_snoozes_at_one_instant_fold_in_the_ledgers_order(log: LogBuilder) -> None:
    # The ledger orders the two by their properties ("1d" before "5d"): the last, 5 days,
    # stands, whatever order the log gives them in.
    snooze = Policy.from_text(
        'name: snooze\nversion: "1"\nrules:\n  - {id: snooze, kind: snooze, message: "Snoozed."}',
        "snooze.yaml",
    )
    assert not native.self_contained(snooze)
    log.event("a", "2026-03-02T09:00:00Z", "snooze_requested", duration="5d")
    log.event("a", "2026-03-02T09:00:00Z", "snooze_requested", duration="1d")
    log.contact("a", "2026-03-04T10:00:00Z", "email", "marketing")
    got = assert_same(timeline_of(log), snooze, engine_folded=[])
    assert got.get_column("verdict").to_list() == ["defer"]


REGIONAL = Policy.from_text(
    """
name: regional
version: "1"
rules:
  - id: ca-hours
    kind: hours
    scope: {channels: [call], regions: [CA]}
    schedule: {mon-fri: "09:00-21:30", sat-sun: "10:00-18:00"}
    holidays: false
    message: "CA: calls in the day ({local})."
  - id: ca-dnc
    kind: consent
    scope: {channels: [call], regions: [CA]}
    message: "CA: no calls after a do-not-call request ({scope})."
  - id: fl-cap
    kind: cap
    scope: {channels: [call], regions: [US-FL]}
    count: 1
    window: 1d
    message: "Florida: one call a day."
  - id: us-gap
    kind: gap
    scope: {channels: [sms], regions: [US]}
    gap: 6h
    message: "US: texts 6 hours apart."
  - id: text-flag
    kind: hours
    scope: {channels: [sms], regions: [US-NY]}
    schedule: {daily: "08:00-21:00"}
    holidays: false
    mode: flag
    message: "A New York text outside 08:00-21:00 ({local})."
""",
    "regional.yaml",
)


def test_rules_limited_to_regions_bind_where_the_customer_may_be(log: LogBuilder) -> None:
    # By profile (country, subdivision), by phone number alone, by nothing at all (every
    # regional rule binds), and where none binds.
    log.profile("on", timezone="America/Toronto", country="CA", subdivision="ON")
    log.profile("fl", timezone="America/New_York", country="US", subdivision="FL")
    log.profile("ny-phone", phones="+12125550123")
    log.profile("toronto-phone", phones="+14165550123")
    log.profile("fr", timezone="Europe/Paris", country="FR")
    for who in ("on", "fl", "ny-phone", "toronto-phone", "fr", "nowhere"):
        log.contact(who, "2026-03-02T03:00:00Z", "call", "sales")  # night in the Americas
        log.contact(who, "2026-03-02T15:00:00Z", "call", "sales")
        log.contact(who, "2026-03-02T18:00:00Z", "call", "sales")
        log.contact(who, "2026-03-02T15:00:00Z", "sms", "marketing")
        log.contact(who, "2026-03-02T17:00:00Z", "sms", "marketing")
        log.contact(who, "2026-03-03T02:30:00Z", "sms", "marketing")
        log.event(who, "2026-03-04T12:00:00Z", "opted_out", channel="call")
        log.contact(who, "2026-03-04T15:00:00Z", "call", "sales")
    got = assert_same(timeline_of(log), REGIONAL, engine_folded=[])
    fired = {
        who: set(";".join(r for r in got.filter(pl.col("customer_id") == who)
                           .get_column("rules").drop_nulls().to_list()).split(";")) - {""}
        for who in ("on", "fl", "ny-phone", "toronto-phone", "fr", "nowhere")
    }  # fmt: skip
    assert fired["on"] == fired["toronto-phone"] == {"ca-hours", "ca-dnc"}
    assert fired["fl"] == {"fl-cap", "us-gap"}
    assert fired["ny-phone"] == {"us-gap"}
    assert fired["fr"] == set()
    assert {"ca-hours", "ca-dnc", "fl-cap", "us-gap"} <= fired["nowhere"]
    flags = got.group_by("customer_id").agg(pl.col("flags").drop_nulls().str.join(";"))
    flagged = {c for c, f in flags.iter_rows() if "text-flag" in f}
    assert flagged == {"ny-phone", "nowhere"}


def test_a_reply_that_says_stop_revokes_consent_until_an_opt_in(log: LogBuilder) -> None:
    # us-tcpa in the kernel: its revocation (a reply's keywords and phrases), its calling
    # window and do-not-call rules limited to the US.
    for who in ("ny", "ca", "fr"):
        zone = {"ny": "America/New_York", "ca": "America/Los_Angeles", "fr": "Europe/Paris"}
        country = "FR" if who == "fr" else "US"
        log.profile(who, timezone=zone[who], country=country, subdivision=who.upper())
        log.contact(who, "2026-03-02T16:00:00Z", "call", "sales")
        log.event(who, "2026-03-02T17:00:00Z", "contact_replied", text="Stop!")
        log.contact(who, "2026-03-02T18:00:00Z", "sms", "marketing")
        log.contact(who, "2026-03-02T18:00:00Z", "email", "marketing")  # not in scope
        log.contact(who, "2026-03-02T18:05:00Z", "sms", "service", flags="optout_confirmation")
        log.event(who, "2026-03-03T15:00:00Z", "opted_in", channel="email")  # lifts nothing
        log.contact(who, "2026-03-03T16:00:00Z", "call", "sales")
        log.event(who, "2026-03-04T15:00:00Z", "opted_in", channel="sms")  # lifts it
        log.contact(who, "2026-03-04T16:00:00Z", "call", "sales")
        log.event(who, "2026-03-05T15:00:00Z", "contact_replied", text="Thanks, talk soon")
        long = "Hello there, I would like you to please remove me from all of your lists"
        log.event(who, "2026-03-05T16:00:00Z", "contact_replied", text=long)
        log.contact(who, "2026-03-05T16:00:00Z", "sms", "marketing")  # at the reply's instant
        log.event(who, "2026-03-06T15:00:00Z", "subscribed")  # no channel: lifts it
        log.contact(who, "2026-03-06T16:00:00Z", "sms", "marketing")
        log.contact(who, "2026-03-07T04:00:00Z", "call", "sales")  # night in the US
    tcpa = Policy.load("us-tcpa")
    got = assert_same(timeline_of(log), tcpa, engine_folded=[])
    reasons = got.get_column("reasons").to_list()
    said = [r for r in reasons if r and "revoked consent" in r]
    assert any('replying \\"Stop!\\" on 2026-03-02' in r for r in said)
    assert any("remove me from all of..." not in r and "..." in r for r in said)
    by = got.group_by("customer_id").agg(pl.col("rules").drop_nulls().str.join(";"))
    fired = dict(by.iter_rows())
    assert "us-tcpa.revocation" in fired["ny"] and "us-tcpa.revocation" in fired["ca"]
    assert "us-tcpa.revocation" not in fired["fr"]
    assert "us-tcpa.calling-window" in fired["ny"]


HOLIDAYS = Policy.from_text(
    """
name: holidays
version: "1"
rules:
  - id: us-federal
    kind: holiday
    scope: {channels: [call]}
    country: US
    observed: false
    message: "No calls on {holiday} ({local})."
  - id: de-state
    kind: holiday
    scope: {channels: [sms]}
    country: DE
    subdivisions: customer
    names: [Epiphany, Corpus Christi]
    message: "No texts on {holiday} ({local})."
  - id: call-gap
    kind: gap
    scope: {channels: [call]}
    gap: 20h
    message: "Calls 20 hours apart."
""",
    "holidays.yaml",
)


def test_holidays_close_the_law_s_calendar_in_every_zone_the_customer_may_be_in(
    log: LogBuilder,
) -> None:
    # Australia's national holidays (one on a Sunday, its substitute Monday), a number
    # that rings in several Australian zones; US federal holidays (not observed: the
    # Friday before a Saturday's stays open), a gap pushed onto a holiday; a German state's.
    log.profile("syd", timezone="Australia/Sydney", country="AU", subdivision="NSW")
    log.profile("mobile", phones="+61412345678")
    log.profile("ny", timezone="America/New_York", country="US", subdivision="NY")
    log.profile("by", timezone="Europe/Berlin", country="DE", subdivision="BY")
    log.profile("be", timezone="Europe/Berlin", country="DE", subdivision="DE-BE")
    for who in ("syd", "mobile"):
        log.contact(who, "2026-01-25T23:30:00Z", "call", "sales")  # Australia Day morning
        log.contact(who, "2026-04-24T23:30:00Z", "call", "sales")  # ANZAC Day
        log.contact(who, "2026-12-24T22:00:00Z", "call", "sales")  # Christmas, Boxing Day
        log.contact(who, "2027-01-25T23:00:00Z", "call", "sales")
    log.contact("ny", "2026-07-03T15:00:00Z", "call", "sales")  # the Friday before the 4th
    log.contact("ny", "2026-07-04T15:00:00Z", "call", "sales")
    log.contact("ny", "2026-12-24T18:00:00Z", "call", "sales")  # the gap lands on Christmas
    log.contact("ny", "2026-12-25T10:00:00Z", "call", "sales")
    for who in ("by", "be"):
        log.contact(who, "2026-01-06T09:00:00Z", "sms", "marketing")
        log.contact(who, "2026-06-04T09:00:00Z", "sms", "marketing")
    for policy in (Policy.load("au-telemarketing"), HOLIDAYS):
        got = assert_same(timeline_of(log), policy, engine_folded=[])
        reasons = "".join(r for r in got.get_column("reasons").to_list() if r)
        if policy is HOLIDAYS:
            assert "Independence Day" in reasons and "Christmas Day" in reasons
            assert "Epiphany" in reasons and "Corpus Christi" in reasons
        else:
            assert "Australia Day" in reasons and "ANZAC Day" in reasons
            assert "Christmas Day" in reasons


def _regional(policy: Policy) -> Policy:
    """`policy` with two of every three rules limited to regions, in turn the US, France
    and Germany, a few US states and Great Britain, Australia."""
    lines = policy.text.split("\n")
    regions = ["[US]", "[FR, DE]", "[US-CA, US-NY, GB]", "[AU]"]
    k = 0
    for i, line in enumerate(lines):
        m = re.fullmatch(r"(\s+scope: \{)(.*)\}", line)
        if m and i % 3:
            lines[i] = f"{m.group(1)}{m.group(2)}, regions: {regions[k % len(regions)]}}}"
            k += 1
    text = "\n".join(lines).replace(f"name: {policy.name}", f"name: {policy.name}-regional")
    return Policy.from_text(text, "regional.yaml")


def test_synthetic_logs_with_rules_limited_to_regions_get_the_engines_verdicts(
    synthetic: pl.DataFrame,
) -> None:
    regional = _regional(COURTESY)
    assert sum(1 for r in regional.rules if r.scope.regions) >= 15
    got = assert_same(synthetic, regional)
    # The regions decide: some verdicts differ from courtesy's own.
    plain = native.fold_frame(synthetic, COURTESY).get_column("verdict")
    assert (got.get_column("verdict") != plain).sum() > 100


def test_frequency_counts_per_tag_strictly_and_exempts_requests(log: LogBuilder) -> None:
    # Florida's three a day per subject: a contact without a subject counts against every
    # subject, one on another subject does not; a call-back the customer asked for is
    # exempt; email is out of scope; Texas is not bound. A subject that is not text goes
    # to the engine (a log's file could not hold it: a bad row).
    for who, state in (("fl", "FL"), ("tx", "TX"), ("num", "FL")):
        log.profile(who, timezone="America/New_York", country="US", subdivision=state)
    loans, cards = '{"subject": "loans"}', '{"subject": "cards"}'
    for who in ("fl", "tx"):
        log.contact(who, "2026-03-02T14:00:00Z", "call", "sales", tags=loans)
        log.contact(who, "2026-03-02T14:30:00Z", "sms", "marketing", tags=loans)
        log.contact(who, "2026-03-02T15:00:00Z", "call", "sales", tags=cards)
        log.contact(who, "2026-03-02T15:30:00Z", "call", "sales")  # 3 on any: deferred
        log.contact(who, "2026-03-02T16:00:00Z", "call", "sales", tags=loans)
        log.contact(who, "2026-03-02T16:30:00Z", "call", "sales", tags=cards)
        log.contact(who, "2026-03-02T17:00:00Z", "call", "sales")  # 5 on any
        log.contact(who, "2026-03-02T17:15:00Z", "sms", "sales", tags=cards)
        log.contact(who, "2026-03-02T17:30:00Z", "sms", "sales", tags='{"subject": ""}')
        log.event(who, "2026-03-02T17:40:00Z", "callback_requested")
        # 3 on cards, but asked for: exempt, and not counted.
        log.contact(who, "2026-03-02T17:45:00Z", "call", "sales", tags=cards,
                    trigger="callback_requested")  # fmt: skip
        log.contact(who, "2026-03-02T17:50:00Z", "call", "sales", tags=loans)  # 3 on loans
        log.contact(who, "2026-03-02T18:00:00Z", "email", "marketing", tags=loans, offer="a")
        log.contact(who, "2026-03-02T18:10:00Z", "email", "marketing", offer="a")
        log.contact(who, "2026-03-02T18:20:00Z", "email", "marketing", offer="b")
        log.contact(who, "2026-03-02T18:30:00Z", "email", "marketing", offer="a")
        for at, tags in [("10", loans), ("11", loans), ("12", loans), ("13", cards), ("14", None)]:
            log.contact(who, f"2026-03-05T{at}:00:00Z", "push", "marketing", offer="a",
                        **({"tags": tags} if tags else {}))  # fmt: skip
        log.contact(who, "2026-03-02T19:00:00Z", "sms", "sales", tags=loans)
        log.contact(who, "2026-03-02T19:10:00Z", "sms", "sales", tags=cards)
        log.contact(who, "2026-03-03T14:05:00Z", "call", "sales", tags=loans)
    log.contact("num", "2026-03-02T14:00:00Z", "call", "sales", tags='{"subject": "7"}')
    timeline = timeline_of(log)
    number = pl.col("tags") == '{"subject": "7"}'
    timeline = timeline.with_columns(
        tags=pl.when(number).then(pl.lit('{"subject": 7}')).otherwise(pl.col("tags"))
    )
    fired = {}
    for policy in (Policy.load("us-fl-ftsa"), COUNTED):
        got = assert_same(timeline, policy, engine_folded=["num"])
        fired[policy.name] = got.filter(pl.col("rules").is_not_null())
    florida = fired["us-fl-ftsa"].filter(pl.col("rules") == "us-fl-ftsa.three-per-day")
    assert florida.get_column("customer_id").unique().to_list() == ["fl"]
    said = florida.get_column("reasons").to_list()
    assert any("same subject (loans); 3 already" in r for r in said)
    assert any("same subject (any); 5 already" in r for r in said)
    assert set(florida.get_column("verdict").to_list()) == {"defer"}
    asked = fired["us-fl-ftsa"].filter(pl.col("trigger") == "callback_requested")
    assert asked.height == 0  # exempt
    counted = fired["counted"]
    held = {r for rules in counted.get_column("rules").to_list() for r in rules.split(";")}
    assert held == {"offer-emails", "calls", "texts", "push-keys"}
    pushes = got.filter((pl.col("channel") == "push") & (pl.col("customer_id") == "fl"))
    assert pushes.get_column("verdict").to_list() == ["allow", "allow", "defer", "allow", "defer"]
    said = "".join(counted.get_column("reasons").to_list())
    assert "per offer and subject (a, loans) in 3 days; 2 already" in said
    assert "per offer and subject (a) in 3 days; 3 already" in said
    assert "deny" in counted.filter(pl.col("rules") == "calls").get_column("verdict").to_list()


def test_calendar_days_silences_and_consent_windows(log: LogBuilder) -> None:
    # Reg F: seven calls per debt in seven local days (a bounced one not counted, one
    # about no debt counted against every debt), a conversation's seven days of silence
    # about its debt (an answered call, or an event about a call; not one about a text),
    # requests that exempt within seven days of them (a call that names its request's
    # instant is then not counted either). France: four calls in 30 calendar days, and
    # 60 full days of silence after a refusal.
    log.profile("ny", timezone="America/New_York", country="US", subdivision="NY")
    log.profile("fr", timezone="Europe/Paris", country="FR")
    a1, b2, c3 = (json.dumps({"account": a}) for a in ("A1", "B2", "C3"))
    day = "2026-03-0{}T{}:00:00Z".format
    for d, hour, outcome in [(2, 14, "no_answer"), (2, 15, "no_answer"), (2, 16, "no_answer"),
                             (3, 14, "no_answer"), (3, 15, "no_answer"), (3, 16, "bounced"),
                             (4, 14, "no_answer"), (4, 15, "no_answer")]:  # fmt: skip
        log.contact("ny", day(d, hour), "call", "collections", tags=a1, outcome=outcome)
    log.contact("ny", day(4, 16), "call", "collections", tags=a1)  # the eighth: deferred
    log.contact("ny", day(4, 17), "call", "collections", tags=b2, outcome="answered")
    log.contact("ny", day(4, 18), "call", "collections")  # any debt: 8 counted
    log.event("ny", day(4, 19), "contact_answered", channel="call", account="C3")
    log.event("ny", day(4, 19), "contact_answered", channel="sms", account="A1")
    log.contact("ny", day(5, 14), "call", "collections", tags=b2)  # silent about B2
    log.contact("ny", day(5, 15), "call", "collections", tags=c3)  # and C3
    log.event("ny", day(5, 16), "callback_requested")
    log.contact("ny", day(5, 17), "call", "collections", tags=a1, trigger="callback_requested",
                trigger_at=day(5, 16))  # fmt: skip
    log.contact("ny", day(5, 18), "call", "collections", tags=b2, trigger="callback_requested")
    log.contact("ny", day(6, 14), "call", "collections", tags=a1)
    log.contact("ny", "2026-03-16T14:00:00Z", "call", "collections", tags=b2,
                trigger="callback_requested")  # fmt: skip
    for d in range(2, 8):
        outcome = "declined" if d == 5 else "no_answer"
        log.contact("fr", day(d, 10), "call", "sales", outcome=outcome)
    log.event("fr", "2026-03-09T10:00:00Z", "not_interested")
    log.contact("fr", "2026-03-09T11:00:00Z", "call", "sales")
    log.contact("fr", "2026-05-07T09:00:00Z", "call", "sales")
    log.contact("fr", "2026-05-11T09:00:00Z", "call", "sales")
    timeline = timeline_of(log)
    fired: dict[str, set[str]] = {}
    for name in ("us-reg-f", "fr-demarchage"):
        got = assert_same(timeline, Policy.load(name), engine_folded=[])
        rules = got.get_column("rules").drop_nulls().to_list()
        fired[name] = {r for held in rules for r in held.split(";")}
        reasons = "".join(r for r in got.get_column("reasons").to_list() if r)
        if name == "us-reg-f":
            assert "7 calls about debt A1" in reasons and "8 calls about debt any" in reasons
            assert "debt B2 on 2026-03-04" in reasons and "debt C3 on 2026-03-04" in reasons
        else:
            assert "refused the sales call on 2026-03-05" in reasons
    assert {"us-reg-f.seven-in-seven", "us-reg-f.after-conversation"} <= fired["us-reg-f"]
    assert {"fr-demarchage.four-per-30-days", "fr-demarchage.refusal-60-days"} <= fired[
        "fr-demarchage"
    ]


def test_caps_per_calendar_period_in_the_customer_s_first_zone(log: LogBuilder) -> None:
    # One instant, two local calendars: New York's (a month's last evening, a Sunday
    # night, a day with a clock change) and Auckland's (already the next month, a Monday).
    log.profile("ny", timezone="America/New_York", country="US")
    log.profile("akl", timezone="Pacific/Auckland", country="NZ")
    for who in ("ny", "akl"):
        for day in ("2026-01-24", "2026-01-26", "2026-01-28"):
            log.contact(who, f"{day}T15:00:00Z", "sms", "sales")
        log.contact(who, "2026-02-01T03:00:00Z", "email", "sales", offer="a")
        log.contact(who, "2026-03-08T05:30:00Z", "call", "service")  # 00:30 EST
        log.contact(who, "2026-03-09T03:30:00Z", "call", "service")  # 23:30 EDT, same day
        for at in ("2026-03-13T15:00:00Z", "2026-03-14T15:00:00Z", "2026-03-16T03:00:00Z"):
            log.contact(who, at, "email", "marketing", offer="b")
        log.contact(who, "2026-03-16T03:00:00Z", "email", "marketing", offer="c")
    got = assert_same(timeline_of(log), PERIODS, engine_folded=[])
    fired = got.filter(pl.col("rules").is_not_null())
    by = {(c, r): v for c, r, v in fired.select("customer_id", "rules", "verdict").iter_rows()}
    assert by[("ny", "sales-month")] == "deny"  # still January in New York
    assert by[("ny", "call-day")] == "defer" and by[("ny", "email-week")] == "defer"
    assert ("akl", "sales-month") not in by and ("akl", "email-week") not in by
    nb = fired.filter((pl.col("customer_id") == "ny") & (pl.col("rules") == "call-day"))
    assert nb.get_column("not_before_us").to_list() == [to_us(datetime(2026, 3, 9, 4, tzinfo=UTC))]


@settings(deadline=None)  # the first example compiles `month_of`, or loads it
@given(st.integers(min_value=1, max_value=date.max.toordinal()))
@example(date(2024, 2, 29).toordinal())
@example(date(2100, 2, 28).toordinal())
def test_a_day_s_place_in_its_month_is_the_calendar_s(ordinal: int) -> None:
    day = date.fromordinal(ordinal)
    length = calendar.monthrange(day.year, day.month)[1]
    assert kernel.month_of(ordinal) == (day.day, length)


def test_caps_and_gaps_keyed_by_tags(log: LogBuilder) -> None:
    log.profile("a", timezone="Europe/London", country="GB")
    tag = '{{"account": "{}"}}'.format
    for at, account in [("09", "A1"), ("10", "A1"), ("11", "A1"), ("12", "B2"), ("13", None)]:
        fields = {"tags": tag(account)} if account else {}
        log.contact("a", f"2026-03-02T{at}:00:00Z", "call", "collections", **fields)
    log.contact("a", "2026-03-02T14:00:00Z", "call", "collections")  # its own key: 2nd
    log.contact("a", "2026-03-02T15:00:00Z", "call", "collections")  # 3rd without one
    for at, offer, account in [("09", "x", "A1"), ("10", "x", "B2"), ("11", "y", "A1"),
                               ("12", "x", "A1")]:  # fmt: skip
        log.contact("a", f"2026-03-03T{at}:00:00Z", "email", "marketing", offer=offer,
                    tags=tag(account))  # fmt: skip
    both = '{"account": "A1", "subject": "s"}'
    for at, tags in [("09", both), ("10", tag("A1")), ("11", both), ("20", both)]:
        log.contact("a", f"2026-03-04T{at}:00:00Z", "sms", "marketing", tags=tags)
    got = assert_same(timeline_of(log), TAGGED, engine_folded=[])
    fired = got.filter(pl.col("rules").is_not_null())
    assert fired.get_column("rules").to_list() == [
        "account-calls",
        "account-calls",
        "offer-account-emails",
        "account-texts",
    ]
    assert got.filter(pl.col("rules").is_null()).height == got.height - 4


def test_what_the_kernel_does_not_cover_is_named() -> None:
    assert native.unsupported(Policy.load("courtesy")) == []
    assert native.unsupported(Policy.load("ca-crtc")) == []
    assert native.unsupported(Policy.load("us-tcpa")) == []
    for name in ("us-fl-ftsa", "us-md", "us-ok"):
        assert native.unsupported(Policy.load(name)) == []
    for name in ("us-reg-f", "fr-demarchage", "au-telemarketing"):
        assert native.unsupported(Policy.load(name)) == []
    for policy in (TAGGED, OPT_IN, PERIODS, COUNTED):
        assert native.unsupported(policy) == []


def test_the_local_engine_folds_each_policy_its_own_way(
    synthetic: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = [Policy.load("us-tcpa"), FREQUENCY, COURTESY]
    both = replay_local(synthetic, policies, workers=1, chunk_rows=3000)
    monkeypatch.setenv(native.NATIVE_ENV, "0")
    assert not native.enabled(FREQUENCY)
    engine = replay_local(synthetic, policies, workers=1, chunk_rows=3000)
    # Few-valued text (channels, purposes, verdicts) comes back as text, either way.
    text = pl.Schema({k: v for k, v in VERDICT_SCHEMA.items() if k != "run"})
    for a, b in zip(both, engine, strict=True):
        assert a.equals(b)
        assert a.schema == b.schema == text
    assert replay_local(synthetic, [COURTESY], workers=1)[0].schema == text
    assert local.fold_frame(synthetic.slice(0, 0), policies).height == 0


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**9), st.integers(1, 10**9))
def test_contact_ids_sort_as_the_ledger_sorts_them(a: int, b: int) -> None:
    assert kernel.id_before(a, b) == (f"row:{a}" < f"row:{b}")


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.floats(0, 2.0**33, allow_nan=False),
        st.integers(0, 2**33).map(lambda s: s + 0.5e-6),
        st.integers(0, 2**33 * 10**6).map(lambda us: us / 1e6),
    )
)
def test_instants_round_to_microseconds_as_datetimes_do(u: float) -> None:
    assert kernel.micros(u) == to_us(from_ts(u))
    assert kernel.on_grid(u) == engine._on_grid(u)


@pytest.mark.parametrize("dtype", [pl.Categorical, pl.String])
def test_a_columns_values_are_read_once_per_distinct_value(dtype: pl.DataType) -> None:
    from tactful.replay.native import _Distinct

    values = _Distinct(pl.Series(["b", None, "a", "b"], dtype=dtype))
    assert [values.names[i] if i >= 0 else None for i in values.index] == ["b", None, "a", "b"]
    assert values.among({"b"}).tolist() == [True, False, False, True]
    assert values.mapped(lambda v: 7 if v == "a" else 1, -5).tolist() == [1, -5, 7, 1]
    empty = _Distinct(pl.Series([None, None], dtype=dtype))
    assert (empty.names, empty.index.tolist(), empty.among({"b"}).tolist()) == (
        [],
        [-1, -1],
        [False, False],
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=-10, max_value=2e6)
        | st.integers(0, 10**6).map(lambda n: n / 20)  # every half of a tenth, ties
        | st.sampled_from([0.35, 0.05, 2.45, 1e300, float("inf"), float("nan"), -0.0]),
        max_size=50,
    )
)
def test_pressures_are_shown_to_a_tenth_as_python_formats_them(values: list[float]) -> None:
    got = native.tenths(np.array(values, dtype=np.float64)).to_list()
    assert got == [f"{v:.1f}" for v in values]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([["a", "bb", "", "é;"], [f"rule-{k}" for k in range(40)]]).flatmap(
        lambda names: st.tuples(
            st.just(names),
            # Lists of up to 15 of 40 names, many of them long.
            st.lists(st.lists(st.integers(0, len(names) - 1), max_size=15), max_size=30),
        )
    )
)
# Two long lists that differ only in their first two names' order.
@example(([f"rule-{k}" for k in range(40)], [[1, 2] + [0] * 11, [2, 1] + [0] * 11]))
def test_lists_join_each_contacts_values(case: tuple[list[str], list[list[int]]]) -> None:
    names, lists = case
    offsets = np.cumsum([0] + [len(x) for x in lists]).astype(np.int64)
    codes = np.array([c for x in lists for c in x], dtype=np.int32)
    got = native._lists(offsets, codes, names, ";")
    assert got.dtype == pl.Categorical
    assert got.to_list() == [";".join(names[c] for c in x) if x else None for x in lists]


def test_lists_of_no_names_are_all_empty() -> None:
    # A policy without rules flags nothing: no names, every list empty.
    got = native._lists(np.zeros(4, dtype=np.int64), np.zeros(0, dtype=np.int32), [], ";")
    assert got.to_list() == [None] * 3


def test_visits_started_at_one_instant_fold_in_the_ledgers_order(log: LogBuilder) -> None:
    # Two visits started at one instant, logged "v2" first: the ledger orders them by their
    # properties (the session id alone, which the timeline holds without JSON), so "v2" is
    # the visit started last, the engine's current one; "v1" ending leaves it live.
    log.event("a", "2026-03-02T10:00:00Z", "session_started", session_id="v2")
    log.event("a", "2026-03-02T10:00:00Z", "session_started", session_id="v1")
    log.event("a", "2026-03-02T10:00:20Z", "session_ended", session_id="v1")
    log.contact("a", "2026-03-02T10:00:45Z", "chat", "sales")
    timeline = timeline_of(log)
    assert timeline.get_column("properties").to_list() == [None] * 4
    got = assert_same(timeline, COURTESY, engine_folded=[])
    assert got.get_column("verdict").to_list() == ["allow"]


def test_coded_slices_hand_the_kernel_what_a_timeline_does(
    synthetic: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrays of other types (read-only ones, say) would have numba compile the kernel a
    # second time (~10 s) in every replay whose cache holds only the other's.
    import numba

    seen: list[tuple[object, ...]] = []
    fold = kernel.fold

    def recorded(*args: object) -> None:
        seen.append(tuple(numba.typeof(a) for a in args))
        fold(*args)

    monkeypatch.setattr(kernel, "fold", recorded)
    native.fold_frame(synthetic, COURTESY)
    coded_fold(synthetic, COURTESY, chunk_rows=10**6)
    # And a log as small as `native.warm` folds (each column taken without a copy, where
    # a larger one's are copied): no array read-only.
    with tempfile.TemporaryDirectory() as folder:
        files = write_log(folder, customers=3, seed=1)
        small = load_log(files.contacts, files.events, customers=files.customers)
        replay_local(small.source, [COURTESY], workers=1)
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2]
    flat = [t for types in seen for t in types for t in (t.types if hasattr(t, "types") else [t])]
    assert not [t for t in flat if isinstance(t, numba.types.Array) and not t.mutable]


def test_a_categorical_of_its_own_is_numbered_by_its_codes() -> None:
    # A content's text is made a categorical of its own categories (not the global ones,
    # which `== pl.Categorical` alone matches): numbered by its codes, not joined back.
    column = pl.Series(["b", None, "a", "b"]).cast(pl.Categorical(pl.Categories.random()))
    numbered = native._numbered(column)
    assert numbered is not None
    places, used = numbered
    assert places.tolist() == [0, 2, 1, 0]  # null after every value
    assert used.tolist() == [0, 1]
    assert native._numbered(pl.Series([True, None, False])) is not None
    assert native._numbered(pl.Series(["a", "b"])) is None  # text: not numbered here


@pytest.mark.parametrize("tallied", [True, False], ids=["tallied", "joined"])
def test_shapes_are_numbered_alike_by_their_codes_or_joined(
    synthetic: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, tallied: bool
) -> None:
    """`_coded` numbers each row's values (categorical codes as digits of one number, or,
    with codes too many to tally, the distinct values joined back): the same rows share a
    code, each code's values are its rows', and rows left out get -1."""
    if not tallied:  # every column's codes too many (`io.tallied_codes`)
        monkeypatch.setattr("tactful.replay.io.TALLIED", 0)
    contact = pl.col("is_contact")
    shown = synthetic.filter(contact).select(native.SHAPE_COLUMNS).to_dicts()
    code, distinct = native._coded(synthetic, native.SHAPE_COLUMNS, contact)
    is_contact = synthetic.get_column("is_contact").to_numpy()
    assert (code[~is_contact] == -1).all()
    assert [distinct[c] for c in code[is_contact]] == shown
    assert len(distinct) == len({tuple(d.values()) for d in shown})


def test_a_replay_imports_no_pandas_nor_geodata(tmp_path: Path) -> None:
    """Nothing in reading, folding or writing a replay imports pandas (pyarrow's
    `pa.array` of a numpy array did, the first time: ~0.2 s in the fold's first slices,
    holding the interpreter's lock while both fold threads waited), nor, for a policy
    that names no regions, phonenumbers' geocoder (~0.4 s of loading its data, on the
    fold's path, where both cores waited)."""
    import subprocess
    import sys

    files = write_log(tmp_path / "log", customers=40, seed=2)
    script = (
        "import sys\n"
        "from tactful.policy.document import Policy\n"
        "from tactful.replay.run import replay\n"
        f"replay({str(files.contacts)!r}, {str(files.events)!r}, Policy.load('courtesy'),\n"
        f"       customers={str(files.customers)!r}, out={str(tmp_path / 'out')!r},\n"
        "       workers=2, report=False)\n"
        "print('pandas' in sys.modules, 'phonenumbers.geocoder' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False False"
    assert (tmp_path / "out" / "verdicts.parquet").exists()


def test_a_borrowed_array_is_the_array_without_an_owner() -> None:
    """`kernel.borrowed`: the same data (writes go through, views of it too), the array
    it borrows kept alive by `kernel.kept`."""
    from numba import njit

    @njit
    def through(n: int) -> tuple[np.ndarray, float]:
        own = np.zeros((n, 3))
        view = kernel.borrowed(own)
        for i in range(n):
            row = view[i]
            row[:] = i
        total = view[1:].sum()
        kernel.kept(own)
        return own, total

    own, total = through(4)
    assert own.tolist() == [[i] * 3 for i in (0.0, 1.0, 2.0, 3.0)]
    assert total == 18.0


#: Every kind the twentieth round brought into the kernel, at once: frequency over a window
#: and over calendar days (consent windows, excluded outcomes, keys of the proposal's and of
#: its tags, several), a cooldown keyed by account, a calendar cap and a gap keyed by tags.
MIXED = Policy.from_text(
    """
name: mixed
version: "1"
rules:
  - id: window
    kind: frequency
    scope: {channels: [call, sms]}
    count: 2
    window: 20h
    per: [tags.subject, offer]
    message: "Two in 20 hours per {key}; {counted} already."
  - id: days
    kind: frequency
    scope: {channels: [call], purposes: [collections, sales]}
    count: 3
    days: 4
    per: [tags.account]
    consent_days: 2
    exclude_outcomes: [bounced]
    message: "Three in 4 days about {key}; {counted} already."
  - id: silence
    kind: cooldown
    scope: {channels: [call, sms]}
    days: 1
    first_day: same
    after_outcomes: [answered, declined]
    after_events: [contact_answered, not_interested]
    event_channels: [call]
    per: [tags.account]
    consent_days: 1
    message: "Quiet about {key} after {on}, until {until}."
  - id: weekly
    kind: cap
    scope: {channels: [email, push]}
    count: 2
    window: week
    per: [tags.subject]
    message: "Two a week per subject."
  - id: texts-apart
    kind: gap
    scope: {channels: [sms]}
    gap: 5h
    per: [tags.account]
    message: "Texts 5 hours apart per account."
""",
    "mixed.yaml",
)

_PLACES = [
    ("America/New_York", "US", "NY"),
    ("Europe/Paris", "FR", None),
    ("Australia/Sydney", "AU", "NSW"),
    ("Pacific/Auckland", "NZ", None),
]
_TAGS = [None, '{"subject": "s1"}', '{"subject": "s2", "account": "A1"}', '{"account": "A1"}',
         '{"account": "A2", "subject": ""}']  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, len(_PLACES) - 1), min_size=1, max_size=3),
    st.lists(
        st.tuples(
            st.integers(0, 2),  # customer
            st.integers(0, 5 * 24 * 4),  # quarter hours from 2026-03-06 (New York's clock change)
            st.sampled_from(["call", "call", "call", "sms", "sms", "email", "push"]),
            st.sampled_from(["sales", "collections", "marketing"]),
            st.sampled_from([None, "a", "b"]),
            st.sampled_from(_TAGS),
            st.sampled_from([None, None, None, "no_answer", "bounced", "answered", "declined"]),
            st.sampled_from([0, 0, 0, 1, 2]),  # no trigger, a call-back asked, with its instant
        ),
        min_size=1,
        max_size=40,
    ),
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 5 * 24 * 4),
            st.sampled_from(["contact_answered", "not_interested", "callback_requested"]),
            st.sampled_from([None, "call", "sms"]),
            st.sampled_from([None, "A1", "A2"]),
        ),
        max_size=6,
    ),
)
def test_random_logs_of_the_new_kinds_get_the_engines_verdicts(
    places: list[int],
    contacts: list[tuple[int, int, str, str, str | None, str | None, str | None, int]],
    events: list[tuple[int, int, str, str | None, str | None]],
) -> None:
    start = datetime(2026, 3, 6, tzinfo=UTC)

    def at(quarters: int) -> str:
        return (start + timedelta(minutes=15 * quarters)).strftime("%Y-%m-%dT%H:%M:%SZ")

    with tempfile.TemporaryDirectory() as tmp:
        log = LogBuilder(Path(tmp))
        for c, place in enumerate(places):
            zone, country, subdivision = _PLACES[place]
            log.profile(f"c{c}", timezone=zone, country=country, subdivision=subdivision)
        for who, q, kind, channel, account in events:
            props = {k: v for k, v in (("channel", channel), ("account", account)) if v}
            log.event(f"c{who % len(places)}", at(q), kind, **props)
        for who, q, channel, purpose, offer, tags, outcome, asked in contacts:
            fields = {"offer": offer, "tags": tags or "", "outcome": outcome}
            if asked:
                fields["trigger"] = "callback_requested"
                log.event(f"c{who % len(places)}", at(max(q - 8, 0)), "callback_requested")
                if asked == 2:
                    fields["trigger_at"] = at(max(q - 8, 0))
            log.contact(f"c{who % len(places)}", at(q), channel, purpose, **fields)
        assert_same(timeline_of(log), MIXED, engine_folded=[])


def test_coded_parts_read_no_file_without_contacts() -> None:
    """`_coded_parts` does not read a file whose rows are no contacts (its contacts'
    columns are nulls never written: reading them faulted each page of them in): here,
    evaluating the events' rows would fail, as they lack a column."""
    contacts = pl.DataFrame(
        {"is_contact": [True, True, True], "channel": ["sms", "email", "sms"], "x": [1, 0, 1]}
    )
    events = pl.DataFrame(
        {"is_contact": [False] * 4, "channel": [None] * 4}, schema={"is_contact": pl.Boolean,
                                                                    "channel": pl.String}
    )  # fmt: skip
    rows = pl.col("is_contact") & (pl.col("x") == 1)
    codes, distinct = native._coded_parts([contacts, events], ("channel",), rows)
    assert codes[1] is None
    assert codes[0] is not None
    assert [distinct[c]["channel"] if c >= 0 else None for c in codes[0]] == ["sms", None, "sms"]
