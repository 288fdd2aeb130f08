"""Text longer than the ledger's columns is refused where it comes in, naming the field, on
both stores alike (PostgreSQL enforces the column sizes SQLite ignores: each of these was
a 500 there)."""

from __future__ import annotations

from typing import Any

from tactful.model import ID_MAX, KIND_MAX
from tactful.policy.document import NAME_MAX, VERSION_MAX
from tests.service.conftest import Service

T = "2026-11-24T14:02:00Z"
LONG_KIND = "e" * (KIND_MAX + 1)
LONG_ID = "i" * (ID_MAX + 1)


def _fields(r: Any) -> list[str]:
    detail = r.json()["detail"]
    items = detail if isinstance(detail, list) else [detail]
    return [str(d["field"]) for d in items]


def test_the_api_refuses_an_event_kind_or_trigger_longer_than_the_ledger_keeps(
    service: Service,
) -> None:
    event = {"customer_id": "ann", "event": LONG_KIND, "timestamp": T}
    r = service.post("/v1/events", {"events": [event]}, scope="ingest")
    assert r.status_code == 422 and "EventsIn.events.0.event" in _fields(r)
    proposal = {"customer_id": "ann", "channel": "email", "purpose": "transactional"}
    r = service.post("/v1/decisions", {**proposal, "trigger": {"event": LONG_KIND}})
    assert r.status_code == 422 and _fields(r) == ["trigger.event"]
    # The longest allowed kind is stored and decided on.
    ok = {"customer_id": "ann", "event": "e" * KIND_MAX, "timestamp": T}
    assert service.post("/v1/events", {"events": [ok]}, scope="ingest").json()["accepted"] == 1
    r = service.post("/v1/decisions", {**proposal, "trigger": {"event": "e" * KIND_MAX}})
    assert r.status_code == 200 and r.json()["verdict"] == "allow"


def test_a_policy_name_or_version_too_long_for_the_audit_log_is_a_policy_error(
    service: Service,
) -> None:
    for text, field in [
        (f"name: x\nversion: '{'9' * (VERSION_MAX + 1)}'\nextends: [courtesy]\n", "version"),
        (f"name: {'n' * (NAME_MAX + 1)}\nversion: '1'\nextends: [courtesy]\n", "name"),
    ]:
        r = service.client.put("/v1/policy", json={"text": text}, headers=service.auth("admin"))
        assert r.status_code == 422, r.text
        assert _fields(r) == [field]
    assert service.get("/v1/policy").json()["name"] == "courtesy"


def test_segment_sendgrid_and_twilio_refuse_names_and_ids_too_long(service: Service) -> None:
    track = {"userId": "ann", "event": "E" * (KIND_MAX + 1), "timestamp": T}
    r = service.post("/v1/track", track, scope="ingest")
    assert r.status_code == 400 and _fields(r) == ["event"]
    for key in ("messageId", "userId", "anonymousId"):
        r = service.post("/v1/track", {**track, "event": "Order Completed", key: LONG_ID}, "ingest")
        assert r.status_code == 400 and _fields(r) == [key], r.text
    event = {"email": "ann@example.com", "event": "unsubscribe", "timestamp": 1700000000}
    r = service.post("/v1/webhooks/sendgrid", [{**event, "sg_event_id": LONG_ID}], scope="ingest")
    assert r.status_code == 200 and [e["field"] for e in r.json()["errors"]] == ["[0].sg_event_id"]
    form = {"From": "+13125550142", "Body": "STOP", "MessageSid": LONG_ID}
    r = service.client.post("/v1/webhooks/twilio", data=form, headers=service.auth("ingest"))
    assert r.status_code == 400 and _fields(r) == ["MessageSid"]
    assert service.get("/v1/customers/ann").status_code == 404  # nothing stored
