"""`frequency`: at most N contacts within D consecutive calendar days, or a rolling window.

The regulatory cousin of `cap`. Statutes count "seven consecutive days" (Reg F) or "thirty
calendar days" (France) on the consumer's own calendar, which a rolling 168 h window gets
wrong on DST days and at midnight; and they count "per debt" or "on the same subject", where
a contact that names no debt must count against every debt. So this kind:

- counts calendar days in the customer's local zone, in every zone they may be in;
- matches `per` keys strictly: a contact or proposal without the key counts with all;
- exempts contacts the customer asked for only within `consent_days` of the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from tactful.durations import format_duration, parse_duration
from tactful.localtime import day_start, days_later, local_day
from tactful.rules.base import NEVER, Context, Rule, contact_key, per_validator
from tactful.rules.cap import rolling_earliest
from tactful.state import LedgerContact

#: Bound on the search across zones; each step moves strictly forward.
MAX_STEPS = 100


def consent_end(request_ts: float, days: int, zones: Sequence[ZoneInfo]) -> float:
    """When a request made at `request_ts` stops counting as consent: the end of its
    `days`-th calendar day (the request's own day is day 1), the earliest across zones."""
    return min(days_later(request_ts, days, zones))


def consented(
    trigger: str | None,
    request_ts: float | None,
    at: float,
    days: int | None,
    zones: Sequence[ZoneInfo],
) -> bool:
    """Whether a contact at `at` prompted by `trigger` counts as one the customer asked for."""
    from tactful.model import REQUESTED_TRIGGERS

    if trigger not in REQUESTED_TRIGGERS:
        return False
    if days is None:
        return True
    return request_ts is not None and request_ts <= at < consent_end(request_ts, days, zones)


def keys_match(c: LedgerContact, per: tuple[str, ...], values: tuple[str | None, ...]) -> bool:
    """Strict `per` matching: a missing value on either side matches every value."""
    for f, v in zip(per, values, strict=True):
        ck = contact_key(c, f)
        if v is not None and ck is not None and ck != v:
            return False
    return True


def key_words(keys: Sequence[str | None]) -> str:
    """The `per` keys as a reason names them (`{key}`): "any" where none is given."""
    return ", ".join(k for k in keys if k) or "any"


class FrequencyRule(Rule):
    """At most `count` contacts in scope within any `days` consecutive calendar days of the
    customer's local calendar (every zone they may be in), or within any rolling `window`;
    counted per `per` keys, a contact without the key counting against every value."""

    kind: Literal["frequency"]
    count: int = Field(ge=1)
    days: int | None = Field(default=None, ge=1, description="Consecutive calendar days.")
    window: float | None = Field(default=None, gt=0, description="A rolling duration.")
    per: tuple[str, ...] = Field(
        default=(),
        description="Count separately per value of these proposal fields (tags.account, "
        "tags.subject, offer, ...); a contact without the value counts against every value.",
    )
    requested: Literal["exempt", "count"] = Field(
        default="exempt",
        description="Whether contacts the customer asked for (a call-back, a help request) "
        "are exempt, or count like any other.",
    )
    consent_days: int | None = Field(
        default=None,
        ge=1,
        description="A request exempts contacts only within this many calendar days of it "
        "(its own day is day 1); unset: no limit.",
    )
    exclude_outcomes: tuple[str, ...] = Field(
        default=(), description="Contacts with these outcomes do not count (e.g. bounced)."
    )

    _per = per_validator("per")

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @model_validator(mode="after")
    def _one_window(self) -> FrequencyRule:
        if (self.days is None) == (self.window is None):
            raise ValueError("a frequency rule needs either `days` or `window`, not both")
        return self

    def describe(self) -> str:
        if self.days is not None:
            span = f"{self.days} consecutive calendar days"
        else:
            window = self.window or 0.0
            hours = window / 3600
            span = (
                f"any rolling {hours:g}h"
                if hours <= 72 and hours.is_integer()
                else (f"any rolling {format_duration(window)}")
            )
        text = f"at most {self.count} within {span}"
        if self.per:
            text += f", per {', '.join(self.per)}"
        if self.requested == "exempt":
            limit = f" within {self.consent_days} days of the request" if self.consent_days else ""
            text += f"; contacts the customer asked for are exempt{limit}"
        if self.exclude_outcomes:
            text += f"; {', '.join(self.exclude_outcomes)} contacts do not count"
        return text

    def _exempt_request(self, ctx: Context, t: float) -> bool:
        return (
            self.requested == "exempt"
            and ctx.requested
            and consented(ctx.trigger_event, ctx.trigger_ts, t, self.consent_days, ctx.zones)
        )

    def counts_contact(self, c: LedgerContact, zones: Sequence[ZoneInfo]) -> bool:
        """Whether this rule counts contact `c`, whatever its `per` keys: in scope, its
        outcome not excluded, and not one the customer asked for (where those are exempt;
        `zones` only matter with `consent_days`)."""
        if not self.scope.counts(c, self.exempt):
            return False
        if c.outcome is not None and c.outcome in self.exclude_outcomes:
            return False
        return not (
            self.requested == "exempt"
            and consented(c.trigger_event, c.trigger_ts, c.ts, self.consent_days, zones)
        )

    def contacts(self, ctx: Context) -> list[LedgerContact]:
        """Contacts this rule counts for the proposal (any status; callers filter by time)."""
        per = self.per
        values = tuple(ctx.key_of(f) for f in per)
        zones = ctx.zones

        def predicate(c: LedgerContact) -> bool:
            return self.counts_contact(c, zones) and keys_match(c, per, values)

        return ctx.state.matching(("frequency", self.token, values, zones), predicate)

    def check(self, ctx: Context, t: float) -> float:
        if self._exempt_request(ctx, t):
            return t
        now = ctx.now
        counted = [c for c in self.contacts(ctx) if c.counts_at(now)]
        if len(counted) < self.count:
            return t
        if self.window is not None:
            return rolling_earliest(sorted(c.ts for c in counted), t, self.count, self.window)
        days = float(self.days or 1)
        zones = ctx.zones
        ordinals = {
            tz: sorted(float(local_day(c.ts, tz).toordinal()) for c in counted) for tz in zones
        }
        u = t
        for _ in range(MAX_STEPS):
            moved = False
            for tz in zones:
                today = float(local_day(u, tz).toordinal())
                first = rolling_earliest(ordinals[tz], today, self.count, days)
                if first == NEVER:  # pragma: no cover - rolling_earliest always finds one
                    return NEVER
                if first > today:
                    u = max(u, day_start(date.fromordinal(int(first)), tz))
                    moved = True
            if not moved:
                return u
        return NEVER

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        now = ctx.now
        counted = [c for c in self.contacts(ctx) if c.counts_at(now)]
        if self.window is not None:
            inside = [c for c in counted if t - self.window < c.ts <= t]
        else:
            tz = ctx.zones[0]
            first_day = local_day(t, tz) - timedelta(days=(self.days or 1) - 1)
            inside = [c for c in counted if first_day <= local_day(c.ts, tz) <= local_day(t, tz)]
        return self.details_of(len(inside), [ctx.key_of(f) for f in self.per])

    @staticmethod
    def details_of(counted: int, keys: Sequence[str | None]) -> dict[str, str]:
        """`details` for `counted` contacts inside the span, the proposal's `per` keys
        being `keys`."""
        return {"counted": str(counted), "key": key_words(keys)}
