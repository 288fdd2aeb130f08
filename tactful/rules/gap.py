"""`gap`: at least a minimum time between two contacts in scope."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.rules.base import Context, Rule, duration_validator


class GapRule(Rule):
    """At least `gap` between any two contacts in scope (counted per `per` keys)."""

    kind: Literal["gap"]
    gap: float = Field(gt=0)
    per: tuple[str, ...] = ()
    waived_on_request = True

    _gap = duration_validator("gap")

    def describe(self) -> str:
        return f"at least {format_duration(self.gap)} apart"

    def check(self, ctx: Context, t: float) -> float:
        counted = self.counted(ctx, self.per)
        if not counted:
            return t
        now = ctx.now
        gap = self.gap
        u = t
        # Push u past every contact closer than `gap`; future holds may push it further.
        moved = True
        while moved:
            moved = False
            for c in counted:
                if abs(c.ts - u) < gap and c.counts_at(now):
                    u = c.ts + gap
                    moved = True
        return u
