"""The per-customer fold: one customer's history, in time order, through the engine.

`fold` is pure: a profile, the customer's events and logged contacts sorted by time, and a
policy in; one `ReplayVerdict` per contact out. It walks the history the way the service
would have lived it: each event enters the state; each contact is decided by
`tactful.engine.decide` at its own time, and only an allowed contact enters the state, as
sent, with the outcome the log recorded (so a suppressed call never counts against later
caps, and what happened to a suppressed contact is never observed). An outcome that the
service turns into a signal (unsubscribed, complained, declined) becomes the same event
here, at the contact's time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tactful.engine import decide
from tactful.model import (
    REQUESTED_TRIGGERS,
    SIGNAL_OUTCOMES,
    UNANSWERED_OUTCOMES,
    Contact,
    ContactProposal,
    ContactStatus,
    CustomerProfile,
    Decision,
    Event,
    Verdict,
    outcome_signal,
)
from tactful.policy.document import Policy
from tactful.rules.pressure import PressureRule
from tactful.state import CustomerState, LedgerContact, LedgerEvent

#: Pressure's shape when the policy has none of its own (courtesy's: 7-day half-life,
#: unanswered contacts weigh double), so the report can still compare before and after.
DEFAULT_HALF_LIFE = 7 * 86400.0
DEFAULT_UNANSWERED_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class LoggedContact:
    """A contact from the log: the proposal it would have been, and what happened to it."""

    row: int
    proposal: ContactProposal
    outcome: str | None = None

    @property
    def contact_id(self) -> str:
        return f"row:{self.row}"


#: An event (as the service receives it, or already in the ledger's form) or a contact.
Item = Event | LedgerEvent | LoggedContact


@dataclass(frozen=True, slots=True)
class ReplayVerdict:
    """What the policy would have answered to one logged contact.

    `pressure_logged` is the customer's pressure just after this contact as it really
    happened (every logged contact counted); `pressure_replayed` the same under the policy
    (only the contacts it allows counted, this one included if allowed)."""

    contact: LoggedContact
    decision: Decision
    pressure_logged: float
    pressure_replayed: float

    @property
    def outcome_observed(self) -> bool:
        return self.decision.verdict is Verdict.ALLOW and self.contact.outcome is not None


def outcome_event(contact: Contact, outcome: str) -> Event | None:
    """The signal an outcome also is, timed at the contact (the service times it on
    arrival): the same definition as the service's, `tactful.model.outcome_signal`."""
    return outcome_signal(contact, outcome, contact.at)


class PressureGauge:
    """A customer's decayed contact pressure, kept incrementally as contacts are added,
    weighed as the policy's first pressure rule weighs them."""

    __slots__ = ("_factor", "_half_life", "_policy", "_t", "_value")

    def __init__(self, policy: Policy) -> None:
        rule = next((r for r in policy.rules if isinstance(r, PressureRule)), None)
        self._policy = policy
        self._half_life = rule.half_life if rule else DEFAULT_HALF_LIFE
        self._factor = rule.unanswered_factor if rule else DEFAULT_UNANSWERED_FACTOR
        self._value = 0.0
        self._t = 0.0

    def add(self, ts: float, channel: str, trigger: str | None, outcome: str | None) -> float:
        """Add a contact at `ts` (in time order); returns the pressure just after it."""
        value = self._value * math.exp2(-(ts - self._t) / self._half_life) if self._value else 0.0
        if trigger not in REQUESTED_TRIGGERS:
            w = self._policy.weight(channel)
            value += w * self._factor if outcome in UNANSWERED_OUTCOMES else w
        self._value, self._t = value, ts
        return value

    def at(self, ts: float) -> float:
        if not self._value:
            return 0.0
        return self._value * math.exp2(-(ts - self._t) / self._half_life)


def fold(profile: CustomerProfile, items: Iterable[Item], policy: Policy) -> list[ReplayVerdict]:
    """Replay one customer's history (sorted by time) through `policy`."""
    state = CustomerState(profile)
    state.transient = True  # it changes with nearly every contact and event folded
    logged = PressureGauge(policy)
    replayed = PressureGauge(policy)
    out: list[ReplayVerdict] = []
    add_ledger_event = state.add_ledger_event
    for item in items:
        if not isinstance(item, LoggedContact):
            if isinstance(item, LedgerEvent):
                add_ledger_event(item)
            else:
                state.add_event(item)
            continue
        p = item.proposal
        at_ = p.at
        assert at_ is not None, "a logged contact has a time"
        ts = at_.timestamp()
        trigger = p.trigger.event if p.trigger else None
        outcome = item.outcome
        decision = decide(state, p, policy, at_)
        before = logged.add(ts, p.channel, trigger, outcome)
        if decision.verdict is Verdict.ALLOW:
            # Sent as the log says, at the instant decided (the contact's own, in a replay).
            sent_at = decision.at
            sent_ts = ts if sent_at is at_ else sent_at.timestamp()
            # Ids are log rows: none is in the ledger yet.
            state.add_ledger_contact(
                LedgerContact.sent(item.contact_id, p, sent_ts, outcome), new=True
            )
            after = replayed.add(ts, p.channel, trigger, outcome)
            if outcome in SIGNAL_OUTCOMES:
                contact = Contact.from_proposal(
                    item.contact_id, p, sent_at, status=ContactStatus.SENT, outcome=outcome
                )
                signal = outcome_event(contact, outcome)
                if signal is not None:
                    state.add_event(signal)
        else:
            after = replayed.at(ts)
        out.append(ReplayVerdict(item, decision, before, after))
    return out


def fold_many(
    profile: CustomerProfile, items: Sequence[Item], policies: Sequence[Policy]
) -> list[list[ReplayVerdict]]:
    """The same history through several policies, each with its own simulated state."""
    return [fold(profile, items, policy) for policy in policies]
