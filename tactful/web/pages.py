"""Jinja2 templates shipped inside the package (no CDN; every page works without JavaScript)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

env = Environment(
    loader=PackageLoader("tactful.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _utc(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time in UTC, as the dashboard shows it: '2026-11-24 20:02 UTC'."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime(fmt) + " UTC"


def _local(value: datetime | None, zone: ZoneInfo | str | None = None) -> str:
    """A time in a customer's zone: 'Tue 24 Nov 2026, 14:02 CST'."""
    if value is None:
        return ""
    tz = ZoneInfo(zone) if isinstance(zone, str) else (zone or ZoneInfo("UTC"))
    return value.astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def _day(value: datetime | None, zone: ZoneInfo | str | None = None, year: bool = True) -> str:
    """A date as people say it: 'Monday 14 December 2026' (without the year: 'Monday 14
    December')."""
    if value is None:
        return ""
    tz = ZoneInfo(zone) if isinstance(zone, str) else (zone or ZoneInfo("UTC"))
    local = value.astimezone(tz)
    return f"{local:%A} {local.day} {local:%B}" + (f" {local.year}" if year else "")


def _instant(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _short(value: datetime | str | None, zone: ZoneInfo | str | None = None) -> str:
    """A compact time for tables whose header names the zone: 'Mon 23 Nov 09:00' (with
    the year when it is not this year's)."""
    when = _instant(value)
    if when is None:
        return str(value or "")
    tz = ZoneInfo(zone) if isinstance(zone, str) else (zone or ZoneInfo("UTC"))
    local = when.astimezone(tz)
    year = f" {local.year}" if local.year != datetime.now(tz).year else ""
    return f"{local:%a} {local.day} {local:%b}{year} {local:%H:%M}"


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _query(params: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


env.filters.update(utc=_utc, local=_local, day=_day, short=_short, iso=_iso, query=_query)


def render(template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)
