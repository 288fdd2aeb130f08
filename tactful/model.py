"""The domain: customers, events, contact proposals, decisions and their reasons.

These are plain frozen dataclasses so the pure core can build and compare them cheaply;
the HTTP layer has its own pydantic schemas that translate to and from these.
Times are timezone-aware datetimes at this boundary; the core works in epoch seconds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

#: The longest event kind (and a trigger's event) the ledger holds, and the longest id an
#: ingested message may carry (a customer id, a message id): the store's column sizes.
KIND_MAX = 64
ID_MAX = 200

# Channels and purposes named in the product brief. Both are open sets: a policy may
# name others (a `channel: "whatsapp"` is fine), these are the ones the packs know.
CHANNELS: tuple[str, ...] = ("email", "sms", "call", "push", "in_app", "chat", "mail", "visit")
PURPOSES: tuple[str, ...] = ("transactional", "service", "marketing", "sales", "collections")


class Verdict(enum.StrEnum):
    """What tactful answers to a contact proposal."""

    ALLOW = "allow"
    DEFER = "defer"
    DENY = "deny"


class Outcome(enum.StrEnum):
    """What happened to a contact that was sent."""

    DELIVERED = "delivered"
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    REPLIED = "replied"
    DECLINED = "declined"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    COMPLAINED = "complained"


#: Outcomes that mean the customer did not pick up: they feed back-off and double pressure.
UNANSWERED_OUTCOMES = frozenset({Outcome.NO_ANSWER, Outcome.VOICEMAIL})
#: Outcomes that mean the customer engaged with the contact.
ENGAGED_OUTCOMES = frozenset({Outcome.ANSWERED, Outcome.REPLIED})


class EventKind(enum.StrEnum):
    """Canonical customer signals. Ingestion maps other vocabularies (Segment, SendGrid,
    Twilio) onto these; unknown kinds are kept in the ledger and ignored by the rules."""

    SESSION_STARTED = "session_started"
    SESSION_ENDED = "session_ended"
    PAGE_VIEWED = "page_viewed"
    PRODUCT_VIEWED = "product_viewed"
    SIGNED_IN = "signed_in"
    SEARCHED = "searched"
    CART_UPDATED = "cart_updated"
    CHECKOUT_STARTED = "checkout_started"
    ORDER_COMPLETED = "order_completed"
    CONTENT_DOWNLOADED = "content_downloaded"
    HELP_REQUESTED = "help_requested"
    CHAT_DISMISSED = "chat_dismissed"
    OFFER_DECLINED = "offer_declined"
    NOT_INTERESTED = "not_interested"
    CONTACT_REPLIED = "contact_replied"
    CONTACT_ANSWERED = "contact_answered"
    CALLBACK_REQUESTED = "callback_requested"
    SNOOZE_REQUESTED = "snooze_requested"
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIBED = "subscribed"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    COMPLAINED = "complained"


#: Events that show the customer is present on a site or app right now.
ACTIVITY_EVENTS = frozenset(
    {
        EventKind.SESSION_STARTED,
        EventKind.PAGE_VIEWED,
        EventKind.PRODUCT_VIEWED,
        EventKind.SIGNED_IN,
        EventKind.SEARCHED,
        EventKind.CART_UPDATED,
        EventKind.CHECKOUT_STARTED,
        EventKind.ORDER_COMPLETED,
        EventKind.CONTENT_DOWNLOADED,
        EventKind.HELP_REQUESTED,
        EventKind.CHAT_DISMISSED,
    }
)
#: Events by which a customer reaches out or responds: they reset unanswered back-off.
ENGAGEMENT_EVENTS = frozenset(
    {
        EventKind.CONTACT_REPLIED,
        EventKind.CONTACT_ANSWERED,
        EventKind.CALLBACK_REQUESTED,
        EventKind.HELP_REQUESTED,
        EventKind.SESSION_STARTED,
        EventKind.SIGNED_IN,
    }
)
#: A channel's intrusiveness weight (pressure) where the policy's `weights` do not say.
DEFAULT_WEIGHT = 1.0

#: Trigger kinds that mean "the customer asked us to contact them": such contacts weigh
#: nothing in pressure and are not held back by caps at the requested time.
REQUESTED_TRIGGERS = frozenset({EventKind.CALLBACK_REQUESTED, EventKind.HELP_REQUESTED})


def utc(value: datetime) -> datetime:
    """Return `value` as an aware UTC datetime; naive values are taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def from_ts(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """What tactful knows of a customer: no name, no address, only what pacing needs."""

    customer_id: str
    timezone: str | None = None
    country: str | None = None
    subdivision: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    #: Explicit consent by scope ("email", "sms:marketing", "*"): True granted, False refused.
    consent: Mapping[str, bool] = field(default_factory=dict)
    #: Customer-chosen preferences: {"channels": [...], "pace": {"count": 1, "per": "7d"}}.
    preferences: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A signal from the customer, at the time it happened (not when it arrived)."""

    customer_id: str
    kind: str
    at: datetime
    event_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)


class Trigger(NamedTuple):
    """The customer event that prompted a contact. (Named tuples, this and `Content`:
    a proposal's parts are hashed for every decision's memo key, a tuple's hash is the
    cheapest.)"""

    event: str
    at: datetime | None = None


class Content(NamedTuple):
    subject: str | None = None
    body: str | None = None
    discount: bool = False
    #: Free-form markers, e.g. "greeting" or "chat_offer" for in-session approaches.
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContactProposal:
    """A contact someone would like to make. `at` is when it would happen (None: now)."""

    customer_id: str
    channel: str
    purpose: str
    at: datetime | None = None
    trigger: Trigger | None = None
    offer: str | None = None
    campaign: str | None = None
    source: str | None = None
    priority: int = 0
    content: Content | None = None
    idempotency_key: str | None = None
    #: Extra keys a policy may count by (e.g. a debt's `account` under Reg F).
    tags: Mapping[str, str] = field(default_factory=dict)
    #: The phone number (E.164) or email address the contact will use, if named: checked
    #: against the suppression list by address (see docs/identity.md).
    to: str | None = None


class ContactStatus(enum.StrEnum):
    HELD = "held"
    SENT = "sent"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact in the ledger: a hold placed by an allow, or a confirmed send."""

    contact_id: str
    customer_id: str
    channel: str
    purpose: str
    at: datetime
    status: ContactStatus = ContactStatus.SENT
    outcome: str | None = None
    hold_expires: datetime | None = None
    trigger_event: str | None = None
    trigger_at: datetime | None = None
    offer: str | None = None
    campaign: str | None = None
    source: str | None = None
    flags: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_proposal(
        cls,
        contact_id: str,
        proposal: ContactProposal,
        at: datetime,
        *,
        status: ContactStatus = ContactStatus.SENT,
        hold_expires: datetime | None = None,
        outcome: str | None = None,
    ) -> Contact:
        trigger = proposal.trigger
        return cls(
            contact_id=contact_id,
            customer_id=proposal.customer_id,
            channel=proposal.channel,
            purpose=proposal.purpose,
            at=at,
            status=status,
            outcome=outcome,
            hold_expires=hold_expires,
            trigger_event=trigger.event if trigger else None,
            trigger_at=trigger.at if trigger else None,
            offer=proposal.offer,
            campaign=proposal.campaign,
            source=proposal.source,
            flags=proposal.content.flags if proposal.content else (),
            tags=proposal.tags,
        )


class Reason(NamedTuple):
    """Why a rule held a contact back (or flagged it): data, rendered everywhere alike.
    A named tuple, as `Decision` (the engine makes one per reason)."""

    rule: str
    kind: str
    message: str
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "message": self.message,
            "until": self.until.isoformat() if self.until else None,
        }


@dataclass(frozen=True, slots=True)
class PolicyRef:
    name: str
    version: str


class Decision(NamedTuple):
    """The answer to a proposal. `not_before` is set for a defer: the earliest instant at
    which every rule allows the contact. `flags` are reasons that did not stop it.

    A named tuple: immutable, and the cheapest object Python builds (the engine's memoised
    path is little more than building one; `Decision._make` and `tuple.__new__` skip the
    keyword handling). `with_id` names a copy."""

    verdict: Verdict
    reasons: tuple[Reason, ...]
    policy: PolicyRef
    at: datetime
    not_before: datetime | None = None
    flags: tuple[Reason, ...] = ()
    decision_id: str | None = None

    def with_id(self, decision_id: str) -> Decision:
        return self._replace(decision_id=decision_id)

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "verdict": self.verdict.value,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "reasons": [r.as_dict() for r in self.reasons],
            "flags": [r.as_dict() for r in self.flags],
            "policy": {"name": self.policy.name, "version": self.policy.version},
        }


_OUTCOME_SIGNALS = {
    Outcome.UNSUBSCRIBED: EventKind.UNSUBSCRIBED,
    Outcome.COMPLAINED: EventKind.COMPLAINED,
    Outcome.DECLINED: EventKind.OFFER_DECLINED,
}
#: Outcomes that are also a customer signal (`outcome_signal` gives None for the rest).
SIGNAL_OUTCOMES = frozenset(_OUTCOME_SIGNALS)


def outcome_signal(contact: Contact, outcome: str, at: datetime) -> Event | None:
    """The customer signal an outcome also is: an unsubscribe or complaint through a contact
    stops that channel (for that purpose), a decline is a declined offer. One definition for
    the service and the replay, so both fold the same ledger."""
    kind = _OUTCOME_SIGNALS.get(Outcome(outcome))
    if kind is None:
        return None
    props: dict[str, str] = {"channel": contact.channel, "decision_id": contact.contact_id}
    if kind is EventKind.UNSUBSCRIBED and contact.purpose != "transactional":
        props["purpose"] = contact.purpose
    if kind is EventKind.OFFER_DECLINED:
        props = {"offer": contact.offer} if contact.offer else {}
    return Event(
        contact.customer_id, kind, at, event_id=f"outcome:{contact.contact_id}", properties=props
    )
