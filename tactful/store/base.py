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
    ) -> tuple[Decision, bool]:
        """In one transaction serialized per customer: replay an idempotency key, or load
        the state, run `decide_fn`, write the decision to the audit log and, for an allow
        with `hold`, place the hold. For an id on the suppression list (erased),
        `if_suppressed` decides instead, when given. Returns (decision, replayed)."""
        ...

    def mark_sent(self, decision_id: str, *, at: datetime | None, now: datetime) -> Contact: ...

    def cancel(self, decision_id: str, *, now: datetime) -> Contact: ...

    def record_outcome(self, decision_id: str, outcome: str, *, now: datetime) -> Contact: ...

    def add_contacts(self, contacts: Iterable[Contact]) -> int:
        """Import contacts made outside tactful (history). Existing ids are replaced."""
        ...

    def get_decision(self, decision_id: str) -> DecisionRecord: ...

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
