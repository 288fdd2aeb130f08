"""SendGrid Event Webhook payloads -> tactful events and outcomes; the signed webhook."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tactful import CustomerProfile, CustomerState, Outcome
from tactful.ingest import IngestError, translate_sendgrid, verify_sendgrid_signature
from tactful.ingest.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
TS = 1795550000  # 2026-11-24T19:53:20Z


def sg(event: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": "ann@example.com",
        "timestamp": TS,
        "event": event,
        "sg_event_id": f"evt-{event}",
        "sg_message_id": "msg-1.filter0001",
        **extra,
    }


def one(item: dict[str, Any], **kw: Any) -> Any:
    batch = translate_sendgrid([item], NOW, **kw)
    assert batch.errors == ()
    (record,) = batch.events
    return record


# -- mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "kind", "outcome"),
    [
        ("processed", None, None),
        ("deferred", None, None),
        ("dropped", None, None),
        ("delivered", None, Outcome.DELIVERED),
        ("bounce", None, Outcome.BOUNCED),
        ("open", "email_opened", None),
        ("click", "email_clicked", None),
        ("spamreport", "complained", Outcome.COMPLAINED),
        ("unsubscribe", "unsubscribed", Outcome.UNSUBSCRIBED),
        ("group_unsubscribe", "unsubscribed", Outcome.UNSUBSCRIBED),
        ("group_resubscribe", "subscribed", None),
        ("account_status_change", None, None),  # unknown types are kept, unmapped
    ],
)
def test_event_mapping(event: str, kind: str | None, outcome: Outcome | None) -> None:
    record = one(sg(event, asm_group_id=7))
    assert record.type == event
    assert record.kind == kind
    assert record.outcome == outcome
    assert record.properties["sendgrid_event"] == event
    assert record.properties["sg_message_id"] == "msg-1.filter0001"
    made = record.event("ann")
    assert (made is None) == (kind is None)
    if made is not None:
        assert made.kind == kind and type(made.kind) is str


def test_global_unsubscribe_is_every_email() -> None:
    event = one(sg("unsubscribe")).event("ann")
    assert event.properties["channel"] == "email"
    assert "purpose" not in event.properties
    state = CustomerState(CustomerProfile("ann"), [event])
    assert state.optout_covering("email", "marketing") is not None
    assert state.optout_covering("email", "transactional") is not None
    assert state.optout_covering("sms", "marketing") is None


def test_group_unsubscribe_uses_the_group_purpose() -> None:
    purposes = {42: "sales", 7: "marketing"}
    sales = one(sg("group_unsubscribe", asm_group_id=42), group_purposes=purposes)
    assert sales.properties["channel"] == "email"
    assert sales.properties["purpose"] == "sales"
    unknown = one(sg("group_unsubscribe", asm_group_id=99), group_purposes=purposes)
    assert unknown.properties["purpose"] == "marketing"
    other_default = one(sg("group_unsubscribe", asm_group_id="99"), default_purpose="service")
    assert other_default.properties["purpose"] == "service"
    assert other_default.properties["asm_group_id"] == 99


def test_group_resubscribe_lifts_only_that_group() -> None:
    purposes = {42: "sales"}
    out = one(sg("group_unsubscribe", asm_group_id=42), group_purposes=purposes).event("ann")
    global_out = one(sg("unsubscribe", sg_event_id="g")).event("ann")
    back = one(
        sg("group_resubscribe", asm_group_id=42, timestamp=TS + 60), group_purposes=purposes
    ).event("ann")
    assert back.kind == "subscribed"
    assert (back.properties["channel"], back.properties["purpose"]) == ("email", "sales")
    state = CustomerState(CustomerProfile("ann"), [out, back])
    assert state.optout_covering("email", "sales") is None
    state = CustomerState(CustomerProfile("ann"), [global_out, out, back])
    assert state.optout_covering("email", "sales") is not None  # the global one stays


def test_spam_report_stops_marketing_email() -> None:
    event = one(sg("spamreport")).event("ann")
    assert (event.properties["channel"], event.properties["purpose"]) == ("email", "marketing")
    state = CustomerState(CustomerProfile("ann"), [event])
    assert state.optout_covering("email", "marketing") is not None
    assert state.optout_covering("email", "transactional") is None


def test_useful_details_are_kept() -> None:
    click = one(sg("click", url="https://example.com/a", category=["promo", "weekly"]))
    assert click.properties["url"] == "https://example.com/a"
    assert click.properties["category"] == ["promo", "weekly"]
    opened = one(sg("open", sg_machine_open=True))
    assert opened.properties["machine_open"] is True
    bounce = one(sg("bounce", type="blocked", bounce_classification="Reputation"))
    assert bounce.properties["bounce_type"] == "blocked"
    assert bounce.properties["bounce_classification"] == "Reputation"
    dropped = one(sg("dropped", reason="Bounced Address"))
    assert dropped.properties["reason"] == "Bounced Address"


# -- customers, decisions, ids, time ---------------------------------------------------------


def test_custom_args_name_the_customer_and_the_decision() -> None:
    record = one(sg("delivered", customer_id="cust-9", decision_id="dec-1"))
    assert record.customer_id == "cust-9"
    assert record.decision_id == "dec-1"
    assert record.properties["decision_id"] == "dec-1"
    nested = one(sg("delivered", unique_args={"customer_id": "cust-8", "decision_id": "dec-2"}))
    assert (nested.customer_id, nested.decision_id) == ("cust-8", "dec-2")
    renamed = one(sg("delivered", tactful_id="cust-7"), customer_arg="tactful_id")
    assert renamed.customer_id == "cust-7"


def test_without_a_customer_arg_the_email_is_returned_normalised() -> None:
    record = one(sg("unsubscribe", email="  Ann@Example.COM "))
    assert record.customer_id is None
    assert record.email == "ann@example.com"
    with pytest.raises(ValueError, match="resolve"):
        record.event()
    assert record.event("ann").customer_id == "ann"


def test_custom_arg_customer_is_used_by_default() -> None:
    record = one(sg("unsubscribe", customer_id="cust-9"))
    assert record.event().customer_id == "cust-9"
    assert record.event("override").customer_id == "override"


def test_sg_event_id_is_the_dedup_id() -> None:
    first = one(sg("unsubscribe")).event("ann")
    retry = one(sg("unsubscribe")).event("ann")
    assert first.event_id == "evt-unsubscribe"
    state = CustomerState(CustomerProfile("ann"))
    assert state.add_event(first) is True
    assert state.add_event(retry) is False


def test_missing_sg_event_id_gets_a_stable_content_id() -> None:
    item = sg("open")
    del item["sg_event_id"]
    a, b = one(item), one(dict(item))
    assert a.event_id == b.event_id
    assert a.event_id.startswith("sendgrid-")


def test_unix_seconds_timestamps() -> None:
    assert one(sg("open")).at == datetime(2026, 11, 24, 19, 53, 20, tzinfo=UTC)
    assert one(sg("open", timestamp=TS + 0.5)).at == datetime(
        2026, 11, 24, 19, 53, 20, 500000, tzinfo=UTC
    )
    assert one(sg("open", timestamp=str(TS))).at == datetime(2026, 11, 24, 19, 53, 20, tzinfo=UTC)
    # Never dated after it arrived.
    assert one(sg("open", timestamp=NOW.timestamp() + 3600)).at == NOW


# -- validation ------------------------------------------------------------------------------


def test_bad_events_are_reported_by_index_and_the_rest_kept() -> None:
    payload = [
        sg("delivered"),
        sg("open", timestamp="2026-11-24T19:00:00Z"),
        "nope",
        sg("click", email="not-an-address"),
        {"timestamp": TS, "email": "a@b.co"},
        sg("unsubscribe", email=None),
        sg("group_unsubscribe", asm_group_id="sales"),
        sg("open", timestamp=True),
        sg("spamreport", customer_id=["x"]),
        sg("bounce"),
    ]
    batch = translate_sendgrid(payload, NOW)
    assert [r.index for r in batch.events] == [0, 9]
    assert [(e.index, e.field) for e in batch.errors] == [
        (1, "[1].timestamp"),
        (2, "[2]"),
        (3, "[3].email"),
        (4, "[4].event"),
        (5, "[5].email"),
        (6, "[6].asm_group_id"),
        (7, "[7].timestamp"),
        (8, "[8].customer_id"),
    ]
    assert str(batch.errors[0]).startswith("[1].timestamp: not a unix time in seconds")


def test_unmapped_events_need_no_customer() -> None:
    record = one({"event": "account_status_change", "timestamp": TS, "type": "compliance_suspend"})
    assert record.kind is None and record.email is None


@pytest.mark.parametrize(("body", "field"), [(b"{", "body"), (b'{"event": "open"}', "body")])
def test_bad_bodies_raise(body: bytes, field: str) -> None:
    with pytest.raises(IngestError) as info:
        translate_sendgrid(body, NOW)
    assert info.value.field == field


def test_raw_json_body() -> None:
    batch = translate_sendgrid(json.dumps([sg("delivered")]).encode(), NOW)
    assert batch.events[0].outcome is Outcome.DELIVERED


# -- signed event webhook --------------------------------------------------------------------

pytest.importorskip("cryptography")

# SendGrid's published test vector (sendgrid-python, test/unit/test_eventwebhook.py).
VECTOR_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw"
    "+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
VECTOR_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEA"
    "yBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
VECTOR_TIMESTAMP = "1600112502"
VECTOR_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": (
                    "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
                ),
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()
OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo"
    "7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)


def test_header_names() -> None:
    assert SIGNATURE_HEADER == "X-Twilio-Email-Event-Webhook-Signature"
    assert TIMESTAMP_HEADER == "X-Twilio-Email-Event-Webhook-Timestamp"


def test_sendgrid_published_vector_verifies() -> None:
    assert verify_sendgrid_signature(VECTOR_KEY, VECTOR_PAYLOAD, VECTOR_SIGNATURE, VECTOR_TIMESTAMP)
    # and the verified body translates
    (record,) = translate_sendgrid(VECTOR_PAYLOAD, NOW).events
    assert record.type == "dropped" and record.email == "hello@world.com"


@pytest.mark.parametrize(
    ("key", "payload", "signature", "timestamp"),
    [
        (OTHER_KEY, VECTOR_PAYLOAD, VECTOR_SIGNATURE, VECTOR_TIMESTAMP),
        (VECTOR_KEY, b"payload", VECTOR_SIGNATURE, VECTOR_TIMESTAMP),
        (VECTOR_KEY, VECTOR_PAYLOAD.rstrip(), VECTOR_SIGNATURE, VECTOR_TIMESTAMP),
        (VECTOR_KEY, VECTOR_PAYLOAD, VECTOR_SIGNATURE, "1600112503"),
        (VECTOR_KEY, VECTOR_PAYLOAD, VECTOR_SIGNATURE, "timestamp"),
        (
            VECTOR_KEY,
            VECTOR_PAYLOAD,
            "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=",
            VECTOR_TIMESTAMP,
        ),
        (VECTOR_KEY, VECTOR_PAYLOAD, "not base64!", VECTOR_TIMESTAMP),
        (VECTOR_KEY, VECTOR_PAYLOAD, base64.b64encode(b"garbage").decode(), VECTOR_TIMESTAMP),
        (VECTOR_KEY, VECTOR_PAYLOAD, "", VECTOR_TIMESTAMP),
    ],
)
def test_tampering_fails_verification(
    key: str, payload: bytes, signature: str, timestamp: str
) -> None:
    assert not verify_sendgrid_signature(key, payload, signature, timestamp)


def test_pem_keys_and_our_own_signatures() -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    body = json.dumps([sg("unsubscribe")]).encode()
    timestamp = "1795550000"
    signature = base64.b64encode(
        private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    ).decode()
    assert verify_sendgrid_signature(pem, body, signature, timestamp)
    assert not verify_sendgrid_signature(pem, body + b" ", signature, timestamp)


@pytest.mark.parametrize("key", ["", "bm90IGEga2V5", "-----BEGIN PUBLIC KEY-----\nxx\n"])
def test_unusable_keys_are_a_configuration_error(key: str) -> None:
    with pytest.raises(ValueError, match="verification key"):
        verify_sendgrid_signature(key, VECTOR_PAYLOAD, VECTOR_SIGNATURE, VECTOR_TIMESTAMP)
