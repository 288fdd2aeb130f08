"""`callback`: the customer named a time to be called back; wait for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from tactful.rules.base import ALWAYS, Context, Rule, Threshold

#: A call this long before the requested time already counts as the call-back.
EARLY_TOLERANCE = 15 * 60.0


class CallbackRule(Rule):
    """While a requested call-back is pending, contact in scope (calls) waits until the
    requested time. The call-back itself is then allowed whatever caps say (rules that
    yield to a customer's request do not apply to it)."""

    kind: Literal["callback"]
    threshold_exact = True

    def describe(self) -> str:
        return "wait for the call-back time the customer chose"

    def pending(self, ctx: Context) -> float | None:
        cb = ctx.state.derived.callback
        if cb is None:
            return None
        requested, when, channel = cb
        for c in ctx.state.contacts:
            if (
                c.ts >= when - EARLY_TOLERANCE
                and c.ts > requested
                and c.channel == (channel or "call")
                and c.counts_at(ctx.now)
                and c.status == "sent"
            ):
                return None  # already called back
        return when

    def check(self, ctx: Context, t: float) -> float:
        when = self.pending(ctx)
        return when if when is not None and t < when else t

    def threshold(self, ctx: Context) -> Threshold:
        # `pending` reads which contacts count now: it holds for the hold epoch.
        when = self.pending(ctx)
        return ALWAYS, ALWAYS if when is None else when

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        when = self.pending(ctx)
        if when is None:
            return {}
        return {"at": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")}
