"""`holiday`: no contact on the public holidays a law names, on the customer's local date.

`hours` closes on the holidays of the customer's own country and subdivision, which is
what courtesy wants. A statute names its own calendar instead: France's cold-call decree
the holidays of the Labour Code (the national list), Australia's standard its national
public holidays. This kind takes the law's country, optionally its subdivisions, and
optionally only some holidays by name, and is closed when the date is one in any zone the
customer may be in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays as holidays_lib
from pydantic import Field

from tactful.localtime import day_start, local_day
from tactful.rules.base import NEVER, Context, Rule

OBSERVED = " (observed)"
#: How far ahead to look for a day that is no holiday (a run of holidays is short).
SEARCH_DAYS = 30


@lru_cache(maxsize=512)
def _table(country: str, subdivision: str | None, year: int) -> dict[date, tuple[str, ...]]:
    try:
        table = holidays_lib.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError:
        if subdivision is None:
            return {}
        # An unknown subdivision still has its country's holidays.
        table = holidays_lib.country_holidays(country, years=year)
    return {day: tuple(str(name).split("; ")) for day, name in table.items()}


@lru_cache(maxsize=64)
def subdivisions_of(country: str) -> tuple[str, ...]:
    try:
        cls = holidays_lib.country_holidays(country).__class__
    except NotImplementedError:
        return ()
    return tuple(str(s) for s in getattr(cls, "subdivisions", ()))


class HolidayRule(Rule):
    """Closed on the public holidays of `country` (the law's, not the customer's) on the
    customer's local date in every zone they may be in. `subdivisions`: `none` (national
    holidays only), `customer` (also the customer's subdivision's), `all` (a day that is a
    holiday in any subdivision). `names` keeps only those holidays; `observed` also closes
    the substitute days declared when one falls on a weekend."""

    kind: Literal["holiday"]
    country: str = Field(min_length=2, max_length=3)
    subdivisions: Literal["none", "customer", "all"] = "none"
    names: tuple[str, ...] = Field(default=(), description="Only these holidays, by name.")
    observed: bool = True
    default_exempt = ()

    def describe(self) -> str:
        where = {
            "none": "national public holidays",
            "customer": "national public holidays and the customer's subdivision's",
            "all": "public holidays of any subdivision",
        }[self.subdivisions]
        which = f" ({', '.join(self.names)})" if self.names else ""
        subst = ", and the substitute days declared for them" if self.observed else ""
        return f"closed on {self.country.upper()} {where}{which}{subst}"

    def holiday(self, day: date, subdivision: str | None) -> str | None:
        """The name of the holiday on `day` this rule honours, if any."""
        country = self.country.upper()
        if self.subdivisions == "all":
            subs: tuple[str | None, ...] = (None, *subdivisions_of(country))
        elif self.subdivisions == "customer" and subdivision:
            subs = (subdivision,)
        else:
            subs = (None,)
        for sub in subs:
            for name in _table(country, sub, day.year).get(day, ()):
                base = name.removesuffix(OBSERVED)
                if base != name and not self.observed:
                    continue
                if self.names and base not in self.names:
                    continue
                return name
        return None

    def _subdivision(self, ctx: Context) -> str | None:
        return self.subdivision_of(ctx.state.profile.subdivision)

    def subdivision_of(self, sub: str | None) -> str | None:
        """A profile's subdivision as this law's calendar reads it: "NSW" or "AU-NSW" for
        an AU rule, none for another country's code."""
        if not sub:
            return None
        sub = sub.upper()
        prefix = self.country.upper() + "-"
        return sub.removeprefix(prefix) if "-" not in sub or sub.startswith(prefix) else None

    def check(self, ctx: Context, t: float) -> float:
        subdivision = self._subdivision(ctx)
        u = t
        for _ in range(SEARCH_DAYS * max(1, len(ctx.zones))):
            moved = False
            for tz in ctx.zones:
                day = local_day(u, tz)
                if self.holiday(day, subdivision):
                    u = day_start(day + timedelta(days=1), tz)
                    moved = True
            if not moved:
                return u
        return NEVER

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return self.details_at(ctx.zones, self._subdivision(ctx), t)

    def details_at(
        self, zones: Sequence[ZoneInfo], subdivision: str | None, t: float
    ) -> dict[str, str]:
        """`details` for a customer in `zones` (the first whose date is a holiday)."""
        for tz in zones:
            day = local_day(t, tz)
            name = self.holiday(day, subdivision)
            if name:
                local = datetime.fromtimestamp(t, tz)
                return {"holiday": name, "local": local.strftime("%A %Y-%m-%d") + f" {tz.key}"}
        return {}
