"""The HTTP contract: request and response bodies. Field names here are promised to
integrators (PRODUCT.md, "Interfaces"); they translate to and from the domain model."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from tactful.addresses import parse_address, parse_email, parse_phone
from tactful.model import (
    ID_MAX,
    KIND_MAX,
    Contact,
    ContactProposal,
    Content,
    CustomerProfile,
    Decision,
    Outcome,
    Trigger,
    utc,
)
from tactful.text import NUL_MESSAGE, nul_path

NAME = r"^[a-z][a-z0-9_]{0,39}$"


def _iso_only(value: Any) -> Any:
    # Pydantic would read a number (1.7e9 as much as 1700000000) as Unix seconds; the
    # schema promises ISO 8601 text.
    if isinstance(value, bool | int | float) or (isinstance(value, str) and _number(value)):
        raise ValueError("write the time as ISO 8601 text, e.g. 2026-11-24T14:02:00Z")
    return value


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number_only(value: Any) -> Any:
    # JSON Schema's integer admits 3.0 but not "3" or true; so do we.
    if isinstance(value, bool | str):
        raise ValueError("a whole number is required")
    return value


Whole = Annotated[int, BeforeValidator(_number_only)]


def _in_utc(value: datetime) -> datetime:
    try:
        return utc(value)
    except OverflowError:
        raise ValueError("date-time out of range") from None


#: An instant, as ISO 8601 text (a naive time is taken as UTC).
Instant = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_in_utc)]


#: OpenAPI `responses=` for a route.
Responses = dict[int | str, dict[str, Any]]


class Strict(BaseModel):
    """What every request body is made of: no field beyond those named, and no NUL
    character in any text (it would be refused by PostgreSQL at the end, as a 500, after
    SQLite stored it: refused here, with the field, on every store alike)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # A nested body (`Strict` too) has said so for its own fields already.
        if not isinstance(value, BaseModel):
            where = nul_path(value)
            if where is not None:
                raise ValueError(f"{NUL_MESSAGE} (at {where})" if where else NUL_MESSAGE)
        return value


class TriggerIn(Strict):
    event: str = Field(min_length=1, max_length=KIND_MAX, description="The event that prompted it.")
    at: Instant | None = Field(default=None, description="When it happened (default: latest).")


class ContentIn(Strict):
    subject: str | None = Field(default=None, max_length=2000)
    body: str | None = Field(default=None, max_length=100_000)
    discount: StrictBool = False
    flags: list[str] = Field(default_factory=list, max_length=20)


PROPOSAL_EXAMPLE: dict[str, Any] = {
    "customer_id": "cust-1042",
    "channel": "call",
    "purpose": "sales",
    "trigger": {"event": "checkout_started"},
    "offer": "premium-plan",
    "source": "sales-team-east",
    "content": {"body": "Calling to help with your order"},
    "idempotency_key": "dialer-7781-attempt-1",
}


#: A call to a number tactful may never have seen: decided on the address alone.
COLD_OUTREACH_EXAMPLE: dict[str, Any] = {
    "to": "+13125550142",
    "channel": "call",
    "purpose": "sales",
    "source": "outbound-team",
}


class ProposalIn(Strict):
    """A contact someone would like to make."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [PROPOSAL_EXAMPLE, COLD_OUTREACH_EXAMPLE],
            "anyOf": [{"required": ["customer_id"]}, {"required": ["to"]}],
        },
    )

    customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=ID_MAX,
        description="Any id of the customer (aliases resolve). May be left out when `to` "
        "is given: the customer holding that address is meant, or, if nobody does, a "
        "customer known only by the address (cold outreach).",
    )
    channel: str = Field(pattern=NAME, description="email, sms, call, push, in_app, chat, ...")
    purpose: str = Field(pattern=NAME, description="transactional, service, marketing, sales, ...")
    at: Instant | None = Field(
        default=None, description="When the contact would happen (default now)."
    )
    to: str | None = Field(
        default=None,
        max_length=320,
        pattern=r"^(\+[1-9][0-9 ().-]{7,24}|[^@\s]+@[^@\s]+\.[^@\s]+)$",
        description="The phone number (with its country code) or email address the contact "
        "will use; checked against the suppression list by address.",
    )
    trigger: TriggerIn | None = None
    offer: str | None = Field(default=None, max_length=200)
    campaign: str | None = Field(default=None, max_length=200)
    source: str | None = Field(default=None, max_length=200, description="Team or rep.")
    priority: Whole = Field(default=0, ge=-1_000_000, le=1_000_000)
    content: ContentIn | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    tags: dict[str, str] = Field(default_factory=dict, description="Extra keys to count by.")
    on_defer: Literal["drop", "queue"] = Field(
        default="drop",
        description='On a defer: "drop" (you ask again later) or "queue" (tactful keeps it, '
        "decides it again at `not_before` and, once allowed, places the hold and notifies "
        "your webhook).",
    )
    expires_at: Instant | None = Field(
        default=None,
        description='With on_defer "queue": drop it if it is not allowed by then.',
    )

    @field_validator("to")
    @classmethod
    def _to(cls, v: str | None) -> str | None:
        return None if v is None else parse_address(v, "to")[1]

    @model_validator(mode="after")
    def _someone(self) -> ProposalIn:
        if self.customer_id is None and self.to is None:
            raise ValueError("customer_id: required unless `to` names the phone or email")
        return self

    @model_validator(mode="after")
    def _expiry_needs_queue(self) -> ProposalIn:
        if self.expires_at is not None and self.on_defer != "queue":
            raise ValueError('expires_at applies only with on_defer "queue"')
        return self

    def to_model(self) -> ContactProposal:
        trigger = None
        if self.trigger is not None:
            at = utc(self.trigger.at) if self.trigger.at else None
            trigger = Trigger(self.trigger.event, at)
        content = None
        if self.content is not None:
            c = self.content
            content = Content(c.subject, c.body, c.discount, tuple(c.flags))
        return ContactProposal(
            # "" until `tactful.service.identity.addressed` finds the holder of `to`.
            customer_id=self.customer_id or "",
            channel=self.channel,
            purpose=self.purpose,
            at=utc(self.at) if self.at else None,
            trigger=trigger,
            offer=self.offer,
            campaign=self.campaign,
            source=self.source,
            priority=self.priority,
            content=content,
            idempotency_key=self.idempotency_key,
            tags=dict(self.tags),
            to=self.to,
        )


class BatchIn(Strict):
    proposals: list[ProposalIn] = Field(
        min_length=1, max_length=100, description="Up to 100 proposals per call."
    )


class ReasonOut(BaseModel):
    rule: str
    kind: str
    message: str
    until: datetime | None = None


class PolicyRefOut(BaseModel):
    name: str
    version: str


class UnsubscribeOut(BaseModel):
    """RFC 8058 one-click unsubscribe: put `headers` on the email, `url` in its footer;
    `preferences` is the customer's preference centre, for a "manage your preferences"
    link beside it."""

    url: str
    headers: dict[str, str]
    preferences: str | None = Field(
        default=None, description="The customer's preference centre (a signed, expiring link)."
    )


class QueuedOut(BaseModel):
    """A deferred proposal kept in the queue (`on_defer: "queue"`)."""

    id: str
    due_at: datetime = Field(description="When it is decided again (its `not_before`).")
    expires_at: datetime | None = None


class DecisionOut(BaseModel):
    decision_id: str
    verdict: Literal["allow", "defer", "deny"]
    not_before: datetime | None = None
    reasons: list[ReasonOut]
    flags: list[ReasonOut] = Field(default_factory=list)
    policy: PolicyRefOut
    at: Instant = Field(description="The time decided for (the proposal's `at`, or now).")
    hold_expires: datetime | None = Field(
        default=None, description="An allow holds the slot until then unless confirmed sent."
    )
    replayed: bool = Field(default=False, description="True when an idempotency key repeated.")
    unsubscribe: UnsubscribeOut | None = None
    queued: QueuedOut | None = Field(
        default=None, description='Set when a defer was kept in the queue (on_defer "queue").'
    )

    @classmethod
    def of(
        cls,
        d: Decision,
        *,
        replayed: bool = False,
        hold_expires: datetime | None = None,
        unsubscribe: UnsubscribeOut | None = None,
    ) -> DecisionOut:
        return cls(
            decision_id=d.decision_id or "",
            verdict=d.verdict.value,
            not_before=d.not_before,
            reasons=[ReasonOut(**r.as_dict()) for r in d.reasons],
            flags=[ReasonOut(**r.as_dict()) for r in d.flags],
            policy=PolicyRefOut(name=d.policy.name, version=d.policy.version),
            at=d.at,
            hold_expires=hold_expires,
            replayed=replayed,
            unsubscribe=unsubscribe,
        )


class BatchOut(BaseModel):
    decisions: list[DecisionOut]


class SentIn(Strict):
    at: Instant | None = Field(default=None, description="When it was sent (default now).")


class OutcomeIn(Strict):
    outcome: Outcome


class ContactOut(BaseModel):
    contact_id: str
    customer_id: str
    channel: str
    purpose: str
    at: Instant
    status: str
    outcome: str | None = None
    hold_expires: datetime | None = None

    @classmethod
    def of(cls, c: Contact) -> ContactOut:
        return cls(
            contact_id=c.contact_id,
            customer_id=c.customer_id,
            channel=c.channel,
            purpose=c.purpose,
            at=c.at,
            status=str(c.status),
            outcome=c.outcome,
            hold_expires=c.hold_expires,
        )


class NextOut(BaseModel):
    customer_id: str
    channel: str
    purpose: str
    next_allowed: datetime | None = Field(description="Earliest allowed time; null: not at all.")
    verdict_now: Literal["allow", "defer", "deny"]
    reasons: list[ReasonOut]


class EventIn(Strict):
    """A customer signal in tactful's own vocabulary (see the event kinds in the docs)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "cust-1042",
                    "event": "checkout_started",
                    "timestamp": "2026-11-24T14:02:00Z",
                    "messageId": "web-5521",
                    "properties": {"session_id": "s-88"},
                }
            ]
        },
    )

    customer_id: str = Field(min_length=1, max_length=ID_MAX)
    event: str = Field(min_length=1, max_length=KIND_MAX)
    timestamp: Instant
    messageId: str | None = Field(default=None, max_length=200)
    properties: dict[str, Any] = Field(default_factory=dict)


class EventsIn(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=5000)


class IngestOut(BaseModel):
    accepted: int = Field(description="Events stored now (duplicates are not counted).")
    duplicates: int = 0
    errors: list[dict[str, Any]] = Field(default_factory=list)


def _valid_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/Paris)"
        ) from exc
    return value


class PaceIn(Strict):
    count: Whole = Field(ge=1, le=1000)
    per: str = Field(pattern=r"^\d+\s*[smhdw]$", description="e.g. 7d, 30d")


class PreferencesIn(Strict):
    channels: list[str] | None = Field(default=None, description="Only these channels.")
    pace: PaceIn | None = None


class ProfilePatch(Strict):
    """Fields to change on a customer's profile; omitted fields stay as they are."""

    timezone: str | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    subdivision: str | None = Field(default=None, max_length=10)
    phones: list[Annotated[str, Field(pattern=r"^\+?[0-9][0-9 ().-]{5,24}$")]] | None = Field(
        default=None, max_length=20, description="With the country code: +1 312 555 0142."
    )
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)]] | None = (
        Field(default=None, max_length=20)
    )
    consent: dict[str, StrictBool] | None = None
    preferences: PreferencesIn | None = None

    _tz = field_validator("timezone")(lambda cls, v: _valid_zone(v))

    @field_validator("phones")
    @classmethod
    def _phones(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [parse_phone(p, f"phones[{i}]") for i, p in enumerate(v)]

    @field_validator("emails")
    @classmethod
    def _emails(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [parse_email(e, f"emails[{i}]") for i, e in enumerate(v)]

    def apply(self, profile: CustomerProfile) -> CustomerProfile:
        from dataclasses import replace

        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name in ("phones", "emails"):
                value = tuple(value or ())
            elif name == "country" and value is not None:
                value = value.upper()
            elif name == "preferences" and value is not None:
                value = value.model_dump(exclude_none=True)
            elif name in ("consent", "preferences") and value is None:
                value = {}
            changes[name] = value
        return replace(profile, **changes)


class ProfileOut(BaseModel):
    customer_id: str
    timezone: str | None
    country: str | None
    subdivision: str | None
    phones: list[str]
    emails: list[str]
    consent: dict[str, bool]
    preferences: dict[str, Any]

    @classmethod
    def of(cls, p: CustomerProfile) -> ProfileOut:
        return cls(
            customer_id=p.customer_id,
            timezone=p.timezone,
            country=p.country,
            subdivision=p.subdivision,
            phones=list(p.phones),
            emails=list(p.emails),
            consent=dict(p.consent),
            preferences=dict(p.preferences),
        )


class CustomerOut(BaseModel):
    canonical_id: str | None = Field(
        default=None, description="The id this customer's ids resolve to (see aliases)."
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other ids merged into this customer."
    )
    profile: ProfileOut
    events: int
    contacts: list[ContactOut]
    opt_outs: list[dict[str, Any]]
    pressure: float | None = None
    snoozed_until: datetime | None = None
    erased: bool = Field(
        default=False,
        description="The id was erased on request and stays on the suppression list: every "
        "contact to it is denied. What is shown was recorded after the erasure (events sent "
        "for the id since).",
    )


class MergeIn(Strict):
    """Ids to join with the one in the path (CRM de-duplication)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ids": ["crm-88412"], "reference": "dedup-2026-11"}]},
    )

    ids: list[Annotated[str, Field(min_length=1, max_length=ID_MAX)]] = Field(
        min_length=1, max_length=100, description="Other ids of the same customer."
    )
    at: Instant | None = Field(
        default=None, description="When they were found to be one customer (default now)."
    )
    reference: str | None = Field(
        default=None, max_length=200, description="Your reference for the merge (audit)."
    )


class MergeEntryOut(BaseModel):
    canonical_id: str
    merged_ids: list[str]
    at: datetime
    via: str = Field(description="segment-alias, segment-identify, api or address.")
    reference: str | None = None
    recorded_at: datetime


class IdentityOut(BaseModel):
    """The ids one customer is known by, and the merges that joined them."""

    customer_id: str = Field(description="The id asked about.")
    canonical_id: str
    aliases: list[str]
    merged: list[str] = Field(
        default_factory=list, description="Ids this request joined (empty: nothing new)."
    )
    merges: list[MergeEntryOut]


class DeadlineOut(BaseModel):
    regime: str
    cite: str
    last_day: str = Field(description="The last business day to honour it (ISO date).")
    due: datetime


class FollowingContactOut(BaseModel):
    contact_id: str
    at: datetime
    channel: str
    purpose: str
    status: str
    late_for: list[str] = Field(description="Regimes whose deadline this contact missed.")


class OptOutOut(BaseModel):
    """One opt-out as the compliance audit sees it."""

    received: datetime
    kind: str
    channels: list[str] = Field(description="Channels it covers; empty means every channel.")
    purpose: str | None
    lifted: datetime | None
    text: str | None
    clean: bool = Field(description="Nothing non-exempt followed it.")
    late: bool = Field(description="Something non-exempt followed after a deadline.")
    deadlines: list[DeadlineOut]
    followed_by: list[FollowingContactOut]


class ErrorOut(BaseModel):
    error: str
    detail: Any = None
