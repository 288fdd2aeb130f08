"""The contract every durable store keeps, whatever the backend.

A store holds the ledger (customers, events, contacts and holds), the decision audit log,
policy versions, API keys (hashed) and the suppression list (keyed hashes). The one thing
a store must do that the engine cannot: decide and place the hold in one transaction,
serialized per customer, so that two senders never both take the last slot under a cap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tactful.addresses import scope_covers
from tactful.model import (
    Contact,
    ContactProposal,
    CustomerProfile,
    Decision,
    Event,
)
from tactful.state import CustomerState


class StoreError(RuntimeError):
    """The store cannot be reached or refused the operation (the service answers 503)."""


class NotFound(KeyError):
    """No such customer, decision or key."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class Conflict(ValueError):
    """The operation contradicts what is stored (e.g. `sent` for a cancelled hold)."""


#: The engine call a store runs inside its per-customer transaction.
DecideFn = Callable[[CustomerState, ContactProposal, datetime], Decision]
#: More writes in a decision's transaction (a DBAPI cursor, the decision): raising undoes
#: the decision too. Deferred delivery stores queued defers and releases this way.
AlsoFn = Callable[[Any, Decision], None]


@dataclass(frozen=True, slots=True)
class AddressHit:
    """An entry of the suppression list by address that one of a customer's addresses (or
    a proposal's `to`) matches: the address kind, the scope (None: any) and why."""

    kind: str
    channel: str | None
    purpose: str | None
    reason: str
    at: datetime

    def covers(self, channel: str, purpose: str) -> bool:
        return scope_covers(self.kind, self.channel, self.purpose, channel, purpose)


#: Turns the engine's decision into the final one, given the address entries that the
#: customer's addresses (and the proposal's `to`) match (called only when there are some).
AddressCheck = Callable[[Decision, ContactProposal, Sequence[AddressHit]], Decision]


@dataclass(frozen=True, slots=True)
class DecideCall:
    """The arguments of one `Store.decide`, for deciding several in one transaction
    (`Store.decide_many`)."""

    proposal: ContactProposal
    decide_fn: DecideFn
    now: datetime
    hold_ttl_seconds: float
    hold: bool = True
    if_suppressed: DecideFn | None = None
    also: AlsoFn | None = None
    address_check: AddressCheck | None = None


#: What `Store.decide_many` gives for each call: (decision, replayed), or the exception
#: `decide` would have raised for that call alone.
DecideResult = tuple[Decision, bool] | Exception


@dataclass(frozen=True, slots=True)
class CheckState:
    """What a read-only check of one id needs, as `Store.decide` would see it: the state
    of the customer the id resolves to (its profile carries the canonical id), whether the
    id itself is erased, and the suppression entries by address that the customer's
    addresses match. The state is shared with the store's cache: never change it."""

    customer_id: str
    state: CustomerState
    erased: bool
    hits: tuple[AddressHit, ...]


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What a merge did: the group's canonical id, the ids it newly joined (empty when
    everything was merged already) and every id of the group, canonical first."""

    canonical_id: str
    merged: tuple[str, ...]
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IdentityEntry:
    """One merge as the identity log keeps it."""

    canonical_id: str
    merged_ids: tuple[str, ...]
    at: datetime
    via: str
    reference: str | None
    recorded_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "canonical_id": self.canonical_id,
            "merged_ids": list(self.merged_ids),
            "at": self.at.isoformat(),
            "via": self.via,
            "reference": self.reference,
            "recorded_at": self.recorded_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Identity:
    """The ids a customer is known by: the canonical id, the ids merged into it, and the
    merges that joined them (oldest first)."""

    canonical_id: str
    aliases: tuple[str, ...]
    merges: tuple[IdentityEntry, ...]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision as the audit log keeps it."""

    decision_id: str
    customer_id: str
    channel: str
    purpose: str
    source: str | None
    campaign: str | None
    verdict: str
    not_before: datetime | None
    reasons: tuple[dict[str, Any], ...]
    policy_name: str
    policy_version: str
    decided_at: datetime
    at: datetime
    idempotency_key: str | None = None
    proposal: dict[str, Any] = field(default_factory=dict)
    #: The hold/contact's current status (held, sent, cancelled, expired), if it placed one.
    status: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    customer_id: str | None = None
    channel: str | None = None
    purpose: str | None = None
    verdict: str | None = None
    rule: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    #: Decisions before this (decided_at, decision_id) cursor, newest first.
    before: tuple[datetime, str] | None = None


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    name: str
    version: str
    text: str
    author: str | None
    created_at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str | None
    scopes: frozenset[str]
    created_at: datetime
    revoked: bool = False


class Store(Protocol):
    """What the service, the CLI and the workers need from a backend."""

    url: str
    #: Each statement is a round trip to a database server (PostgreSQL), not a call into
    #: this process (SQLite): the service then decides in a thread of its own, so that
    #: the event loop goes on while a transaction waits (`Settings.decide_thread`).
    remote: bool

    def close(self) -> None: ...

    def healthy(self) -> bool:
        """A cheap round trip to the database."""
        ...

    def secret(self) -> bytes:
        """This installation's signing key (32 random bytes made on first migration): signs
        unsubscribe/preference tokens and keys the suppression hashes."""
        ...

    # -- customers ---------------------------------------------------------------------
    def get_profile(self, customer_id: str) -> CustomerProfile | None: ...

    def put_profile(self, profile: CustomerProfile) -> None: ...

    def customers_with_address(self, kind: str, value: str) -> list[str]:
        """Ids of the customers whose profile holds this phone (`kind="phone"`, E.164) or
        email address (`kind="email"`, any letter case)."""
        ...

    def list_customers(self, *, limit: int = 100, after: str | None = None) -> list[str]:
        """Customer ids in order, for paging (`after` the last id of the previous page)."""
        ...

    def load_state(self, customer_id: str) -> CustomerState:
        """Profile, events and contacts of a customer (a blank profile if unknown)."""
        ...

    def load_states(self, customer_ids: Sequence[str]) -> dict[str, CheckState]:
        """`CheckState` of each id, read in one transaction with a few queries for all of
        them (states the store's cache holds at their current version are taken from it):
        for audience checks, which decide as `decide` would without locking or writing.
        An alias gets its canonical customer's state; an unknown id a blank profile."""
        ...

    def erase(self, customer_id: str, *, now: datetime) -> bool:
        """Delete the customer's profile, events, contacts and decisions; keep a keyed hash
        of the id (and of their addresses) on the suppression list. False if unknown."""
        ...

    def suppressed(self, customer_id: str) -> bool:
        """Whether the id is on the suppression list (erased customers)."""
        ...

    # -- events ------------------------------------------------------------------------
    def add_events(self, events: Sequence[Event], *, received_at: datetime) -> int:
        """Store events; duplicates by event id are skipped. Returns how many were new.
        Durable when it returns (an opt-out is acknowledged only after this)."""
        ...

    # -- decisions, holds, outcomes ------------------------------------------------------
    def decide(
        self,
        proposal: ContactProposal,
        decide_fn: DecideFn,
        *,
        now: datetime,
        hold_ttl_seconds: float,
        hold: bool = True,
        if_suppressed: DecideFn | None = None,
        also: AlsoFn | None = None,
        address_check: AddressCheck | None = None,
    ) -> tuple[Decision, bool]:
        """In one transaction serialized per customer: replay an idempotency key, or load
        the state, run `decide_fn`, write the decision to the audit log and, for an allow
        with `hold`, place the hold. For an id on the suppression list (erased),
        `if_suppressed` decides instead, when given. `also` runs last in the same
        transaction (not on a replay). Any id resolves to its canonical id first (the
        decision and the hold are the canonical customer's). When the customer's addresses
        or the proposal's `to` are on the suppression list by address, `address_check`
        turns the engine's decision into the final one. Returns (decision, replayed)."""
        ...

    def decide_many(self, calls: Sequence[DecideCall]) -> list[DecideResult]:
        """`decide` for each call, in the order given, in one transaction with one commit
        for all (group commit: a commit costs more than a decision). A later call sees
        what an earlier one wrote (a hold for the same customer counts against it). Each
        result is what `decide` would have answered or raised for that call alone: when
        one call fails, nothing of the others is kept and each runs again alone."""
        ...

    # -- identity ------------------------------------------------------------------------
    def merge(
        self,
        ids: Sequence[str],
        *,
        at: datetime,
        via: str,
        reference: str | None = None,
        now: datetime,
    ) -> MergeResult:
        """Join these ids (and every id merged with any of them) into one customer, whose
        canonical id is the least of them; idempotent; logged in the identity log."""
        ...

    def identity(self, customer_id: str) -> Identity:
        """The canonical id the id resolves to, the ids merged into it, and the merges."""
        ...

    def customer_for_address(self, kind: str, value: str, *, create: bool) -> str | None:
        """The canonical id of the one customer holding this address; with `create`, a
        customer known only by the address (id from its keyed hash) if nobody holds it,
        else None. Conflict if several customers hold it."""
        ...

    def address_hits(self, customer_id: str, to: str | None = None) -> list[AddressHit]:
        """The suppression entries matching the customer's addresses (and `to`)."""
        ...

    def mark_sent(self, decision_id: str, *, at: datetime | None, now: datetime) -> Contact: ...

    def cancel(self, decision_id: str, *, now: datetime) -> Contact: ...

    def record_outcome(self, decision_id: str, outcome: str, *, now: datetime) -> Contact: ...

    def add_contacts(self, contacts: Iterable[Contact]) -> int:
        """Import contacts made outside tactful (history). Existing ids are replaced."""
        ...

    def get_decision(self, decision_id: str, *, now: datetime | None = None) -> DecisionRecord:
        """One decision of the audit log, its hold's status as of `now` (default: the
        wall clock)."""
        ...

    def audit(self, query: AuditQuery) -> list[DecisionRecord]: ...

    # -- policies ------------------------------------------------------------------------
    def save_policy(
        self, name: str, version: str, text: str, *, author: str | None, now: datetime
    ) -> PolicyVersion:
        """Store a policy version and make it the active one."""
        ...

    def active_policy(self) -> PolicyVersion | None: ...

    def policy_history(self, limit: int = 50) -> list[PolicyVersion]: ...

    # -- API keys ------------------------------------------------------------------------
    def create_key(
        self, scopes: Iterable[str], *, name: str | None, now: datetime
    ) -> tuple[ApiKey, str]:
        """A new key; the secret is returned once and only its hash is stored."""
        ...

    def check_key(self, secret: str) -> ApiKey | None:
        """The key with this secret (constant-time compare of hashes), None if unknown/revoked."""
        ...

    def revoke_key(self, key_id: str) -> None: ...

    def list_keys(self) -> list[ApiKey]: ...
