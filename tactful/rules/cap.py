"""`cap`: at most N contacts per rolling window, calendar period or session."""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from tactful.durations import format_duration, parse_duration
from tactful.rules.base import ALWAYS, NEVER, Context, Rule, Threshold, per_validator

Calendar = Literal["session", "day", "week", "month"]


def rolling_earliest(times: list[float], t: float, count: int, window: float) -> float:
    """Earliest u >= t at which one more contact keeps every rolling window at <= count.

    `times` is sorted. A window is (x - window, x]; the new contact at u lies in the windows
    with x in [u, u + window). Feasibility only improves where an old contact leaves a
    window (a + window), so those instants are the only candidates beside t itself.
    """
    if len(times) < count:
        return t
    candidates = [t, *(a + window for a in times if a + window > t)]
    candidates.sort()
    for u in candidates:
        if _fits(times, u, count, window):
            return u
    return NEVER  # pragma: no cover - the last candidate always fits


def rolling_threshold(times: list[float], count: int, window: float) -> Threshold:
    """`rolling_earliest` as a threshold (see `Rule.threshold`): past the last contact, one
    more fits once the count-th latest has left the window."""
    n = len(times)
    if n < count:
        return ALWAYS, ALWAYS
    return times[-1], times[n - count] + window


def _fits(times: list[float], u: float, count: int, window: float) -> bool:
    # Windows ending at u, and at each later contact within (u, u + window).
    ends = [u, *times[bisect.bisect_right(times, u) : bisect.bisect_left(times, u + window)]]
    for x in ends:
        inside = bisect.bisect_right(times, x) - bisect.bisect_right(times, x - window)
        if inside + 1 > count:
            return False
    return True


def period_bounds(t: float, period: str, tz: ZoneInfo) -> tuple[float, float]:
    """The local calendar day, ISO week (Monday first) or month holding t, as epoch seconds.

    Built from wall-clock dates, so a DST day is 23 or 25 hours long, as it is locally.
    """
    day = datetime.fromtimestamp(t, tz).date()
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
    return _midnight(start, tz), _midnight(end, tz)


def _midnight(day: date, tz: ZoneInfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


class CapRule(Rule):
    """At most `count` contacts in scope per `window`: a duration (rolling), or `day`,
    `week`, `month` in the customer's local calendar, or `session` (one visit)."""

    kind: Literal["cap"]
    count: int = Field(ge=1)
    window: float | Calendar
    per: tuple[str, ...] = Field(
        default=(),
        description="Count separately per value of these proposal fields "
        "(offer, campaign, source, trigger, channel, purpose, tags.NAME).",
    )
    waived_on_request = True

    _per = per_validator("per")

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: object) -> object:
        if isinstance(v, str) and v in ("session", "day", "week", "month"):
            return v
        return parse_duration(v)  # type: ignore[arg-type]

    def describe(self) -> str:
        w = self.window if isinstance(self.window, str) else format_duration(self.window)
        per = f" per {', '.join(self.per)}" if self.per else ""
        return f"at most {self.count} per {w}{per}"

    def check(self, ctx: Context, t: float) -> float:
        window = self.window
        if window == "session":
            return self._check_session(ctx, t)
        times = self.counted_times(ctx, self.per)
        count = self.count
        n = len(times)
        if n < count:
            return t
        if isinstance(window, float):
            # The common case, with every counted contact at or before t: the only window
            # that can hold t is the one ending at t, so t fits exactly when the count-th
            # latest contact has left it. The same test `rolling_earliest` makes at t.
            if times[-1] <= t and times[n - count] <= t - window:
                return t
            return rolling_earliest(times, t, count, window)
        tz = ctx.zones[0]
        u = t
        for _ in range(400):
            start, end = period_bounds(u, window, tz)
            n = bisect.bisect_left(times, end) - bisect.bisect_left(times, start)
            if n < count:
                return u
            u = end
        return NEVER

    def threshold(self, ctx: Context) -> Threshold | None:
        if self.window == "session":
            return ctx.state.sessions_over(), ALWAYS  # no visit, nothing to count in it
        if not isinstance(self.window, float):
            return None  # calendar periods move with t
        return rolling_threshold(self.counted_times(ctx, self.per), self.count, self.window)

    def threshold_fields(self) -> tuple[str, ...]:
        return self.per

    def steady(self, ctx: Context, t: float, u: float) -> float:
        if self.window != "session":
            return t  # calendar periods: their bounds are not worked out here
        # Moves only with the visit and the next counted contact.
        s = ctx.state.next_visit_change(t)
        times = self.counted_times(ctx, self.per)
        i = bisect.bisect_right(times, t)
        return min(s, times[i]) if i < len(times) else s

    def _check_session(self, ctx: Context, t: float) -> float:
        times = self.counted_times(ctx, self.per)
        if not times:
            return t
        session = ctx.state.session_at(t)
        if session is None:
            return t
        # Counted contacts that count now, in the visit up to t: sorted times, so bisect.
        n = bisect.bisect_right(times, t) - bisect.bisect_left(times, session.start)
        return NEVER if n >= self.count else t
