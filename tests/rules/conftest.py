"""Small builders for the rule tests: inline policies, states, proposals, one decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from textwrap import dedent, indent
from typing import Any
from zoneinfo import ZoneInfo

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    CustomerState,
    Decision,
    Event,
    Policy,
    Trigger,
)
from tactful.engine import decide as engine_decide
from tactful.rules.base import Context

CHICAGO = ZoneInfo("America/Chicago")
PARIS = ZoneInfo("Europe/Paris")
#: Tuesday 17 November 2026, 14:00 in Chicago: an ordinary working afternoon.
TUESDAY = datetime(2026, 11, 17, 14, 0, tzinfo=CHICAGO)
CUSTOMER = "c"
#: Contact ids handed out when a test names none: "auto-1", "auto-2", ... across the whole
#: run, in a form no test picks by hand (a hand-picked "k2" once met the counter's "k2").
_ids = iter(range(1, 1_000_000))


def policy(rules: str, header: str = "") -> Policy:
    """A policy from the YAML of its `rules` list (and optional top-level keys)."""
    text = "name: test\nversion: '1'\n" + dedent(header) + "rules:\n"
    return Policy.from_text(text + indent(dedent(rules), "  "))


def profile(**kw: Any) -> CustomerProfile:
    kw.setdefault("timezone", "America/Chicago")
    kw.setdefault("country", "US")
    return CustomerProfile(CUSTOMER, **kw)


def state(*items: Event | Contact, prof: CustomerProfile | None = None) -> CustomerState:
    events = [i for i in items if isinstance(i, Event)]
    contacts = [i for i in items if isinstance(i, Contact)]
    return CustomerState(prof or profile(), events, contacts)


def ev(kind: str, at: datetime, /, event_id: str | None = None, **props: Any) -> Event:
    return Event(CUSTOMER, kind, at, event_id=event_id, properties=props)


def contact(
    channel: str,
    purpose: str,
    at: datetime,
    *,
    contact_id: str | None = None,
    status: ContactStatus = ContactStatus.SENT,
    hold_expires: datetime | None = None,
    outcome: str | None = None,
    trigger: str | None = None,
    **kw: Any,
) -> Contact:
    if contact_id is not None and contact_id.startswith("auto-"):
        raise ValueError(f"{contact_id!r}: ids auto-N are this builder's own; pick another")
    return Contact(
        contact_id=contact_id or f"auto-{next(_ids)}",
        customer_id=CUSTOMER,
        channel=channel,
        purpose=purpose,
        at=at,
        status=status,
        hold_expires=hold_expires,
        outcome=outcome,
        trigger_event=trigger,
        **kw,
    )


def propose(
    channel: str,
    purpose: str,
    *,
    trigger: str | Trigger | None = None,
    subject: str | None = None,
    body: str | None = None,
    discount: bool = False,
    flags: tuple[str, ...] = (),
    **kw: Any,
) -> ContactProposal:
    content = None
    if subject is not None or body is not None or discount or flags:
        content = Content(subject=subject, body=body, discount=discount, flags=flags)
    if isinstance(trigger, str):
        trigger = Trigger(trigger)
    return ContactProposal(CUSTOMER, channel, purpose, trigger=trigger, content=content, **kw)


def decide(pol: Policy, st: CustomerState, proposal: ContactProposal, now: datetime) -> Decision:
    return engine_decide(st, proposal, pol, now)


def check(
    pol: Policy,
    rule_id: str,
    st: CustomerState,
    proposal: ContactProposal,
    now: datetime,
    t: datetime | None = None,
) -> float:
    """One rule's own answer: the earliest instant >= t (default now) it allows."""
    ctx = Context(st, proposal, pol, now.timestamp())
    return pol.rule(rule_id).check(ctx, (t or now).timestamp())


def ts(value: datetime) -> float:
    return value.timestamp()


def at_utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def rules_of(decision: Decision) -> set[str]:
    return {r.rule for r in decision.reasons}


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
CHANNELS = ("email", "sms", "call", "push", "in_app", "chat", "mail", "visit")
