"""`revocation`: "STOP" in a reply withdraws consent, whatever path the reply took.

Ingestion maps provider keywords (Twilio's STOP) to opt-out events, but consent may be
revoked "by any reasonable means" (47 CFR 64.1200(a)(10)): a reply that says STOP, QUIT or
"please take me off your list" is a revocation even when it arrives as a plain reply. This
kind reads the text of the customer's replies, so a pack enforces it on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from tactful.model import EventKind
from tactful.rules.base import NEVER, Context, Rule
from tactful.state import LedgerEvent

TEXT_FIELDS = ("text", "body", "message")
#: The events that lift a revocation (`RevocationRule.lifts`).
LIFTING = (EventKind.OPTED_IN, EventKind.SUBSCRIBED)
_NOT_WORD = re.compile(r"[^\w]+")


def normalise(text: str) -> str:
    """Lower case, punctuation and runs of space folded to one space: "Opt-Out!" -> "opt out"."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def reply_text(props: Mapping[str, Any]) -> str | None:
    for name in TEXT_FIELDS:
        value = props.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def says_revoke(text: str, keywords: Iterable[str], phrases: Iterable[str]) -> bool:
    """Whether `text` is one of `keywords` (the whole message) or contains one of `phrases`."""
    said = normalise(text)
    if not said:
        return False
    if said in {normalise(k) for k in keywords}:
        return True
    padded = f" {said} "
    return any(f" {normalise(p)} " in padded for p in phrases)


class RevocationRule(Rule):
    """Deny once the customer replied with a revocation: a message that is one of
    `keywords` (the whole message, any case or punctuation) or that contains one of
    `phrases`, until a later opt-in. Replies are events of the `events` kinds carrying
    their text in `text`, `body` or `message`."""

    kind: Literal["revocation"]
    keywords: tuple[str, ...] = Field(min_length=1)
    phrases: tuple[str, ...] = ()
    events: tuple[str, ...] = (EventKind.CONTACT_REPLIED.value,)
    default_mode = "deny"
    default_exempt = ()
    timeless = True

    def describe(self) -> str:
        text = f"a reply of {', '.join(self.keywords).upper()} revokes consent"
        if self.phrases:
            text += f"; so does one containing {', '.join(repr(p) for p in self.phrases)}"
        return text + "; until the customer opts in again"

    def matches(self, e: LedgerEvent) -> bool:
        return self.revokes(e.kind, e.properties)

    def revokes(self, kind: str, props: Mapping[str, Any]) -> bool:
        """Whether an event of `kind` with `props` is a reply that revokes consent."""
        if kind not in self.events:
            return False
        text = reply_text(props)
        return text is not None and says_revoke(text, self.keywords, self.phrases)

    def lifts(self, kind: str, props: Mapping[str, Any]) -> bool:
        """Whether an event of `kind` with `props` lifts a revocation: an opt-in (or a
        subscription) to every channel or to one of the rule's."""
        if kind not in LIFTING:
            return False
        channel = props.get("channel")
        channels = self.scope.channels
        return not channel or not channels or channel in channels

    def revoked(self, ctx: Context) -> LedgerEvent | None:
        """The revoking reply in force now, if any (a later opt-in lifts it)."""
        found: LedgerEvent | None = None
        for e in ctx.state.events:
            if e.ts > ctx.now:
                break
            if self.matches(e):
                found = e
            elif found is not None and self.lifts(e.kind, e.properties):
                found = None
        return found

    def check(self, ctx: Context, t: float) -> float:
        return NEVER if self.revoked(ctx) is not None else t

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        e = self.revoked(ctx)
        if e is None:
            return {}
        return self.details_of(e.properties, e.ts, ctx.zones[0])

    @staticmethod
    def details_of(props: Mapping[str, Any], ts: float, tz: ZoneInfo) -> dict[str, str]:
        """`details` of the revoking reply with `props` at `ts`, dated in `tz`."""
        said = (reply_text(props) or "").strip()
        return {
            "said": said if len(said) <= 40 else said[:37] + "...",
            "on": datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d"),
        }
