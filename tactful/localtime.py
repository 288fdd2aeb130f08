"""The customer's local time: which zones, which country's holidays.

A profile's explicit `timezone` wins. Without one, the zones come from the phone numbers
(a number may map to several zones; rules then require every zone to agree), and the
country from the profile or the numbers' region. With nothing known, UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import phonenumbers
from phonenumbers import timezone as phone_timezone

from tactful.model import CustomerProfile

UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=65536)
def phone_zones(number: str) -> tuple[str, ...]:
    """IANA zones a phone number may ring in (empty if unknown or unparsable)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    names = phone_timezone.time_zones_for_number(parsed)
    return tuple(n for n in names if n != "Etc/Unknown")


@lru_cache(maxsize=65536)
def phone_region(number: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region: str | None = phonenumbers.region_code_for_number(parsed)
    return region if region and region != "ZZ" else None


def customer_zones(profile: CustomerProfile) -> tuple[ZoneInfo, ...]:
    if profile.timezone:
        return (zone(profile.timezone),)
    names: list[str] = []
    for number in profile.phones:
        for name in phone_zones(number):
            if name not in names:
                names.append(name)
    if names:
        return tuple(zone(n) for n in names)
    return (UTC_ZONE,)


def customer_country(profile: CustomerProfile) -> str | None:
    if profile.country:
        return profile.country.upper()
    for number in profile.phones:
        region = phone_region(number)
        if region:
            return region
    return None


@lru_cache(maxsize=1024)
def _holiday_table(country: str, subdivision: str | None, year: int) -> dict[date, str]:
    """One year's holidays as a plain dict: `HolidayBase.get` parses its key on every
    call, and calling hours ask about a day at every decision."""
    try:
        table = holidays.country_holidays(country, subdiv=subdivision, years=year)
    except NotImplementedError:
        # A country the holidays package does not know has no holidays we can honour.
        return {}
    return {day: str(name) for day, name in table.items() if name}


def holiday_name(country: str | None, subdivision: str | None, day: date) -> str | None:
    """The public holiday on `day` in `country`, if any."""
    if not country:
        return None
    return _holiday_table(country, subdivision, day.year).get(day)


def local_day(ts: float, tz: ZoneInfo) -> date:
    """The calendar date in `tz` at instant `ts`."""
    return datetime.fromtimestamp(ts, tz).date()


def day_start(day: date, tz: ZoneInfo) -> float:
    """The instant `day` begins in `tz` (a DST day is 23 or 25 hours long, as it is locally)."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def days_later(ts: float, days: int, zones: Iterable[ZoneInfo]) -> list[float]:
    """In each of `zones`, the instant the local day `days` after `ts`'s begins (a consent
    window's or a silence's end: the earliest or the latest of them)."""
    return [day_start(local_day(ts, tz) + timedelta(days=days), tz) for tz in zones]
