"""A queued proposal keeps the time of the trigger it was proposed for: one whose trigger
the ledger does not know is released when the delay after its queueing runs out, not
deferred again by the whole delay on every release (the engine takes an unknown trigger
as happening at decision time)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tactful.model import ContactProposal
from tactful.state import CustomerState
from tests.conftest import Clock
from tests.delivery.conftest import Desk

DELAYED = """
name: delayed
version: "1"
rules:
  - id: browse-delay
    kind: trigger
    scope: {triggers: [signed_in]}
    delay: 1h
    message: "Contact prompted by a sign-in waits an hour after it."
"""


def _queue(desk: Desk) -> dict[str, Any]:
    desk.client.app.state.runtime.adopt(DELAYED, author="test")  # type: ignore[attr-defined]
    desk.subscribe(None)
    body = {"customer_id": "ann", "channel": "email", "purpose": "sales",
            "trigger": {"event": "signed_in"}, "on_defer": "queue"}  # fmt: skip
    answer = dict(desk.post("/v1/decisions", body, scope="decide"))
    assert answer["verdict"] == "defer" and answer["queued"]
    return answer


def _released_after_the_hour(desk: Desk, clock: Clock) -> None:
    queued_at = clock()
    clock.set(queued_at + timedelta(minutes=59))
    desk.work()
    assert desk.receiver.of_kind("queue.released") == []
    clock.set(queued_at + timedelta(hours=1, seconds=1))
    desk.work()
    released = desk.receiver.of_kind("queue.released")
    assert len(released) == 1, desk.get("/v1/queue")["items"]
    trigger = released[0].body["proposal"]["trigger"]
    assert trigger["event"] == "signed_in"


def test_an_unknown_trigger_is_pinned_when_queued(desk: Desk, clock: Clock) -> None:
    answer = _queue(desk)
    assert datetime.fromisoformat(answer["not_before"]) == clock() + timedelta(hours=1)
    item = desk.get(f"/v1/queue/{answer['queued']['id']}")
    assert datetime.fromisoformat(item["proposal"]["trigger"]["at"]) == clock()
    _released_after_the_hour(desk, clock)


def test_an_item_queued_without_the_trigger_time_is_pinned_on_release(
    desk: Desk, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the service queued it before it named the trigger's time.
    def unpinned(state: CustomerState, p: ContactProposal, now: object) -> ContactProposal:
        return p

    monkeypatch.setattr("tactful.service.routes.queue.pin_trigger", unpinned)
    answer = _queue(desk)
    assert desk.get(f"/v1/queue/{answer['queued']['id']}")["proposal"]["trigger"]["at"] is None
    _released_after_the_hour(desk, clock)


def test_a_known_trigger_keeps_its_own_time(desk: Desk, clock: Clock) -> None:
    signed_in = clock() - timedelta(minutes=30)
    desk.post(
        "/v1/events",
        {"customer_id": "ann", "event": "signed_in", "timestamp": signed_in.isoformat()},
        scope="ingest",
    )
    answer = _queue(desk)
    item = desk.get(f"/v1/queue/{answer['queued']['id']}")
    assert datetime.fromisoformat(item["proposal"]["trigger"]["at"]) == signed_in
    clock.advance(minutes=29)
    desk.work()
    assert desk.receiver.of_kind("queue.released") == []
    clock.advance(minutes=1, seconds=1)
    desk.work()
    assert len(desk.receiver.of_kind("queue.released")) == 1
