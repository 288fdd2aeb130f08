"""One kernel per rule kind: a rule's `check(ctx, t)` for every customer of a snapshot at once.

A kernel returns an `Answer`: per customer the rule's answer at `t`, and where that answer
is exact (`ok`); everywhere else the customer goes to the scalar engine. Every kernel but
the schedule kinds also promises what the engine's search needs: a rule that allows at
`t` allows at every later instant, and one that answers `u > t` allows every instant from
`u` on. `hours` keeps no such promise and gives `later` instead: its answer at later
instants, looked up in each place's open spans (`OpenHours`).

Kernels state the scalar rule's float arithmetic in closed form only where it is exact
(times in `columns.EXACT_LO`..`EXACT_HI`, durations whole multiples of 2**-22 s) and
replicate its comparisons operation for operation; a kind without a kernel, or a customer
whose ledger a kernel does not cover (a future contact, a decline, a call-back...), is
answered by the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from tactful.audience.columns import (
    F64,
    HELD,
    I64,
    SENT,
    Bool,
    Snapshot,
    exact_duration,
    exact_time,
)
from tactful.model import REQUESTED_TRIGGERS, ContactProposal, ContactStatus
from tactful.policy.document import Policy
from tactful.rules.activity import ActivityRule
from tactful.rules.base import NEVER, Context, Rule, contact_key
from tactful.rules.callback import CallbackRule
from tactful.rules.cap import CapRule
from tactful.rules.consent import ConsentRule
from tactful.rules.content import ContentRule
from tactful.rules.decline import DeclineRule
from tactful.rules.gap import GapRule
from tactful.rules.hours import SEARCH_DAYS, HoursRule
from tactful.rules.preferences import PreferencesRule
from tactful.rules.pressure import PressureRule
from tactful.rules.session import SessionRule
from tactful.rules.snooze import SnoozeRule
from tactful.rules.trigger import TriggerRule
from tactful.rules.unanswered import UnansweredRule
from tactful.state import LedgerContact

#: Pressure within this much of the room left is handed to the engine (its sum runs in
#: another order, so the last bits may differ).
PRESSURE_MARGIN = 1e-7

Later = Callable[[I64, F64], F64]


@dataclass(slots=True)
class Answer:
    """A rule's answer at `t` per customer, and where it is exact."""

    at_t: F64
    ok: Bool
    later: Later | None = None


@dataclass(slots=True)
class Counted:
    """Per customer, over the contacts a rule counts that count at `now`: how many, the
    latest time, and where they start in `times` (their times, customer after customer)."""

    n: I64
    last: F64
    first: I64
    times: F64
    #: False where the count ignored a `per` key it cannot test (tags): then `n` is an
    #: upper bound, exact only when it is below the rule's count.
    exact_per: bool = True

    def kth_latest(self, k: int) -> F64:
        """The k-th latest counted time (nan where fewer than k)."""
        enough = self.n >= k
        index = np.where(enough, self.first + self.n - k, 0)
        picked = self.times[index] if len(self.times) else np.zeros(len(self.n))
        return np.where(enough, picked, math.nan)


@dataclass
class Frame:
    """One audience check: the snapshot, the proposal, the policy, `now` and the instant
    decided `t`, with what several kernels share."""

    snap: Snapshot
    proposal: ContactProposal
    policy: Policy
    now: float
    t: float
    _counting: Bool | None = None
    _counted: dict[Any, Counted] = field(default_factory=dict)
    _contexts: dict[int, Context] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.snap)

    def full(self, value: float) -> F64:
        return np.full(self.size, value)

    def everyone(self) -> Bool:
        return np.ones(self.size, dtype=np.bool_)

    def nobody(self) -> Bool:
        return np.zeros(self.size, dtype=np.bool_)

    def context(self, row: int) -> Context:
        """The scalar engine's context for the customer in `row` (memoised per row)."""
        ctx = self._contexts.get(row)
        if ctx is None:
            ctx = self._contexts[row] = Context(
                self.snap.states[row], self.proposal, self.policy, self.now
            )
        return ctx

    @property
    def counting(self) -> Bool:
        """Per contact: it occupies a slot at `now` (sent, or held and not expired)."""
        if self._counting is None:
            s = self.snap
            self._counting = (s.c_status == SENT) | (
                (s.c_status == HELD) & (s.c_expires > self.now)
            )
        return self._counting

    def shape_test(self, test: Callable[[LedgerContact], bool]) -> Bool:
        """`test` asked once per distinct contact shape."""
        out = [test(_contact_of(shape)) for shape in self.snap.shapes]
        return np.array(out, dtype=np.bool_) if out else np.zeros(0, dtype=np.bool_)

    def counted(self, rule: Rule, per: tuple[str, ...]) -> Counted:
        """`rule.counted_times(ctx, per)` for every customer."""
        token, test = rule._counting
        key = (token, per)
        hit = self._counted.get(key)
        if hit is not None:
            return hit
        kept = [f for f in per if not f.startswith("tags.")]
        if kept:
            want = {f: self.context(0).key_of(f) for f in kept}

            def keyed(c: LedgerContact) -> bool:
                return test(c) and all(contact_key(c, f) == v for f, v in want.items())

            shape_ok = self.shape_test(keyed)
        else:
            shape_ok = self.shape_test(test)
        s = self.snap
        mask = shape_ok[s.c_shape] & self.counting if len(s.c_shape) else self.nobody()[:0]
        hit = self._counted[key] = _runs(s.offsets, s.c_ts, mask)
        hit.exact_per = len(kept) == len(per)
        return hit


def _contact_of(shape: tuple[Any, ...]) -> LedgerContact:
    channel, purpose, source, campaign, trigger, flags, offer = shape
    return LedgerContact(
        contact_id="",
        ts=0.0,
        channel=channel,
        purpose=purpose,
        status=ContactStatus.SENT,
        outcome=None,
        hold_expires=None,
        trigger_event=trigger,
        trigger_ts=None,
        offer=offer,
        campaign=campaign,
        source=source,
        flags=flags,
        tags={},
    )


def _runs(offsets: I64, ts: F64, mask: Bool) -> Counted:
    """Count, latest and start of the masked entries of each customer's run."""
    cm = np.zeros(len(mask) + 1, dtype=np.int64)
    np.cumsum(mask, out=cm[1:])
    first = cm[offsets[:-1]]
    n = cm[offsets[1:]] - first
    times = ts[mask]
    has = n > 0
    index = np.where(has, first + n - 1, 0)
    picked = times[index] if len(times) else np.zeros(len(n))
    return Counted(n=n, last=np.where(has, picked, -math.inf), first=first, times=times)


# -- kernels ---------------------------------------------------------------------------


def _by_code(frame: Frame, rule: Rule, codes: list[int], column: I64) -> F64:
    """`rule.check` at t asked once per signature code, on its representative."""
    values = np.array([rule.check(frame.context(rep), frame.t) for rep in codes], dtype=np.float64)
    return values[column] if len(values) else frame.full(frame.t)


def consent(frame: Frame, rule: Rule) -> Answer:
    codes = frame.snap.consent_codes.reps
    return Answer(
        _by_code(frame, rule, codes, frame.snap.consent.astype(np.int64)), frame.everyone()
    )


def content(frame: Frame, rule: Rule) -> Answer:
    # The proposal's text alone decides: the same for every customer.
    return Answer(frame.full(rule.check(frame.context(0), frame.t)), frame.everyone())


def always(frame: Frame, rule: Rule) -> Answer:
    return Answer(frame.full(frame.t), frame.everyone())


def preferences(frame: Frame, rule: Rule) -> Answer:
    s = frame.snap
    chosen = [
        NEVER if channels is not None and frame.proposal.channel not in channels else frame.t
        for channels in s.channel_codes.values
    ]
    at_t = np.array(chosen, dtype=np.float64)[s.pref_channels]
    # A pace is a rolling cap over the customer's own window: the engine answers it,
    # unless the channel is refused anyway.
    return Answer(at_t, ~s.pref_pace | (at_t == NEVER))


def snooze(frame: Frame, rule: Rule) -> Answer:
    until, t = frame.snap.snooze_until, frame.t
    return Answer(np.where(t < until, until, t), frame.everyone())


def activity(frame: Frame, rule: Rule) -> Answer:
    assert isinstance(rule, ActivityRule)
    s, t = frame.snap, frame.t
    last = s.activity_last
    quiet = (t - last) >= rule.quiet
    if rule.when == "checkout":
        quiet = quiet | ~s.checkout_open
    return Answer(np.where(quiet, t, last + rule.quiet), t >= s.activity_since)


def cap(frame: Frame, rule: Rule) -> Answer:
    assert isinstance(rule, CapRule)
    t, window = frame.t, rule.window
    c = frame.counted(rule, rule.per)
    under = c.n < rule.count  # fewer than `count` count at all: allowed at every instant
    if not c.exact_per:
        return Answer(frame.full(t), under)
    if window == "session":
        # Past the last visit no visit is live: nothing to count in it.
        return Answer(frame.full(t), under | (t >= frame.snap.sessions_over))
    if not isinstance(window, float) or not exact_time(t) or not exact_duration(window):
        return Answer(frame.full(t), under)
    kth = c.kth_latest(rule.count)
    fits = kth <= t - window
    at_t = np.where(under | fits, t, kth + window)
    return Answer(at_t, under | (frame.snap.exact & (c.last <= t)))


def gap(frame: Frame, rule: Rule) -> Answer:
    assert isinstance(rule, GapRule)
    t = frame.t
    c = frame.counted(rule, rule.per)
    none = c.n == 0
    if not c.exact_per or not exact_time(t) or not exact_duration(rule.gap):
        return Answer(frame.full(t), none)
    far = (t - c.last) >= rule.gap
    at_t = np.where(none | far, t, c.last + rule.gap)
    return Answer(at_t, none | (frame.snap.exact & (c.last <= t)))


def pressure(frame: Frame, rule: Rule) -> Answer:
    assert isinstance(rule, PressureRule)
    s, t, policy = frame.snap, frame.t, frame.policy
    room = rule.budget - policy.weight(frame.proposal.channel)
    if room < 0:
        return Answer(frame.full(NEVER), frame.everyone())
    weights = np.array(
        [0.0 if shape[4] in REQUESTED_TRIGGERS else policy.weight(shape[0]) for shape in s.shapes],
        dtype=np.float64,
    )
    if not len(s.c_ts):
        return Answer(frame.full(t), frame.everyone())
    w = weights[s.c_shape] * np.where(s.c_unanswered, rule.unanswered_factor, 1.0)
    mask = frame.counting & (w > 0)
    owner = np.repeat(np.arange(frame.size), np.diff(s.offsets))
    decayed = w[mask] * np.exp2(-(t - s.c_ts[mask]) / rule.half_life)
    p = np.bincount(owner[mask], weights=decayed, minlength=frame.size)
    last = _runs(s.offsets, s.c_ts, mask).last
    past = last <= t
    # Clearly within budget, every term in the past: allowed now and (decaying) later.
    clear = past & (p <= room - PRESSURE_MARGIN)
    at_t = frame.full(t)
    # Near or over the budget with every term in the past: the rule's own answer, one
    # customer at a time (few of them). Pressure then only decays, so the rule allows
    # every instant from its answer on, as the search needs.
    for row in np.flatnonzero(past & ~clear).tolist():
        at_t[row] = rule.check(frame.context(row), t)
    return Answer(at_t, past)


def decline(frame: Frame, rule: Rule) -> Answer:
    return Answer(frame.full(frame.t), ~frame.snap.has_declines)


def callback(frame: Frame, rule: Rule) -> Answer:
    return Answer(frame.full(frame.t), ~frame.snap.has_callback)


def unanswered(frame: Frame, rule: Rule) -> Answer:
    # No unanswered attempt among those it counts (any status): no streak, ever.
    s = frame.snap
    _, test = rule._counting
    shape_ok = frame.shape_test(test)
    mask = shape_ok[s.c_shape] & s.c_unanswered if len(s.c_shape) else frame.nobody()[:0]
    return Answer(frame.full(frame.t), _runs(s.offsets, s.c_ts, mask).n == 0)


def session(frame: Frame, rule: Rule) -> Answer:
    assert isinstance(rule, SessionRule)
    # Without any visit: nobody on the site (`live` refuses), nothing else to wait for.
    value = NEVER if rule.condition == "live" else frame.t
    return Answer(frame.full(value), ~frame.snap.has_sessions)


def trigger(frame: Frame, rule: Rule) -> Answer:
    # A proposal with no trigger passes every trigger rule.
    return Answer(
        frame.full(frame.t), frame.everyone() if frame.proposal.trigger is None else frame.nobody()
    )


def hours(frame: Frame, rule: Rule) -> Answer:
    assert isinstance(rule, HoursRule)
    s = frame.snap
    at_t = _by_code(frame, rule, s.place_codes.reps, s.place.astype(np.int64))
    return Answer(at_t, frame.everyone(), OpenHours(frame, rule).later)


class OpenHours:
    """`HoursRule.check` at many instants, place by place: each zone's open spans over the
    days asked about are laid out once as sorted arrays, and an instant's answer is found
    by binary search, in the rule's own loop over the zones. Instants the spans do not
    reach (a long closure) are asked of the rule itself."""

    #: Local days of spans laid out per zone at most; later instants go to the rule.
    MAX_DAYS = 120
    #: Passes over the zones before the rule itself is asked (one or two suffice).
    MAX_PASSES = 16

    def __init__(self, frame: Frame, rule: HoursRule) -> None:
        self.frame = frame
        self.rule = rule
        self.place = frame.snap.place.astype(np.int64)
        self.memo: dict[tuple[int, float], float] = {}

    def later(self, rows: I64, u: F64) -> F64:
        """The rule's answer at `u[i]` for the customer in `rows[i]`."""
        out = np.empty(len(rows))
        if not len(rows):
            return out
        codes = self.place[rows]
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.diff(codes[order])) + 1
        for group in np.split(order, starts):
            out[group] = self._at_place(int(codes[group[0]]), u[group])
        return out

    def _at_place(self, code: int, u: F64) -> F64:
        rule = self.rule
        ctx = self.frame.context(self.frame.snap.place_codes.reps[code])
        country = ctx.country if rule.holidays else None
        subdivision = ctx.state.profile.subdivision
        tables = [self._spans(tz, country, subdivision, u) for tz in ctx.zones]
        limit = u + SEARCH_DAYS * 86400.0
        out = np.full(len(u), math.nan)
        cur = u.copy()
        active = np.arange(len(u))
        lost = np.zeros(len(u), dtype=np.bool_)
        for _ in range(self.MAX_PASSES):
            if not len(active):
                break
            at = cur[active]
            moved = np.zeros(len(active), dtype=np.bool_)
            for table in tables:
                if table is None:
                    lost[active] = True
                    break
                begin, end = table
                i = np.searchsorted(end, at, side="right")
                off = i >= len(end)
                lost[active[off]] = True
                v = np.maximum(at, begin[np.minimum(i, len(end) - 1)] if len(end) else at)
                step = (v > at) & ~off
                at = np.where(step, v, at)
                moved |= step
            cur[active] = at
            settled = ~moved | lost[active]
            out[active[~moved]] = at[~moved]
            past = moved & (at > limit[active])
            out[active[past]] = NEVER
            active = active[~settled & ~past]
        lost[active] = True
        for j in np.flatnonzero(lost).tolist():
            key = (code, float(u[j]))
            hit = self.memo.get(key)
            if hit is None:
                hit = self.memo[key] = rule.check(ctx, key[1])
            out[j] = hit
        return out

    def _spans(
        self, tz: ZoneInfo, country: str | None, subdivision: str | None, u: F64
    ) -> tuple[F64, F64] | None:
        """Starts and ends of the zone's open spans from the local day of `min(u)` on, or
        None where the ends are not in order (overlapping spans: the rule's own scan)."""
        first = datetime.fromtimestamp(float(u.min()), tz).date()
        last = datetime.fromtimestamp(float(u.max()), tz).date()
        days = min((last - first).days + 8, self.MAX_DAYS)
        begin: list[float] = []
        end: list[float] = []
        for k in range(days):
            for a, b in self.rule._spans(tz, country, subdivision, first + timedelta(days=k)):
                begin.append(a)
                end.append(b)
        ends = np.array(end, dtype=np.float64)
        if len(ends) > 1 and bool((np.diff(ends) < 0).any()):
            return None
        return np.array(begin, dtype=np.float64), ends


Kernel = Callable[[Frame, Rule], Answer]

KERNELS: dict[type[Rule], Kernel] = {
    ConsentRule: consent,
    ContentRule: content,
    PreferencesRule: preferences,
    SnoozeRule: snooze,
    ActivityRule: activity,
    CapRule: cap,
    GapRule: gap,
    PressureRule: pressure,
    DeclineRule: decline,
    CallbackRule: callback,
    UnansweredRule: unanswered,
    SessionRule: session,
    TriggerRule: trigger,
    HoursRule: hours,
}


def answer(frame: Frame, rule: Rule) -> Answer:
    """The rule's kernel answer, or "ask the engine" for every customer."""
    kernel = KERNELS.get(type(rule))
    if kernel is None:
        return Answer(frame.full(frame.t), frame.nobody())
    return kernel(frame, rule)
