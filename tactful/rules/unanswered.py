"""`unanswered`: back off when attempts go unanswered, and stop until the customer engages."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.rules.base import ALWAYS, NEVER, Context, Rule, Threshold, duration_validator


class UnansweredRule(Rule):
    """After `after` unanswered attempts in a row, the gap to the next one is `gap` doubled
    once for each (2x, 4x, …); after `stop_after` in a row, none until the customer engages
    (a reply, an answered contact, a visit, a request)."""

    kind: Literal["unanswered"]
    after: int = Field(default=3, ge=1)
    gap: float = Field(gt=0)
    stop_after: int = Field(default=6, ge=1)
    waived_on_request = True
    threshold_exact = True

    _gap = duration_validator("gap")

    def describe(self) -> str:
        return (
            f"after {self.after} unanswered in a row the {format_duration(self.gap)} gap "
            f"doubles each time; after {self.stop_after}, stop until the customer engages"
        )

    def streak(self, ctx: Context, t: float) -> tuple[int, float | None]:
        """Unanswered attempts in a row before t, and the time of the last one."""
        engaged = ctx.state.last_engagement(t)
        n, last = 0, None
        for c in reversed(self.counted(ctx)):
            if c.ts > t or c.outcome is None:
                continue  # not yet happened, or no outcome known yet
            if engaged is not None and c.ts <= engaged:
                break
            if not c.unanswered:
                break
            n += 1
            last = c.ts if last is None else last
        return n, last

    def check(self, ctx: Context, t: float) -> float:
        n, last = self.streak(ctx, t)
        if n >= self.stop_after:
            return NEVER
        if n >= self.after and last is not None:
            wait = self.gap * 2.0 ** (n - self.after + 1)
            if t < last + wait:
                return last + wait
        return t

    def threshold(self, ctx: Context) -> Threshold:
        # Past the last attempt and the last engagement, the streak no longer changes.
        counted = self.counted(ctx)
        engagements = ctx.state.derived.engagements
        since = max(
            counted[-1].ts if counted else ALWAYS, engagements[-1] if engagements else ALWAYS
        )
        n, last = self.streak(ctx, since)
        if n >= self.stop_after:
            return since, NEVER
        if n >= self.after and last is not None:
            return since, last + self.gap * 2.0 ** (n - self.after + 1)
        return since, ALWAYS

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return {"unanswered": str(self.streak(ctx, t)[0])}
