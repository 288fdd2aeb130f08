"""Identity stories through the HTTP API, on SQLite and PostgreSQL: one customer across
ids and addresses, and suppression that survives duplicate records (S21)."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.conftest import CHICAGO
from tests.service.conftest import Service

STOP_NUMBER = "+1 312 555 0142"
E164 = "+13125550142"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def segment(service: Service, call: str, body: dict[str, object]) -> None:
    r = service.client.post(f"/v1/{call}", json=body, headers=basic(service.keys["ingest"]))
    assert r.status_code == 200, r.text


def patch(service: Service, customer_id: str, **profile: object) -> None:
    r = service.client.patch(f"/v1/customers/{customer_id}", json=profile, headers=service.auth())
    assert r.status_code == 200, r.text


def decide(service: Service, **proposal: object) -> dict[str, object]:
    r = service.post("/v1/decisions", proposal)
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def rules(decision: dict[str, object]) -> list[str]:
    return [str(r["rule"]) for r in decision["reasons"]]  # type: ignore[attr-defined,index]


def twilio(service: Service, sender: str, body: str, sid: str) -> None:
    form = {"From": sender, "To": "+13125550000", "Body": body, "MessageSid": sid}
    r = service.client.post("/v1/webhooks/twilio", data=form, headers=service.auth("ingest"))
    assert r.status_code == 200, r.text


def iso(when: datetime) -> str:
    return when.isoformat()


# -- aliases: browsing before sign-in counts ---------------------------------------------


def test_anonymous_checkout_then_identify_defers_a_sales_call_for_the_user_id(
    service: Service,
) -> None:
    now = service.clock()
    segment(
        service,
        "page",
        {
            "anonymousId": "anon-7f3",
            "name": "Pricing",
            "timestamp": iso(now - timedelta(minutes=6)),
        },
    )
    segment(
        service,
        "track",
        {
            "anonymousId": "anon-7f3",
            "event": "Checkout Started",
            "timestamp": iso(now - timedelta(minutes=2)),
        },
    )
    segment(
        service,
        "identify",
        {
            "anonymousId": "anon-7f3",
            "userId": "user-1042",
            "traits": {"phone": STOP_NUMBER},
            "context": {"timezone": "America/Chicago"},
            "timestamp": iso(now - timedelta(minutes=1)),
        },
    )
    d = decide(service, customer_id="user-1042", channel="call", purpose="sales")
    assert d["verdict"] == "defer", d
    assert datetime.fromisoformat(str(d["not_before"])) >= now - timedelta(minutes=2) + timedelta(
        minutes=60
    )
    # The same visitor whichever id is named; the identity log says how they were joined.
    ident = service.get("/v1/customers/user-1042/identity").json()
    assert ident["canonical_id"] == "anon-7f3"
    assert ident["aliases"] == ["user-1042"]
    assert [m["via"] for m in ident["merges"]] == ["segment-identify"]
    customer = service.get("/v1/customers/user-1042").json()
    assert customer["canonical_id"] == "anon-7f3"
    assert customer["events"] >= 2
    # A visitor with no such history is not held back.
    patch(service, "user-2000", timezone="America/Chicago")
    assert decide(service, customer_id="user-2000", channel="call", purpose="sales")["verdict"] == (
        "allow"
    )


def test_segment_alias_joins_histories_and_both_ids_share_caps(service: Service) -> None:
    patch(service, "lead-9", timezone="America/Chicago")
    patch(service, "cust-9", timezone="America/Chicago")
    first = decide(service, customer_id="lead-9", channel="call", purpose="sales")
    assert first["verdict"] == "allow"
    assert service.post(f"/v1/decisions/{first['decision_id']}/sent").status_code == 200
    segment(
        service,
        "alias",
        {"previousId": "lead-9", "userId": "cust-9", "timestamp": iso(service.clock())},
    )
    service.clock.advance(hours=2)
    again = decide(service, customer_id="cust-9", channel="call", purpose="sales")
    assert again["verdict"] == "defer"
    assert "call-gap" in rules(again) or again["not_before"] is not None


# -- S21: suppression survives duplicate records ----------------------------------------


def test_s21_stop_by_sms_suppresses_a_new_record_of_another_team_for_sms_and_calls(
    service: Service,
) -> None:
    patch(service, "ann", phones=[STOP_NUMBER], timezone="America/Chicago")
    twilio(service, E164, "STOP", "SM0001")
    # Another team creates its own record of the same person, with the number spelled its way.
    patch(service, "sales-crm-5531", phones=["+1 (312) 555-0142"], timezone="America/Chicago")
    sms = decide(service, customer_id="sales-crm-5531", channel="sms", purpose="marketing")
    call = decide(service, customer_id="sales-crm-5531", channel="call", purpose="sales")
    for d in (sms, call):
        assert d["verdict"] == "deny", d
        assert rules(d) == ["address-suppressed"]
        reason = d["reasons"][0]  # type: ignore[index]
        assert reason["kind"] == "consent"
        assert "phone number" in reason["message"] and "sms" in reason["message"]
        assert "0142" not in reason["message"]
    # The denial is in the audit log like any other.
    logged = service.get("/v1/audit", params={"customer_id": "sales-crm-5531"}).json()
    assert [e["verdict"] for e in logged["entries"]] == ["deny", "deny"]
    # Email is not the number's channel: still allowed.
    patch(service, "sales-crm-5531", emails=["ann@example.com"])
    email = decide(service, customer_id="sales-crm-5531", channel="email", purpose="service")
    assert email["verdict"] == "allow"


def test_next_allowed_answers_as_a_decision_would_for_a_suppressed_number(
    service: Service,
) -> None:
    patch(service, "ann", phones=[STOP_NUMBER], timezone="America/Chicago")
    twilio(service, E164, "STOP", "SM0005")
    patch(service, "crm-9", phones=["+1 (312) 555-0142"], timezone="America/Chicago")
    for channel, purpose in (("sms", "marketing"), ("call", "sales")):
        nxt = service.get(
            "/v1/customers/crm-9/next", params={"channel": channel, "purpose": purpose}
        ).json()
        assert nxt["verdict_now"] == "deny" and nxt["next_allowed"] is None, nxt
        assert [r["rule"] for r in nxt["reasons"]] == ["address-suppressed"]
        assert (
            nxt["verdict_now"]
            == decide(service, customer_id="crm-9", channel=channel, purpose=purpose)["verdict"]
        )
    email = service.get(
        "/v1/customers/crm-9/next", params={"channel": "email", "purpose": "service"}
    ).json()
    assert email["verdict_now"] == "allow"


def test_s21_stop_from_an_unknown_number_follows_it_into_the_record_created_later(
    service: Service,
) -> None:
    twilio(service, "+13125550199", "STOP", "SM0002")
    patch(service, "crm-77", phones=["+13125550199"], timezone="America/Chicago")
    d = decide(service, customer_id="crm-77", channel="sms", purpose="marketing")
    assert d["verdict"] == "deny"
    # The number's own history (its STOP) joined the record that now holds it.
    customer = service.get("/v1/customers/crm-77").json()
    assert customer["canonical_id"] == "crm-77"
    assert len(customer["aliases"]) == 1 and customer["aliases"][0].startswith("addr:phone:")
    # The alias names the number by its keyed digest only (a digest may hold "0199" by chance,
    # so the whole number is what must be absent).
    assert "3125550199" not in customer["aliases"][0]
    assert re.fullmatch(r"addr:phone:[0-9a-f]+", customer["aliases"][0])


def test_start_from_the_number_lifts_the_address_suppression(service: Service) -> None:
    patch(service, "ann", phones=[STOP_NUMBER], timezone="America/Chicago")
    patch(service, "crm-2", phones=[STOP_NUMBER], timezone="America/Chicago")
    twilio(service, E164, "STOP", "SM0003")
    assert decide(service, customer_id="crm-2", channel="sms", purpose="service")["verdict"] == (
        "deny"
    )
    service.clock.advance(minutes=5)
    twilio(service, E164, "START", "SM0004")
    d = decide(service, customer_id="crm-2", channel="sms", purpose="service")
    assert d["verdict"] == "allow", d


def test_sendgrid_unsubscribe_suppresses_marketing_email_to_a_record_in_other_letter_case(
    service: Service,
) -> None:
    patch(service, "ann", emails=["ann@example.com"])
    ts = int(service.clock().timestamp()) - 60
    payload = [
        {
            "email": "ann@example.com",
            "timestamp": ts,
            "event": "unsubscribe",
            "sg_event_id": "e1",
            "sg_message_id": "m1",
        }
    ]
    r = service.post("/v1/webhooks/sendgrid", payload, scope="ingest")
    assert r.status_code == 200, r.text
    patch(service, "newsletter-381", emails=["ANN@Example.COM"], timezone="America/Chicago")
    d = decide(service, customer_id="newsletter-381", channel="email", purpose="marketing")
    assert d["verdict"] == "deny"
    assert rules(d) == ["address-suppressed"]
    assert "email address" in d["reasons"][0]["message"]  # type: ignore[index]
    # The phone channels are not the email address's.
    patch(service, "newsletter-381", phones=["+13125550177"])
    sms = decide(service, customer_id="newsletter-381", channel="sms", purpose="service")
    assert sms["verdict"] == "allow"


# -- merges: two CRM records, one cap -----------------------------------------------------


def test_two_crm_records_merged_share_one_cap(service: Service) -> None:
    patch(service, "crm-a", timezone="America/Chicago", emails=["bo@example.com"])
    patch(service, "crm-b", timezone="America/Chicago")
    a = decide(service, customer_id="crm-a", channel="email", purpose="marketing")
    b = decide(service, customer_id="crm-b", channel="email", purpose="marketing")
    assert a["verdict"] == b["verdict"] == "allow"  # two records, two ledgers: both allowed
    for d in (a, b):
        assert service.post(f"/v1/decisions/{d['decision_id']}/sent").status_code == 200

    r = service.client.post(
        "/v1/customers/crm-b/merge",
        json={"ids": ["crm-a"], "reference": "dedup-7"},
        headers=service.auth("admin"),
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert merged["canonical_id"] == "crm-a"
    assert merged["merged"] == ["crm-b"]
    assert [(m["via"], m["reference"]) for m in merged["merges"]] == [("api", "dedup-7")]
    # Idempotent: asking again joins nothing and logs nothing.
    again = service.client.post(
        "/v1/customers/crm-a/merge", json={"ids": ["crm-b"]}, headers=service.auth("admin")
    ).json()
    assert again["merged"] == [] and len(again["merges"]) == 1

    customer = service.get("/v1/customers/crm-b").json()
    assert customer["canonical_id"] == "crm-a" and customer["aliases"] == ["crm-b"]
    assert len(customer["contacts"]) == 2
    assert customer["profile"]["emails"] == ["bo@example.com"]
    # Two marketing emails already went to this one person: 20 h apart at least.
    service.clock.advance(hours=1)
    d = decide(service, customer_id="crm-b", channel="email", purpose="marketing")
    assert d["verdict"] == "defer"
    service.clock.advance(hours=21)
    third = decide(service, customer_id="crm-a", channel="email", purpose="marketing")
    assert third["verdict"] == "allow"
    assert service.post(f"/v1/decisions/{third['decision_id']}/sent").status_code == 200
    service.clock.advance(hours=21)
    fourth = decide(service, customer_id="crm-b", channel="email", purpose="marketing")
    assert fourth["verdict"] != "allow"  # 3 per rolling 7 days, counted across both records


def test_merge_needs_admin_and_names_bad_fields(service: Service) -> None:
    r = service.client.post(
        "/v1/customers/x/merge", json={"ids": ["y"]}, headers=service.auth("ingest")
    )
    assert r.status_code == 403
    r = service.client.post("/v1/customers/x/merge", json={"ids": []}, headers=service.auth())
    assert r.status_code == 422 and "ids" in r.text


# -- cold outreach: a proposal to an address nobody knows ----------------------------------


def test_cold_call_to_a_number_that_said_stop_is_denied(service: Service) -> None:
    twilio(service, "+13125550188", "STOP", "SM0005")
    d = decide(service, to="+1 312-555-0188", channel="call", purpose="sales")
    assert d["verdict"] == "deny"
    assert rules(d) == ["address-suppressed"]


def test_cold_call_at_8_local_in_one_of_the_numbers_zones_is_deferred(service: Service) -> None:
    # +1 208 555 0100 (Idaho) may ring in Boise (Mountain) or in the north (Pacific).
    pacific = ZoneInfo("America/Los_Angeles")
    service.clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=pacific))
    d = decide(service, to="+12085550100", channel="call", purpose="sales")
    assert d["verdict"] == "defer", d
    assert datetime.fromisoformat(str(d["not_before"])) == datetime(
        2026, 11, 24, 9, 0, tzinfo=pacific
    )


def test_cold_outreach_counts_caps_of_contacts_to_the_address(service: Service) -> None:
    service.clock.set(datetime(2026, 11, 24, 11, 0, tzinfo=CHICAGO))
    verdicts = []
    for _ in range(3):
        d = decide(service, to="+13125550166", channel="sms", purpose="marketing")
        verdicts.append(d["verdict"])
        if d["verdict"] == "allow":
            assert service.post(f"/v1/decisions/{d['decision_id']}/sent").status_code == 200
        service.clock.advance(hours=1)
    assert verdicts == ["allow", "allow", "defer"]  # marketing SMS: at most 2 per 7 days
    # The same address in another spelling is the same pseudo customer.
    d = decide(service, to="+1 (312) 555-0166", channel="sms", purpose="marketing")
    assert d["verdict"] == "defer"


def test_proposal_validation_names_the_field(service: Service) -> None:
    r = service.post("/v1/decisions", {"channel": "sms", "purpose": "marketing"})
    assert r.status_code == 422 and "customer_id" in r.text
    r = service.post("/v1/decisions", {"to": "call me", "channel": "sms", "purpose": "marketing"})
    assert r.status_code == 422 and "to" in r.text
    r = service.post("/v1/decisions", {"to": "+1 312", "channel": "sms", "purpose": "marketing"})
    assert r.status_code == 422 and "to" in r.text


def test_a_named_to_is_checked_even_when_the_record_does_not_hold_it(service: Service) -> None:
    patch(service, "ann", emails=["ann@example.com"])
    service.post(
        "/v1/events",
        {
            "events": [
                {
                    "customer_id": "ann",
                    "event": "unsubscribed",
                    "timestamp": iso(service.clock() - timedelta(minutes=1)),
                    "properties": {"channel": "email"},
                }
            ]
        },
        scope="ingest",
    )
    patch(service, "bo", timezone="America/Chicago")
    d = decide(
        service, customer_id="bo", to="Ann@example.com", channel="email", purpose="marketing"
    )
    assert d["verdict"] == "deny" and rules(d) == ["address-suppressed"]
