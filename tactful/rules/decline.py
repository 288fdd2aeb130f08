"""`decline`: after "no thanks", leave the customer alone for a while."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.model import Outcome
from tactful.rules.base import Context, Rule, duration_validator


class DeclineRule(Rule):
    """Hold back contact for `window` after the customer declined. With `same_offer`, only
    contact about the declined offer (a decline naming no offer covers every offer)."""

    kind: Literal["decline"]
    window: float = Field(gt=0)
    same_offer: bool = False
    default_mode = "deny"
    waived_on_request = True

    _window = duration_validator("window")

    def describe(self) -> str:
        what = "about the declined offer" if self.same_offer else "at all"
        return f"no contact {what} for {format_duration(self.window)} after a decline"

    def _latest(self, ctx: Context, t: float) -> tuple[float, str | None] | None:
        offer = ctx.proposal.offer
        latest: tuple[float, str | None] | None = None
        declines = list(ctx.state.derived.declines)
        declines += [(c.ts, c.offer) for c in ctx.state.contacts if c.outcome == Outcome.DECLINED]
        for ts, declined in declines:
            if self.same_offer and declined is not None and declined != offer:
                continue
            if ts <= max(t, ctx.now) and (latest is None or ts > latest[0]):
                latest = (ts, declined)
        return latest

    def check(self, ctx: Context, t: float) -> float:
        latest = self._latest(ctx, t)
        if latest is None or latest[0] + self.window <= t:
            return t
        return latest[0] + self.window

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        latest = self._latest(ctx, t)
        if latest is None:
            return {}
        when = datetime.fromtimestamp(latest[0], UTC).strftime("%Y-%m-%d")
        return {"offer": latest[1] or "our offer", "declined_on": when}
