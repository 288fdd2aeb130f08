"""What-if: how would a draft policy have answered the decisions of the last N days?

A per-decision counterfactual. For each decision in the audit log (bounded), the customer's
ledger as stored now is cut at the moment of that decision (events up to it, contacts of
earlier decisions), and the recorded proposal is decided again, under the active policy
and under the draft, by the same `tactful.engine.decide`. Comparing the two isolates the
policy change. The ledger itself is not re-simulated: contacts the draft would have
stopped still count against later decisions, so a full replay with simulated state is
`tactful replay`'s job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tactful.engine import decide
from tactful.model import (
    Contact,
    ContactStatus,
    Decision,
    Event,
    from_ts,
)
from tactful.policy.document import Policy
from tactful.state import CustomerState
from tactful.store.base import DecisionRecord, Store
from tactful.store.sql import proposal_of
from tactful.web.overview import recent_decisions

#: Days the what-if may look back.
MAX_DAYS = 90
#: Decisions re-decided at most (newest first).
MAX_DECISIONS = 2_000
#: Changed decisions listed on the page.
MAX_EXAMPLES = 50


@dataclass(frozen=True, slots=True)
class Change:
    record: DecisionRecord
    before: Decision
    after: Decision

    @property
    def transition(self) -> tuple[str, str]:
        return (self.before.verdict.value, self.after.verdict.value)


@dataclass
class WhatIf:
    days: int
    since: datetime
    considered: int = 0
    capped: bool = False
    skipped: int = 0
    #: How often the active policy, on the cut ledger, gave the verdict the log recorded.
    reproduced: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (transition, rule) -> decisions: the rules that made each change (`responsible`).
    rules: Counter[tuple[tuple[str, str], str]] = field(default_factory=Counter)
    examples: list[Change] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(n for (a, b), n in self.transitions.items() if a != b)

    @property
    def changes(self) -> list[tuple[str, str, int]]:
        """(before, after, count) of the verdicts that changed, most first."""
        return sorted(
            ((a, b, n) for (a, b), n in self.transitions.items() if a != b),
            key=lambda x: (-x[2], x[0], x[1]),
        )

    @property
    def rule_rows(self) -> list[tuple[str, str, str, int]]:
        """(before, after, rule, count): which rules made each change."""
        return sorted(
            ((t[0], t[1], rule, n) for (t, rule), n in self.rules.items()),
            key=lambda x: (-x[3], x[0], x[1], x[2]),
        )


def state_as_of(
    state: CustomerState,
    decided_at: datetime,
    decided: dict[str, datetime],
    *,
    own: str | None = None,
) -> CustomerState:
    """The customer's ledger as it stood when a decision was made: events up to then, and
    the contacts of the decisions made up to then other than `own` (`decided` maps decision
    id to time; contacts of other origins count from their own time). Decisions at the
    same instant see each other's contacts: the log cannot tell which came first."""
    cid = state.profile.customer_id
    cut = decided_at.timestamp()
    events = [
        Event(cid, e.kind, from_ts(e.ts), e.event_id, e.properties)
        for e in state.events
        if e.ts <= cut
    ]
    contacts = []
    for c in state.contacts:
        if c.contact_id == own:
            continue
        origin = decided.get(c.contact_id)
        if (origin <= decided_at) if origin is not None else (c.ts <= cut):
            contacts.append(
                Contact(
                    contact_id=c.contact_id,
                    customer_id=cid,
                    channel=c.channel,
                    purpose=c.purpose,
                    at=from_ts(c.ts),
                    status=ContactStatus(c.status),
                    outcome=c.outcome,
                    hold_expires=from_ts(c.hold_expires) if c.hold_expires else None,
                    trigger_event=c.trigger_event,
                    trigger_at=from_ts(c.trigger_ts) if c.trigger_ts else None,
                    offer=c.offer,
                    campaign=c.campaign,
                    source=c.source,
                    flags=c.flags,
                    tags=c.tags,
                )
            )
    return CustomerState(state.profile, events, contacts)


_STRICTNESS = {"allow": 0, "defer": 1, "deny": 2}


def responsible(before: Decision, after: Decision) -> list[str]:
    """The rules that make the difference: for a stricter verdict, those holding the
    contact back only under the draft; for a looser one, those that held it back only
    under the active policy (all of that side's rules when the same ones are involved)."""
    was = [x.rule for x in before.reasons]
    is_ = [x.rule for x in after.reasons]
    if _STRICTNESS[after.verdict.value] > _STRICTNESS[before.verdict.value]:
        return [r for r in is_ if r not in was] or is_
    return [r for r in was if r not in is_] or was


def run(store: Store, active: Policy, draft: Policy, now: datetime, *, days: int) -> WhatIf:
    """Re-decide the last `days` days of decisions under `active` and under `draft`."""
    days = max(1, min(days, MAX_DAYS))
    since = now - timedelta(days=days)
    result = WhatIf(days=days, since=since)
    records, result.capped = recent_decisions(store, since, cap=MAX_DECISIONS)
    decided = {r.decision_id: r.decided_at for r in records}
    ledgers: dict[str, CustomerState] = {}
    for r in reversed(records):  # oldest first, so the examples read in order
        if not r.proposal or store.suppressed(r.customer_id):
            result.skipped += 1
            continue
        try:
            proposal = proposal_of(r.proposal)
        except (KeyError, TypeError, ValueError):
            result.skipped += 1
            continue
        ledger = ledgers.get(r.customer_id)
        if ledger is None:
            ledger = ledgers[r.customer_id] = store.load_state(r.customer_id)
        state = state_as_of(ledger, r.decided_at, decided, own=r.decision_id)
        before = decide(state, proposal, active, r.decided_at)
        after = decide(state, proposal, draft, r.decided_at)
        result.considered += 1
        if before.verdict.value == r.verdict:
            result.reproduced += 1
        transition = (before.verdict.value, after.verdict.value)
        result.transitions[transition] += 1
        if before.verdict is after.verdict:
            continue  # a deferral to another time is not counted as a change
        for rule in responsible(before, after):
            result.rules[(transition, rule)] += 1
        if len(result.examples) < MAX_EXAMPLES:
            result.examples.append(Change(r, before, after))
    return result
