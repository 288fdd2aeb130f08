"""Small builders for the pack tests: a customer's state, past contacts, a proposal, and a
decision under a named pack (or several composed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from itertools import count

from tactful import (
    Contact,
    ContactProposal,
    Content,
    CustomerProfile,
    CustomerState,
    Decision,
    Event,
    Policy,
    Trigger,
    decide,
)

_ids = count(1)


@cache
def pack(*names: str) -> Policy:
    """One pack, or several composed in order (as `extends: [...]` would)."""
    if len(names) == 1:
        return Policy.load(names[0])
    return Policy.from_text(f"name: composed\nversion: '1'\nextends: [{', '.join(names)}]\n")


def customer(
    *,
    tz: str | None = None,
    country: str | None = None,
    subdivision: str | None = None,
    phones: Iterable[str] = (),
    events: Iterable[Event] = (),
    contacts: Iterable[Contact] = (),
) -> CustomerState:
    profile = CustomerProfile(
        "c1", timezone=tz, country=country, subdivision=subdivision, phones=tuple(phones)
    )
    return CustomerState(profile, events, contacts)


def past(
    at: datetime,
    channel: str = "call",
    purpose: str = "sales",
    *,
    outcome: str | None = None,
    tags: Mapping[str, str] | None = None,
    trigger: str | None = None,
    trigger_at: datetime | None = None,
) -> Contact:
    """A contact already made (sent)."""
    return Contact(
        f"k{next(_ids)}",
        "c1",
        channel,
        purpose,
        at,
        outcome=outcome,
        tags=dict(tags or {}),
        trigger_event=trigger,
        trigger_at=trigger_at,
    )


def event(kind: str, at: datetime, **props: object) -> Event:
    return Event("c1", kind, at, event_id=f"e{next(_ids)}", properties=props)


def proposal(
    channel: str = "call",
    purpose: str = "sales",
    *,
    tags: Mapping[str, str] | None = None,
    trigger: str | None = None,
    flags: tuple[str, ...] = (),
) -> ContactProposal:
    return ContactProposal(
        "c1",
        channel,
        purpose,
        tags=dict(tags or {}),
        trigger=Trigger(trigger) if trigger else None,
        content=Content(flags=flags) if flags else None,
    )


def ask(policy: Policy, state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
    return decide(state, p, policy, now)


def rules_of(d: Decision) -> list[str]:
    return [r.rule for r in d.reasons]
