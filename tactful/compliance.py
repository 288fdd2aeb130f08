"""Opt-out deadlines as audit checks, not delays.

The law gives senders time to honour an opt-out: CAN-SPAM, CASL and the FCC each allow up
to ten business days. tactful honours every opt-out at once, so these deadlines are not
rules the engine waits on; they are what an auditor checks afterwards. `optout_audit`
lists, for each opt-out a customer made, when it was received, what it covered, the
deadline each regime sets, and every non-exempt contact that followed it (none, when
tactful was asked first), each marked inside or after each deadline.

Pure: it reads a `CustomerState` and returns data; nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import holidays as holidays_lib

from tactful.jurisdiction import customer_regions, in_regions
from tactful.localtime import customer_zones, day_start, local_day
from tactful.model import ContactStatus, EventKind
from tactful.rules.revocation import reply_text, says_revoke
from tactful.state import CustomerState, LedgerContact, LedgerEvent

#: The reply keywords 47 CFR 64.1200(a)(10) names as a revocation of consent.
FCC_KEYWORDS = ("stop", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe")
OPT_OUT_EVENTS = (EventKind.OPTED_OUT, EventKind.UNSUBSCRIBED, EventKind.COMPLAINED)
OPT_IN_EVENTS = (EventKind.OPTED_IN, EventKind.SUBSCRIBED)


@dataclass(frozen=True, slots=True)
class Regime:
    """A law's outer limit for honouring an opt-out on some channels."""

    name: str
    cite: str
    channels: tuple[str, ...]
    business_days: int
    #: Whose public holidays are not business days (ISO country code).
    calendar: str
    #: Where it protects people (ISO 3166); an opt-out is checked against it when any of
    #: the customer's candidate locations is there.
    regions: tuple[str, ...]


REGIMES: tuple[Regime, ...] = (
    Regime(
        "CAN-SPAM",
        "15 U.S.C. 7704(a)(4)(A); 16 CFR 316",
        ("email",),
        10,
        "US",
        ("US",),
    ),
    Regime(
        "CASL",
        "S.C. 2010, c. 23, s. 11(3)",
        ("email", "sms", "push", "in_app", "chat"),
        10,
        "CA",
        ("CA",),
    ),
    Regime(
        "FCC",
        "47 CFR 64.1200(a)(10), (d)(3)",
        ("call", "sms"),
        10,
        "US",
        ("US",),
    ),
)


@dataclass(frozen=True, slots=True)
class Deadline:
    regime: str
    cite: str
    #: The last local business day on which honouring the opt-out is still in time.
    last_day: date
    #: The instant that day ends (the customer's zone; the earliest of their zones).
    due: datetime


@dataclass(frozen=True, slots=True)
class FollowingContact:
    """A non-exempt contact made (or held) after an opt-out covering it."""

    contact_id: str
    at: datetime
    channel: str
    purpose: str
    status: str
    #: Regimes whose deadline this contact missed (empty: inside every deadline).
    late_for: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OptOutFinding:
    """One opt-out, its deadlines, and what followed it."""

    received: datetime
    kind: str
    #: Channels it covers (empty: every channel) and the purpose (None: every purpose).
    channels: tuple[str, ...]
    purpose: str | None
    deadlines: tuple[Deadline, ...]
    followed_by: tuple[FollowingContact, ...]
    #: When a later opt-in lifted it, if one did.
    lifted: datetime | None = None
    text: str | None = None

    @property
    def clean(self) -> bool:
        """Nothing non-exempt followed the opt-out."""
        return not self.followed_by

    @property
    def late(self) -> bool:
        """Something non-exempt followed after a regime's deadline."""
        return any(c.late_for for c in self.followed_by)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received.isoformat(),
            "kind": self.kind,
            "channels": list(self.channels),
            "purpose": self.purpose,
            "lifted": self.lifted.isoformat() if self.lifted else None,
            "text": self.text,
            "clean": self.clean,
            "late": self.late,
            "deadlines": [
                {
                    "regime": d.regime,
                    "cite": d.cite,
                    "last_day": d.last_day.isoformat(),
                    "due": d.due.isoformat(),
                }
                for d in self.deadlines
            ],
            "followed_by": [
                {
                    "contact_id": c.contact_id,
                    "at": c.at.isoformat(),
                    "channel": c.channel,
                    "purpose": c.purpose,
                    "status": c.status,
                    "late_for": list(c.late_for),
                }
                for c in self.followed_by
            ],
        }


@lru_cache(maxsize=256)
def _public_holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays_lib.country_holidays(country, years=year))
    except NotImplementedError:
        return frozenset()


def business_day(day: date, calendar: str) -> bool:
    """Monday to Friday, and not a national public holiday of `calendar`."""
    return day.weekday() < 5 and day not in _public_holidays(calendar, day.year)


def last_business_day(received: date, count: int, calendar: str) -> date:
    """The `count`-th business day after the day of receipt (which itself does not count)."""
    day, seen = received, 0
    while seen < count:
        day += timedelta(days=1)
        if business_day(day, calendar):
            seen += 1
    return day


def _covers(channels: tuple[str, ...], purpose: str | None, c: LedgerContact) -> bool:
    return (not channels or c.channel in channels) and (purpose is None or c.purpose == purpose)


def _opt_out_scope(e: LedgerEvent) -> tuple[tuple[str, ...], str | None]:
    channel = e.properties.get("channel")
    purpose = e.properties.get("purpose")
    channels = (str(channel),) if channel else ()
    if e.kind == EventKind.OPTED_OUT and not channel:
        return (), None
    if e.kind == EventKind.COMPLAINED and not channel and not purpose:
        # A spam complaint stops marketing on the channel it came from (as `state` reads it).
        return ("email",), "marketing"
    return channels, str(purpose) if purpose else None


def _lifted_by(e: LedgerEvent, channels: tuple[str, ...], purpose: str | None) -> bool:
    if e.kind not in OPT_IN_EVENTS:
        return False
    ch, pu = e.properties.get("channel"), e.properties.get("purpose")
    if not ch and not pu:
        return True  # opting in again without a scope lifts every opt-out
    return (not ch or (str(ch),) == channels) and (not pu or str(pu) == purpose)


def _optouts(
    state: CustomerState, keywords: Iterable[str]
) -> list[tuple[LedgerEvent, tuple[str, ...], str | None]]:
    found = []
    words = tuple(keywords)
    for e in state.events:
        if e.kind in OPT_OUT_EVENTS:
            channels, purpose = _opt_out_scope(e)
            found.append((e, channels, purpose))
        elif e.kind == EventKind.CONTACT_REPLIED:
            text = reply_text(e.properties)
            if text and words and says_revoke(text, words, ()):
                # A STOP reply revokes consent to calls and texts (47 CFR 64.1200(a)(10)).
                found.append((e, ("call", "sms"), None))
    return found


def optout_audit(
    state: CustomerState,
    regimes: Iterable[Regime] = REGIMES,
    *,
    exempt_purposes: tuple[str, ...] = ("transactional",),
    revocation_keywords: Iterable[str] = FCC_KEYWORDS,
    applicable_only: bool = True,
) -> list[OptOutFinding]:
    """Every opt-out the customer made, its regime deadlines, and what followed it.

    A regime applies to an opt-out covering one of its channels, and (with
    `applicable_only`) when any candidate location of the customer is in its regions; a
    customer whose location is unknown is checked against every regime. Contacts that
    followed: sent or held, on a covered channel and purpose, not of an exempt purpose,
    after the opt-out and before any opt-in that lifted it.
    """
    profile = state.profile
    zones = customer_zones(profile)
    regions = customer_regions(profile)
    regimes = tuple(regimes)
    findings: list[OptOutFinding] = []
    for e, channels, purpose in _optouts(state, revocation_keywords):
        lifted = next(
            (x.ts for x in state.events if x.ts > e.ts and _lifted_by(x, channels, purpose)),
            None,
        )
        deadlines: list[tuple[Deadline, Regime]] = []
        for regime in regimes:
            if channels and not set(channels) & set(regime.channels):
                continue
            if applicable_only and regions and not in_regions(regions, regime.regions):
                continue
            # The deadline is counted on the customer's calendar; with several candidate
            # zones, the earliest end is the one that binds.
            ends = []
            for tz in zones:
                last = last_business_day(local_day(e.ts, tz), regime.business_days, regime.calendar)
                ends.append((day_start(last + timedelta(days=1), tz), last))
            end, last = min(ends)
            due = datetime.fromtimestamp(end, UTC)
            deadlines.append((Deadline(regime.name, regime.cite, last, due), regime))
        followed = []
        for c in state.contacts:
            if c.ts <= e.ts or (lifted is not None and c.ts >= lifted):
                continue
            if c.status is ContactStatus.CANCELLED or c.purpose in exempt_purposes:
                continue
            if not _covers(channels, purpose, c):
                continue
            late = tuple(
                d.regime
                for d, regime in deadlines
                if c.ts >= d.due.timestamp() and c.channel in regime.channels
            )
            followed.append(
                FollowingContact(
                    c.contact_id,
                    datetime.fromtimestamp(c.ts, UTC),
                    c.channel,
                    c.purpose,
                    c.status.value,
                    late,
                )
            )
        findings.append(
            OptOutFinding(
                received=datetime.fromtimestamp(e.ts, UTC),
                kind="revocation" if e.kind == EventKind.CONTACT_REPLIED else e.kind,
                channels=channels,
                purpose=purpose,
                deadlines=tuple(d for d, _ in deadlines),
                followed_by=tuple(followed),
                lifted=datetime.fromtimestamp(lifted, UTC) if lifted is not None else None,
                text=reply_text(e.properties),
            )
        )
    return findings
