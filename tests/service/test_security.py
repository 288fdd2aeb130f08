"""Every route refuses a request without a key, or with a key lacking the scope."""

from __future__ import annotations

import logging

import pytest

from tests.service.conftest import Service

#: Routes open without a key: liveness, and customer links that carry their own signature.
OPEN = {"/healthz", "/u/{token}", "/p/{token}"}
#: Routes with their own credential scheme (provider signatures).
SIGNED = {"/v1/webhooks/twilio", "/v1/webhooks/sendgrid"}


def routes(service: Service) -> list[tuple[str, str]]:
    """Every operation of the published API (the OpenAPI document is the contract)."""
    out = []
    paths = service.client.get("/openapi.json").json()["paths"]
    assert "/v1/decisions" in paths
    for path, operations in paths.items():
        if path in OPEN or path in SIGNED:
            continue
        for method in operations:
            concrete = path.replace("{customer_id}", "ann").replace("{decision_id}", "d1")
            out.append((method.upper(), concrete))
    return out


@pytest.mark.parametrize("header", [None, "Bearer tk_wrong", "Basic Zm9vOg==", "Bearer "])
def test_every_route_refuses_a_missing_or_unknown_key(service: Service, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in routes(service):
        r = service.client.request(method, path, headers=headers)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.json()["error"] == "unauthorized"


def test_every_route_refuses_a_key_without_its_scope(service: Service) -> None:
    needed: dict[tuple[str, str], set[str]] = {}
    for method, path in routes(service):
        allowed = set()
        for scope in ("decide", "ingest", "read"):
            r = service.client.request(method, path, headers=service.auth(scope))
            if r.status_code != 403:
                allowed.add(scope)
            else:
                assert "lacks" in r.json()["detail"]
        needed[(method, path)] = allowed
        # admin may do everything
        assert (
            service.client.request(method, path, headers=service.auth("admin")).status_code != 403
        )
    # Each route admits exactly one of the ordinary scopes, or none (admin only).
    for route, allowed in needed.items():
        assert len(allowed) <= 1, (route, allowed)
    assert needed[("POST", "/v1/decisions")] == {"decide"}
    assert needed[("POST", "/v1/events")] == {"ingest"}
    assert needed[("GET", "/v1/audit")] == {"read"}
    assert needed[("PUT", "/v1/policy")] == set()
    assert needed[("DELETE", "/v1/customers/ann")] == set()


def test_revoked_key_is_refused(service: Service) -> None:
    key = service.store.check_key(service.keys["decide"])
    assert key is not None
    service.store.revoke_key(key.key_id)
    r = service.client.post(
        "/v1/decisions",
        json={"customer_id": "a", "channel": "email", "purpose": "marketing"},
        headers=service.auth("decide"),
    )
    assert r.status_code == 401


def test_keys_never_appear_in_logs(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    service.post("/v1/decisions", {"customer_id": "a", "channel": "email", "purpose": "marketing"})
    service.client.get("/v1/audit", headers={"Authorization": "Bearer tk_not_a_key"})
    for secret in [*service.keys.values(), "tk_not_a_key"]:
        assert secret not in caplog.text
