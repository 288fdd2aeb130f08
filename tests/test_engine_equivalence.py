"""The engine's memos and shortcuts never change an answer.

Every decision of the seeded scenarios in `tests/engine_cases.py` must equal, field for
field (verdict, `at`, `not_before`, every reason's rule, kind, message and `until`, flags,
policy), the decision the engine gave before the speed work, stored as a snapshot:

- on a freshly built state for each decision (nothing memoised);
- on one state reused for all of a scenario's decisions, the clock moving forward a little
  or a lot, onto hold expiries and window edges, and sometimes back (memos per hold epoch);
- on copies that share memos with their original until one of them changes.

Beyond the snapshot: after changes to a reused state (holds, outcomes, events, a new
profile) its decisions equal those on a state built afresh with the same ledger; the
rules the engine runs for a proposal are exactly those whose `applies` says so; and every
threshold the engine uses agrees with the rule's own `check` where it is valid.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    CustomerState,
    Event,
    Policy,
    Verdict,
)
from tactful.engine import (
    ASK,
    MAX_ANSWERS,
    Answer,
    Rules,
    answer_key,
    build_steps,
    decide,
    grid_at,
    steps,
)
from tactful.model import from_ts
from tactful.rules.base import NEVER, Context, Rule
from tests.engine_cases import (
    Scenario,
    cold,
    policy,
    read_snapshot,
    render,
    scenarios,
)

SNAPSHOT_HELP = (
    "a decision differs from the stored snapshot (tests/snapshots/engine_decisions.jsonl.gz). "
    "If semantics changed on purpose, rewrite it: .venv/bin/python -m tests.engine_cases --write"
)


def _expected() -> dict[tuple[int, int], dict[str, Any]]:
    out = {}
    for line in read_snapshot():
        item = json.loads(line)
        out[tuple(item.pop("case"))] = item
    return out


EXPECTED = _expected()
SCENARIOS = list(scenarios())


def _compare(sc: Scenario, i: int, got: dict[str, Any]) -> None:
    want = EXPECTED[(sc.index, i)]
    assert got == want, f"scenario {sc.index} step {i} ({sc.policy}): {SNAPSHOT_HELP}"


def test_the_snapshot_covers_every_scenario() -> None:
    assert len(EXPECTED) == sum(len(sc.steps) for sc in SCENARIOS)
    verdicts = {v["verdict"] for v in EXPECTED.values()}
    assert verdicts == {"allow", "defer", "deny"}


@pytest.mark.parametrize("part", range(4))
def test_fresh_states_decide_as_before(part: int) -> None:
    for sc in SCENARIOS[part::4]:
        for i, got in enumerate(cold(sc)):
            _compare(sc, i, got)


@pytest.mark.parametrize("part", range(4))
def test_a_reused_state_decides_as_before_while_the_clock_moves(part: int) -> None:
    for sc in SCENARIOS[part::4]:
        state = sc.state()
        pol = policy(sc.policy)
        for i, step in enumerate(sc.steps):
            # The first time every rule is asked; the second, memoised thresholds answer.
            _compare(sc, i, render(decide(state, step.proposal, pol, step.now)))
            _compare(sc, i, render(decide(state, step.proposal, pol, step.now)))


@pytest.mark.parametrize("part", range(2))
def test_a_transient_state_decides_as_before(part: int) -> None:
    """A replay's state (`transient`) never builds thresholds: asked twice, the same."""
    for sc in SCENARIOS[part::2]:
        state = sc.state()
        state.transient = True
        pol = policy(sc.policy)
        for i, step in enumerate(sc.steps):
            _compare(sc, i, render(decide(state, step.proposal, pol, step.now)))
            _compare(sc, i, render(decide(state, step.proposal, pol, step.now)))
            assert not any(key[0] == "steps" for key in state.memo if isinstance(key, tuple))


def test_copies_decide_as_before_and_as_their_original() -> None:
    for sc in SCENARIOS[::3]:
        original = sc.state()
        pol = policy(sc.policy)
        for i, step in enumerate(sc.steps):
            copy = original.copy()  # shares the original's memo
            first = render(decide(copy, step.proposal, pol, step.now))
            _compare(sc, i, first)
            _compare(sc, i, render(decide(original, step.proposal, pol, step.now)))


def _hold(sc: Scenario, n: int, rng: random.Random) -> Contact:
    step = rng.choice(sc.steps)
    at = step.now - timedelta(minutes=rng.choice((0, 1, 20)))
    return Contact.from_proposal(
        f"hold-{n}",
        step.proposal,
        at,
        status=ContactStatus.HELD,
        hold_expires=at + timedelta(minutes=rng.choice((1, 15, 60))),
    )


#: Events `test_a_reused_state_follows_its_changes` adds between decisions.
SIGNALS: list[tuple[str, dict[str, Any]]] = [
    ("page_viewed", {}),
    ("signed_in", {}),
    ("contact_replied", {}),
    ("opted_in", {}),
    ("opted_out", {}),
    ("opted_out", {"channel": "sms"}),
    ("unsubscribed", {"channel": "email", "purpose": "marketing"}),
    ("subscribed", {"channel": "email"}),
    ("complained", {}),
    ("offer_declined", {"offer": "gold"}),
    ("offer_declined", {}),
    ("not_interested", {}),
]


@pytest.mark.parametrize("part", range(2))
def test_a_reused_state_follows_its_changes(part: int) -> None:
    """Holds placed, confirmed, cancelled and answered, events arriving, the profile
    replaced: each decision after a change equals one on a state built afresh."""
    rng = random.Random(11 + part)
    changes = 0
    for sc in SCENARIOS[part::4]:
        pol = policy(sc.policy)
        live = sc.state()
        events: list[Event] = list(sc.events)
        contacts: dict[str, Contact] = {c.contact_id: c for c in sc.contacts}
        profile = sc.profile
        for i, step in enumerate(sc.steps):
            roll = rng.random()
            if roll < 0.35:
                hold = _hold(sc, i, rng)
                contacts[hold.contact_id] = hold
                live.add_contact(hold)
            elif roll < 0.5 and contacts:
                c = contacts[rng.choice(sorted(contacts))]
                changed = replace(
                    c,
                    status=rng.choice(list(ContactStatus)),
                    hold_expires=None,
                    outcome=rng.choice((None, "answered", "no_answer", "declined")),
                )
                contacts[c.contact_id] = changed
                live.add_contact(changed)
            elif roll < 0.65:
                # Visits and signals: a signal replaces `signal_memo`, a visit keeps it.
                kind, props = rng.choice(SIGNALS)
                e = Event(
                    sc.profile.customer_id,
                    kind,
                    step.now - timedelta(minutes=2),
                    f"x{i}",
                    properties=props,
                )
                events.append(e)
                live.add_event(e)
            elif roll < 0.7:
                profile = replace(profile, timezone="Europe/Paris", country="FR")
                live.profile = profile
            else:
                continue
            changes += 1
            fresh = CustomerState(profile, events, contacts.values())
            want = render(decide(fresh, step.proposal, pol, step.now))
            got = render(decide(live, step.proposal, pol, step.now))
            assert got == want, f"scenario {sc.index} step {i} after a change"
    assert changes > 100


def test_the_engine_runs_exactly_the_rules_that_apply() -> None:
    for sc in SCENARIOS[::2]:
        pol = policy(sc.policy)
        state = sc.state()
        for step in sc.steps:
            p = step.proposal
            ctx = Context(state, p, pol, step.now.timestamp())
            plan = pol.plan(
                ctx.channel, ctx.purpose, p.source, p.campaign, ctx.trigger_event, ctx.flags
            )
            for prepared in (steps(plan, ctx), steps(plan, ctx)):  # asking, then memoised
                rules = prepared.requested if ctx.requested else prepared.unrequested
                _same_rules(pol.rules, ctx, rules)


def _same_rules(all_rules: tuple[Rule, ...], ctx: Context, rules: Rules) -> None:
    applying = [r for r in all_rules if r.applies(ctx)]
    deciding = [s[0].id for s in rules.deciding]
    assert deciding == [r.id for r in applying if r.effective_mode != "flag"]
    assert [s[0].id for s in rules.flagging] == [
        r.id for r in applying if r.effective_mode == "flag"
    ]
    assert [s[0].id for s in rules.searching] == [
        s[0].id for s in rules.deciding if not s[0].timeless
    ]


#: The policies' windows and gaps: instants this far from a ledger item are where rule
#: answers change.
SPANS = (0.0, 1800.0, 3600.0, 20 * 3600.0, 86400.0, 48 * 3600.0, 7 * 86400.0, 14 * 86400.0)


def _probes(
    rng: random.Random, state: CustomerState, now: float, since: float, until: float
) -> list[float]:
    """Instants to compare a threshold with `check` at: its edges, around ledger items
    (contacts and events dated after `now` are where a wrong `since` would show), and a
    few at random, from `since` on (or a few days before `now` when it has none)."""
    lo = since if since > -math.inf else now - 3 * 86400.0
    out = [lo, lo + 0.25, lo + 61.0, now, now + 3600.0, now + 86400.0, now + 9 * 86400.0]
    if lo < until < NEVER:
        out += [until, math.nextafter(until, -math.inf), math.nextafter(until, math.inf)]
        out += [until - 1.0, until + 1.0, (lo + until) / 2]
    items = [c.ts for c in state.contacts] + [e.ts for e in state.events]
    for ts in rng.sample(items, min(6, len(items))):
        span = rng.choice(SPANS)
        out += [ts + span, math.nextafter(ts + span, -math.inf), ts - span]
    out += [lo + rng.uniform(0, 20 * 86400.0) for _ in range(4)]
    return [t for t in out if t >= lo]


@pytest.mark.parametrize("part", range(4))
def test_every_threshold_agrees_with_its_rule(part: int) -> None:
    """Where the engine compares with a threshold instead of asking `check`, the answer
    is the same: for every decision it may serve (any `now` in the same hold epoch, with
    t = now, past `since`), at the edges, just before and after them, around the ledger's
    items."""
    rng = random.Random(part)
    used = 0
    for sc in SCENARIOS[part::4]:
        pol = policy(sc.policy)
        state = sc.state()
        for step in sc.steps:
            p = step.proposal
            ctx = Context(state, p, pol, step.now.timestamp())
            plan = pol.plan(
                ctx.channel, ctx.purpose, p.source, p.campaign, ctx.trigger_event, ctx.flags
            )
            prepared = build_steps(plan, ctx, thresholds=True)
            rules = prepared.requested if ctx.requested else prepared.unrequested
            for rule, check, since, until in rules.deciding + rules.flagging:
                if (since, until) == ASK:
                    continue
                for t in _probes(rng, state, ctx.now, since, until):
                    later = Context(state, p, pol, t)  # a decision at now = t
                    if later.epoch != ctx.epoch or later.requested != ctx.requested:
                        continue  # the memo would not serve it
                    used += 1
                    want = check(later, t)
                    got = until if t < until else t
                    assert got == want, f"{rule.id} at {t!r}: threshold {until!r}, check {want!r}"
    assert used > 2_500


def test_decisions_are_the_same_objects_of_data_however_often_asked() -> None:
    """A memoised reason is the same value as one made afresh (and a deny stays a deny)."""
    for sc in SCENARIOS[::5]:
        pol = policy(sc.policy)
        state = sc.state()
        step = sc.steps[0]
        first = decide(state, step.proposal, pol, step.now)
        for _ in range(3):
            again = decide(state, step.proposal, pol, step.now)
            assert again == first
            assert (again.verdict is Verdict.DENY) == (first.verdict is Verdict.DENY)


def _probes_in(rng: random.Random, lo: float, hi: float) -> list[float]:
    """Instants across a memoised span: its start, the last float before its end, and
    others in between (a day's worth at most, for spans that never end)."""
    top = min(hi, lo + 86400.0)
    out = [lo, lo + (top - lo) / 2, *(rng.uniform(lo, top) for _ in range(3))]
    if hi < math.inf:
        out += [math.nextafter(hi, -math.inf), hi - 0.002, hi - 1.0]
    return [t for t in out if lo <= t < hi]


@pytest.mark.parametrize("part", range(2))
def test_a_memoised_answer_holds_over_its_whole_span(part: int) -> None:
    """Every answer the engine memoises (`Answer`: the span of instants it holds over)
    is, field for field, what a state with nothing memoised decides at instants across
    that span: at its start, at the last instants before its end (a minute boundary of a
    calling-hours reason, a hold expiring, a gap closing), and in between."""
    rng = random.Random(23 + part)
    spans = 0
    for sc in SCENARIOS[part::2]:
        pol = policy(sc.policy)
        state = sc.state()
        for step in sc.steps:
            p = step.proposal
            for _ in range(2):  # the second decision of a kind on a state memoises
                decide(state, p, pol, step.now)
            answer = state.memo.get(answer_key(pol, p))
            if answer is None:
                continue
            assert isinstance(answer, Answer)
            spans += 1
            for t in _probes_in(rng, answer.lo, answer.hi):
                now = from_ts(t)
                if not answer.lo <= now.timestamp() < answer.hi:
                    continue  # rounded to the microsecond out of the span
                got = render(decide(state, p, pol, now))
                assert state.memo.get(answer_key(pol, p)) is answer  # answered from it
                fresh = sc.state()
                want = render(decide(fresh, p, pol, now))
                assert got == want, (
                    f"scenario {sc.index} ({sc.policy}), {p.channel}/{p.purpose} at {now} "
                    f"in the span {from_ts(answer.lo)} .. {answer.hi}"
                )
    assert spans > 200


def test_answers_are_memoised_for_the_common_kinds() -> None:
    """The memo is not idle: allows, defers and denials alike are memoised on a reused
    state (a decision memoised nowhere would pass the test above unseen)."""
    memoised: dict[str, int] = {"allow": 0, "defer": 0, "deny": 0}
    for sc in SCENARIOS:
        pol = policy(sc.policy)
        state = sc.state()
        for step in sc.steps:
            for _ in range(2):
                d = decide(state, step.proposal, pol, step.now)
            if state.memo.get(answer_key(pol, step.proposal)) is not None:
                memoised[d.verdict.value] += 1
    assert min(memoised.values()) > 50, memoised


def test_a_state_keeps_a_bounded_number_of_answers() -> None:
    """A customer whose state never changes (opted out, say) asked about a thousand
    different subject lines keeps at most `MAX_ANSWERS` answers, the latest, and answers
    every one of them as a state with nothing memoised does."""
    sc = SCENARIOS[7]  # opted out of everything
    pol = policy(sc.policy)
    state = sc.state()
    step = sc.steps[0]
    asked = [
        replace(
            step.proposal,
            channel="email",
            purpose="marketing",
            at=None,
            trigger=None,
            content=Content(subject=f"Ideas for you, #{n}"),
        )
        for n in range(1000)
    ]
    for p in asked:
        for _ in range(2):
            got = render(decide(state, p, pol, step.now))
        assert got == render(decide(sc.state(), p, pol, step.now))
    answers = [v for v in state.memo.values() if isinstance(v, Answer)]
    assert 0 < len(answers) <= MAX_ANSWERS
    assert state.memo.get(answer_key(pol, asked[-1])) is not None


def test_shapes_that_differ_only_in_campaign_or_source_share_a_plan_and_decide_alike() -> None:
    """Campaigns and sources no rule names share one plan (and what states memoise per
    plan); a rule that names one, or counts per campaign, still sees it: decisions on one
    reused state equal those on fresh states, campaign after campaign."""
    text = (
        "name: t\nversion: 1\nextends: [courtesy]\nrules:\n"
        "  - {id: spring-cap, kind: cap, count: 1, window: 7d,"
        " scope: {channels: [email], campaigns: [spring]}, message: one spring email a week}\n"
        "  - {id: per-campaign, kind: gap, gap: 30d, per: [campaign],"
        " scope: {channels: [push]}, message: a month between pushes of one campaign}\n"
    )
    pol = Policy.from_text(text)
    plan = pol.plan
    assert plan("email", "marketing", None, "a", None, ()) is plan(
        "email", "marketing", "crm", "b", None, ()
    )
    assert plan("email", "marketing", None, "a", None, ()) is not plan(
        "email", "marketing", None, "spring", None, ()
    )
    assert plan("email", "marketing", None, "a", None, ()) is not plan(
        "sms", "marketing", None, "a", None, ()
    )
    sc = SCENARIOS[2]
    now = sc.steps[0].now
    cid = sc.profile.customer_id
    history = [
        Contact(f"k{n}", cid, channel, "marketing", now - timedelta(days=d), campaign=campaign)
        for n, (channel, campaign, d) in enumerate(
            [("email", "spring", 2), ("push", "a", 10), ("push", "b", 40), ("email", "a", 3)]
        )
    ]
    live = CustomerState(sc.profile, sc.events, [*sc.contacts, *history])
    for minutes in (0, 61, 600, 3000):
        at = now + timedelta(minutes=minutes)
        for channel in ("email", "push"):
            for campaign in ("a", "b", "spring", None):
                for source in (None, "crm"):
                    p = ContactProposal(cid, channel, "marketing", campaign=campaign, source=source)
                    for _ in range(2):
                        got = render(decide(live, p, pol, at))
                    # A fresh state under a fresh copy of the policy: no plan shared.
                    fresh = CustomerState(sc.profile, sc.events, [*sc.contacts, *history])
                    alone = Policy.from_text(text)
                    want = render(decide(fresh, p, alone, at))
                    assert got == want, (channel, campaign, source)


def test_a_proposal_with_unhashable_parts_is_decided_all_the_same() -> None:
    # The types say strings; a library caller may hand over a list as a tag's value.
    sc = SCENARIOS[2]
    pol = policy(sc.policy)
    good = replace(sc.steps[0].proposal, tags={"account": "A1"})
    odd = replace(good, tags={"account": "A1", "notes": ["x"]})  # type: ignore[dict-item]
    want = render(decide(sc.state(), good, pol, sc.steps[0].now))
    state = sc.state()
    for _ in range(2):
        assert render(decide(state, odd, pol, sc.steps[0].now)) == want


def _count_decisions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the decisions the engine works out (not looked up) from here on: each asks
    the policy for its plan once, a looked-up one never. (Counted at the policy, which is
    never compiled: the compiled engine's calls to its own functions cannot be patched.)"""
    made = [0]
    plan = Policy.plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        made[0] += 1
        return plan(*args, **kwargs)

    monkeypatch.setattr(Policy, "plan", counting)
    return made


def test_a_calling_hours_reason_names_each_minute_without_deciding_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call deferred overnight is memoised until calling hours open; asked again later
    in the night, the reason names the customer's new local minute (as a fresh decision
    does) and only the calling-hours rule is asked for it, not the whole policy."""
    pol = Policy.load("courtesy")
    profile = CustomerProfile("night", timezone="America/Chicago", country="US")
    fresh = lambda: CustomerState(profile)  # noqa: E731
    p = ContactProposal("night", "call", "service")
    # Tuesday 17 November 2026, 21:30 in Chicago: closed until 09:00 on Wednesday.
    first = datetime(2026, 11, 18, 3, 30, tzinfo=UTC)
    state = fresh()
    for _ in range(2):  # the second decision of a kind on a state memoises
        decide(state, p, pol, first)
    answer = state.memo.get(answer_key(pol, p))
    assert isinstance(answer, Answer) and answer.wording is not None
    assert from_ts(answer.hi) == datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # 09:00 local
    made = _count_decisions(monkeypatch)
    seen = set()
    for minutes in (0, 0.5, 1, 1.01, 59, 61, 300, 689.99):
        now = first + timedelta(minutes=minutes)
        got = decide(state, p, pol, now)
        want = decide(fresh(), p, pol, now)
        assert render(got) == render(want)
        assert got.verdict is Verdict.DEFER
        seen.add(got.reasons[0].message)
    # Looked up every time (the fresh states' decisions are the only ones worked out).
    assert made[0] == 8
    assert state.memo.get(answer_key(pol, p)) is answer
    assert any("Tuesday 21:30" in m for m in seen)
    assert any("Tuesday 21:31" in m for m in seen)
    assert any("Wednesday 08:59" in m for m in seen)
    assert len(seen) == 6  # 21:30, 21:31, 22:29, 22:31, 02:30, 08:59: one per minute named


def test_a_pressure_reason_shows_the_pressure_as_it_decays_without_deciding_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pol = Policy.load("courtesy")
    profile = CustomerProfile("busy", timezone="Europe/Paris", country="FR")
    now = datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
    sent = [
        Contact(f"k{i}", "busy", "call", "sales", now - timedelta(hours=6 * i), outcome="no_answer")
        for i in range(1, 6)
    ]
    fresh = lambda: CustomerState(profile, (), sent)  # noqa: E731
    p = ContactProposal("busy", "email", "marketing")
    # Five unanswered calls in a day: over budget, deferred until decay makes room.
    state = fresh()
    first = decide(state, p, pol, now)
    assert [r.rule for r in first.reasons] == ["pressure"]
    decide(state, p, pol, now)
    answer = state.memo.get(answer_key(pol, p))
    assert isinstance(answer, Answer) and answer.wording is not None
    made = _count_decisions(monkeypatch)
    shown = set()
    probes = [now + timedelta(hours=h) for h in (0, 1, 2, 6, 12, 24, 36)]
    probes = [t for t in probes if t.timestamp() < answer.hi]
    for later in probes:
        got = decide(state, p, pol, later)
        assert render(got) == render(decide(fresh(), p, pol, later))
        shown.add(got.reasons[0].message)
    assert made[0] == len(probes)  # the fresh states' only: the reused one looked up
    assert state.memo.get(answer_key(pol, p)) is answer
    assert len(shown) >= 4  # the pressure shown falls as it decays


def test_after_a_hold_expires_a_state_asked_before_memoises_at_once() -> None:
    """A hold expiring moves the state to a new hold epoch. A state that lives on between
    decisions (it was asked this question before) memoises the next answer at the first
    decision in the new epoch, not the third; a state asked for the first time does not
    (as in a replay, where the state changes between decisions); both decide alike."""
    pol = Policy.load("courtesy")
    now = datetime(2026, 11, 17, 15, 0, tzinfo=UTC)
    hold = Contact(
        "h1",
        "ann",
        "email",
        "marketing",
        now - timedelta(minutes=5),
        status=ContactStatus.HELD,
        hold_expires=now + timedelta(minutes=10),
    )
    profile = CustomerProfile("ann", timezone="Europe/London", country="GB")
    p = ContactProposal("ann", "push", "marketing")
    lived = CustomerState(profile, (), [hold])
    for _ in range(2):
        decide(lived, p, pol, now)
    before = lived.memo.get(answer_key(pol, p))
    assert isinstance(before, Answer) and from_ts(before.hi) == now + timedelta(minutes=10)
    later = now + timedelta(minutes=11)
    got = decide(lived, p, pol, later)
    after = lived.memo.get(answer_key(pol, p))
    assert isinstance(after, Answer) and after is not before
    assert after.lo <= later.timestamp() < after.hi
    first = CustomerState(profile, (), [hold])
    assert render(decide(first, p, pol, later)) == render(got)
    assert first.memo.get(answer_key(pol, p)) is None


def test_a_reason_is_worded_again_only_when_its_own_text_moves() -> None:
    """A call deferred overnight under pressure: a minute later the calling-hours reason
    names the new minute, while the pressure reason, which reads the same for hours, is
    the very reason worded before; both equal a fresh decision's."""
    pol = Policy.load("courtesy")
    profile = CustomerProfile("late", timezone="America/Chicago", country="US")
    now = datetime(2026, 11, 18, 3, 30, tzinfo=UTC)  # 21:30 in Chicago
    sent = [
        *(
            Contact(f"k{i}", "late", "email", "marketing", now - timedelta(hours=6 * i))
            for i in range(1, 6)
        ),
        Contact("c", "late", "call", "service", now - timedelta(hours=30), outcome="no_answer"),
    ]
    fresh = lambda: CustomerState(profile, (), sent)  # noqa: E731
    p = ContactProposal("late", "sms", "marketing")
    state = fresh()
    for _ in range(2):
        first = decide(state, p, pol, now)
    rules = [r.rule for r in first.reasons]
    assert "calling-hours" in rules and "pressure" in rules
    answer = state.memo.get(answer_key(pol, p))
    assert isinstance(answer, Answer) and answer.wording is not None
    assert len(answer.wording.live) == 2
    later = now + timedelta(minutes=1)
    again = decide(state, p, pol, later)
    assert render(again) == render(decide(fresh(), p, pol, later))
    hours, pressure = rules.index("calling-hours"), rules.index("pressure")
    assert again.reasons[hours].message != first.reasons[hours].message
    assert again.reasons[pressure] is first.reasons[pressure]


# -- grid_at: an answer's span compared as datetimes ----------------------------------------

GRID_START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC).timestamp()


@given(
    st.floats(min_value=GRID_START - 86400, max_value=GRID_START + 86400),
    st.integers(min_value=-3, max_value=3),
)
def test_a_datetime_is_at_or_after_grid_at_exactly_when_its_timestamp_is(
    u: float, offset: int
) -> None:
    """`decide` compares `now` with an answer's span as datetimes (`lo_at <= now <
    hi_at`) where it compared timestamps (`lo <= now.timestamp() < hi`): the same for
    every datetime near any instant."""
    at = grid_at(u)
    assert at.tzinfo is UTC
    near = datetime.fromtimestamp(u, UTC) + timedelta(microseconds=offset)
    assert (near >= at) == (near.timestamp() >= u)
    assert at.timestamp() >= u
    assert (at - timedelta(microseconds=1)).timestamp() < u


def test_grid_at_beyond_the_datetimes() -> None:
    assert grid_at(float("inf")) == datetime.max.replace(tzinfo=UTC)
    assert grid_at(-float("inf")) == datetime.min.replace(tzinfo=UTC)
    assert grid_at(1e300) == datetime.max.replace(tzinfo=UTC)
