"""An in-memory ledger for library use, batch work and tests. Nothing survives the process."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from tactful.model import Contact, ContactStatus, CustomerProfile, Event
from tactful.state import CustomerState


class MemoryLedger:
    """Customers' profiles, events and contacts, each customer folded into a live state."""

    def __init__(self) -> None:
        self._states: dict[str, CustomerState] = {}
        self._contacts: dict[str, Contact] = {}

    def state(self, customer_id: str) -> CustomerState:
        """The customer's state (a blank profile for a customer never seen)."""
        state = self._states.get(customer_id)
        if state is None:
            state = self._states[customer_id] = CustomerState(CustomerProfile(customer_id))
        return state

    def customers(self) -> list[str]:
        return sorted(self._states)

    def set_profile(self, profile: CustomerProfile) -> None:
        state = self.state(profile.customer_id)
        state.profile = profile
        state._cache.clear()

    def add_event(self, event: Event) -> bool:
        return self.state(event.customer_id).add_event(event)

    def put_contact(self, contact: Contact) -> None:
        self._contacts[contact.contact_id] = contact
        self.state(contact.customer_id).add_contact(contact)

    def contact(self, contact_id: str) -> Contact:
        try:
            return self._contacts[contact_id]
        except KeyError:
            raise KeyError(f"no contact or hold with id {contact_id!r}") from None

    def update_contact(
        self,
        contact_id: str,
        *,
        status: ContactStatus | None = None,
        outcome: str | None = None,
        at: datetime | None = None,
    ) -> Contact:
        contact = self.contact(contact_id)
        changes: dict[str, object] = {}
        if status is not None:
            changes["status"] = status
            if status is ContactStatus.SENT:
                changes["hold_expires"] = None
        if outcome is not None:
            changes["outcome"] = outcome
        if at is not None:
            changes["at"] = at
        updated = replace(contact, **changes)  # type: ignore[arg-type]
        self.put_contact(updated)
        return updated

    def erase(self, customer_id: str) -> None:
        self._states.pop(customer_id, None)
        for cid in [k for k, c in self._contacts.items() if c.customer_id == customer_id]:
            del self._contacts[cid]
