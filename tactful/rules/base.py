"""What every rule kind shares: its scope, its mode, and the one question it answers.

A rule answers `check(ctx, t)`: the earliest instant at or after `t` at which it would
allow the proposed contact, given what is known now. `t` itself means "allowed at t",
`NEVER` means "not at any time" (an opt-out). The engine combines these answers into a
verdict and, for a defer, the earliest instant every rule allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
#: No threshold: allowed at any time (see `Rule.threshold`).
ALWAYS = -math.inf

#: `(since, until)`: from `since` on, the rule allows exactly the instants >= `until`.
Threshold = tuple[float, float]

#: Shared `counted` keys and tests, by scope and exemptions (see `Rule._counting`).
_COUNTERS: dict[tuple[Scope, tuple[str, ...]], tuple[object, Callable[[LedgerContact], bool]]] = {}

# Memo keys, in the state, of facts that depend on the profile alone.
_ZONES = ("zones",)
_COUNTRY = ("country",)
_REGIONS = ("regions",)

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

    def matches(
        self,
        channel: str,
        purpose: str,
        source: str | None,
        campaign: str | None,
        trigger: str | None,
        flags: tuple[str, ...],
        exempt: tuple[str, ...],
    ) -> bool:
        """Whether a contact of this shape is in scope (regions aside: see `applies`)."""
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
        return self.matches(
            ctx.channel,
            ctx.purpose,
            ctx.proposal.source,
            ctx.proposal.campaign,
            ctx.trigger_event,
            ctx.flags,
            exempt,
        )

    def counts(self, c: LedgerContact, exempt: tuple[str, ...]) -> bool:
        return self.matches(
            c.channel, c.purpose, c.source, c.campaign, c.trigger_event, c.flags, exempt
        )

    def counter(
        self, exempt: tuple[str, ...], *, unrequested: bool = False
    ) -> Callable[[LedgerContact], bool]:
        """`counts` as a test of the contact alone (`unrequested`: and not asked for by the
        customer): for the common scope that names only channels and purposes, one that
        asks nothing else, in one function (it runs over whole ledgers)."""
        skip_triggers = REQUESTED_TRIGGERS if unrequested else frozenset()
        if self.sources or self.campaigns or self.triggers or self.flags or self.exclude_flags:
            return lambda c: c.trigger_event not in skip_triggers and self.counts(c, exempt)
        channels, purposes, skip = frozenset(self.channels), frozenset(self.purposes), exempt
        if channels and purposes:
            return lambda c: (
                c.channel in channels
                and c.purpose in purposes
                and c.purpose not in skip
                and c.trigger_event not in skip_triggers
            )
        if channels:
            return lambda c: (
                c.channel in channels
                and c.purpose not in skip
                and c.trigger_event not in skip_triggers
            )
        if purposes:
            return lambda c: (
                c.purpose in purposes
                and c.purpose not in skip
                and c.trigger_event not in skip_triggers
            )
        return lambda c: c.purpose not in skip and c.trigger_event not in skip_triggers


class Context:
    """One proposal being decided: the proposal, the customer's state, the policy.

    Built once per decision; facts several rules need (zones, trigger time) are computed
    at most once here, and those that depend on the profile alone are memoised in the
    state. Never reads a clock: `now` is given.
    """

    __slots__ = (
        "_country",
        "_kept",
        "_regions",
        "_requested",
        "_zones",
        "channel",
        "epoch",
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
        content = proposal.content
        self.flags: tuple[str, ...] = content.flags if content is not None else ()
        trigger = proposal.trigger
        self.trigger_event: str | None = None
        self.trigger_ts: float | None = None
        if trigger is not None:
            self.trigger_event = trigger.event
            if trigger.at is not None:
                self.trigger_ts = trigger.at.timestamp()
            else:
                self.trigger_ts = state.last_event(trigger.event, now)
        #: Which holds have expired at `now` (`CustomerState.hold_epoch`): the key under
        #: which facts about the contacts that count at `now` are memoised.
        self.epoch = state.hold_epoch(now)
        self._requested: bool | None = None
        self._zones: tuple[ZoneInfo, ...] | None = None
        self._country: tuple[str | None] | None = None
        self._regions: frozenset[str] | None = None
        self._kept: tuple[object, Any] | None = None

    def kept(self, key: object) -> Any:
        """What `keep` put here under `key` for this decision (None: nothing)."""
        kept = self._kept
        return kept[1] if kept is not None and kept[0] is key else None

    def keep(self, key: object, value: Any) -> None:
        """Keep one fact for the rest of this decision (its search asks a rule again and
        again with the same context): the last one kept, under an object's identity."""
        self._kept = (key, value)

    @property
    def requested(self) -> bool:
        """The customer asked for this contact, and the ledger shows the request."""
        if self._requested is None:
            self._requested = (
                self.trigger_event in REQUESTED_TRIGGERS
                and self.state.last_event(self.trigger_event, self.now) is not None
            )
        return self._requested

    @property
    def zones(self) -> tuple[ZoneInfo, ...]:
        if self._zones is None:
            from tactful.localtime import customer_zones

            state = self.state
            self._zones = state.signal_fact(_ZONES, lambda: customer_zones(state.profile))
        return self._zones

    @property
    def country(self) -> str | None:
        if self._country is None:
            from tactful.localtime import customer_country

            state = self.state
            self._country = state.signal_fact(_COUNTRY, lambda: (customer_country(state.profile),))
        return self._country[0]

    @property
    def regions(self) -> frozenset[str]:
        """Every country and subdivision the customer may be in (ISO 3166 codes)."""
        if self._regions is None:
            from tactful.jurisdiction import customer_regions

            state = self.state
            self._regions = state.signal_fact(_REGIONS, lambda: customer_regions(state.profile))
        return self._regions

    def in_regions(self, wanted: tuple[str, ...]) -> bool:
        """Whether the customer may be in one of `wanted` (yes, when nothing is known)."""
        from tactful.jurisdiction import in_regions

        regions = self.regions
        return not regions or in_regions(regions, wanted)

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
    #: Whether the kind's answer is the same at every instant (only t or NEVER): the
    #: engine's search for a common instant need not ask it again.
    timeless: ClassVar[bool] = False
    #: Whether the kind's `check`, past `since`, itself answers `until if t < until else
    #: t` on the very values `threshold` gives: then the engine need not check the
    #: threshold against `check` (see `Rule.threshold`).
    threshold_exact: ClassVar[bool] = False

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

    @cached_property
    def _counting(self) -> tuple[object, Callable[[LedgerContact], bool]]:
        """The key under which `counted` memoises, shared by every rule that counts the
        same scope (a cap and a gap on sales calls count the same calls), and its test."""
        key = (self.scope, self.exempt)
        found = _COUNTERS.get(key)
        if found is None:
            found = _COUNTERS[key] = (object(), self.scope.counter(self.exempt, unrequested=True))
        return found

    def applies(self, ctx: Context) -> bool:
        if self.waived_on_request and ctx.requested:
            return False
        return self.scope.applies(ctx, self.exempt)

    def check(self, ctx: Context, t: float) -> float:
        """Earliest instant >= t at which this rule allows the contact (NEVER if none)."""
        raise NotImplementedError

    def steady(self, ctx: Context, t: float, u: float) -> float:
        """How long the answer `u = check(ctx, t)` stands, for the engine's answer memo: an
        instant `s` such that for every `t2` in `[t, s)`, asked at `now = t2` about `t2`
        itself, this rule answers alike (allows where `u == t`, waits for the very same `u`
        where it blocked) with the same `details`; the state, hold epoch and proposal as
        they are. `t` itself promises nothing, and is what a kind that does not say gets.
        Kinds with a threshold need not say past `since`: the engine knows it there.
        A kind whose `details` move sooner than its answer (a clock in the message) says
        how long they stand in `worded` instead."""
        return t

    def worded(self, ctx: Context, t: float, u: float) -> float:
        """How long the reason for a wait (`u = check(ctx, t) > t`) reads the same: an
        instant `w` such that `details` are the same for every `t2` in `[t, w)` where
        `steady` promises the answer (`t` itself: nothing promised; the engine words the
        reason again for each decision). NEVER, the default, where `steady` covers the
        wording too. The engine memoises an answer over the span `steady` gives and words
        its reason again, rule by rule, when this span ends."""
        return NEVER

    def threshold(self, ctx: Context) -> Threshold | None:
        """This rule's answer as a threshold, where it can give one: `(since, until)` such
        that for every t >= since, `check(ctx, t)` is `until` while t < until and t from
        then on (`until` may be -inf: always allowed; `NEVER`: never). None: no such form,
        the engine asks `check` every time.

        Many kinds take this form once t is past everything in the ledger they look at
        (`since`): a gap or a cap then waits for the last contacts to age out, a snooze for
        its end. The engine memoises thresholds per state, hold epoch and proposal shape
        (and the values of `threshold_fields`), so a kind's threshold may depend on those
        and on nothing else; and checks each one against `check` itself before use. It
        memoises the reason too: past `since`, `details` must not depend on t either.
        """
        return None

    def threshold_fields(self) -> tuple[str, ...]:
        """Proposal fields beyond its shape (`key_of` names) this rule's threshold reads."""
        return ()

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        """Values for `{placeholders}` in the message, computed only when the rule fires."""
        return {}

    def describe(self) -> str:
        """One line for `policy show`: the rule's parameters in words."""
        params = self.model_dump(exclude={"id", "kind", "message", "scope", "mode", "cite"})
        return ", ".join(f"{k}={v}" for k, v in params.items() if v not in (None, (), []))

    # Helpers shared by kinds that count past contacts.
    def counted(self, ctx: Context, per: tuple[str, ...] = ()) -> list[LedgerContact]:
        """Past contacts this rule counts, in time order: in scope, not requested, same
        `per` keys (any status: callers ask `counts_at`). Memoised in the state."""
        token, counts = self._counting
        if not per:
            return ctx.state.matching(("counted", token), counts)
        values = tuple(ctx.key_of(f) for f in per)
        key = ("counted", token, per, values)
        hit: list[LedgerContact] | None = ctx.state.contact_memo.get(key)
        if hit is not None:
            return hit
        pairs = tuple(zip(per, values, strict=True))

        def same_keys(contacts: Sequence[LedgerContact]) -> list[LedgerContact]:
            return [c for c in contacts if all(contact_key(c, f) == v for f, v in pairs)]

        return ctx.state.contact_fact(
            key,
            lambda _: same_keys(self.counted(ctx)),
            # Appended contacts the rule counts are the last of `counted`, in order.
            lambda found, added: found + same_keys([c for c in added if counts(c)]),
        )

    def counted_times(self, ctx: Context, per: tuple[str, ...] = ()) -> list[float]:
        """Sorted times of the counted contacts that count at `now` (sent, or held and not
        expired). Memoised per hold epoch: the list stays valid while `now` moves, until
        the next hold expires."""
        values = tuple(ctx.key_of(f) for f in per) if per else ()
        token, counts = self._counting
        key = ("counted-times", token, per, values, ctx.epoch)
        hit: list[float] | None = ctx.state.contact_memo.get(key)
        if hit is not None:
            return hit
        now = ctx.now
        pairs = tuple(zip(per, values, strict=True))

        def times(found: list[float], added: Sequence[LedgerContact]) -> list[float]:
            # An appended contact is sent, so it counts at every instant.
            return found + [
                c.ts for c in added if counts(c) and all(contact_key(c, f) == v for f, v in pairs)
            ]

        return ctx.state.contact_fact(
            key,
            lambda _: [c.ts for c in self.counted(ctx, per) if c.counts_at(now)],
            times,
        )


def per_validator(*names: str) -> Any:
    """A pydantic `field_validator` that accepts only the proposal fields `key_of` knows
    for `names` (`per` keys): a typo is a policy error, not a failure at decision time."""

    def known(cls: type, v: tuple[str, ...]) -> tuple[str, ...]:
        for f in v:
            if f not in PER_KEYS and not (f.startswith("tags.") and len(f) > 5):
                raise ValueError(f"unknown key {f!r}: use {', '.join(PER_KEYS)} or tags.NAME")
        return v

    return field_validator(*names)(known)


def duration_validator(*names: str) -> Any:
    """A pydantic `field_validator` that accepts "48h"-style durations for `names`."""
    return field_validator(*names, mode="before")(lambda cls, v: parse_duration(v))


def ts_to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
