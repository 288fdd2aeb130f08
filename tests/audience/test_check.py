"""An audience check gives every customer exactly the engine's answer.

The differential test: thousands of varied customers (tests/audience/cases.py; 300 per
anchor and policy, 5,400 in all), every anchor (DST days and holidays among them), both
policies (courtesy; courtesy with every law pack), and for each a fixed sample of eight
(instant, proposal shape) pairs out of the forty, so that every shape and every instant is
met on every policy: verdict, `not_before` and every reason (rule, kind, message, until)
equal `tactful.engine.decide` on a freshly built state, customer by customer. It also
checks the vector path really decided a good share of them, so the test cannot pass by
sending everyone to the engine.
"""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from tactful import ContactProposal, Verdict
from tactful.audience import Snapshot, check_audience
from tests.audience.cases import ANCHORS, SHAPES, audience, instants, same_as_engine
from tests.engine_cases import policy

#: Customers per anchor and policy, and (instant, shape) pairs checked for each.
CUSTOMERS = 300
PAIRS = 8


def _pairs(pol: str, anchor: datetime) -> list[tuple[datetime, ContactProposal]]:
    """A fixed sample of the (instant, shape) pairs: eight shapes drawn for this anchor and
    policy, the four instants taken in turn."""
    index = ANCHORS.index(anchor)
    shapes = random.Random(f"{pol}-{index}").sample(range(len(SHAPES)), PAIRS)
    whens = instants(anchor)
    return [(whens[(k + index) % len(whens)], SHAPES[s]) for k, s in enumerate(shapes)]


def test_the_sample_meets_every_shape_and_instant() -> None:
    for pol in ("courtesy", "laws"):
        pairs = [p for anchor in ANCHORS for p in _pairs(pol, anchor)]
        assert sorted({SHAPES.index(shape) for _, shape in pairs}) == list(range(len(SHAPES)))
        offsets = {when - anchor for anchor in ANCHORS for when, _ in _pairs(pol, anchor)}
        assert len(offsets) == len(instants(ANCHORS[0]))


@pytest.mark.parametrize("pol", ["courtesy", "laws"])
@pytest.mark.parametrize("anchor", ANCHORS, ids=lambda a: a.strftime("%m%d"))
def test_every_customer_gets_the_engines_answer(pol: str, anchor: datetime) -> None:
    seed = 2 * ANCHORS.index(anchor) + (pol == "laws")
    states = audience(seed, CUSTOMERS, anchor)
    paths = {"vector": 0, "engine": 0}
    for when, shape in _pairs(pol, anchor):
        got = same_as_engine(states, shape, pol, when)
        paths = {k: paths[k] + got[k] for k in paths}
    if pol == "courtesy":
        # These ledgers are built to be awkward (future contacts, declines, visits under
        # way): still, the kernels must settle a good share of them.
        assert paths["vector"] > 0.25 * (paths["vector"] + paths["engine"]), paths


def test_engine_only_mode_gives_the_same_answers() -> None:
    anchor = ANCHORS[0]
    states = audience(99, 200, anchor)
    p = policy("courtesy")
    snap = Snapshot.build(states)
    for shape in SHAPES[:4]:
        a = check_audience(snap, shape, p, anchor)
        b = check_audience(snap, shape, p, anchor, vector=False)
        assert b.paths["vector"] == 0
        assert [o.verdict for o in a.outcomes()] == [o.verdict for o in b.outcomes()]
        assert a.counts() == b.counts()
        assert a.by_rule() == b.by_rule()
        assert sum(a.counts().values()) == len(states)
        assert any(o.verdict is not Verdict.ALLOW for o in a.outcomes())
