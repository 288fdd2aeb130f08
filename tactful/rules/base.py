"""What every rule kind shares: its scope, its mode, and the one question it answers.

A rule answers `check(ctx, t)`: the earliest instant at or after `t` at which it would
allow the proposed contact, given what is known now. `t` itself means "allowed at t",
`NEVER` means "not at any time" (an opt-out). The engine combines these answers into a
verdict and, for a defer, the earliest instant every rule allows.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tactful.durations import parse_duration
from tactful.model import REQUESTED_TRIGGERS, ContactProposal
from tactful.state import CustomerState, LedgerContact

if TYPE_CHECKING:
    from tactful.policy.document import Policy

NEVER = math.inf

Mode = Literal["defer", "deny", "flag"]


class Scope(BaseModel):
    """Which proposals a rule applies to, and which past contacts it counts.

    Every list is "any of"; an empty or missing list means "all". `exempt_purposes` defaults
    to the rule kind's own exemptions (transactional, for most kinds).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    triggers: tuple[str, ...] = Field(
        default=(),
        description="Trigger event kinds; `any` matches every triggered proposal.",
    )
    flags: tuple[str, ...] = Field(default=(), description="Content flags, any of.")
    exclude_flags: tuple[str, ...] = ()
    exempt_purposes: tuple[str, ...] | None = None
    regions: tuple[str, ...] = Field(
        default=(),
        description="ISO 3166 codes (US, US-FL, FR): applies when any of the customer's "
        "candidate locations is in one of them.",
    )

    def exempt(self, default: tuple[str, ...]) -> tuple[str, ...]:
        return default if self.exempt_purposes is None else self.exempt_purposes

    def _matches(
        self,
        channel: str,
        purpose: str,
        source: str | None,
        campaign: str | None,
        trigger: str | None,
        flags: tuple[str, ...],
        exempt: tuple[str, ...],
    ) -> bool:
        if self.channels and channel not in self.channels:
            return False
        if self.purposes and purpose not in self.purposes:
            return False
        if purpose in exempt:
            return False
        if self.sources and source not in self.sources:
            return False
        if self.campaigns and campaign not in self.campaigns:
            return False
        if self.triggers and (
            trigger is None or ("any" not in self.triggers and trigger not in self.triggers)
        ):
            return False
        if self.flags and not any(f in flags for f in self.flags):
            return False
        return not (self.exclude_flags and any(f in flags for f in self.exclude_flags))

    def applies(self, ctx: Context, exempt: tuple[str, ...]) -> bool:
        if self.regions and not ctx.in_regions(self.regions):
            return False
        return self._matches(
            ctx.channel,
            ctx.purpose,
            ctx.proposal.source,
            ctx.proposal.campaign,
            ctx.trigger_event,
            ctx.flags,
            exempt,
        )

    def counts(self, c: LedgerContact, exempt: tuple[str, ...]) -> bool:
        return self._matches(
            c.channel, c.purpose, c.source, c.campaign, c.trigger_event, c.flags, exempt
        )


class Context:
    """One proposal being decided: the proposal, the customer's state, the policy.

    Built once per decision; facts several rules need (zones, trigger time) are computed
    once here. Never reads a clock: `now` is given.
    """

    __slots__ = (
        "__dict__",
        "channel",
        "flags",
        "now",
        "policy",
        "proposal",
        "purpose",
        "state",
        "trigger_event",
        "trigger_ts",
    )

    def __init__(
        self, state: CustomerState, proposal: ContactProposal, policy: Policy, now: float
    ) -> None:
        self.state = state
        self.proposal = proposal
        self.policy = policy
        self.now = now
        self.channel = proposal.channel
        self.purpose = proposal.purpose
        self.flags: tuple[str, ...] = proposal.content.flags if proposal.content else ()
        trigger = proposal.trigger
        self.trigger_event: str | None = trigger.event if trigger else None
        self.trigger_ts: float | None = None
        if trigger is not None:
            if trigger.at is not None:
                self.trigger_ts = trigger.at.timestamp()
            else:
                self.trigger_ts = state.last_event(trigger.event, now)

    @cached_property
    def requested(self) -> bool:
        """The customer asked for this contact, and the ledger shows the request."""
        return (
            self.trigger_event in REQUESTED_TRIGGERS
            and self.state.last_event(self.trigger_event, self.now) is not None
        )

    @cached_property
    def zones(self) -> tuple[ZoneInfo, ...]:
        from tactful.localtime import customer_zones

        return customer_zones(self.state.profile)

    @cached_property
    def country(self) -> str | None:
        from tactful.localtime import customer_country

        return customer_country(self.state.profile)

    @cached_property
    def regions(self) -> frozenset[str]:
        """Every country and subdivision the customer may be in (ISO 3166 codes)."""
        from tactful.jurisdiction import customer_regions

        return customer_regions(self.state.profile)

    def in_regions(self, wanted: tuple[str, ...]) -> bool:
        """Whether the customer may be in one of `wanted` (yes, when nothing is known)."""
        from tactful.jurisdiction import in_regions

        return not self.regions or in_regions(self.regions, wanted)

    def key_of(self, field: str) -> str | None:
        """The proposal's value for a `per` key: offer, campaign, source, trigger, tags.X."""
        p = self.proposal
        if field == "trigger":
            return self.trigger_event
        if field.startswith("tags."):
            return p.tags.get(field[5:])
        value = getattr(p, field)
        return None if value is None else str(value)


def contact_key(c: LedgerContact, field: str) -> str | None:
    if field == "trigger":
        return c.trigger_event
    if field.startswith("tags."):
        return c.tags.get(field[5:])
    value = getattr(c, field)
    return None if value is None else str(value)


PER_KEYS = ("channel", "purpose", "offer", "campaign", "source", "trigger")


class Rule(BaseModel):
    """Base of every rule kind. Subclasses add their parameters and implement `check`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Purposes a kind exempts unless the rule says otherwise.
    default_exempt: ClassVar[tuple[str, ...]] = ("transactional",)
    #: Whether a contact the customer asked for (a call-back at its time) passes this rule.
    waived_on_request: ClassVar[bool] = False
    #: The mode a kind uses when the rule does not say.
    default_mode: ClassVar[Mode] = "defer"

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", description="Unique rule id.")
    kind: str
    message: str = Field(min_length=1, description="What a person reads when this rule fires.")
    scope: Scope = Scope()
    mode: Mode | None = Field(
        default=None,
        description="defer: wait until allowed; deny: refuse while it holds; flag: allow but mark.",
    )
    cite: str | None = Field(default=None, description="Source of the rule (statute, clause).")

    @property
    def effective_mode(self) -> Mode:
        return self.mode or self.default_mode

    @cached_property
    def exempt(self) -> tuple[str, ...]:
        return self.scope.exempt(self.default_exempt)

    @cached_property
    def token(self) -> object:
        """This rule object's key in a state's caches: two policies (a pack and an override,
        the live policy and a candidate) may hold different rules under one id."""
        return object()

    def applies(self, ctx: Context) -> bool:
        if self.waived_on_request and ctx.requested:
            return False
        return self.scope.applies(ctx, self.exempt)

    def check(self, ctx: Context, t: float) -> float:
        """Earliest instant >= t at which this rule allows the contact (NEVER if none)."""
        raise NotImplementedError

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        """Values for `{placeholders}` in the message, computed only when the rule fires."""
        return {}

    def describe(self) -> str:
        """One line for `policy show`: the rule's parameters in words."""
        params = self.model_dump(exclude={"id", "kind", "message", "scope", "mode", "cite"})
        return ", ".join(f"{k}={v}" for k, v in params.items() if v not in (None, (), []))

    # Helpers shared by kinds that count past contacts.
    def counted(self, ctx: Context, per: tuple[str, ...] = ()) -> list[LedgerContact]:
        """Past contacts this rule counts: in scope, not requested, same `per` keys."""
        exempt = self.exempt
        scope = self.scope
        if per:
            values = tuple(ctx.key_of(f) for f in per)

            def predicate(c: LedgerContact) -> bool:
                return (
                    not c.requested
                    and scope.counts(c, exempt)
                    and all(contact_key(c, f) == v for f, v in zip(per, values, strict=True))
                )

            key: tuple[Any, ...] = (self.token, values)
        else:

            def predicate(c: LedgerContact) -> bool:
                return not c.requested and scope.counts(c, exempt)

            key = (self.token,)
        return ctx.state.matching(key, predicate)


def duration_validator(*names: str) -> Any:
    """A pydantic `field_validator` that accepts "48h"-style durations for `names`."""
    return field_validator(*names, mode="before")(lambda cls, v: parse_duration(v))


def ts_to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
