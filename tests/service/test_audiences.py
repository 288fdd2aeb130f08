"""POST /v1/audiences/check: NDJSON in and out, JSON for small lists, holds as single
decisions place them, and bad lines refused (422 naming line and field) before anything
is held."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tactful import Contact, CustomerProfile, Event
from tests.service.conftest import Service

NDJSON = {"Content-Type": "application/x-ndjson"}


def _customers(svc: Service) -> None:
    now = svc.clock()
    for cid in ("ann", "bob", "cid"):
        svc.store.put_profile(CustomerProfile(cid, timezone="America/Chicago", country="US"))
    # bob had a marketing email 2 hours ago: 20 hours apart.
    svc.store.add_contacts(
        [Contact("bob-1", "bob", "email", "marketing", now - timedelta(hours=2))]
    )


def _ndjson(lines: list[object]) -> bytes:
    return (
        "\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n"
    ).encode()


def _read(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_ndjson_in_streams_verdicts_and_a_summary(service: Service) -> None:
    _customers(service)
    body = _ndjson([{"channel": "email", "purpose": "marketing"}, "ann", '"bob"', "cid"])
    r = service.client.post(
        "/v1/audiences/check", content=body, headers={**NDJSON, **service.auth("decide")}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = _read(r.text)
    assert [x.get("customer_id") for x in lines[:3]] == ["ann", "bob", "cid"]
    assert [x["verdict"] for x in lines[:3]] == ["allow", "defer", "allow"]
    bob = lines[1]
    expected = service.clock() + timedelta(hours=18)
    assert datetime.fromisoformat(str(bob["not_before"])) == expected
    assert bob["reasons"][0]["rule"] == "marketing-email-gap"
    summary = lines[3]["summary"]
    assert summary["counts"] == {"allow": 2, "defer": 1, "deny": 0}
    assert summary["by_rule"] == {"marketing-email-gap": 1}
    # A check without hold places nothing: ann is still allowed by a single decision.
    again = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "email", "purpose": "marketing"}
    )
    assert again.json()["verdict"] == "allow"


def test_json_body_with_hold_places_holds_like_single_decisions(service: Service) -> None:
    _customers(service)
    body = {
        "proposal": {"channel": "email", "purpose": "marketing", "hold": True},
        "customer_ids": ["ann", "bob"],
    }
    lines = _read(service.post("/v1/audiences/check", body).text)
    ann = lines[0]
    assert ann["verdict"] == "allow" and ann["decision_id"]
    assert (
        service.get(f"/v1/decisions/{ann['decision_id']}", scope="decide").json()["verdict"]
        == "allow"
    )
    assert "decision_id" not in lines[1]
    # The hold counts: ann's next marketing email waits 20 hours.
    single = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "email", "purpose": "marketing"}
    )
    assert single.json()["verdict"] == "defer"


def test_bad_lines_are_refused_before_anything_is_held(service: Service) -> None:
    _customers(service)
    auth = {**NDJSON, **service.auth("decide")}
    bad_proposal = _ndjson([{"channel": "email", "purpose": "marketing", "colour": "red"}, "ann"])
    r = service.client.post("/v1/audiences/check", content=bad_proposal, headers=auth)
    assert r.status_code == 422
    assert r.json()["detail"][0]["line"] == 1
    assert r.json()["detail"][0]["field"] == "proposal.colour"
    bad_id = _ndjson(
        [{"channel": "email", "purpose": "marketing", "hold": True}, "ann", '"unterminated', "bob"]
    )
    r = service.client.post("/v1/audiences/check", content=bad_id, headers=auth)
    assert r.status_code == 422
    assert r.json()["detail"][0] == {
        "line": 3,
        "field": "customer_id",
        "message": "not a JSON string",
    }
    # Nothing held: ann is still allowed.
    single = service.post(
        "/v1/decisions", {"customer_id": "ann", "channel": "email", "purpose": "marketing"}
    )
    assert single.json()["verdict"] == "allow"
    r = service.post("/v1/audiences/check", {"proposal": {"channel": "email"}, "customer_ids": []})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "proposal.purpose"


def test_needs_the_decide_scope(service: Service) -> None:
    r = service.post(
        "/v1/audiences/check",
        {"proposal": {"channel": "email", "purpose": "marketing"}, "customer_ids": []},
        scope="read",
    )
    assert r.status_code == 403


def test_lines_answer_aliases_erased_ids_and_suppressed_addresses_as_decisions_do(
    service: Service,
) -> None:
    _customers(service)
    store, now = service.store, service.clock()
    # Another team's record said STOP from the number that cid holds, in another format.
    store.put_profile(CustomerProfile("stopper", phones=("+13125550142",)))
    store.add_events(
        [Event("stopper", "opted_out", now - timedelta(hours=1), "stop-1", {"channel": "sms"})],
        received_at=now,
    )
    store.put_profile(
        CustomerProfile(
            "cid", timezone="America/Chicago", country="US", phones=("+1 312 555 0142",)
        )
    )
    store.put_profile(CustomerProfile("ann", timezone="America/Chicago", phones=("+13125550177",)))
    store.merge(["bob-web", "bob"], at=now, via="api", now=now)
    store.put_profile(CustomerProfile("gone", phones=("+13125550199",)))
    store.erase("gone", now=now)
    ids = ["ann", "bob-web", "cid", "gone", "nobody", "bob"]
    body = {"proposal": {"channel": "sms", "purpose": "marketing"}, "customer_ids": ids}
    lines = {
        str(x["customer_id"]): x for x in _read(service.post("/v1/audiences/check", body).text)[:-1]
    }
    assert [r["rule"] for r in lines["cid"]["reasons"]] == ["address-suppressed"]  # type: ignore[index]
    assert [r["rule"] for r in lines["gone"]["reasons"]] == ["erased"]  # type: ignore[index]
    assert lines["bob"] == {**lines["bob-web"], "customer_id": "bob"}
    # Each customer's line is what a single decision answers (one decision per customer:
    # an allowed one places a hold).
    for cid in ("ann", "bob-web", "cid", "gone", "nobody"):
        single = service.post(
            "/v1/decisions", {"customer_id": cid, "channel": "sms", "purpose": "marketing"}
        ).json()
        assert _answer(lines[cid]) == _answer(single), cid


def _answer(body: dict[str, object]) -> tuple[object, ...]:
    """Verdict, not_before and reasons, with instants as datetimes (the decisions API
    writes UTC as "Z", audience lines as "+00:00")."""

    def instant(value: object) -> datetime | None:
        return None if value is None else datetime.fromisoformat(str(value))

    reasons = [
        {**r, "until": instant(r.get("until"))}
        for r in body["reasons"]  # type: ignore[attr-defined]
    ]
    return body["verdict"], instant(body["not_before"]), reasons


def test_a_file_in_the_audience_directory_stands_for_the_ids(
    service: Service, tmp_path: Path
) -> None:
    _customers(service)
    folder = tmp_path / "audiences"
    folder.mkdir()
    (folder / "winter.txt").write_text("ann\nbob\n\ncid\n")
    (folder / "winter.csv").write_text("customer_id,segment\nann,a\nbob,b\ncid,c\n")
    (folder / "broken.csv").write_text("customer_id,segment\nann,a\n,b\n")
    (tmp_path / "secret.txt").write_text("ann\n")
    proposal = {"channel": "email", "purpose": "marketing"}

    def check(**body: object) -> Any:
        return service.post("/v1/audiences/check", {"proposal": proposal, **body})

    # Off until a directory is configured: the ids must come with the request.
    off = check(file="winter.txt")
    assert off.status_code == 422
    assert off.json()["detail"][0]["field"] == "file"
    assert "TACTFUL_AUDIENCE_DIR" in off.json()["detail"][0]["message"]

    runtime = service.runtime
    runtime.settings = runtime.settings.model_copy(update={"audience_dir": folder})
    sent = _read(check(customer_ids=["ann", "bob", "cid"]).text)
    for name in ("winter.txt", "winter.csv"):
        r = check(file=name)
        assert r.status_code == 200, r.text
        assert _read(r.text) == sent  # the same lines as sending the ids

    for name, says in (
        ("../secret.txt", "inside the audience directory"),
        (str(tmp_path / "secret.txt"), "relative to the audience directory"),
        ("missing.txt", "missing.txt: No such file"),
        ("broken.csv", "broken.csv:3: customer_id is empty"),
    ):
        r = check(file=name)
        assert r.status_code == 422, (name, r.text)
        detail = r.json()["detail"][0]
        assert detail["field"] == "file" and says in detail["message"], (name, detail)
        assert str(folder) not in detail["message"]  # the server's paths stay its own
    both = check(file="winter.txt", customer_ids=["ann"])
    assert both.status_code == 422 and "either customer_ids or file" in both.text
