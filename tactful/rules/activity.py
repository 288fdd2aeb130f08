"""`activity`: never interrupt a customer who is active, or who is in the middle of checkout."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.model import EventKind
from tactful.rules.base import ALWAYS, Context, Rule, Threshold, duration_validator


class ActivityRule(Rule):
    """While the customer is active (`when: active`, any activity in the last `quiet`) or
    has a checkout open (`when: checkout`: started, not completed, activity in the last
    `quiet`), defer until `quiet` after the last activity."""

    kind: Literal["activity"]
    when: Literal["active", "checkout"]
    quiet: float = Field(gt=0)
    waived_on_request = True

    _quiet = duration_validator("quiet")

    def describe(self) -> str:
        what = "while active" if self.when == "active" else "while a checkout is open"
        return f"{what}: wait {format_duration(self.quiet)} after the last activity"

    def check(self, ctx: Context, t: float) -> float:
        state = ctx.state
        last = state.last_activity(t)
        if last is None or t - last >= self.quiet:
            return t
        if self.when == "checkout":
            started = state.last_event(EventKind.CHECKOUT_STARTED, t)
            if started is None:
                return t
            completed = state.first_event_after(EventKind.ORDER_COMPLETED, started)
            if completed is not None and completed <= t:
                return t
        return last + self.quiet

    def steady(self, ctx: Context, t: float, u: float) -> float:
        # The answer moves only with the ledger's events (the last activity, a checkout
        # started or completed) and, while it waits, at the instant it waits for.
        s = ctx.state.next_event_after(t)
        return min(s, u) if u > t else s

    def threshold(self, ctx: Context) -> Threshold:
        # Past the last activity, it is the one that counts; a checkout (an activity too)
        # started before it is open exactly when no order completed after it.
        state = ctx.state
        activity = state.derived.activity
        if not activity:
            return ALWAYS, ALWAYS
        last = activity[-1]
        if self.when == "checkout":
            started = state.last_event(EventKind.CHECKOUT_STARTED, last)
            if started is None:
                return last, ALWAYS
            if state.first_event_after(EventKind.ORDER_COMPLETED, started) is not None:
                return last, ALWAYS
        return last, last + self.quiet
