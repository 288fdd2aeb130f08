"""`pressure`: how much contact the customer is under, decaying with a half-life."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from typing import Literal

from pydantic import Field

from tactful.durations import format_duration
from tactful.model import DEFAULT_WEIGHT, REQUESTED_TRIGGERS, UNANSWERED_OUTCOMES, ContactStatus
from tactful.rules.base import NEVER, Context, Rule, duration_validator
from tactful.state import LedgerContact

_SENT = ContactStatus.SENT
_HELD = ContactStatus.HELD

#: A counting contact as (time, weight).
Term = tuple[float, float]
#: Terms in time order, the last one's time (the anchor), and their sum decayed to it.
Terms = tuple[list[Term], float, float]


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

    def _terms(self, ctx: Context) -> Terms:
        """Counting contacts as (time, weight), in time order, and their decayed sum
        anchored at the last. They change only when the contacts do or a hold expires, so
        they are memoised per hold epoch (and per policy: the weights are the policy's),
        and extended when contacts are only appended."""
        kept: Terms | None = ctx.kept(self.token)
        if kept is not None:
            return kept  # asked again in this decision's search
        key = ("pressure", self.token, ctx.policy, ctx.epoch)
        hit: Terms | None = ctx.state.contact_memo.get(key)
        if hit is None:
            hit = ctx.state.contact_fact(
                key,
                lambda contacts: self._summed(self._weighed(ctx, contacts)),
                lambda before, added: self._extended(before, self._weighed(ctx, added)),
            )
        ctx.keep(self.token, hit)
        return hit

    def _weighed(self, ctx: Context, contacts: Sequence[LedgerContact]) -> list[Term]:
        now = ctx.now
        weights = ctx.policy.weights
        factor = self.unanswered_factor
        terms = []
        for c in contacts:
            # `weight`, `counts_at` and `Policy.weight`, inlined: this runs over the whole
            # ledger whenever a hold changes it.
            if c.trigger_event in REQUESTED_TRIGGERS:
                continue
            status = c.status
            if status is not _SENT and (
                status is not _HELD or (c.hold_expires is not None and c.hold_expires <= now)
            ):
                continue
            w = weights.get(c.channel, DEFAULT_WEIGHT)
            if c.outcome in UNANSWERED_OUTCOMES:
                w = w * factor
            if w > 0:
                terms.append((c.ts, w))
        return terms

    def _summed(self, terms: list[Term]) -> Terms:
        if not terms:
            return terms, 0.0, 0.0
        anchor = terms[-1][0]
        hl = self.half_life
        # Summed afresh, oldest first, whenever the anchor moves: the same additions in
        # the same order, so the same float as ever (no running total that would drift).
        return terms, anchor, sum(w * math.exp2((ts - anchor) / hl) for ts, w in terms)

    def _extended(self, before: Terms, added: list[Term]) -> Terms:
        """`before` with the terms of appended contacts (later than every term in it)."""
        if not added:
            return before
        return self._summed(before[0] + added)

    def at(self, ctx: Context, t: float) -> float:
        """Pressure at time t from the contacts known now."""
        return self._at(self._terms(ctx), t)

    def _at(self, memo: Terms, t: float) -> float:
        terms, anchor, total = memo
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
        memo = self._terms(ctx)
        terms, anchor, total = memo
        if not terms:
            return t
        u = t
        p = self._at(memo, u)
        for _ in range(64):
            if u >= anchor:
                # Nothing booked after u: pressure only decays from here, and the contact
                # may go once it is within the room left, whenever one asks.
                clear = self._clear(total, anchor, room)
                return u if u >= clear else clear
            if p <= room + 1e-9:
                # Later contacts already booked must also stay within budget with this one.
                over = [
                    ts
                    for ts, _ in terms
                    if ts > u
                    and self._at(memo, ts) + w * math.exp2(-(ts - u) / self.half_life)
                    > self.budget + 1e-9
                ]
                if not over:
                    return u
                u = over[-1]
            else:
                u = max(u + 1.0, u + self.half_life * math.log2(p / room)) if room > 0 else NEVER
                if u == NEVER:
                    return NEVER
            p = self._at(memo, u)
        return NEVER

    def _clear(self, total: float, anchor: float, room: float) -> float:
        """From when on, past the last counted contact (`anchor`, where pressure is
        `total`), a contact fits in `room`: the instant decay brings it there (within the
        budget's tolerance), so that the answer is one threshold, the same from every
        instant one asks at."""
        if total <= room + 1e-9:
            return anchor
        if room <= 0:
            return NEVER
        hl = self.half_life
        u = anchor + hl * math.log2(total / room)
        step = 1e-6
        while total * math.exp2(-(u - anchor) / hl) > room + 1e-9:
            u += step  # float rounding left it a hair short
            step *= 2
        return u

    def steady(self, ctx: Context, t: float, u: float) -> float:
        terms, anchor, _ = self._terms(ctx)
        if t < anchor:
            return t  # contacts booked after t: they are weighed against this one
        if u == t or not terms:
            return NEVER  # pressure only decays from here
        return u  # waiting for u from every instant before it

    def worded(self, ctx: Context, t: float, u: float) -> float:
        # The reason shows the pressure at t to one decimal, which lasts while decay keeps
        # it above the next lower tenth (checked where it ends, decay being monotone).
        memo = self._terms(ctx)
        terms, anchor, total = memo
        if t < anchor or not terms:
            return t
        shown = self._shown(memo, t)
        edge = float(shown) - 0.05
        s = anchor + self.half_life * math.log2(total / edge) - 1.0 if edge > 0 else u
        s = min(s, u)
        return s if s > t and self._shown(memo, s) == shown else t

    def _shown(self, memo: Terms, t: float) -> str:
        return f"{self._at(memo, t):.1f}"

    @cached_property
    def _budget(self) -> str:
        return f"{self.budget:g}"

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return {"pressure": self._shown(self._terms(ctx), t), "budget": self._budget}
