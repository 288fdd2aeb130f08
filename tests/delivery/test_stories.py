"""The deferred-delivery stories, end to end through the API and the worker with an
injected clock, on each store: S22 (a call-back, once, at the customer's time) and a
marketing email queued during a snooze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import CHICAGO, TUESDAY_2PM, Clock
from tests.delivery.conftest import Desk

PHONES = {"ann": "+13125550142", "bob": "+13125550199"}


def _profile(desk: Desk, customer: str = "ann") -> None:
    profile = {
        "timezone": "America/Chicago",
        "country": "US",
        "phones": [PHONES[customer]],
        "emails": [f"{customer}@example.com"],
    }
    r = desk.client.patch(f"/v1/customers/{customer}", json=profile, headers=desk.auth("admin"))
    assert r.status_code == 200, r.text


def _event(desk: Desk, kind: str, customer: str = "ann", **props: object) -> None:
    desk.post(
        "/v1/events",
        {
            "customer_id": customer,
            "event": kind,
            "timestamp": desk.clock().isoformat(),
            "properties": props,
        },
        scope="ingest",
    )


def test_s22_call_back_in_three_weeks_reminds_the_owning_team_once_at_that_time(
    desk: Desk, clock: Clock
) -> None:
    _profile(desk)
    desk.subscribe("sales")
    desk.subscribe("marketing")  # another team's hook hears nothing of it
    # Three weeks from Tuesday 24 November: Tuesday 15 December, 10:30 in Chicago.
    when = datetime(2026, 12, 15, 10, 30, tzinfo=CHICAGO)
    _event(desk, "callback_requested", at=when.isoformat(), channel="call")
    desk.work()
    reminders = desk.get("/v1/deliveries")["deliveries"]
    assert reminders == []  # nothing yet: the time has not come

    clock.set(when - timedelta(minutes=1))
    desk.work()
    assert desk.receiver.deliveries == {}

    clock.set(when)
    desk.work()
    got = desk.receiver.of_kind("callback.due")
    assert len(got) == 1, got
    body = got[0].body
    assert body["customer_id"] == "ann"
    assert body["owner"] == "sales"
    assert body["channel"] == "call"
    assert datetime.fromisoformat(body["callback_at"]) == when
    assert datetime.fromisoformat(body["due_at"]) == when
    assert got[0].at == when  # received at the requested time
    # Only the sales hook got it: one delivery, to one webhook.
    assert len(desk.receiver.deliveries) == 1

    # Once: later rounds, days later, a restart of the worker change nothing.
    for hours in (1, 24, 24 * 30):
        clock.set(when + timedelta(hours=hours))
        desk.work()
    assert len(desk.receiver.of_kind("callback.due")) == 1
    assert desk.receiver.duplicates == []
    (delivery,) = desk.get("/v1/deliveries")["deliveries"]
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["history"]] == [200]


def test_s22_a_call_back_asked_for_outside_calling_hours_is_due_when_they_open(
    desk: Desk, clock: Clock
) -> None:
    _profile(desk)
    desk.subscribe("sales")
    # Sunday 29 November at 07:00: no calls on Sunday, nor before 09:00 on Monday.
    _event(desk, "callback_requested", at=datetime(2026, 11, 29, 7, 0, tzinfo=CHICAGO).isoformat())
    desk.work()
    monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=CHICAGO)
    clock.set(monday_9 - timedelta(seconds=1))
    desk.work()
    assert desk.receiver.deliveries == {}
    clock.set(monday_9)
    desk.work()
    (got,) = desk.receiver.of_kind("callback.due")
    assert datetime.fromisoformat(got.body["due_at"]) == monday_9


def test_a_reminder_is_cancelled_by_an_opt_out_and_moved_by_a_new_date(
    desk: Desk, clock: Clock
) -> None:
    _profile(desk)
    _profile(desk, "bob")
    desk.subscribe(None)  # every team's deliveries
    first = datetime(2026, 12, 1, 11, 0, tzinfo=CHICAGO)
    _event(desk, "callback_requested", at=first.isoformat(), source="service-desk")
    _event(desk, "callback_requested", customer="bob", at=first.isoformat())
    desk.work()
    clock.advance(hours=1)
    moved = datetime(2026, 12, 3, 15, 0, tzinfo=CHICAGO)
    _event(desk, "callback_requested", at=moved.isoformat(), source="service-desk")
    _event(desk, "opted_out", customer="bob")
    desk.work()
    listing = desk.worker.deliveries.list_reminders()
    by = {(r.customer_id, r.for_at): r for r in listing}
    assert by[("ann", first)].status == "cancelled"
    assert by[("ann", first)].reason == "rescheduled"
    assert by[("ann", moved)].status == "pending"
    assert by[("bob", first)].status == "cancelled"
    assert (by[("bob", first)].reason or "").startswith("denied: ")

    clock.set(first + timedelta(hours=1))
    desk.work()
    assert desk.receiver.deliveries == {}  # neither the old date nor the opted-out one
    clock.set(moved)
    desk.work()
    (got,) = desk.receiver.of_kind("callback.due")
    assert got.body["owner"] == "service-desk"
    assert datetime.fromisoformat(got.body["callback_at"]) == moved


def test_a_withdrawn_call_back_is_never_delivered(desk: Desk, clock: Clock) -> None:
    _profile(desk)
    desk.subscribe("sales")
    when = datetime(2026, 12, 1, 11, 0, tzinfo=CHICAGO)
    _event(desk, "callback_requested", at=when.isoformat())
    desk.work()
    clock.advance(minutes=5)
    _event(desk, "callback_requested", cancelled=True)
    desk.work()
    clock.set(when + timedelta(days=1))
    desk.work()
    assert desk.receiver.deliveries == {}
    (reminder,) = desk.worker.deliveries.list_reminders()
    assert (reminder.status, reminder.reason) == ("cancelled", "withdrawn")


def _marketing_email(desk: Desk, customer: str) -> dict[str, object]:
    return dict(
        desk.post(
            "/v1/decisions",
            {
                "customer_id": customer,
                "channel": "email",
                "purpose": "marketing",
                "source": "marketing",
                "campaign": "winter-sale",
                "content": {"subject": "Winter sale", "body": "Our winter range is in."},
                "on_defer": "queue",
                "expires_at": (TUESDAY_2PM + timedelta(days=60)).isoformat(),
            },
            scope="decide",
        )
    )


def test_marketing_email_queued_during_a_snooze_goes_out_when_it_ends_or_never_after_opt_out(
    desk: Desk, clock: Clock
) -> None:
    for customer in ("ann", "bob"):
        _profile(desk, customer)
    desk.subscribe("marketing")
    snooze_end = (TUESDAY_2PM + timedelta(weeks=3)).astimezone(UTC)
    for customer in ("ann", "bob"):
        _event(desk, "snooze_requested", customer=customer, until=snooze_end.isoformat())
    clock.advance(minutes=1)

    answers = {c: _marketing_email(desk, c) for c in ("ann", "bob")}
    for answer in answers.values():
        assert answer["verdict"] == "defer"
        queued = answer["queued"]
        assert isinstance(queued, dict)
        assert datetime.fromisoformat(str(queued["due_at"])) == snooze_end
        assert datetime.fromisoformat(str(answer["not_before"])) == snooze_end
    clock.advance(days=3)
    _event(desk, "opted_out", customer="bob")  # bob opts out while it waits

    clock.set(snooze_end - timedelta(seconds=1))
    desk.work()
    assert desk.receiver.deliveries == {}
    clock.set(snooze_end)
    desk.work()

    (released,) = desk.receiver.of_kind("queue.released")
    assert released.body["customer_id"] == "ann"
    decision = released.body["decision"]
    assert decision["verdict"] == "allow"
    # The release placed a hold: it is in the audit log and counts like any allow.
    audit = desk.get(f"/v1/decisions/{decision['decision_id']}", scope="decide")
    assert audit["verdict"] == "allow"
    (dropped,) = desk.receiver.of_kind("queue.dropped")
    assert dropped.body["customer_id"] == "bob"
    assert dropped.body["reasons"][0]["rule"] == "opt-out"

    items = {i["customer_id"]: i for i in desk.get("/v1/queue")["items"]}
    assert items["ann"]["status"] == "released"
    assert items["ann"]["decision_id"] == decision["decision_id"]
    assert items["bob"]["status"] == "dropped"
    # Nothing more happens later.
    clock.advance(days=10)
    desk.work()
    assert len(desk.receiver.deliveries) == 2
