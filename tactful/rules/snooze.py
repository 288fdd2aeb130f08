"""`snooze`: "not now, try me in three weeks" defers everything in scope until then."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from tactful.rules.base import ALWAYS, Context, Rule, Threshold


class SnoozeRule(Rule):
    """While a snooze the customer asked for is running, defer until it ends."""

    kind: Literal["snooze"]
    waived_on_request = True
    threshold_exact = True

    def describe(self) -> str:
        return "wait until the customer's snooze ends"

    def check(self, ctx: Context, t: float) -> float:
        snooze = ctx.state.derived.snooze
        if snooze is None:
            return t
        _, until = snooze
        return until if t < until else t

    def threshold(self, ctx: Context) -> Threshold:
        snooze = ctx.state.derived.snooze
        return ALWAYS, ALWAYS if snooze is None else snooze[1]

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        snooze = ctx.state.derived.snooze
        if snooze is None:
            return {}
        return {"until": datetime.fromtimestamp(snooze[1], UTC).strftime("%Y-%m-%d %H:%M UTC")}
