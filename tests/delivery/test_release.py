"""Releases: priority among one customer's queued proposals, fairness across customers,
expiry, withdrawal, and the queue's answers through the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tactful.worker import Tally
from tests.conftest import TUESDAY_2PM, Clock
from tests.delivery.conftest import Desk

ONE_A_DAY = """
name: one-a-day
version: "1"
rules:
  - id: one-email-a-day
    kind: cap
    scope: {channels: [email]}
    count: 1
    window: 1d
    message: "One email a day."
  - id: snooze
    kind: snooze
    message: "Snoozed until {until}."
"""


def _propose(desk: Desk, customer: str, **fields: Any) -> dict[str, Any]:
    body = {"customer_id": customer, "channel": "email", "on_defer": "queue", **fields}
    body.setdefault("purpose", "marketing")
    return dict(desk.post("/v1/decisions", body, scope="decide"))


def _snooze(desk: Desk, customer: str, days: int) -> None:
    desk.post(
        "/v1/events",
        {
            "customer_id": customer,
            "event": "snooze_requested",
            "timestamp": desk.clock().isoformat(),
            "properties": {"duration": f"{days}d"},
        },
        scope="ingest",
    )


def test_highest_priority_goes_first_and_the_others_follow_as_the_cap_allows(
    desk: Desk, clock: Clock
) -> None:
    desk.client.app.state.runtime.adopt(ONE_A_DAY, author="test")  # type: ignore[attr-defined]
    desk.subscribe("shop")
    _snooze(desk, "ann", 2)
    clock.advance(minutes=1)
    # Listed lowest first, so neither age nor order explains the outcome: priority does.
    for priority, campaign in ((1, "low"), (5, "high"), (3, "middle")):
        answer = _propose(desk, "ann", priority=priority, campaign=campaign, source="shop")
        assert answer["verdict"] == "defer" and answer["queued"]
    end = TUESDAY_2PM + timedelta(days=2)

    released: list[str] = []
    for day in range(3):
        clock.set(end + timedelta(days=day, seconds=1))
        desk.work()
        now = desk.receiver.of_kind("queue.released")
        new = [r for r in now if r.body["proposal"]["campaign"] not in released]
        assert len(new) == 1, (day, [r.body["proposal"]["campaign"] for r in new])
        released.append(new[0].body["proposal"]["campaign"])
        # The sender sends it and says so: the cap counts it from then on.
        decision_id = new[0].body["decision"]["decision_id"]
        desk.post(f"/v1/decisions/{decision_id}/sent", scope="decide")
        # The others wait behind it: due again when the cap makes room.
        waiting = desk.get("/v1/queue", status="queued")["items"]
        assert len(waiting) == 2 - day
        for item in waiting:
            assert item["due_at"] > clock().isoformat()
    assert released == ["high", "middle", "low"]
    assert desk.receiver.duplicates == []


def test_a_transactional_item_is_not_kept_waiting_behind_a_campaign_backlog(
    desk: Desk, clock: Clock
) -> None:
    from tactful.store.delivery import delivery_store

    ds = delivery_store(desk.store)
    for i in range(200):
        _snooze(desk, f"m{i:04d}", 1)
        _propose(desk, f"m{i:04d}", campaign="blast")
    # A transactional SMS held back until calling hours open, due later than the backlog:
    clock.set(TUESDAY_2PM.replace(hour=21))
    sms = desk.post(
        "/v1/decisions",
        {"customer_id": "t2", "channel": "sms", "purpose": "transactional", "on_defer": "queue"},
        scope="decide",
    )
    assert sms["verdict"] == "defer", sms
    clock.set(TUESDAY_2PM + timedelta(days=3))
    first = ds.claim_queue("w1", now=clock(), lease=timedelta(minutes=1), limit=10)
    customers = {i.customer_id for i in first}
    # In the very first batch, ahead of 200 items that were due long before it.
    assert "t2" in customers
    assert len(customers) == 10


def test_expired_items_are_dropped_and_withdrawn_ones_never_released(
    desk: Desk, clock: Clock
) -> None:
    desk.subscribe(None)
    _snooze(desk, "ann", 5)
    _snooze(desk, "bob", 5)
    # Deferred past its expiry at once: not queued at all.
    late = _propose(desk, "ann", expires_at=(clock() + timedelta(days=1)).isoformat())
    assert late["verdict"] == "defer" and late["queued"] is None
    kept = _propose(desk, "ann", campaign="kept")
    withdrawn = _propose(desk, "bob", campaign="withdrawn")
    r = desk.client.delete(f"/v1/queue/{withdrawn['queued']['id']}", headers=desk.auth("decide"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = desk.client.delete(f"/v1/queue/{kept['queued']['id']}x", headers=desk.auth("decide"))
    assert again.status_code == 404
    clock.advance(days=5, seconds=1)
    desk.work()
    campaigns = [r.body["proposal"]["campaign"] for r in desk.receiver.of_kind("queue.released")]
    assert campaigns == ["kept"]
    r = desk.client.delete(f"/v1/queue/{kept['queued']['id']}", headers=desk.auth("decide"))
    assert r.status_code == 409  # released already


def test_an_item_whose_expiry_passes_while_queued_is_dropped_with_that_reason(
    desk: Desk, clock: Clock
) -> None:
    desk.subscribe(None)
    _snooze(desk, "ann", 5)
    answer = _propose(desk, "ann", expires_at=(clock() + timedelta(days=5, hours=1)).isoformat())
    assert answer["queued"]
    # The worker is down until after the expiry.
    clock.advance(days=6)
    tally: Tally = desk.worker.run_until_idle()
    assert tally.dropped == 1 and tally.released == 0
    (dropped,) = desk.receiver.of_kind("queue.dropped")
    assert dropped.body["reasons"][0]["rule"] == "expires_at"


def test_a_repeated_idempotency_key_answers_the_same_queue_item(desk: Desk) -> None:
    _snooze(desk, "ann", 5)
    first = _propose(desk, "ann", idempotency_key="k-1")
    again = _propose(desk, "ann", idempotency_key="k-1")
    assert again["replayed"] is True
    assert again["queued"] == first["queued"]
    assert len(desk.get("/v1/queue")["items"]) == 1


def test_bad_queue_fields_are_refused_naming_the_field(desk: Desk) -> None:
    body = {"customer_id": "ann", "channel": "email", "purpose": "marketing"}
    r = desk.client.post(
        "/v1/decisions", json={**body, "on_defer": "later"}, headers=desk.auth("decide")
    )
    assert r.status_code == 422 and "on_defer" in r.text
    r = desk.client.post(
        "/v1/decisions",
        json={**body, "expires_at": "2027-01-01T00:00:00Z"},
        headers=desk.auth("decide"),
    )
    assert r.status_code == 422 and "expires_at" in r.text
    assert desk.get("/v1/audit")["entries"] == []


def test_erasure_takes_the_customers_queue_and_deliveries_with_it(desk: Desk, clock: Clock) -> None:
    """S19 for deferred delivery: after erasure no queue item, reminder, outbox row or
    delivery attempt mentions the customer."""
    from sqlalchemy import func, select

    from tactful.store import delivery
    from tactful.store.sql import SqlStore

    desk.client.app.state.runtime.adopt(ONE_A_DAY, author="test")  # type: ignore[attr-defined]
    desk.subscribe("shop")
    _snooze(desk, "ann", 1)
    _propose(desk, "ann", campaign="first", source="shop")
    clock.advance(days=1, minutes=1)
    desk.work()  # released: an outbox row, delivered with one attempt
    _snooze(desk, "ann", 1)
    _propose(desk, "ann", campaign="second", source="shop")  # still queued
    assert len(desk.receiver.deliveries) == 1

    def rows() -> dict[str, int]:
        assert isinstance(desk.store, SqlStore)
        with desk.store.engine.connect() as conn:
            return {
                t.name: conn.execute(
                    select(func.count()).select_from(t).where(t.c.customer_id == "ann")
                ).scalar_one()
                for t in (delivery.queued, delivery.outbox)
            } | {
                "delivery_attempts": conn.execute(
                    select(func.count()).select_from(delivery.delivery_attempts)
                ).scalar_one()
            }

    assert rows() == {"queued": 2, "outbox": 1, "delivery_attempts": 1}
    r = desk.client.delete("/v1/customers/ann", headers=desk.auth())
    assert r.status_code == 204, r.text
    assert rows() == {"queued": 0, "outbox": 0, "delivery_attempts": 0}
