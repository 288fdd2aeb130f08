"""`gap`: at least a minimum time between two contacts in scope."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.rules.base import ALWAYS, Context, Rule, Threshold, duration_validator, per_validator


class GapRule(Rule):
    """At least `gap` between any two contacts in scope (counted per `per` keys)."""

    kind: Literal["gap"]
    gap: float = Field(gt=0)
    per: tuple[str, ...] = ()
    waived_on_request = True

    _gap = duration_validator("gap")
    _per = per_validator("per")

    def describe(self) -> str:
        return f"at least {format_duration(self.gap)} apart"

    def check(self, ctx: Context, t: float) -> float:
        times = self.counted_times(ctx, self.per)
        if not times:
            return t
        gap = self.gap
        last = times[-1]
        if last <= t and t - last >= gap:
            return t  # every contact that counts lies at least `gap` before t
        now = ctx.now
        u = t
        # Push u past every contact closer than `gap`; future holds may push it further.
        moved = True
        while moved:
            moved = False
            for c in self.counted(ctx, self.per):
                if abs(c.ts - u) < gap and c.counts_at(now):
                    u = c.ts + gap
                    moved = True
        return u

    def threshold(self, ctx: Context) -> Threshold:
        # Past the last contact that counts, it alone holds the next one back.
        times = self.counted_times(ctx, self.per)
        if not times:
            return ALWAYS, ALWAYS
        return times[-1], times[-1] + self.gap

    def threshold_fields(self) -> tuple[str, ...]:
        return self.per
