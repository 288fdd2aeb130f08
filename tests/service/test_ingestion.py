"""Real ingestion formats through the HTTP API: Segment (with Segment's own SDK against a
running server), SendGrid's Event Webhook and Twilio inbound SMS."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tactful.ingest import compute_twilio_signature
from tests.service.conftest import Service
from tests.service.server import Server, create_key


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def test_segment_sdk_unmodified_against_a_running_server(store_url: str, tmp_path: Path) -> None:
    analytics = pytest.importorskip("segment.analytics")
    key = create_key(store_url, "ingest", "decide", "read")
    with Server(store_url, log=tmp_path / "server.log") as server:
        client = analytics.Client(write_key=key, host=server.base, sync_mode=True, max_retries=1)
        client.identify(
            "sdk-user", {"phone": "+1 312 555 0142"}, context={"timezone": "America/Chicago"}
        )
        client.track("sdk-user", "Checkout Started", {"order_id": "o-1"})
        client.flush()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=10) as c:
            profile = c.get("/v1/customers/sdk-user").json()["profile"]
            assert profile["timezone"] == "America/Chicago" and profile["phones"] == [
                "+13125550142"
            ]
            d = c.post(
                "/v1/decisions",
                json={"customer_id": "sdk-user", "channel": "email", "purpose": "sales"},
            ).json()
            assert d["verdict"] == "defer" and "checkout-open" in {r["rule"] for r in d["reasons"]}


def test_segment_batch_partial_acceptance_and_write_key_auth(service: Service) -> None:
    now = service.clock()
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "timestamp": now.isoformat(),
                "messageId": "a",
            },
            {
                "type": "track",
                "userId": "u1",
                "event": "Product Viewed",
                "timestamp": "not a time",
                "messageId": "b",
            },
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "timestamp": now.isoformat(),
                "messageId": "a",
            },
        ]
    }
    r = service.client.post("/v1/batch", json=body, headers=basic(service.keys["ingest"]))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] == 1 and out["messages"] == 2
    assert out["errors"][0]["field"].startswith("batch[1].timestamp")
    assert service.client.post("/v1/batch", json=body, headers=basic("tk_nope")).status_code == 401
    assert (
        service.client.post("/v1/batch", json=body, headers=basic(service.keys["read"])).status_code
        == 403
    )
    assert (
        service.client.post(
            "/v1/batch", content=b"{nope", headers=basic(service.keys["ingest"])
        ).status_code
        == 400
    )


def test_sendgrid_unsubscribe_by_address_suppresses_marketing_email(service: Service) -> None:
    service.client.patch(
        "/v1/customers/ann", json={"emails": ["Ann@Example.com"]}, headers=service.auth()
    )
    ts = int(service.clock().timestamp()) - 60
    payload = [
        {
            "email": "ann@example.com",
            "timestamp": ts,
            "event": "unsubscribe",
            "sg_event_id": "e1",
            "sg_message_id": "m1",
        },
        {
            "email": "stranger@example.com",
            "timestamp": ts,
            "event": "spamreport",
            "sg_event_id": "e2",
            "sg_message_id": "m2",
        },
    ]
    r = service.post("/v1/webhooks/sendgrid", payload, scope="ingest")
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 2
    d = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "email", "purpose": "marketing"}
    ).json()
    assert d["verdict"] == "deny"
    # Replaying the webhook writes nothing twice.
    assert service.post("/v1/webhooks/sendgrid", payload, scope="ingest").json()["accepted"] == 0


def test_sendgrid_outcome_updates_the_decision(service: Service) -> None:
    d = service.post(
        "/v1/decisions", {"customer_id": "bo", "channel": "email", "purpose": "marketing"}
    ).json()
    payload = [
        {
            "email": "bo@example.com",
            "timestamp": int(service.clock().timestamp()),
            "event": "bounce",
            "sg_event_id": "e9",
            "customer_id": "bo",
            "decision_id": d["decision_id"],
        }
    ]
    assert service.post("/v1/webhooks/sendgrid", payload, scope="ingest").json()["outcomes"] == 1
    contact = service.get("/v1/customers/bo").json()["contacts"][0]
    assert contact["outcome"] == "bounced"


@pytest.mark.parametrize("text", ["STOP", " stop! ", "Unsubscribe.", "stopall"])
def test_twilio_stop_keywords_suppress_sms_and_the_reply_is_empty(
    service: Service, text: str
) -> None:
    service.client.patch(
        "/v1/customers/ann",
        json={"phones": ["+1 312 555 0142"], "timezone": "America/Chicago"},
        headers=service.auth(),
    )
    form = {
        "From": "+13125550142",
        "To": "+18005550100",
        "Body": text,
        "MessageSid": f"SM{abs(hash(text))}",
    }
    r = service.client.post("/v1/webhooks/twilio", data=form, headers=service.auth("ingest"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    d = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "sms", "purpose": "marketing"}
    ).json()
    assert d["verdict"] == "deny" and d["reasons"][0]["rule"] == "opt-out"


def test_twilio_non_keyword_is_a_reply_not_an_opt_out(service: Service) -> None:
    service.client.patch(
        "/v1/customers/ann", json={"phones": ["+13125550142"]}, headers=service.auth()
    )
    form = {"From": "+13125550142", "Body": "please don't stop, I like these", "MessageSid": "SM1"}
    assert (
        service.client.post(
            "/v1/webhooks/twilio", data=form, headers=service.auth("ingest")
        ).status_code
        == 200
    )
    d = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "sms", "purpose": "service"}
    ).json()
    assert d["verdict"] != "deny"


def test_twilio_signature_is_accepted_without_a_key_and_forgeries_are_not(service: Service) -> None:
    service.runtime.settings.twilio_auth_token = "secret-token"
    url = "https://prefs.example.com/v1/webhooks/twilio"
    form = {"From": "+13125550199", "Body": "STOP", "MessageSid": "SM77"}
    good = compute_twilio_signature("secret-token", url, form)
    r = service.client.post("/v1/webhooks/twilio", data=form, headers={"X-Twilio-Signature": good})
    assert r.status_code == 200
    bad = service.client.post(
        "/v1/webhooks/twilio", data=form, headers={"X-Twilio-Signature": "AAAA"}
    )
    assert bad.status_code == 401
    # The unknown number now belongs to a customer record that keeps its opt-out, under
    # an id derived from the number's keyed hash (never the number itself).
    [holder] = service.store.customers_with_address("phone", "+13125550199")
    assert holder.startswith("addr:phone:") and "3125550199" not in holder
    assert service.get(f"/v1/customers/{holder}").json()["opt_outs"]
