"""tactful as a Python library: a policy, an in-memory ledger and a clock you give it.

    engine = Engine("courtesy", clock=lambda: now)
    engine.record(Event("c1", "checkout_started", at=now))
    decision = engine.decide(ContactProposal("c1", "call", "sales"))

An allow places a hold that counts at once against caps and pressure; confirm it with
`sent`, or release it with `cancel`; unconfirmed holds expire after `hold_ttl`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tactful.engine import decide, next_allowed
from tactful.model import (
    Contact,
    ContactProposal,
    ContactStatus,
    CustomerProfile,
    Decision,
    Event,
    Outcome,
    Verdict,
)
from tactful.policy.document import Policy
from tactful.state import CustomerState
from tactful.store.memory import MemoryLedger

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Engine:
    """Decide proposals against a policy over an in-memory ledger, on an injected clock."""

    def __init__(
        self,
        policy: Policy | str | Path = "courtesy",
        *,
        clock: Clock = system_clock,
        hold_ttl: timedelta = timedelta(minutes=15),
        ledger: MemoryLedger | None = None,
    ) -> None:
        self.policy = policy if isinstance(policy, Policy) else Policy.load(policy)
        self.clock = clock
        self.hold_ttl = hold_ttl
        self.ledger = ledger or MemoryLedger()
        self._decisions: dict[str, Decision] = {}
        self._idempotent: dict[str, Decision] = {}

    # -- the ledger ----------------------------------------------------------------------

    def profile(self, profile: CustomerProfile) -> None:
        """Set (replace) a customer's profile: time zone, country, phones, consent, ..."""
        self.ledger.set_profile(profile)

    def record(self, *events: Event) -> int:
        """Add customer events; returns how many were new (duplicates by event id skipped)."""
        return sum(1 for e in events if self.ledger.add_event(e))

    def record_contact(self, contact: Contact) -> None:
        """Add a contact made outside tactful (history, or a send that bypassed it)."""
        self.ledger.put_contact(contact)

    def state(self, customer_id: str) -> CustomerState:
        return self.ledger.state(customer_id)

    # -- decisions -----------------------------------------------------------------------

    def decide(self, proposal: ContactProposal, *, hold: bool = True) -> Decision:
        """Decide; an allow places a hold (unless `hold=False`, a dry run)."""
        if proposal.idempotency_key and proposal.idempotency_key in self._idempotent:
            return self._idempotent[proposal.idempotency_key]
        now = self.clock()
        decision = decide(self.state(proposal.customer_id), proposal, self.policy, now)
        decision_id = str(uuid.uuid4())
        decision = decision.with_id(decision_id)
        if hold and decision.verdict is Verdict.ALLOW:
            self.ledger.put_contact(
                Contact.from_proposal(
                    decision_id,
                    proposal,
                    decision.at,
                    status=ContactStatus.HELD,
                    hold_expires=now + self.hold_ttl,
                )
            )
        self._decisions[decision_id] = decision
        if proposal.idempotency_key:
            self._idempotent[proposal.idempotency_key] = decision
        return decision

    def decide_many(self, proposals: Iterable[ContactProposal]) -> list[Decision]:
        """Decide several at once; per customer, higher `priority` gets the slot first."""
        indexed = list(enumerate(proposals))
        order = sorted(indexed, key=lambda ip: (ip[1].customer_id, -ip[1].priority, ip[0]))
        results: dict[int, Decision] = {}
        for i, p in order:
            results[i] = self.decide(p)
        return [results[i] for i, _ in indexed]

    def sent(self, decision_id: str, *, at: datetime | None = None) -> Contact:
        """Confirm that an allowed contact was made: its hold becomes a contact."""
        return self.ledger.update_contact(decision_id, status=ContactStatus.SENT, at=at)

    def cancel(self, decision_id: str) -> Contact:
        """Release a hold: the contact will not be made."""
        return self.ledger.update_contact(decision_id, status=ContactStatus.CANCELLED)

    def outcome(self, decision_id: str, outcome: Outcome | str) -> Contact:
        """Record what happened to a sent contact (answered, no_answer, replied, ...)."""
        value = Outcome(outcome)
        contact = self.ledger.contact(decision_id)
        status = ContactStatus.SENT if contact.status is ContactStatus.HELD else None
        return self.ledger.update_contact(decision_id, status=status, outcome=value)

    def next_allowed(
        self, customer_id: str, channel: str, purpose: str
    ) -> tuple[datetime | None, Decision]:
        """When could we next contact this customer on this channel for this purpose?"""
        return next_allowed(self.state(customer_id), channel, purpose, self.policy, self.clock())
