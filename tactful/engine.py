"""The decision engine: pure, deterministic, and the same for the service, batch and replay.

`decide(state, proposal, policy, now)` asks every rule in scope when it would allow the
contact. If all allow at the proposed time: allow. If a rule that denies holds, or one says
never: deny. Otherwise the earliest instant at which *every* rule allows it is found by
moving forward to each rule's own answer until all agree (a cap may reopen inside closed
calling hours, so the latest single answer is not enough): defer until then, or deny when
no such instant lies within the policy's horizon.

Speed comes from memos, never from a different answer. The policy matches scopes once per
proposal shape (`Policy.plan`). The customer's state memoises what rules derive from it
(`CustomerState.memo`), per hold epoch where it depends on which holds still count, so the
memos survive a moving clock. And where a rule can state its answer as a threshold
(`Rule.threshold`: "from `since` on, allowed from `until`"), the engine memoises that and
compares instead of asking the rule, after checking the threshold against the rule's own
`check` where it flips.

Last, a whole answer is memoised (`Answer`, in the state's memo under `answer_key`) with
the span of instants over which it stands: until a threshold flips, a hold expires, an
event dated later arrives in the ledger's time, or a rule asked through `check` says its
answer may change (`Rule.steady`: the end of open calling hours or of closed ones, the
end of a visit). A question asked again of an unchanged state within that span is looked
up. A reason that names the moment (the customer's local minute in a calling-hours
reason, the pressure to a tenth) is worded again when it would read otherwise
(`Rule.worded`, `Wording`), which asks that rule alone, not every rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from tactful.model import ContactProposal, Decision, Reason, Verdict, from_ts
from tactful.policy.document import Plan, PlanStep, Policy
from tactful.rules.base import NEVER, Context, Rule, Threshold
from tactful.state import CustomerState

#: Bound on the search for a common allowed instant; each step moves strictly forward.
MAX_STEPS = 500
#: Bound on the answers memoised in one state (see `decide`; some 500 bytes each), and the
#: memo key of the list of their keys.
MAX_ANSWERS = 64
_ANSWERS = ("answers",)

Check = Callable[[Context, float], float]


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _reason(rule: Rule, ctx: Context, t: float, until: float) -> Reason:
    message = rule.message
    if "{" in message:
        message = message.format_map(_Placeholders(rule.details(ctx, t)))
    return Reason(
        rule=rule.id,
        kind=rule.kind,
        message=message,
        until=None if until == NEVER else from_ts(until),
    )


def _verified(rule: Rule, ctx: Context, threshold: Threshold) -> Threshold:
    """The rule's threshold, if its own `check` agrees where the threshold says the answer
    changes (float rounding must not move the boundary); otherwise `ASK`."""
    since, until = threshold
    lo = max(since, ctx.now)  # decisions ask about instants from `now` on
    if until <= lo:
        return threshold if rule.check(ctx, lo) == lo else ASK
    if rule.check(ctx, lo) != until:
        return ASK
    if until != NEVER:
        below = math.nextafter(until, -math.inf)
        if below > lo and rule.check(ctx, below) != until:
            return ASK
        if rule.check(ctx, until) != until:
            return ASK
    return threshold


#: A threshold that never applies (`since` is never reached): ask `check` every time.
ASK: Threshold = (math.inf, math.inf)

#: A rule as one decision runs it: the rule, its check, and its verified threshold.
Step = tuple[Rule, Check, float, float]


class Rules(NamedTuple):
    """The rules of a plan that apply to one customer, in policy order, ready to run."""

    #: Those that decide; of them, those with no threshold (asked every time) and those
    #: the search for a common instant must ask again (all but the `timeless`).
    deciding: tuple[Step, ...]
    asking: tuple[Step, ...]
    searching: tuple[Step, ...]
    #: Those that only flag.
    flagging: tuple[Step, ...]
    #: From this instant on, every deciding rule with a threshold allows.
    clear_from: float


class Steps(NamedTuple):
    """`Rules` for a contact the customer did not ask for, and for one they asked for
    (rules that yield to a request left out); the memo of threshold reasons; and whether
    answers found with them are memoised (not on a state's first decision of a kind:
    a state that changes between decisions, as in a replay, would never ask again)."""

    unrequested: Rules
    requested: Rules
    reasons: dict[str, Reason]
    memoise: bool


def _rules(ready: list[tuple[Step, PlanStep]], requested: bool) -> Rules:
    kept = [(step, p) for step, p in ready if not (requested and p.waived)]
    deciding = tuple(step for step, p in kept if p.mode != "flag")
    return Rules(
        deciding=deciding,
        asking=tuple(step for step in deciding if step[2:] == ASK),
        searching=tuple(step for step, p in kept if p.mode != "flag" and not p.rule.timeless),
        flagging=tuple(step for step, p in kept if p.mode == "flag"),
        clear_from=max((max(s[2], s[3]) for s in deciding if s[2:] != ASK), default=-math.inf),
    )


def build_steps(plan: Plan, ctx: Context, *, thresholds: bool) -> Steps:
    """The plan's rules for this customer, with their verified thresholds or without."""
    ready: list[tuple[Step, PlanStep]] = []
    for plan_step in plan.steps:
        rule, check, _, _, regions = plan_step
        if regions and not ctx.in_regions(regions):
            continue
        threshold = rule.threshold(ctx) if thresholds else None
        if threshold is None:
            since, until = ASK
        elif rule.threshold_exact:
            since, until = threshold
        else:
            since, until = _verified(rule, ctx, threshold)
        ready.append(((rule, check, since, until), plan_step))
    return Steps(_rules(ready, False), _rules(ready, True), {}, thresholds)


#: In a state's memo: this kind of decision was made once on the state as it is.
_ONCE = object()


def _asking(plan: Plan, ctx: Context) -> Steps:
    """The plan's rules for this customer, each asked through `check`: no threshold."""
    if plan.regional:
        return build_steps(plan, ctx, thresholds=False)
    if plan.asking is None:
        # No regional rule: the same for every customer (no threshold: no reason memo).
        plan.asking = build_steps(plan, ctx, thresholds=False)
    asking: Steps = plan.asking
    return asking


def steps(plan: Plan, ctx: Context) -> Steps:
    """The plan's rules for this customer, regions settled from the profile.

    The first decision of a kind on a state asks every rule (a state that changes between
    decisions never asks twice); the second builds the rules' verified thresholds and
    memoises them in the state, per plan, hold epoch and the plan's threshold fields. A
    state asked this kind of question before, at another hold epoch (a hold expired since,
    the state otherwise the same), builds them at once: it is one that lives on between
    decisions. A `transient` state (a replay's, which changes after nearly every decision)
    always asks every rule: building thresholds for it cost more than they saved."""
    state = ctx.state
    if state.transient:
        return _asking(plan, ctx)
    values = tuple(ctx.key_of(f) for f in plan.fields) if plan.fields else ()
    key = ("steps", plan.uid, ctx.epoch, values)
    memo = state.memo
    hit = memo.get(key)
    if hit is None:
        asked = ("steps asked", plan.uid, values)
        if asked in memo:
            hit = memo[key] = build_steps(plan, ctx, thresholds=True)
            return hit
        memo[asked] = True
        memo[key] = _ONCE
        return _asking(plan, ctx)
    if hit is _ONCE:
        hit = memo[key] = build_steps(plan, ctx, thresholds=True)
    result: Steps = hit
    return result


#: An answer memoised in a customer's state (`decide`): for every `now` from `lo` up to
#: `hi` (excluded), a proposal of the same shape gets this verdict, reasons, `not_before`
#: and flags (undated here: a flag's `until` is the instant decided), decided at `now`.
class Answer(NamedTuple):
    lo: float
    hi: float
    verdict: Verdict
    reasons: tuple[Reason, ...]
    not_before: datetime | None
    flags: tuple[Reason, ...]
    #: Where a reason names the moment (calling hours' local minute, pressure's tenth)
    #: and reads otherwise before `hi`: the reasons as last worded, worded again when
    #: that span ends (None: `reasons` stand over the whole span).
    wording: Wording | None
    #: `lo` and `hi` as datetimes in UTC (`grid_at`): a `now` in UTC is in the span
    #: exactly when `lo_at <= now < hi_at`, which compares without `now.timestamp()`.
    lo_at: datetime
    hi_at: datetime


def _answer(
    decision: Decision, lo: float, hi: float, flags: tuple[Reason, ...], wording: Wording | None
) -> Answer:
    """The answer `decision`, made at the instant `lo` (its `at`), gives up to `hi`."""
    return Answer(
        lo,
        hi,
        decision.verdict,
        decision.reasons,
        decision.not_before,
        flags,
        wording,
        decision.at,  # grid_at(lo): the earliest datetime with its own timestamp
        grid_at(hi),
    )


#: The span `[lo, hi)` over which a reason reads as worded.
Span = tuple[float, float]


class Wording:
    """The reasons of a memoised answer whose text moves sooner than the answer: which of
    them to word again, with their rule and the instant it waits for (`live`); and the
    reasons as last worded, the span they all read the same over, and each live reason's
    own span (`current`, replaced in one piece). See `Rule.worded`."""

    __slots__ = ("current", "live")

    def __init__(
        self,
        live: tuple[tuple[int, Rule, float], ...],
        reasons: tuple[Reason, ...],
        spans: tuple[Span, ...],
    ) -> None:
        self.live = live
        self.current = _worded(reasons, spans)

    def reasons(
        self, state: CustomerState, proposal: ContactProposal, policy: Policy, now: datetime
    ) -> tuple[Reason, ...]:
        """The reasons decided at `now` (in UTC, in the answer's span): as last worded while
        that still holds, else those whose own span has ended worded again for `now`
        (a calling-hours reason names a new minute; the pressure beside it, which reads
        the same for hours, is left as it is)."""
        lo, hi, reasons, spans = self.current
        if lo <= now < hi:
            return reasons
        now_ts = now.timestamp()
        ctx = Context(state, proposal, policy, now_ts)
        fresh = list(reasons)
        kept = list(spans)
        for j, (i, rule, u) in enumerate(self.live):
            since, until = spans[j]
            if not since <= now_ts < until:
                fresh[i] = _reason(rule, ctx, now_ts, u)
                kept[j] = (now_ts, rule.worded(ctx, now_ts, u))
        reasons = tuple(fresh)
        self.current = _worded(reasons, tuple(kept))
        return reasons


def _worded(
    reasons: tuple[Reason, ...], spans: tuple[Span, ...]
) -> tuple[datetime, datetime, tuple[Reason, ...], tuple[Span, ...]]:
    """`Wording.current`: the span within every one of `spans` (empty where they do not
    meet) as datetimes in UTC (`grid_at`), the reasons and the spans."""
    lo = max(s[0] for s in spans)
    hi = min(s[1] for s in spans)
    return grid_at(lo), grid_at(hi), reasons, spans


def answer_key(policy: Policy, proposal: ContactProposal) -> tuple[object, ...]:
    """The key of an answer in a state's memo: everything a rule may read of a proposal
    but `at` (an answer is about `now`) and the customer (the state's own): its shape,
    `per` keys and content. The policy object heads it, as no other key in the memo."""
    tags = proposal.tags
    return (
        policy,
        proposal.channel,
        proposal.purpose,
        proposal.source,
        proposal.campaign,
        proposal.offer,
        proposal.trigger,
        proposal.content,
        tuple(sorted(tags.items())) if tags else (),
    )


#: `Decision`'s and `Reason`'s fields in order, as a tuple: the cheapest way to build one.
_new_decision: Callable[[type[Decision], tuple[Any, ...]], Decision] = tuple.__new__
_new_reason: Callable[[type[Reason], tuple[Any, ...]], Reason] = tuple.__new__


def decide(
    state: CustomerState, proposal: ContactProposal, policy: Policy, now: datetime
) -> Decision:
    """Decide one proposal for one customer at `now` (the proposal's `at`, if later).

    An answer about `now` itself is memoised in the state with the span of instants over
    which every rule would answer it alike (`Rule.steady`), so the same question asked
    again on the unchanged state, a moment or an hour later, is looked up. The memo is
    the state's: any change to the state replaces it."""
    when = proposal.at
    if when is not None and when.timestamp() > now.timestamp():
        return _decide(state, proposal, policy, now, now.timestamp(), None)
    key = answer_key(policy, proposal)
    try:
        hit: Answer | None = state.memo.get(key)
    except TypeError:
        # Something unhashable where the types say otherwise (a list as a tag's value):
        # decided all the same, not memoised.
        return _decide(state, proposal, policy, now, now.timestamp(), None)
    if hit is not None:
        # A `now` in UTC (as a service's clock gives) is compared as it is; any other is
        # taken to UTC (the answer is dated in UTC).
        at = now if now.tzinfo is UTC else from_ts(now.timestamp())
        if hit[7] <= at < hit[8]:
            flags = hit[5]
            if flags:
                # A flag is dated at the decision: memoised undated.
                flags = tuple([_new_reason(Reason, (f[0], f[1], f[2], at)) for f in flags])
            reasons = hit[3]
            wording = hit[6]
            if wording is not None:
                reasons = wording.reasons(state, proposal, policy, at)
            return _new_decision(Decision, (hit[2], reasons, policy.ref, at, hit[4], flags, None))
    return _decide(state, proposal, policy, now, now.timestamp(), key)


def _decide(
    state: CustomerState,
    proposal: ContactProposal,
    policy: Policy,
    now: datetime,
    now_ts: float,
    key: tuple[object, ...] | None,
) -> Decision:
    """`decide` without the answer memo; memoises its answer under `key` where it can."""
    t = now_ts
    if proposal.at is not None:
        t = max(t, proposal.at.timestamp())
    ctx = Context(state, proposal, policy, now_ts)
    plan = policy.plan(
        ctx.channel, ctx.purpose, proposal.source, proposal.campaign, ctx.trigger_event, ctx.flags
    )
    prepared = steps(plan, ctx)
    rules = prepared.requested if ctx.requested else prepared.unrequested
    known = prepared.reasons
    #: Rules asked through `check` at t, with their answers and whether they only flag, when
    #: the answer may be memoised.
    asked: list[tuple[Rule, float, bool]] | None = (
        [] if key is not None and prepared.memoise else None
    )

    def reason(rule: Rule, t: float, until: float, since: float) -> Reason:
        # Past `since` a threshold rule's reason depends on nothing that moves.
        if t < since:
            return _reason(rule, ctx, t, until)
        hit = known.get(rule.id)
        if hit is None:
            hit = known[rule.id] = _reason(rule, ctx, t, until)
        return hit

    flags: tuple[Reason, ...] = ()
    blocking: list[tuple[Rule, float, float]] = []
    # Past `clear_from` every rule with a threshold allows: only the others are asked.
    deciding = rules.asking if t >= rules.clear_from else rules.deciding
    #: The first instant a threshold that holds the contact back at t lets it go.
    flips = NEVER
    for flagging, evaluated in ((True, rules.flagging), (False, deciding)):
        for rule, check, since, until in evaluated:
            if t >= since:
                if t < until:
                    u = until
                    if until < flips:
                        flips = until
                else:
                    u = t
            else:
                u = check(ctx, t)
                if asked is not None:
                    asked.append((rule, u, flagging))
            if u > t:
                if flagging:
                    flags += (_reason(rule, ctx, t, t),)
                else:
                    blocking.append((rule, u, since))

    # `now` itself when it is the instant decided (the same value from_ts would give).
    at = now if t == now_ts and now.tzinfo is UTC else from_ts(t)
    if not blocking:
        decision = Decision(Verdict.ALLOW, (), policy.ref, at, flags=flags)
    elif denying := [b for b in blocking if b[1] == NEVER or b[0].effective_mode == "deny"]:
        ordered = denying + [b for b in blocking if b not in denying]
        reasons = tuple(reason(r, t, u, since) for r, u, since in ordered)
        decision = Decision(Verdict.DENY, reasons, policy.ref, at, flags=flags)
    else:
        decision, found = _search(ctx, rules, blocking, reason, t, at, flags)
        if not found:
            # Beyond the horizon, which moves with `now`: never memoised.
            asked = None
    if asked is not None and key is not None:
        hi, worded = _steady(ctx, asked, t, flips)
        if hi > t:
            if flags:
                # A flag's reason is dated at the decision (its `until`): kept undated.
                flags = tuple(Reason(f.rule, f.kind, f.message) for f in flags)
            wording = None
            if worded:
                # Reasons worded at t that read otherwise before hi: worded again then.
                index = {r.rule: i for i, r in enumerate(decision.reasons)}
                live = tuple((index[rule.id], rule, u) for rule, u, _ in worded)
                wording = Wording(live, decision.reasons, tuple((t, w) for _, _, w in worded))
            _remember(state.memo, key, _answer(decision, t, hi, flags, wording))
    return decision


def _remember(memo: dict[Hashable, Any], key: tuple[object, ...], answer: Answer) -> None:
    """Keep `answer` under `key` in a state's memo."""
    known = memo.get(key)
    if known is None:
        # Questions are an open set (every subject line is another): a state that never
        # changes, an opted-out customer's, keeps the last few dozen, starting over when
        # full (the states a service caches stay small).
        kept: list[tuple[object, ...]] | None = memo.get(_ANSWERS)
        if kept is None:
            kept = memo[_ANSWERS] = []
        elif len(kept) >= MAX_ANSWERS:
            for old in kept:
                memo.pop(old, None)
            kept.clear()
        kept.append(key)
        memo[key] = answer
    elif known.lo <= answer.hi and answer.lo <= known.hi and known[2:7] == answer[2:7]:
        # The same answer over a span that meets this one: both hold over the union.
        # (`grid_at` never decreases: the union's bounds as datetimes are the outer ones.)
        memo[key] = answer._replace(
            lo=min(answer.lo, known.lo),
            hi=max(answer.hi, known.hi),
            lo_at=min(answer.lo_at, known.lo_at),
            hi_at=max(answer.hi_at, known.hi_at),
        )
    else:
        memo[key] = answer


def _search(
    ctx: Context,
    rules: Rules,
    blocking: list[tuple[Rule, float, float]],
    reason: Callable[[Rule, float, float, float], Reason],
    t: float,
    at: datetime,
    flags: tuple[Reason, ...],
) -> tuple[Decision, bool]:
    """Defer until the earliest instant every rule allows (True), or deny past the
    horizon (False)."""
    policy = ctx.policy
    reasons_by_rule = {r.id: reason(r, t, u, since) for r, u, since in blocking}
    u = max(b[1] for b in blocking)
    limit = t + policy.horizon
    # Round and round the rules until all of them in a row allow the same instant (the
    # rules are pure: one that allowed u allows it still). A round is a pass in policy
    # order; the search gives up after MAX_STEPS of them or beyond the horizon.
    searching = rules.searching
    n = len(searching)
    allowing = 0  # rules in a row that allowed u
    for _ in range(MAX_STEPS):
        if u > limit:
            break
        for rule, check, since, until in searching:
            v = (until if u < until else u) if u >= since else check(ctx, u)
            if v > u:
                if rule.id not in reasons_by_rule:
                    reasons_by_rule[rule.id] = reason(rule, u, v, since)
                u = v
                allowing = 0
                if u > limit:
                    break
            else:
                allowing += 1
                if allowing == n:
                    grid = _on_grid(u)
                    if grid > u:
                        # `not_before` is a time to the microsecond: the first such time
                        # after u, which every rule must allow too (one found to a fraction
                        # of a microsecond, as pressure's, would defer again at the time
                        # rounded down).
                        u = grid
                        allowing = 0
                        if u > limit:
                            break
                        continue
                    defer = Decision(
                        Verdict.DEFER,
                        tuple(reasons_by_rule.values()),
                        policy.ref,
                        at,
                        not_before=from_ts(u),
                        flags=flags,
                    )
                    return defer, True
    horizon_days = policy.horizon / 86400
    reasons = (
        *reasons_by_rule.values(),
        Reason(
            rule="horizon",
            kind="horizon",
            message=f"No time within {horizon_days:g} days satisfies every rule.",
        ),
    )
    return Decision(Verdict.DENY, reasons, policy.ref, at, flags=flags), False


_MICROSECOND = timedelta(microseconds=1)


#: The first and last datetimes, in UTC: `grid_at` of instants beyond them.
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)


def grid_at(u: float) -> datetime:
    """The earliest datetime in UTC whose `timestamp()` is `u` or later: as `timestamp()`
    never decreases, a datetime `d` in UTC is at or after it exactly when `d.timestamp()
    >= u` (so a span of instants is compared as datetimes). Beyond the datetimes' range,
    the first or last of them."""
    if u == NEVER:
        return _LAST
    try:
        at = from_ts(u)
    except (OverflowError, ValueError, OSError):
        return _LAST if u > 0 else _FIRST
    if at.timestamp() >= u:
        return at
    try:
        return at + _MICROSECOND
    except OverflowError:
        return _LAST


def _on_grid(u: float) -> float:
    """The earliest instant at or after `u` that a datetime holds (microseconds): what a
    caller asking again at `not_before` gets as `now`."""
    return grid_at(u).timestamp()


#: A rule whose reason is worded again within an answer's span: the instant it waits for,
#: and until when its reason as worded at t stands.
Worded = tuple[Rule, float, float]


def _steady(
    ctx: Context, asked: list[tuple[Rule, float, bool]], t: float, flips: float
) -> tuple[float, list[Worded]]:
    """The first instant after `t` at which a decision at `now` about this proposal might
    differ from the one at `t`, or `t` itself when nothing can be promised; and the rules
    whose reason reads otherwise before then (`Rule.worded`), to word again.

    A decision is a function of what each rule answers at `now` (its verdict there, the
    instant it waits for, its reason): the search for a common instant starts from those
    alone. So the answer holds while every rule's does: a rule past its threshold's
    `since` until the threshold lets the contact go (the first such instant is `flips`)
    or for good, one asked through `check` as its `steady` says; and while the same holds
    count (the hold epoch) and the trigger's time and request stand."""
    state = ctx.state
    hi = state.next_hold_expiry(t)
    if flips < hi:
        hi = flips
    trigger = ctx.proposal.trigger
    if trigger is not None:
        if trigger.at is None and ctx.trigger_ts is None:
            return t, []  # a trigger the ledger does not know happened `now`: it moves
        assert ctx.trigger_event is not None
        following = state.first_event_after(ctx.trigger_event, t)
        if following is not None and following < hi:
            hi = following
    waiting: list[Worded] = []
    for rule, u, flagging in asked:
        s = rule.steady(ctx, t, u)
        if u > t:
            w = rule.worded(ctx, t, u)
            if flagging:
                s = min(s, w)  # a flag is memoised as worded
            elif w < s:
                waiting.append((rule, u, w))
        if s < hi:
            if s <= t:
                return t, []
            hi = s
    return hi, [item for item in waiting if item[2] < hi]


def pin_trigger(state: CustomerState, proposal: ContactProposal, now: datetime) -> ContactProposal:
    """The proposal with its trigger's time named: the time a decision at `now` takes it to
    be (the last such event in the ledger by then, or `now` itself for one the ledger does
    not know). Decided at `now`, both give the same answer; decided again later, as a
    queued proposal is, the pinned one still waits for the trigger it was proposed for,
    where the unpinned one would take an unknown trigger as happening again then, and
    wait its whole delay anew each time."""
    trigger = proposal.trigger
    if trigger is None or trigger.at is not None:
        return proposal
    known = state.last_event(trigger.event, now.timestamp())
    at = from_ts(known) if known is not None else now
    return replace(proposal, trigger=trigger._replace(at=at))


def next_allowed(
    state: CustomerState,
    channel: str,
    purpose: str,
    policy: Policy,
    now: datetime,
    *,
    source: str | None = None,
) -> tuple[datetime | None, Decision]:
    """The earliest time a contact on `channel` for `purpose` would be allowed (None: never),
    with the decision that explains it."""
    proposal = ContactProposal(
        customer_id=state.profile.customer_id, channel=channel, purpose=purpose, source=source
    )
    decision = decide(state, proposal, policy, now)
    if decision.verdict is Verdict.ALLOW:
        return decision.at, decision
    if decision.verdict is Verdict.DEFER:
        return decision.not_before, decision
    return None, decision


def pressure(state: CustomerState, policy: Policy, now: datetime) -> float | None:
    """The customer's contact pressure now, as the policy's first pressure rule sees it
    (None when the policy has no pressure rule)."""
    from tactful.rules.pressure import PressureRule

    for rule in policy.rules:
        if isinstance(rule, PressureRule):
            probe = ContactProposal(state.profile.customer_id, "email", "marketing")
            ctx = Context(state, probe, policy, now.timestamp())
            return rule.at(ctx, now.timestamp())
    return None
