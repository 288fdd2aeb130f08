"""`cooldown`: after a conversation or a refusal, N calendar days of silence.

"No call within seven consecutive days after a telephone conversation, the date of the
conversation counting as day 1" (Reg F); "sixty full calendar days after a refusal"
(France). Days are the customer's local calendar days, in every zone they may be in, so the
silence ends at a local midnight: the latest one across zones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from tactful.localtime import days_later
from tactful.rules.base import Context, Rule, contact_key, per_validator
from tactful.rules.frequency import consented, key_words


def _event_key(props: Mapping[str, Any], field: str) -> str | None:
    name = field[5:] if field.startswith("tags.") else field
    value = props.get(name)
    return None if value is None else str(value)


class CooldownRule(Rule):
    """No contact in scope for `days` calendar days after a past contact in scope whose
    outcome was one of `after_outcomes`, or a customer event of one of `after_events`.
    Day 1 is the day it happened (`first_day: same`) or the next day (`first_day: next`).
    With `per`, only triggers about the same thing count (an event's properties carry the
    key by name, `tags.account` as `account`); one that names nothing counts for all."""

    kind: Literal["cooldown"]
    days: int = Field(ge=1, description="Calendar days of silence.")
    first_day: Literal["same", "next"] = Field(
        default="same", description="Day 1 is the day of the trigger (same) or the day after."
    )
    after_outcomes: tuple[str, ...] = ()
    after_events: tuple[str, ...] = ()
    event_channels: tuple[str, ...] = Field(
        default=(),
        description="Only events about these channels (an event naming no channel counts).",
    )
    per: tuple[str, ...] = ()
    requested: Literal["exempt", "count"] = Field(
        default="exempt",
        description="Whether a contact the customer asked for after the trigger is exempt.",
    )
    consent_days: int | None = Field(default=None, ge=1)

    _per = per_validator("per")

    @model_validator(mode="after")
    def _something(self) -> CooldownRule:
        if not self.after_outcomes and not self.after_events:
            raise ValueError("a cooldown rule needs `after_outcomes`, `after_events`, or both")
        return self

    def describe(self) -> str:
        what = []
        if self.after_outcomes:
            what.append(f"a contact with outcome {' or '.join(self.after_outcomes)}")
        if self.after_events:
            events = " or ".join(self.after_events)
            on = f" about {' or '.join(self.event_channels)}" if self.event_channels else ""
            what.append(f"a {events} event{on}")
        first = "its own day" if self.first_day == "same" else "the day after"
        per = f", per {', '.join(self.per)}" if self.per else ""
        return (
            f"no contact for {self.days} calendar days after {' or '.join(what)} "
            f"(day 1 is {first}){per}"
        )

    def triggers(self, ctx: Context, t: float) -> list[float]:
        """Times of the triggers at or before t that this proposal is held to."""
        values = [(f, ctx.key_of(f)) for f in self.per]
        found: list[float] = []
        if self.after_outcomes:
            exempt = self.exempt
            for c in ctx.state.contacts:
                if (
                    c.ts <= t
                    and c.outcome in self.after_outcomes
                    and self.scope.counts(c, exempt)
                    and all(
                        v is None or (k := contact_key(c, f)) is None or k == v for f, v in values
                    )
                ):
                    found.append(c.ts)
        if self.after_events:
            for e in ctx.state.events:
                if e.ts > t or e.kind not in self.after_events:
                    continue
                channel = e.properties.get("channel")
                if self.event_channels and channel and channel not in self.event_channels:
                    continue
                if all(
                    v is None or (k := _event_key(e.properties, f)) is None or k == v
                    for f, v in values
                ):
                    found.append(e.ts)
        if found and self.requested == "exempt" and ctx.requested:
            request = ctx.trigger_ts
            if request is not None and consented(
                ctx.trigger_event, request, t, self.consent_days, ctx.zones
            ):
                # The customer asked for this contact after those triggers.
                found = [ts for ts in found if ts > request]
        return found

    @property
    def offset(self) -> int:
        """Days from a trigger's local day to the one its silence ends at the beginning of."""
        return self.days + (1 if self.first_day == "next" else 0)

    def end_at(self, ts: float, zones: Sequence[ZoneInfo]) -> float:
        """When the silence after a trigger at `ts` ends: a local midnight, latest across zones."""
        return max(days_later(ts, self.offset, zones))

    def end_of(self, ctx: Context, ts: float) -> float:
        return self.end_at(ts, ctx.zones)

    def check(self, ctx: Context, t: float) -> float:
        ends = [self.end_of(ctx, ts) for ts in self.triggers(ctx, t)]
        latest = max(ends, default=t)
        return latest if latest > t else t

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        found = self.triggers(ctx, t)
        if not found:
            return {}
        last = max(found, key=lambda ts: self.end_of(ctx, ts))
        return self.details_of(last, ctx.zones, [ctx.key_of(f) for f in self.per])

    def details_of(
        self, last: float, zones: Sequence[ZoneInfo], keys: Sequence[str | None]
    ) -> dict[str, str]:
        """`details` for the silence begun at `last` (the trigger whose silence ends
        last), the proposal's `per` keys being `keys`."""
        until = datetime.fromtimestamp(self.end_at(last, zones), UTC)
        return {
            "on": datetime.fromtimestamp(last, zones[0]).strftime("%Y-%m-%d"),
            "until": until.strftime("%Y-%m-%d %H:%M UTC"),
            "key": key_words(keys),
        }
