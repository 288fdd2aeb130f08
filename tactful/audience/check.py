"""Check one proposal for a whole audience: the engine's verdicts, in columns.

For the proposal's plan, every deciding rule's kernel answers at `t` for every customer;
they combine as `tactful.engine.decide` combines answers: allow when none blocks, deny
when a blocking rule denies or says never, else defer to the earliest instant every rule
allows (the latest answer, moved on by the schedule rule if it is closed then), or deny
past the policy's horizon. Customers a kernel cannot answer exactly, or whose search
needs more than one schedule rule, are decided by the engine itself.

Reasons are produced on demand (`AudienceResult.decision`): the same `Reason`s the engine
gives, built by the engine's own `_reason` for the customers that are not allowed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from tactful.audience.columns import F64, I8, I64, Bool, Snapshot
from tactful.audience.kernels import Answer, Frame, Later, answer
from tactful.engine import _reason, decide
from tactful.model import ContactProposal, Reason, Verdict, from_ts
from tactful.policy.document import Policy
from tactful.rules.base import NEVER, Rule
from tactful.rules.hours import HoursRule

ALLOW, DEFER, DENY = 0, 1, 2
VERDICTS = (Verdict.ALLOW, Verdict.DEFER, Verdict.DENY)


@dataclass(slots=True)
class Outcome:
    """One customer's answer: what the engine's `Decision` says, less the audit fields."""

    customer_id: str
    verdict: Verdict
    not_before: datetime | None
    reasons: tuple[Reason, ...]
    #: "vector" or "engine": which path decided it.
    path: str


@dataclass
class AudienceResult:
    """Verdicts, `not_before` and reason rules of an audience, in columns."""

    snap: Snapshot
    frame: Frame
    rules: list[Rule]  # the plan's deciding rules, in policy order
    verdict: I8
    not_before: F64  # nan unless deferred
    blocked: Bool  # (rules, customers): the rule blocks at t
    at_t: F64  # (rules, customers): its answer at t
    horizon: Bool  # denied: no instant within the horizon
    moved: I64  # the schedule rule that moved the search on (-1: none)
    moved_at: F64  # the instant it was asked at
    moved_to: F64  # its answer there
    engine: Bool  # decided by the scalar engine
    decisions: dict[int, tuple[Verdict, datetime | None, tuple[Reason, ...]]] = field(
        default_factory=dict
    )
    #: Hours reasons by (rule, place code, t, until): their text reads only the place.
    hours_reasons: dict[tuple[int, int, float, float], Reason] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.verdict)

    @property
    def paths(self) -> dict[str, int]:
        """How many customers each path decided."""
        fallback = int(self.engine.sum())
        return {"vector": len(self) - fallback, "engine": fallback}

    def counts(self) -> dict[str, int]:
        """Customers per verdict."""
        found = np.bincount(self.verdict, minlength=3)
        return {v.value: int(found[i]) for i, v in enumerate(VERDICTS)}

    def by_rule(self) -> dict[str, int]:
        """Customers held back (deferred or denied) by each rule id, `horizon` included."""
        out: Counter[str] = Counter()
        vector = ~self.engine
        for r, rule in enumerate(self.rules):
            hit = int((self.blocked[r] & vector).sum()) + int(
                ((self.moved == r) & ~self.blocked[r] & vector).sum()
            )
            if hit:
                out[rule.id] += hit
        horizon = int((self.horizon & vector).sum())
        if horizon:
            out["horizon"] += horizon
        for row in np.flatnonzero(self.engine).tolist():
            for reason in self.decisions[row][2]:
                out[reason.rule] += 1
        return dict(out)

    def outcome(self, row: int) -> Outcome:
        """The customer in `row`'s answer, reasons and all."""
        cid = self.snap.customer_ids[row]
        if self.engine[row]:
            verdict, nb, reasons = self.decisions[row]
            return Outcome(cid, verdict, nb, reasons, "engine")
        v = int(self.verdict[row])
        if v == ALLOW:
            return Outcome(cid, Verdict.ALLOW, None, (), "vector")
        reasons = self._reasons(row, v)
        nb = from_ts(float(self.not_before[row])) if v == DEFER else None
        return Outcome(cid, VERDICTS[v], nb, reasons, "vector")

    def outcomes(self) -> Iterator[Outcome]:
        for row in range(len(self)):
            yield self.outcome(row)

    def _reasons(self, row: int, v: int) -> tuple[Reason, ...]:
        frame = self.frame
        t = frame.t
        blocking = [r for r in range(len(self.rules)) if self.blocked[r, row]]
        if v == DENY and not self.horizon[row]:
            denying = [r for r in blocking if self._denies(r, row)]
            blocking = denying + [r for r in blocking if r not in denying]
        reasons = [self._reason(r, row, t, float(self.at_t[r, row])) for r in blocking]
        moved = int(self.moved[row])
        if moved >= 0 and moved not in blocking:
            reasons.append(
                self._reason(moved, row, float(self.moved_at[row]), float(self.moved_to[row]))
            )
        if self.horizon[row]:
            days = frame.policy.horizon / 86400
            reasons.append(
                Reason(
                    rule="horizon",
                    kind="horizon",
                    message=f"No time within {days:g} days satisfies every rule.",
                )
            )
        return tuple(reasons)

    def _denies(self, r: int, row: int) -> bool:
        return bool(self.at_t[r, row] == NEVER) or self.rules[r].effective_mode == "deny"

    def _reason(self, r: int, row: int, t: float, until: float) -> Reason:
        rule = self.rules[r]
        if "{" not in rule.message:
            return Reason(
                rule=rule.id,
                kind=rule.kind,
                message=rule.message,
                until=None if until == NEVER else from_ts(until),
            )
        if isinstance(rule, HoursRule):
            key = (r, int(self.snap.place[row]), t, until)
            hit = self.hours_reasons.get(key)
            if hit is None:
                hit = self.hours_reasons[key] = _reason(rule, self.frame.context(row), t, until)
            return hit
        return _reason(rule, self.frame.context(row), t, until)


def check_audience(
    snap: Snapshot,
    proposal: ContactProposal,
    policy: Policy,
    now: datetime,
    *,
    vector: bool = True,
) -> AudienceResult:
    """Decide `proposal` (its `customer_id` ignored) for every customer of `snap` at `now`,
    as `tactful.engine.decide` would for each. `vector=False`: the engine for everyone."""
    now_ts = now.timestamp()
    t = now_ts if proposal.at is None else max(now_ts, proposal.at.timestamp())
    frame = Frame(snap, proposal, policy, now_ts, t)
    n = len(snap)
    deciding: list[Rule] = []
    answers: list[Answer] = []
    engine = np.zeros(n, dtype=np.bool_)
    can_vector = vector and n > 0 and proposal.trigger is None
    if can_vector:
        ctx0 = frame.context(0)
        plan = policy.plan(
            ctx0.channel, ctx0.purpose, proposal.source, proposal.campaign, None, ctx0.flags
        )
        for step in plan.steps:
            if step.mode == "flag":
                continue
            a = answer(frame, step.rule)
            if step.regions:
                # Outside its regions the rule does not apply: allowed at every instant.
                applies = _in_regions(frame, step.regions)
                a = Answer(
                    np.where(applies, a.at_t, t),
                    a.ok | ~applies,
                    None if a.later is None else _where(applies, a.later),
                )
            deciding.append(step.rule)
            answers.append(a)
            engine |= ~a.ok
    else:
        engine[:] = True

    r_count = len(deciding)
    at_t = np.vstack([a.at_t for a in answers]) if answers else np.full((0, n), t)
    blocked = at_t > t
    modes = np.array([rule.effective_mode == "deny" for rule in deciding], dtype=np.bool_)
    denies = (blocked & ((at_t == NEVER) | modes[:, None])).any(axis=0)
    any_block = blocked.any(axis=0)
    u0 = at_t.max(axis=0, initial=t)
    verdict = np.where(any_block, np.where(denies, DENY, DEFER), ALLOW).astype(np.int8)
    not_before = np.full(n, math.nan)
    horizon = np.zeros(n, dtype=np.bool_)
    moved = np.full(n, -1, dtype=np.int64)
    moved_at = np.full(n, math.nan)
    moved_to = np.full(n, math.nan)

    limit = t + policy.horizon
    searching = (verdict == DEFER) & ~engine
    schedules = [r for r, a in enumerate(answers) if a.later is not None]
    if len(schedules) > 1:
        engine |= searching  # more than one schedule: the engine's search
        searching &= False
    far = searching & (u0 > limit)
    horizon |= far
    searching &= ~far
    if schedules:
        r = schedules[0]
        rows = np.flatnonzero(searching)
        later = answers[r].later
        assert later is not None
        v = later(rows, u0[rows]) if len(rows) else np.zeros(0)
        moves = v > u0[rows]
        moved[rows[moves]] = r
        moved_at[rows[moves]] = u0[rows[moves]]
        moved_to[rows[moves]] = v[moves]
        u = u0.copy()
        u[rows] = v
        beyond = searching & (u > limit)
        horizon |= beyond
        not_before = np.where(searching & ~beyond, u, math.nan)
    else:
        not_before = np.where(searching, u0, math.nan)
    # As the engine's search: `not_before` is the first time to the microsecond at or after
    # the instant found (`engine._on_grid`), which the rules must allow too. Kernels allow
    # every instant after their answer; a schedule is asked again where the time moved.
    rows = np.flatnonzero(~np.isnan(not_before))
    if len(rows):
        found = not_before[rows]
        grid = on_grid(found)
        off = grid > found
        if schedules and off.any():
            later = answers[schedules[0]].later
            assert later is not None
            closed = later(rows[off], grid[off]) > grid[off]
            engine[rows[off][closed]] = True  # it closed within that microsecond
        not_before[rows] = grid
        beyond = grid > limit
        horizon[rows[beyond]] = True
        not_before[rows[beyond]] = math.nan
    verdict[horizon] = DENY

    result = AudienceResult(
        snap=snap,
        frame=frame,
        rules=deciding,
        verdict=verdict,
        not_before=not_before,
        blocked=blocked if r_count else np.zeros((0, n), dtype=np.bool_),
        at_t=at_t,
        horizon=horizon,
        moved=moved,
        moved_at=moved_at,
        moved_to=moved_to,
        engine=engine,
    )
    for row in np.flatnonzero(engine).tolist():
        d = decide(snap.states[row], proposal, policy, now)
        result.decisions[row] = (d.verdict, d.not_before, d.reasons)
        verdict[row] = VERDICTS.index(d.verdict)
        not_before[row] = d.not_before.timestamp() if d.not_before is not None else math.nan
    return result


def on_grid(u: F64) -> F64:
    """`tactful.engine._on_grid` for many instants: the earliest instant at or after each
    that a datetime holds (whole microseconds, rounded as `datetime.fromtimestamp` rounds,
    and read back as `datetime.timestamp` reads it)."""
    frac, whole = np.modf(u)
    micros = np.round(frac * 1e6)  # half to even, as CPython
    ticks = whole * 1e6 + micros  # whole numbers, exact in a float at these sizes
    t = ticks / 1e6
    return np.where(t >= u, t, (ticks + 1) / 1e6)


def _where(applies: Bool, later: Later) -> Later:
    """`later` for the customers a rule applies to; the others it allows at every instant."""

    def answer(rows: I64, u: F64) -> F64:
        out = u.copy()
        hit = applies[rows]
        if hit.any():
            out[hit] = later(rows[hit], u[hit])
        return out

    return answer


def _in_regions(frame: Frame, regions: tuple[str, ...]) -> Bool:
    memo: dict[tuple[object, ...], bool] = {}
    out = np.zeros(frame.size, dtype=np.bool_)
    for row, state in enumerate(frame.snap.states):
        p = state.profile
        key = (p.country, p.subdivision, p.phones, p.timezone)
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = frame.context(row).in_regions(regions)
        out[row] = hit
    return out


def utc_now() -> datetime:
    """The wall clock, for shells (the check itself takes `now`)."""
    return datetime.now(UTC)
