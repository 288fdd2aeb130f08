"""Varied audiences for the audience differential tests, and the comparison they make.

Customers come from the engine's own scenario generator (`tests/engine_cases.py`): visits,
opt-outs, snoozes, call-backs, declines, checkouts, held and expired holds, contacts on
window edges and in the future, ghosts who never answer, profiles in several zones (Idaho
numbers span two), with preferences and consent.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from tactful import ContactProposal, Content, CustomerProfile, CustomerState
from tactful.audience import Snapshot, check_audience
from tactful.engine import decide
from tests.engine_cases import ANCHORS, FOCUS, PROFILES, _contacts, _events, policy

#: Campaign shapes: no trigger (an audience is asked, not prompted by an event).
SHAPES = (
    ContactProposal("", "email", "marketing", campaign="c1"),
    ContactProposal("", "email", "marketing", content=Content(subject="Winter ideas")),
    ContactProposal("", "sms", "marketing", source="marketing"),
    ContactProposal("", "call", "sales", offer="premium"),
    ContactProposal("", "email", "sales", offer="consult", campaign="c2"),
    ContactProposal("", "push", "marketing"),
    ContactProposal("", "chat", "service"),
    ContactProposal("", "email", "transactional"),
    ContactProposal("", "call", "collections", source="sales-team"),
    ContactProposal("", "email", "collections"),  # Reg F hours: a regional schedule
    ContactProposal("", "email", "marketing", content=Content(subject="URGENT: act now")),
)


def audience(seed: int, size: int, anchor: datetime) -> list[CustomerState]:
    """`size` customers with ledgers built around `anchor`."""
    rng = random.Random(seed)
    states = []
    for i in range(size):
        cid = f"a{seed}-{i}"
        profile = CustomerProfile(cid, **rng.choice(PROFILES))  # type: ignore[arg-type]
        ghost = rng.random() < 0.15
        events = () if ghost else tuple(_events(rng, cid, anchor))
        contacts = _contacts(rng, cid, anchor, rng.choice(FOCUS), ghost=ghost)
        states.append(CustomerState(profile, events, contacts))
    return states


def instants(anchor: datetime) -> list[datetime]:
    """The anchor, and instants near it where holds expire and windows turn."""
    return [
        anchor,
        anchor + timedelta(minutes=7),
        anchor + timedelta(hours=9, seconds=0.5),
        anchor - timedelta(minutes=20),
    ]


def _rebuild(state: CustomerState) -> CustomerState:
    # A state with nothing memoised (the audience check shares memos with its states).
    other = state.copy()
    other.forget()
    return other


def same_as_engine(
    states: list[CustomerState], proposal: ContactProposal, pol: str, now: datetime
) -> dict[str, int]:
    """Assert every customer's audience answer (verdict, `not_before`, reasons) is the
    engine's on a freshly built state; how many customers each path decided."""
    p = policy(pol)
    snap = Snapshot.build(states)
    result = check_audience(snap, proposal, p, now)
    for row, state in enumerate(states):
        got = result.outcome(row)
        want = decide(
            _rebuild(state), replace(proposal, customer_id=state.profile.customer_id), p, now
        )
        context = f"{state.profile.customer_id} {proposal} at {now} ({got.path})"
        assert got.verdict is want.verdict, context
        assert got.not_before == want.not_before, context
        assert [r.as_dict() for r in got.reasons] == [r.as_dict() for r in want.reasons], context
    return result.paths


__all__ = ["ANCHORS", "SHAPES", "audience", "instants", "same_as_engine"]
