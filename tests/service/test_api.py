"""The HTTP API end to end, on SQLite and PostgreSQL, with an injected clock."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from tactful.store.sql import SqlStore, customers, decisions, events
from tests.conftest import CHICAGO
from tests.service.conftest import Service


def profile(svc: Service, cid: str = "ann") -> None:
    r = svc.client.patch(
        f"/v1/customers/{cid}",
        json={"timezone": "America/Chicago", "country": "us", "phones": ["+1 312 555 0142"]},
        headers=svc.auth("admin"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["phones"] == ["+13125550142"] and r.json()["country"] == "US"


def email(cid: str = "ann", **kw: object) -> dict[str, object]:
    return {"customer_id": cid, "channel": "email", "purpose": "marketing", **kw}


def test_decide_hold_send_and_the_cap(service: Service) -> None:
    profile(service)
    first = service.post("/v1/decisions", email()).json()
    assert first["verdict"] == "allow" and first["hold_expires"]
    assert first["policy"] == {"name": "courtesy", "version": "1"}
    # The hold counts at once: the 20 h gap defers the next one.
    second = service.post("/v1/decisions", email()).json()
    assert second["verdict"] == "defer"
    assert second["reasons"][0]["rule"] == "marketing-email-gap"
    assert second["not_before"] is not None
    sent = service.post(f"/v1/decisions/{first['decision_id']}/sent").json()
    assert sent["status"] == "sent"
    # Cancelling a sent contact is a conflict; an unknown id is not found.
    assert service.post(f"/v1/decisions/{first['decision_id']}/cancel").status_code == 409
    assert service.post("/v1/decisions/nope/sent").status_code == 404


def test_cancel_releases_the_slot_and_holds_expire(service: Service) -> None:
    first = service.post("/v1/decisions", email()).json()
    assert (
        service.post(f"/v1/decisions/{first['decision_id']}/cancel").json()["status"] == "cancelled"
    )
    assert service.post("/v1/decisions", email()).json()["verdict"] == "allow"
    # That hold is never confirmed: after 15 minutes it stops counting.
    service.clock.advance(minutes=16)
    assert service.post("/v1/decisions", email()).json()["verdict"] == "allow"


def test_idempotency_key_returns_the_first_answer_and_writes_once(service: Service) -> None:
    a = service.post("/v1/decisions", email(idempotency_key="k-1")).json()
    b = service.post("/v1/decisions", email(idempotency_key="k-1")).json()
    assert a["decision_id"] == b["decision_id"] and b["replayed"] is True
    entries = service.get("/v1/audit", params={"customer_id": "ann"}).json()["entries"]
    assert len(entries) == 1


def test_outcomes_feed_back_off_and_unsubscribe(service: Service) -> None:
    profile(service)
    d = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "call", "purpose": "sales"}
    ).json()
    assert d["verdict"] == "allow"
    r = service.post(f"/v1/decisions/{d['decision_id']}/outcome", {"outcome": "no_answer"})
    assert (
        r.status_code == 200 and r.json()["outcome"] == "no_answer" and r.json()["status"] == "sent"
    )
    bad = service.post(f"/v1/decisions/{d['decision_id']}/outcome", {"outcome": "maybe"})
    assert bad.status_code == 422 and "outcome" in bad.text
    e = service.post("/v1/decisions", email()).json()
    service.post(f"/v1/decisions/{e['decision_id']}/outcome", {"outcome": "unsubscribed"})
    service.clock.advance(days=3)
    again = service.post("/v1/decisions", email()).json()
    assert again["verdict"] == "deny" and again["reasons"][0]["rule"] == "opt-out"


def test_batch_gives_the_slot_to_the_highest_priority(service: Service) -> None:
    proposals = [
        email(campaign="low", priority=1),
        email(campaign="high", priority=9),
        email("bob", campaign="other"),
    ]
    out = service.post("/v1/decisions/batch", {"proposals": proposals}).json()["decisions"]
    assert [d["verdict"] for d in out] == ["defer", "allow", "allow"]


def test_events_are_deduplicated_and_shape_decisions(service: Service) -> None:
    profile(service)
    now = service.clock()
    body = {
        "events": [
            {
                "customer_id": "ann",
                "event": "checkout_started",
                "timestamp": (now - timedelta(minutes=2)).isoformat(),
                "messageId": "m-1",
            },
            {
                "customer_id": "ann",
                "event": "checkout_started",
                "timestamp": (now - timedelta(minutes=2)).isoformat(),
                "messageId": "m-1",
            },
        ]
    }
    r = service.post("/v1/events", body, scope="ingest")
    assert r.json() == {"accepted": 1, "duplicates": 1, "errors": []}
    d = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "call", "purpose": "sales"}
    ).json()
    assert d["verdict"] == "defer" and "checkout-open" in {x["rule"] for x in d["reasons"]}
    bad = service.post(
        "/v1/events", {"customer_id": "ann", "event": "x", "timestamp": "yesterday"}, scope="ingest"
    )
    assert bad.status_code == 422 and "timestamp" in bad.text


def test_next_allowed_time_explains_itself(service: Service) -> None:
    profile(service)
    service.clock.set(datetime(2026, 11, 25, 7, 30, tzinfo=CHICAGO))
    r = service.get("/v1/customers/ann/next", params={"channel": "call", "purpose": "sales"}).json()
    assert r["verdict_now"] == "defer"
    assert datetime.fromisoformat(r["next_allowed"]) == datetime(2026, 11, 25, 9, tzinfo=CHICAGO)
    assert r["reasons"][0]["rule"] == "calling-hours"


def test_customer_read_patch_and_erasure_keeps_suppression(service: Service) -> None:
    profile(service)
    earlier = service.clock() - timedelta(hours=2)
    service.post(
        "/v1/events",
        {"customer_id": "ann", "event": "page_viewed", "timestamp": earlier.isoformat()},
        scope="ingest",
    )
    d = service.post("/v1/decisions", email()).json()
    assert d["verdict"] == "allow"
    c = service.get("/v1/customers/ann").json()
    assert c["profile"]["timezone"] == "America/Chicago" and c["events"] == 1
    assert c["erased"] is False
    assert [x["contact_id"] for x in c["contacts"]] == [d["decision_id"]]
    bad = service.client.patch(
        "/v1/customers/ann", json={"timezone": "Mars/Olympus"}, headers=service.auth()
    )
    assert bad.status_code == 422 and "timezone" in bad.text
    # S19: erase, then a campaign targets the same id again.
    assert service.client.delete("/v1/customers/ann", headers=service.auth()).status_code == 204
    assert service.get("/v1/customers/ann").status_code == 404
    winback = email(campaign="winback", content={"subject": "Ann, we miss you"})
    again = service.post("/v1/decisions", winback).json()
    assert again["verdict"] == "deny" and again["reasons"][0]["rule"] == "erased"
    # Logged under the id's keyed hash with the proposal's shape alone: asking about an
    # erased customer writes neither the id nor the message back into the ledger.
    logged = service.get("/v1/audit", params={"rule": "erased"})
    assert logged.status_code == 200, logged.text
    entries = logged.json()["entries"]
    assert [e["decision_id"] for e in entries] == [again["decision_id"]]
    assert entries[0]["customer_id"].startswith("erased:")
    assert entries[0]["campaign"] == "winback"
    assert '"ann"' not in json.dumps(entries)
    assert service.get("/v1/audit", params={"customer_id": "ann"}).json()["entries"] == []
    store = service.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        stored = [conn.execute(select(t)).all() for t in (customers, decisions, events)]
    assert stored[1] and "'ann'" not in repr(stored) and "miss you" not in repr(stored)
    # The denial leaves no customer behind to read, and says why there is none.
    gone = service.get("/v1/customers/ann")
    assert gone.status_code == 404 and "erased on request" in gone.json()["detail"]
    # What is recorded after the erasure is shown, flagged: contacts stay denied.
    service.post(
        "/v1/events",
        {"customer_id": "ann", "event": "page_viewed", "timestamp": service.clock().isoformat()},
        scope="ingest",
    )
    back = service.get("/v1/customers/ann").json()
    assert back["erased"] is True and back["events"] == 1
    assert service.post("/v1/decisions", email(campaign="later")).json()["verdict"] == "deny"
    assert service.get("/v1/customers/bob").status_code == 404


def test_policy_put_rejects_errors_with_line_and_field_and_keeps_serving(service: Service) -> None:
    bad = (
        "name: strict\nversion: 2\nrules:\n  - id: cap\n    kind: cap\n    count: 1\n"
        "    window: 7 parsecs\n    message: x\n"
    )
    r = service.client.put("/v1/policy", json={"text": bad}, headers=service.auth("admin"))
    assert r.status_code == 422
    err = r.json()["detail"][0]
    assert err["line"] == 7 and err["field"] == "rules[0].window"
    assert service.get("/v1/policy").json()["name"] == "courtesy"
    odd = service.client.put("/v1/policy", json={"text": "="}, headers=service.auth("admin"))
    assert odd.status_code == 422 and odd.json()["detail"][0]["line"] == 1
    v = service.post("/v1/policy/validate", {"text": bad}, scope="read").json()
    assert v["valid"] is False and v["errors"][0]["line"] == 7
    good = (
        "name: strict\nversion: 2\nextends: [courtesy]\nrules:\n  - id: one-email-a-week\n"
        "    kind: cap\n    scope: {channels: [email], purposes: [marketing]}\n    count: 1\n"
        "    window: 7d\n    message: One a week.\n"
    )
    r = service.client.put(
        "/v1/policy",
        json={"text": good, "author": "ops@example.com"},
        headers=service.auth("admin"),
    )
    assert r.status_code == 200 and r.json()["version"] == "2"
    hist = service.get("/v1/policy/history").json()
    assert [h["version"] for h in hist][:2] == ["2", "1"] and hist[0]["author"] == "ops@example.com"
    assert service.post("/v1/decisions", email()).json()["policy"]["name"] == "strict"


def test_audit_filters_and_csv(service: Service) -> None:
    profile(service)
    service.post("/v1/decisions", email())
    service.post("/v1/decisions", email())
    deferred = service.get("/v1/audit", params={"verdict": "defer"}).json()["entries"]
    assert len(deferred) == 1 and deferred[0]["reasons"][0]["rule"] == "marketing-email-gap"
    by_rule = service.get("/v1/audit", params={"rule": "marketing-email-gap"}).json()["entries"]
    assert [e["decision_id"] for e in by_rule] == [deferred[0]["decision_id"]]
    csv = service.get("/v1/audit", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert (
        csv.text.splitlines()[0].startswith("decided_at,decision_id")
        and len(csv.text.splitlines()) == 3
    )


def test_query_parameters_are_one_value_each_and_times_are_iso_text(service: Service) -> None:
    twice = service.get("/v1/audit", params=[("channel", "email"), ("channel", "sms")])
    assert twice.status_code == 422
    assert [p["field"] for p in twice.json()["detail"]] == ["query.channel"]
    assert "2 times" in twice.json()["detail"][0]["message"]
    for number in ("1700000000", "-5.3e-163", "1.7e9", "inf"):
        r = service.get("/v1/audit", params={"until": number})
        assert r.status_code == 422, number
        assert r.json()["detail"][0]["field"] == "query.until"
    ok = service.get("/v1/audit", params={"until": "2026-11-24T14:02:00Z", "channel": "email"})
    assert ok.status_code == 200


def test_health_and_metrics(service: Service) -> None:
    assert service.client.get("/healthz").json()["status"] == "ok"
    service.post("/v1/decisions", email())
    service.post("/v1/decisions", email())
    text = service.get("/metrics").text
    assert (
        'tactful_decisions_total{channel="email",purpose="marketing",verdict="allow"} 1.0' in text
    )
    assert 'tactful_rule_hits_total{rule="marketing-email-gap",verdict="defer"} 1.0' in text
    assert "tactful_decision_seconds_bucket" in text


def test_s16_every_allowed_marketing_email_carries_a_working_one_click_unsubscribe(
    service: Service,
) -> None:
    d = service.post("/v1/decisions", email()).json()
    unsub = d["unsubscribe"]
    assert unsub["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsub["headers"]["List-Unsubscribe"] == f"<{unsub['url']}>"
    path = unsub["url"].removeprefix("https://prefs.example.com")
    # A mail scanner following the link changes nothing.
    page = service.client.get(path)
    assert page.status_code == 200 and "Unsubscribe" in page.text
    # The mail client's one-click POST: no key, no cookie.
    r = service.client.post(
        path,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and "unsubscribed" in r.text
    service.clock.advance(days=8)
    after = service.post("/v1/decisions", email()).json()
    assert after["verdict"] == "deny" and after["reasons"][0]["rule"] == "opt-out"
    assert (
        service.post("/v1/decisions", email(purpose="transactional")).json()["verdict"] == "allow"
    )


def test_unsubscribe_links_cannot_be_forged_or_reused_after_expiry(service: Service) -> None:
    url = service.post("/v1/decisions", email()).json()["unsubscribe"]["url"]
    path = url.removeprefix("https://prefs.example.com")
    payload, _, mac = path.removeprefix("/u/").partition(".")
    forged = f"/u/{payload[:-2]}xx.{mac}"
    assert service.client.post(forged).status_code == 400
    assert service.client.post("/u/garbage").status_code == 400
    service.clock.advance(days=61)
    r = service.client.post(path)
    assert r.status_code == 400 and "expired" in r.text


def test_optout_audit_shows_the_deadlines_and_that_nothing_followed(service: Service) -> None:
    profile(service)
    now = service.clock()
    service.post(
        "/v1/events",
        {"customer_id": "ann", "event": "opted_out", "timestamp": now.isoformat()},
        scope="ingest",
    )
    service.clock.advance(days=2)
    assert service.post("/v1/decisions", email()).json()["verdict"] == "deny"
    findings = service.get("/v1/customers/ann/optouts").json()
    assert len(findings) == 1
    f = findings[0]
    assert f["kind"] == "opted_out" and f["clean"] is True and f["followed_by"] == []
    assert {d["regime"] for d in f["deadlines"]} >= {"CAN-SPAM", "FCC"}


def test_a_form_encoded_body_is_told_to_come_as_json(service: Service) -> None:
    """`curl -d` without a Content-Type sends a form: the 422 says what to send instead."""
    r = service.client.post(
        "/v1/decisions",
        content=b'{"customer_id": "ann", "channel": "email", "purpose": "marketing"}',
        headers={**service.auth("decide"), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    (problem,) = r.json()["detail"]
    assert problem["field"] == "body"
    assert "Content-Type: application/json" in problem["message"]
    assert "application/x-www-form-urlencoded" in problem["message"]


def test_the_geocoders_data_is_loaded_as_the_service_starts(tmp_path: Path) -> None:
    """Importing the service loads no phone geodata (a replay or a CLI command does not
    wait ~0.4 s for it); starting the service does, so no decision about a rule limited to
    regions waits for it."""
    script = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from tactful.service import create_app\n"
        "from tactful.service.config import Settings\n"
        "loaded = 'phonenumbers.geocoder' in sys.modules\n"
        f"app = create_app(Settings(database_url='sqlite:///{tmp_path}/t.db', worker=False))\n"
        "with TestClient(app) as client:\n"
        "    assert client.get('/healthz').status_code == 200\n"
        "    print(loaded, 'phonenumbers.geocoder' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False True"
