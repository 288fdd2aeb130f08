"""`trigger`: contact prompted by a customer's behaviour waits, and lapses when moot."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tactful.durations import format_duration, parse_duration
from tactful.rules.base import NEVER, Context, Rule


class TriggerRule(Rule):
    """For proposals triggered by the events in scope: not within `delay` of the trigger,
    and denied once one of `cancelled_by` happened after it (an order completed after the
    abandoned checkout that prompted the contact). A trigger the ledger does not know is
    taken to have happened at decision time."""

    kind: Literal["trigger"]
    delay: float | None = None
    cancelled_by: tuple[str, ...] = Field(default=(), description="Event kinds that moot it.")
    waived_on_request = True

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("delay") is not None:
            data = {**data, "delay": parse_duration(data["delay"])}
        return data

    @model_validator(mode="after")
    def _something(self) -> TriggerRule:
        if self.delay is None and not self.cancelled_by:
            raise ValueError("a trigger rule needs `delay`, `cancelled_by`, or both")
        return self

    def describe(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"not within {format_duration(self.delay)} of the trigger")
        if self.cancelled_by:
            parts.append(f"cancelled by {', '.join(self.cancelled_by)}")
        return "; ".join(parts)

    def check(self, ctx: Context, t: float) -> float:
        if ctx.trigger_event is None:
            return t
        trigger_ts = ctx.trigger_ts if ctx.trigger_ts is not None else ctx.now
        for kind in self.cancelled_by:
            after = ctx.state.first_event_after(kind, trigger_ts)
            if after is not None and after <= max(t, ctx.now):
                return NEVER
        if self.delay is not None and t < trigger_ts + self.delay:
            return trigger_ts + self.delay
        return t

    def steady(self, ctx: Context, t: float, u: float) -> float:
        if ctx.trigger_event is None or u == NEVER:
            return NEVER  # nothing to wait for; or mooted, and the ledger keeps it so
        if ctx.trigger_ts is None:
            return t  # taken to have happened `now`: it moves with the clock
        s = u if u > t else NEVER  # the delay ends at u
        for kind in self.cancelled_by:
            after = ctx.state.first_event_after(kind, ctx.trigger_ts)
            if after is not None and after < s:
                s = after  # mooted from then on
        return s
