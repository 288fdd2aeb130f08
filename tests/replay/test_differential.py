"""The replay answers what the service answers.

A log is sent to a real service (FastAPI app, real store, injected clock) in time order:
events through POST /v1/events, each contact through POST /v1/decisions at its own time,
allowed ones confirmed sent and their outcome reported. Every verdict, not_before and
reason must equal the replay's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from tactful.policy.document import Policy
from tactful.replay.io import load_log
from tactful.replay.run import run_engine
from tactful.replay.synthetic import write_log
from tactful.replay.timeline import to_datetime
from tactful.service import create_app
from tactful.service.config import Settings
from tactful.store import open_store
from tests.conftest import TUESDAY_2PM, Clock
from tests.replay.conftest import LogBuilder


class Api:
    def __init__(self, client: TestClient, keys: dict[str, str], clock: Clock) -> None:
        self.client, self.keys, self.clock = client, keys, clock

    def post(self, path: str, body: object, scope: str) -> dict[str, Any]:
        r = self.client.post(
            path, json=body, headers={"Authorization": f"Bearer {self.keys[scope]}"}
        )
        assert r.status_code == 200, (path, body, r.text)
        data: dict[str, Any] = r.json()
        return data

    def patch(self, path: str, body: object) -> None:
        r = self.client.patch(
            path, json=body, headers={"Authorization": f"Bearer {self.keys['admin']}"}
        )
        assert r.status_code == 200, r.text


@pytest.fixture
def api(store_url: str) -> Iterator[Api]:
    clock = Clock(TUESDAY_2PM)
    store = open_store(store_url)
    keys = {}
    for scope in ("decide", "ingest", "admin"):
        _, keys[scope] = store.create_key([scope], name=f"test-{scope}", now=clock())
    app = create_app(Settings(database_url=store_url), store=store, clock=clock)
    with TestClient(app) as client:
        yield Api(client, keys, clock)
    store.close()


def _iso(us: int) -> str:
    return to_datetime(us).isoformat()


def _proposal(r: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": r["customer_id"],
        "channel": r["channel"],
        "purpose": r["purpose"],
        "at": _iso(r["at_us"]),
        "priority": r["priority"],
    }
    if r["trigger"]:
        body["trigger"] = {"event": r["trigger"]}
        if r["trigger_at_us"] is not None:
            body["trigger"]["at"] = _iso(r["trigger_at_us"])
    for field in ("offer", "campaign", "source"):
        if r[field]:
            body[field] = r[field]
    if r["subject"] or r["body"] or r["flags"] or r["discount"]:
        body["content"] = {
            "subject": r["subject"],
            "body": r["body"],
            "discount": r["discount"],
            "flags": [f for f in (r["flags"] or "").split(";") if f],
        }
    if r["tags"]:
        body["tags"] = json.loads(r["tags"])
    return body


def through_service(api: Api, timeline: pl.DataFrame) -> dict[int, dict[str, Any]]:
    """Send the timeline to the service in time order; its answers by contact row."""
    profiles = timeline.unique("customer_id", keep="first").select(
        "customer_id", "timezone", "country"
    )
    for cid, zone, country in profiles.iter_rows():
        patch = {k: v for k, v in (("timezone", zone), ("country", country)) if v}
        if patch:
            api.patch(f"/v1/customers/{cid}", patch)
    answers: dict[int, dict[str, Any]] = {}
    ordered = timeline.sort(["at_us", "is_contact", "customer_id", "row"])
    for r in ordered.iter_rows(named=True):
        api.clock.set(to_datetime(r["at_us"]))
        if not r["is_contact"]:
            props = {k: v for k, v in json.loads(r["properties"] or "{}").items() if v is not None}
            event: dict[str, Any] = {
                "customer_id": r["customer_id"],
                "event": r["event"],
                "timestamp": _iso(r["at_us"]),
                "properties": props,
            }
            if r["event_id"]:
                event["messageId"] = r["event_id"]
            api.post("/v1/events", event, "ingest")
            continue
        decision = api.post("/v1/decisions", _proposal(r), "decide")
        answers[r["row"]] = decision
        if decision["verdict"] == "allow":
            api.post(f"/v1/decisions/{decision['decision_id']}/sent", {}, "decide")
            if r["outcome"]:
                api.post(
                    f"/v1/decisions/{decision['decision_id']}/outcome",
                    {"outcome": r["outcome"]},
                    "decide",
                )
    return answers


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def assert_same(replayed: pl.DataFrame, served: dict[int, dict[str, Any]]) -> None:
    assert replayed.height == len(served)
    mismatches = []
    for r in replayed.iter_rows(named=True):
        s = served[r["row"]]
        ours = {
            "verdict": r["verdict"],
            "not_before": r["not_before"],
            "reasons": [
                {**x, "until": _instant(x["until"])} for x in json.loads(r["reasons"] or "[]")
            ],
        }
        theirs = {
            "verdict": s["verdict"],
            "not_before": _instant(s["not_before"]),
            "reasons": [
                {k: (_instant(v) if k == "until" else v) for k, v in x.items()}
                for x in s["reasons"]
            ],
        }
        if ours != theirs:
            mismatches.append((r["row"], r["customer_id"], ours, theirs))
    assert not mismatches, mismatches[:3]


def handmade(log: LogBuilder) -> LogBuilder:
    """Outcomes that become signals (unsubscribe, complaint, decline), opt-out and back,
    snooze, call-back, checkout, sessions and chat: the paths a synthetic log rarely hits."""
    log.profile("ann", timezone="America/Chicago", country="US")
    log.profile("bo", timezone="Europe/Paris", country="FR")
    d = "2026-03-0"
    log.event("ann", f"{d}2T14:00:00Z", "session_started", session_id="a1")
    log.event("ann", f"{d}2T14:01:00Z", "checkout_started", session_id="a1")
    log.contact(
        "ann", f"{d}2T14:03:00Z", "call", "sales", trigger="checkout_started", outcome="no_answer"
    )
    log.event("ann", f"{d}2T14:05:00Z", "order_completed", session_id="a1")
    log.contact("ann", f"{d}2T16:30:00Z", "call", "sales", trigger="checkout_started")
    log.contact(
        "ann", f"{d}2T17:00:00Z", "email", "marketing", campaign="news", outcome="unsubscribed"
    )
    log.contact("ann", f"{d}3T17:00:00Z", "email", "marketing", campaign="news")
    log.contact("ann", f"{d}3T17:05:00Z", "email", "transactional", source="orders")
    log.contact("ann", f"{d}3T18:00:00Z", "call", "sales", offer="gold", outcome="declined")
    log.contact("ann", f"{d}6T18:00:00Z", "call", "sales", offer="gold")
    log.contact("ann", f"{d}6T18:05:00Z", "email", "sales", offer="gold")
    log.contact("ann", f"{d}6T18:06:00Z", "sms", "marketing", outcome="complained")
    log.contact("ann", f"{d}7T18:06:00Z", "sms", "marketing")
    log.event("bo", f"{d}2T08:00:00Z", "snooze_requested", until="2026-03-05T00:00:00Z")
    log.contact("bo", f"{d}2T09:00:00Z", "email", "marketing")
    log.event(
        "bo",
        f"{d}2T10:00:00Z",
        "callback_requested",
        callback_at="2026-03-04T10:30:00Z",
        channel="call",
    )
    log.contact(
        "bo",
        "2026-03-04T10:30:00Z",
        "call",
        "service",
        trigger="callback_requested",
        outcome="answered",
    )
    log.event("bo", f"{d}5T10:00:00Z", "session_started", session_id="b1")
    log.contact("bo", f"{d}5T10:00:05Z", "chat", "sales", flags="chat_offer")
    log.contact("bo", f"{d}5T10:01:00Z", "chat", "sales", flags="chat_offer")
    log.event("bo", f"{d}5T10:01:10Z", "chat_dismissed", session_id="b1")
    log.contact("bo", f"{d}5T10:02:00Z", "chat", "sales", flags="chat_offer")
    log.contact("bo", f"{d}5T10:02:00Z", "in_app", "service", flags="greeting")
    log.contact("bo", f"{d}5T10:02:30Z", "in_app", "service", flags="greeting")
    log.event("bo", f"{d}6T09:00:00Z", "opted_out")
    log.contact("bo", f"{d}6T11:00:00Z", "email", "marketing", subject="We miss you")
    log.contact("bo", f"{d}6T11:00:00Z", "email", "transactional", subject="Receipt")
    log.event("bo", f"{d}7T09:00:00Z", "opted_in")
    log.contact(
        "bo",
        f"{d}7T11:00:00Z",
        "email",
        "sales",
        subject="URGENT: the offer ends",
        body="I saw you were looking at it",
    )
    log.contact(
        "bo", f"{d}7T11:30:00Z", "email", "marketing", trigger="checkout_started", discount="true"
    )
    return log


def _replay(contacts: Path, events: Path, customers: Path | None) -> pl.DataFrame:
    loaded = load_log(contacts, events, customers=customers, strict=True)
    return run_engine(loaded, [Policy.load("courtesy")], workers=1)[0], loaded  # type: ignore[return-value]


def test_handmade_log_matches_the_service(api: Api, log: LogBuilder) -> None:
    contacts, events, customers = handmade(log).write()
    replayed, loaded = _replay(contacts, events, customers)
    assert set(replayed.get_column("verdict")) == {"allow", "defer", "deny"}
    assert_same(replayed, through_service(api, loaded.timeline))


def test_synthetic_log_matches_the_service(api: Api, tmp_path: Path) -> None:
    files = write_log(tmp_path, customers=4, seed=11)
    replayed, loaded = _replay(files.contacts, files.events, files.customers)
    assert 200 <= loaded.timeline.height <= 2000
    assert replayed.get_column("verdict").n_unique() == 3
    assert_same(replayed, through_service(api, loaded.timeline))
