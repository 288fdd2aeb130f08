"""Text with the NUL character (U+0000), which PostgreSQL cannot store, is refused at every
way in with the field named, on both stores alike, and nothing is written (it was a 500
on PostgreSQL after SQLite had stored it)."""

from __future__ import annotations

import pytest

from tactful.text import NUL_MESSAGE, nul_path
from tests.service.conftest import Service

T = "2026-11-24T14:02:00Z"
PROPOSAL = {"customer_id": "ann", "channel": "email", "purpose": "marketing"}

#: (method, path, body, the field the answer names)
BODIES = [
    ("POST", "/v1/decisions", {**PROPOSAL, "customer_id": "a\x00b"}, "customer_id"),
    ("POST", "/v1/decisions", {**PROPOSAL, "campaign": "c\x00"}, "campaign"),
    ("POST", "/v1/decisions", {**PROPOSAL, "idempotency_key": "k\x00"}, "idempotency_key"),
    ("POST", "/v1/decisions", {**PROPOSAL, "content": {"subject": "hi\x00"}}, "content.subject"),
    ("POST", "/v1/decisions", {**PROPOSAL, "tags": {"account": "x\x00"}}, "tags"),
    (
        "POST",
        "/v1/decisions/batch",
        {"proposals": [PROPOSAL, {**PROPOSAL, "customer_id": "b\x00"}]},
        "proposals.1.customer_id",
    ),
    (
        "POST",
        "/v1/events",
        {
            "events": [
                {
                    "customer_id": "ann",
                    "event": "page_viewed",
                    "timestamp": T,
                    "properties": {"note": "x\x00"},
                }
            ]
        },
        "EventsIn.events.0.properties",
    ),
    ("PUT", "/v1/policy", {"text": "name: x\x00\nversion: 1\nrules: []\n"}, "text"),
    ("POST", "/v1/customers/ann/merge", {"ids": ["b\x00"]}, "ids"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BODIES)
def test_a_body_with_a_nul_is_refused_naming_the_field(
    service: Service, method: str, path: str, body: dict[str, object], field: str
) -> None:
    r = service.client.request(method, path, json=body, headers=service.auth("admin"))
    assert r.status_code == 422, r.text
    problems = r.json()["detail"]
    assert any(p["field"] == field and NUL_MESSAGE in p["message"] for p in problems), problems
    if field.endswith("properties"):
        assert any("(at note)" in p["message"] for p in problems)
    assert service.get("/v1/audit").json()["entries"] == []
    assert service.get("/v1/customers/ann").status_code == 404


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/customers/a%00b", "path.customer_id"),
        ("/v1/audit?customer_id=a%00b", "query.customer_id"),
    ],
)
def test_a_path_or_query_parameter_with_a_nul_is_refused(
    service: Service, path: str, field: str
) -> None:
    r = service.get(path)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0] == {"field": field, "message": NUL_MESSAGE, "type": "nul"}


def test_segment_sendgrid_and_twilio_refuse_a_nul_with_its_place(service: Service) -> None:
    track = {
        "userId": "ann",
        "event": "Order Completed",
        "timestamp": T,
        "properties": {"k": "v\x00"},
    }
    r = service.post("/v1/track", track, scope="ingest")
    assert r.status_code == 400, r.text
    assert r.json()["detail"]["field"] == "properties.k"
    good = {"type": "track", "userId": "ann", "event": "Order Completed", "timestamp": T}
    batch = {"batch": [good, {**good, "userId": "b\x00"}]}
    r = service.post("/v1/batch", batch, scope="ingest")
    assert r.status_code == 200, r.text  # the good message is taken, the other named
    assert r.json()["accepted"] == 1
    assert [e["field"] for e in r.json()["errors"]] == ["batch[1].userId"]
    event = {"email": "ann@example.com", "event": "unsubscribe", "timestamp": 1700000000}
    r = service.post("/v1/webhooks/sendgrid", [{**event, "reason": "no\x00"}], scope="ingest")
    assert r.status_code == 200 and r.json()["accepted"] == 0
    assert [e["field"] for e in r.json()["errors"]] == ["[0].reason"]
    form = {"From": "+13125550142", "Body": "STOP\x00", "MessageSid": "SM1"}
    r = service.client.post("/v1/webhooks/twilio", data=form, headers=service.auth("ingest"))
    assert r.status_code == 400 and r.json()["detail"]["field"] == "Body"


def test_an_audience_id_with_a_nul_is_refused_with_its_line(service: Service) -> None:
    body = '{"channel": "email", "purpose": "marketing"}\nann\n"b\\u0000"\n'
    r = service.client.post(
        "/v1/audiences/check",
        content=body.encode(),
        headers={**service.auth("decide"), "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [{"line": 3, "field": "customer_id", "message": NUL_MESSAGE}]


def test_nul_path_names_the_first_place() -> None:
    assert nul_path("ok") is None and nul_path("a\x00") == ""
    assert nul_path({"a": [1, {"b": "x\x00"}]}) == "a[1].b"
    assert nul_path({"k\x00": 1}) == "k\x00"
    assert nul_path([None, 3, ("y", "z\x00")]) == "[2][1]"
