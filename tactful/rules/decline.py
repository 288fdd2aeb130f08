"""`decline`: after "no thanks", leave the customer alone for a while."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.model import Outcome
from tactful.rules.base import ALWAYS, Context, Rule, Threshold, duration_validator
from tactful.state import LedgerContact

_DECLINES = ("declines",)
_DECLINED = ("declined contacts",)


def _declined(c: LedgerContact) -> bool:
    return c.outcome == Outcome.DECLINED


class DeclineRule(Rule):
    """Hold back contact for `window` after the customer declined. With `same_offer`, only
    contact about the declined offer (a decline naming no offer covers every offer)."""

    kind: Literal["decline"]
    window: float = Field(gt=0)
    same_offer: bool = False
    default_mode = "deny"
    waived_on_request = True
    threshold_exact = True

    _window = duration_validator("window")

    def describe(self) -> str:
        what = "about the declined offer" if self.same_offer else "at all"
        return f"no contact {what} for {format_duration(self.window)} after a decline"

    @staticmethod
    def declines(ctx: Context) -> list[tuple[float, str | None]]:
        """Every decline as (time, offer): "no thanks" events, then declined contacts
        (those kept with the contact facts, extended as contacts are appended)."""
        state = ctx.state
        hit: list[tuple[float, str | None]] | None = state.memo.get(_DECLINES)
        if hit is None:
            declined = state.matching(_DECLINED, _declined)
            hit = list(state.derived.declines)
            hit += [(c.ts, c.offer) for c in declined]
            state.memo[_DECLINES] = hit
        return hit

    def _latest(self, ctx: Context, t: float) -> tuple[float, str | None] | None:
        offer = ctx.proposal.offer
        latest: tuple[float, str | None] | None = None
        for ts, declined in self.declines(ctx):
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

    def threshold(self, ctx: Context) -> Threshold:
        # Once t is past every decline that concerns the proposal, the latest one decides.
        offer = ctx.proposal.offer
        times = [
            ts
            for ts, declined in self.declines(ctx)
            if not (self.same_offer and declined is not None and declined != offer)
        ]
        if not times:
            return ALWAYS, ALWAYS
        latest = max(times)
        return latest, latest + self.window

    def threshold_fields(self) -> tuple[str, ...]:
        return ("offer",) if self.same_offer else ()

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        latest = self._latest(ctx, t)
        if latest is None:
            return {}
        when = datetime.fromtimestamp(latest[0], UTC).strftime("%Y-%m-%d")
        return {"offer": latest[1] or "our offer", "declined_on": when}
