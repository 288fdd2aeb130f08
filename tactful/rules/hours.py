"""`hours`: contact only inside a weekly schedule of local hours, never on public holidays.

Where the customer may be in several zones (a phone number spanning zones), an instant is
open only if it is open in every zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from tactful.localtime import holiday_name
from tactful.rules.base import NEVER, Context, Rule

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
#: How far ahead to look for an open slot before calling the schedule closed for good.
SEARCH_DAYS = 370

Schedule = tuple[tuple[tuple[int, int], ...], ...]  # per weekday, (start, end) minutes
Spans = tuple[tuple[float, float], ...]  # one local day's open spans, as instants
#: Bound on the local days whose spans a rule keeps (zones x days in use).
SPAN_CACHE_SIZE = 65536


def parse_schedule(raw: Any) -> Schedule:
    """{"mon-fri": "09:00-20:00", "sat": ["10:00-13:00", "14:00-18:00"], "sun": "closed"}."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError("schedule must map days (mon, tue-fri, ...) to hours like '09:00-20:00'")
    days: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for key, value in raw.items():
        for day in _days(str(key)):
            spans = value if isinstance(value, list) else [value]
            for span in spans:
                if str(span).strip().lower() == "closed":
                    continue
                days[day].append(_span(str(span)))
    return tuple(tuple(sorted(d)) for d in days)


def _days(key: str) -> list[int]:
    key = key.strip().lower()
    if key in ("daily", "all", "every day"):
        return list(range(7))
    if "-" in key:
        a, b = (k.strip()[:3] for k in key.split("-", 1))
        if a not in DAYS or b not in DAYS:
            raise ValueError(f"unknown day range {key!r} (use e.g. 'mon-fri')")
        i, j = DAYS.index(a), DAYS.index(b)
        return list(range(i, j + 1)) if i <= j else [*range(i, 7), *range(0, j + 1)]
    if key[:3] not in DAYS:
        raise ValueError(f"unknown day {key!r} (use mon, tue, wed, thu, fri, sat, sun)")
    return [DAYS.index(key[:3])]


def _span(text: str) -> tuple[int, int]:
    m = _SPAN.match(text)
    if not m:
        raise ValueError(f"hours {text!r} must look like '09:00-20:00' or be 'closed'")
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60) or m1 > 59 or m2 > 59:
        raise ValueError(f"hours {text!r}: the start must come before the end, within 00:00-24:00")
    return start, end


def _at(day: date, minutes: int, tz: ZoneInfo) -> float:
    base = datetime(day.year, day.month, day.day, tzinfo=tz)
    if minutes >= 24 * 60:
        nxt = day + timedelta(days=1)
        return datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
    return base.replace(hour=minutes // 60, minute=minutes % 60).timestamp()


class HoursRule(Rule):
    """Contact only within `schedule` in the customer's local time (every zone they may be
    in), and, with `holidays: true`, never on a public holiday of their country."""

    kind: Literal["hours"]
    schedule: Schedule
    holidays: bool = Field(default=True, description="Closed on the country's public holidays.")
    default_exempt = ()

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, v: Any) -> Schedule:
        if isinstance(v, tuple):
            return v
        return parse_schedule(v)

    def describe(self) -> str:
        parts = []
        for i, spans in enumerate(self.schedule):
            text = ", ".join(
                f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in spans
            )
            parts.append(f"{DAYS[i]} {text or 'closed'}")
        suffix = "; closed on public holidays" if self.holidays else ""
        return "; ".join(parts) + suffix

    def check(self, ctx: Context, t: float) -> float:
        zones = ctx.zones
        country = ctx.country if self.holidays else None
        subdivision = ctx.state.profile.subdivision
        u = t
        limit = t + SEARCH_DAYS * 86400.0
        while u <= limit:
            moved = False
            for tz in zones:
                v = self.open_in(tz, u, country, subdivision)
                if v > u:
                    u = v
                    moved = True
            if not moved:
                return u
        return NEVER

    def open_in(
        self, tz: ZoneInfo, t: float, country: str | None, subdivision: str | None
    ) -> float:
        """Earliest instant >= t that is open in zone `tz`."""
        day = datetime.fromtimestamp(t, tz).date()
        for _ in range(SEARCH_DAYS):
            for start, end in self._day_spans(tz, country, subdivision, day):
                if end > t:
                    return max(t, start)
            day += timedelta(days=1)
        return NEVER

    def _day_spans(
        self, tz: ZoneInfo, country: str | None, subdivision: str | None, day: date
    ) -> Spans:
        days = self._open_spans
        key = (tz, country, subdivision, day)
        spans = days.get(key)
        if spans is None:
            spans = self._spans(tz, country, subdivision, day)
            if len(days) >= SPAN_CACHE_SIZE:
                days.clear()
            days[key] = spans
        return spans

    def steady(self, ctx: Context, t: float, u: float) -> float:
        if u == NEVER:
            return t  # nothing open within the search: a later start may find something
        country = ctx.country if self.holidays else None
        subdivision = ctx.state.profile.subdivision
        if u == t:
            # Open in every zone: until the first of their open spans ends.
            ends = []
            for tz in ctx.zones:
                day = datetime.fromtimestamp(t, tz).date()
                ends += [e for s, e in self._day_spans(tz, country, subdivision, day) if s <= t < e]
            return min(ends, default=t)
        # Closed until u: from any instant before u the first common open one is u.
        return u

    def worded(self, ctx: Context, t: float, u: float) -> float:
        # The reason names the customer's local minute at t (`details`), which lasts until
        # the next whole minute where the zone's offset is whole minutes (the last
        # millisecond spared for rounding to microseconds).
        offset = datetime.fromtimestamp(t, ctx.zones[0]).utcoffset()
        if offset is None or offset.total_seconds() % 60:
            return t
        return min(u, (t // 60 + 1) * 60 - 0.001)

    @cached_property
    def _open_spans(self) -> dict[tuple[ZoneInfo, str | None, str | None, date], Spans]:
        """Memo of `_spans`: local wall-clock hours to instants is the costly part."""
        return {}

    def _spans(
        self, tz: ZoneInfo, country: str | None, subdivision: str | None, day: date
    ) -> Spans:
        """The open spans of a local day as instants (none on a closed day or a holiday)."""
        spans = self.schedule[day.weekday()]
        if not spans or (country and holiday_name(country, subdivision, day)):
            return ()
        return tuple((_at(day, start, tz), _at(day, end, tz)) for start, end in spans)

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        tz = ctx.zones[0]
        local = datetime.fromtimestamp(t, tz)
        holiday = holiday_name(ctx.country, ctx.state.profile.subdivision, local.date())
        when = local.strftime("%A %H:%M") + f" {tz.key}"
        return {"local": when + (f" ({holiday})" if holiday and self.holidays else "")}
