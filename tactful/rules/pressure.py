"""`pressure`: how much contact the customer is under, decaying with a half-life."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.rules.base import NEVER, Context, Rule, duration_validator
from tactful.state import LedgerContact


class PressureRule(Rule):
    """Each contact adds its channel's weight (the policy's `weights`), halving every
    `half_life`; an unanswered one weighs `unanswered_factor` times more; contacts the
    customer asked for weigh nothing. A contact in scope that would lift pressure above
    `budget` is deferred until decay makes room."""

    kind: Literal["pressure"]
    budget: float = Field(gt=0)
    half_life: float = Field(gt=0)
    unanswered_factor: float = Field(default=2.0, ge=1)
    waived_on_request = True

    _half_life = duration_validator("half_life")

    def describe(self) -> str:
        return (
            f"pressure at most {self.budget:g} (half-life {format_duration(self.half_life)}, "
            f"unanswered x{self.unanswered_factor:g})"
        )

    def weight(self, ctx: Context, c: LedgerContact) -> float:
        if c.requested:
            return 0.0
        w = ctx.policy.weight(c.channel)
        return w * self.unanswered_factor if c.unanswered else w

    def _terms(self, ctx: Context) -> tuple[list[tuple[float, float]], float, float]:
        """Counting contacts as (time, weight), and their decayed sum anchored at the last."""

        def compute() -> tuple[list[tuple[float, float]], float, float]:
            now = ctx.now
            terms = [
                (c.ts, w)
                for c in ctx.state.contacts
                if c.counts_at(now) and (w := self.weight(ctx, c)) > 0
            ]
            if not terms:
                return terms, 0.0, 0.0
            anchor = terms[-1][0]
            hl = self.half_life
            total = sum(w * math.exp2((ts - anchor) / hl) for ts, w in terms)
            return terms, anchor, total

        result: tuple[list[tuple[float, float]], float, float] = ctx.state.cached(
            ("pressure", self.token, ctx.now), compute
        )
        return result

    def at(self, ctx: Context, t: float) -> float:
        """Pressure at time t from the contacts known now."""
        terms, anchor, total = self._terms(ctx)
        if not terms:
            return 0.0
        hl = self.half_life
        if t >= anchor:
            return total * math.exp2(-(t - anchor) / hl)
        return sum(w * math.exp2(-(t - ts) / hl) for ts, w in terms if ts <= t)

    def check(self, ctx: Context, t: float) -> float:
        w = 0.0 if ctx.requested else ctx.policy.weight(ctx.channel)
        room = self.budget - w
        if room < 0:
            return NEVER
        u = t
        for _ in range(64):
            p = self.at(ctx, u)
            if p <= room + 1e-9:
                # Later contacts already booked must also stay within budget with this one.
                over = [
                    ts
                    for ts, _ in self._terms(ctx)[0]
                    if ts > u
                    and self.at(ctx, ts) + w * math.exp2(-(ts - u) / self.half_life)
                    > self.budget + 1e-9
                ]
                if not over:
                    return u
                u = over[-1]
                continue
            u = max(u + 1.0, u + self.half_life * math.log2(p / room)) if room > 0 else NEVER
            if u == NEVER:
                return NEVER
        return NEVER

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return {"pressure": f"{self.at(ctx, t):.1f}", "budget": f"{self.budget:g}"}
