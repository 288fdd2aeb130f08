"""The customer view: one time line of what the customer did and what was proposed to them.

This is the page a support agent opens when a customer says "you keep calling me": the
customer's events (visits, checkout, downloads, declines, snoozes, opt-outs) and every
contact proposed, allowed, deferred or denied with its reasons, on one axis; and where the
customer stands now (pressure, consent, preferences, when each channel may next be used).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tactful.engine import next_allowed, pressure
from tactful.model import (
    ACTIVITY_EVENTS,
    ContactProposal,
    CustomerProfile,
    EventKind,
    Verdict,
    from_ts,
)
from tactful.policy.document import Policy
from tactful.rules.pressure import PressureRule
from tactful.service.identity import address_check
from tactful.store.base import AuditQuery, Identity, Store

#: Decisions shown (newest); the audit page has them all.
DECISION_LIMIT = 500
#: Events shown (newest).
EVENT_LIMIT = 1_000
#: Channels and purposes in the "next allowed" table.
NEXT_CHANNELS = ("email", "sms", "call", "push")
NEXT_PURPOSES = ("marketing", "sales", "service")

VISITS = "on the site"
SIGNALS = "customer said"

EVENT_WORDS: dict[str, str] = {
    EventKind.SESSION_STARTED: "Visit started",
    EventKind.SESSION_ENDED: "Visit ended",
    EventKind.PAGE_VIEWED: "Viewed a page",
    EventKind.PRODUCT_VIEWED: "Viewed a product",
    EventKind.SIGNED_IN: "Signed in",
    EventKind.SEARCHED: "Searched",
    EventKind.CART_UPDATED: "Changed the cart",
    EventKind.CHECKOUT_STARTED: "Started checkout",
    EventKind.ORDER_COMPLETED: "Completed the order",
    EventKind.CONTENT_DOWNLOADED: "Downloaded content",
    EventKind.HELP_REQUESTED: "Asked for help",
    EventKind.CHAT_DISMISSED: "Dismissed a chat offer",
    EventKind.OFFER_DECLINED: "Declined an offer",
    EventKind.NOT_INTERESTED: "Said: not interested",
    EventKind.CONTACT_REPLIED: "Replied",
    EventKind.CONTACT_ANSWERED: "Answered",
    EventKind.CALLBACK_REQUESTED: "Asked for a call-back",
    EventKind.SNOOZE_REQUESTED: "Asked for a pause (snooze)",
    EventKind.UNSUBSCRIBED: "Unsubscribed",
    EventKind.SUBSCRIBED: "Subscribed",
    EventKind.OPTED_OUT: "Opted out of everything",
    EventKind.OPTED_IN: "Opted in again",
    EventKind.COMPLAINED: "Complained (spam report)",
}
#: Event properties worth showing, in this order.
EVENT_DETAILS = ("offer", "title", "text", "until", "duration", "at", "channel", "purpose", "via")


@dataclass
class Row:
    """One line of the time line: a customer event or a decision."""

    when: datetime
    lane: str
    title: str
    verdict: str | None = None
    detail: str = ""
    reasons: list[dict[str, Any]] = field(default_factory=list)
    until: datetime | None = None
    status: str | None = None
    outcome: str | None = None
    decision_id: str | None = None

    def hover(self, zone: ZoneInfo) -> str:
        """The chart's hover text, times in the customer's zone."""
        lines = [f"<b>{_esc(self.title)}</b>", f"{self.when.astimezone(zone):%a %d %b %H:%M}"]
        if self.verdict:
            head = self.verdict.upper()
            if self.until:
                head += f" until {self.until.astimezone(zone):%a %d %b %H:%M}"
            lines.append(head)
        lines += [
            f"{_esc(str(r.get('rule')))}: {_esc(str(r.get('message')))}" for r in self.reasons
        ]
        if self.detail:
            lines.append(_esc(self.detail))
        return "<br>".join(lines)


def _esc(text: str) -> str:
    # Plotly renders hover text as a small subset of HTML.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True, slots=True)
class NextCell:
    when: datetime | None
    verdict: str
    reason: str


@dataclass
class CustomerView:
    customer_id: str
    exists: bool
    suppressed: bool
    profile: CustomerProfile
    zone: ZoneInfo
    now: datetime
    rows: list[Row] = field(default_factory=list)
    lanes: list[str] = field(default_factory=list)
    pressure: float | None = None
    budget: float | None = None
    opt_outs: list[tuple[str, datetime, str]] = field(default_factory=list)
    snooze_until: datetime | None = None
    callback: tuple[datetime, str | None] | None = None
    next_allowed: dict[str, dict[str, NextCell]] = field(default_factory=dict)
    decisions_truncated: bool = False
    events_truncated: bool = False
    #: The ids this customer is known by, and the merges that joined them.
    identity: Identity | None = None
    #: Entries of the suppression list by address that this customer's addresses match:
    #: (the address kind, the scope, why, since).
    address_suppressions: list[tuple[str, str, str, datetime]] = field(default_factory=list)

    @property
    def pace(self) -> str | None:
        pace = self.profile.preferences.get("pace")
        if not isinstance(pace, Mapping):
            return None
        return f"at most {pace.get('count')} per {pace.get('per')}"

    @property
    def chosen_channels(self) -> list[str] | None:
        channels = self.profile.preferences.get("channels")
        return [str(c) for c in channels] if isinstance(channels, list) else None


def zone_of(profile: CustomerProfile) -> ZoneInfo:
    try:
        return ZoneInfo(profile.timezone) if profile.timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _event_detail(props: Mapping[str, Any]) -> str:
    parts = [f"{k}: {props[k]}" for k in EVENT_DETAILS if props.get(k) not in (None, "")]
    return "; ".join(parts)


def build(store: Store, policy: Policy, customer_id: str, now: datetime) -> CustomerView:
    state = store.load_state(customer_id)
    profile = state.profile
    suppressed = store.suppressed(customer_id)
    records = store.audit(AuditQuery(customer_id=customer_id, limit=DECISION_LIMIT))
    exists = bool(
        store.get_profile(customer_id) is not None or state.events or state.contacts or records
    )
    view = CustomerView(
        customer_id=customer_id,
        exists=exists,
        suppressed=suppressed,
        profile=profile,
        zone=zone_of(profile),
        now=now,
        decisions_truncated=len(records) == DECISION_LIMIT,
        events_truncated=len(state.events) > EVENT_LIMIT,
    )
    if not exists:
        return view

    rows: list[Row] = []
    for e in state.events[-EVENT_LIMIT:]:
        lane = VISITS if e.kind in ACTIVITY_EVENTS or e.kind == EventKind.SESSION_ENDED else SIGNALS
        rows.append(
            Row(
                when=from_ts(e.ts),
                lane=lane,
                title=EVENT_WORDS.get(e.kind, e.kind.replace("_", " ").capitalize()),
                detail=_event_detail(e.properties),
            )
        )
    for r in records:
        who = f" from {r.source}" if r.source else ""
        detail = ", ".join(
            x for x in (r.campaign and f"campaign {r.campaign}", r.status, r.outcome) if x
        )
        rows.append(
            Row(
                when=r.at,
                lane=r.channel,
                title=f"{r.channel} / {r.purpose}{who}",
                verdict=r.verdict,
                detail=detail,
                reasons=list(r.reasons),
                until=r.not_before,
                status=r.status,
                outcome=r.outcome,
                decision_id=r.decision_id,
            )
        )
    # Same instant: the customer's event first, then what was decided about it.
    rows.sort(key=lambda row: (row.when, row.verdict is not None))
    view.rows = rows
    channels = sorted({r.lane for r in rows} - {VISITS, SIGNALS})
    view.lanes = [lane for lane in (VISITS, SIGNALS) if any(r.lane == lane for r in rows)]
    view.lanes += channels

    view.pressure = pressure(state, policy, now)
    view.budget = next((r.budget for r in policy.rules if isinstance(r, PressureRule)), None)
    for (channel, purpose), (ts, kind) in sorted(
        state.derived.optouts.items(), key=lambda item: item[1][0]
    ):
        scope = " ".join(x for x in (purpose, channel) if x) or "everything"
        view.opt_outs.append((scope, from_ts(ts), kind.replace("_", " ")))
    snooze = state.derived.snooze
    if snooze and snooze[1] > now.timestamp():
        view.snooze_until = from_ts(snooze[1])
    callback = state.derived.callback
    if callback and callback[1] > now.timestamp():
        view.callback = (from_ts(callback[1]), callback[2])

    view.identity = store.identity(customer_id)
    hits = store.address_hits(customer_id)
    for h in sorted(hits, key=lambda h: h.at):
        scope = " ".join(x for x in (h.purpose, h.channel) if x) or "everything"
        view.address_suppressions.append((h.kind, scope, h.reason.replace("_", " "), h.at))
    for channel in NEXT_CHANNELS:
        view.next_allowed[channel] = {}
        for purpose in NEXT_PURPOSES:
            if suppressed:
                cell = NextCell(None, "deny", "erased on request: suppressed")
            else:
                when, decision = next_allowed(state, channel, purpose, policy, now)
                # As a decision would be answered: the suppression list by address too.
                probe = ContactProposal(state.profile.customer_id, channel, purpose)
                decision = address_check(decision, probe, hits)
                reason = decision.reasons[0].message if decision.reasons else ""
                if decision.verdict is not Verdict.DEFER:
                    when = None
                cell = NextCell(when, decision.verdict.value, reason)
            view.next_allowed[channel][purpose] = cell
    return view


def local(when: datetime, zone: ZoneInfo) -> str:
    """A time as the customer lives it: 'Tue 24 Nov 14:02 CST'."""
    return when.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")


def utc_text(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
