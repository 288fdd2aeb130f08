"""The audience check against the engine, on audiences Hypothesis draws.

Each example is a whole audience: customers with random ledgers (the event and contact
strategies of tests/test_properties.py, moved to one of the anchors: DST days, holidays),
profiles in several zones, one random proposal shape, a random `now` near the anchor, and
courtesy or every law pack. Every customer's verdict, `not_before` and reasons must equal
`tactful.engine.decide` on a freshly built state.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tactful import ContactProposal, Content, CustomerProfile, CustomerState
from tactful.audience.check import on_grid
from tactful.engine import _on_grid
from tests.audience.cases import same_as_engine
from tests.engine_cases import ANCHORS, PROFILES
from tests.test_properties import NOW, contacts, events

EXAMPLES = settings(
    max_examples=int(os.environ.get("TACTFUL_AUDIENCE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def customers(draw: st.DrawFn, cid: str, shift: timedelta) -> CustomerState:
    """One customer: a profile, and a ledger drawn around NOW, moved by `shift`."""
    profile = CustomerProfile(cid, **draw(st.sampled_from(PROFILES)))  # type: ignore[arg-type]
    ledger = [
        replace(e, customer_id=cid, at=e.at + shift) for e in draw(st.lists(events(), max_size=8))
    ]
    made = [
        replace(
            c,
            customer_id=cid,
            at=c.at + shift,
            hold_expires=c.hold_expires + shift if c.hold_expires is not None else None,
        )
        for c in draw(st.lists(contacts(), max_size=10, unique_by=lambda c: c.contact_id))
    ]
    return CustomerState(profile, ledger, made)


@st.composite
def audiences(draw: st.DrawFn) -> tuple[list[CustomerState], ContactProposal, str, datetime]:
    anchor = draw(st.sampled_from(ANCHORS))
    shift = anchor - NOW
    size = draw(st.integers(1, 30))
    states = [draw(customers(f"h{i}", shift)) for i in range(size)]
    now = anchor + timedelta(
        minutes=draw(st.one_of(st.sampled_from((0, 30, -60)), st.integers(-3 * 1440, 3 * 1440))),
        microseconds=draw(st.sampled_from((0, 250_000, 999_999))),
    )
    content = None
    if draw(st.booleans()):
        content = Content(
            subject=draw(st.sampled_from((None, "Hello", "URGENT: read"))),
            discount=draw(st.booleans()),
            flags=draw(st.sampled_from(((), ("greeting",)))),
        )
    ahead = draw(st.sampled_from((None, None, 0, 30, 24 * 60, 5 * 24 * 60)))
    proposal = ContactProposal(
        "",
        draw(st.sampled_from(("email", "sms", "call", "push", "chat", "in_app"))),
        draw(st.sampled_from(("marketing", "sales", "service", "transactional", "collections"))),
        at=None if ahead is None else now + timedelta(minutes=ahead),
        offer=draw(st.sampled_from((None, "gold", "premium"))),
        campaign=draw(st.sampled_from((None, "c1"))),
        source=draw(st.sampled_from((None, "sales-team", "marketing"))),
        content=content,
    )
    return states, proposal, draw(st.sampled_from(("courtesy", "laws"))), now


@EXAMPLES
@given(audiences())
def test_every_customer_of_a_drawn_audience_gets_the_engines_answer(
    drawn: tuple[list[CustomerState], ContactProposal, str, datetime],
) -> None:
    states, proposal, pol, now = drawn
    paths = same_as_engine(states, proposal, pol, now)
    event(f"vector share: {paths['vector'] * 4 // len(states) * 25}%")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=4.1e9, allow_nan=False), min_size=1))
def test_the_microsecond_grid_is_the_engines(instants: list[float]) -> None:
    """`not_before` in columns goes to the same whole microsecond as the engine's."""
    got = on_grid(np.array(instants))
    assert got.tolist() == [_on_grid(u) for u in instants]
    assert (got >= np.array(instants)).all()
