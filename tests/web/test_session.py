"""The dashboard refuses anyone without a valid session, and every form without its CSRF
token; policy adoption needs an admin key."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest

from tactful.web.session import SESSION_COOKIE, issue, read
from tests.web.conftest import Web, csrf_of

PAGES = ["/ui", "/ui/customers", "/ui/customer?id=ann", "/ui/policy", "/ui/audit", "/ui/audit.csv"]
FORMS = ["/ui/policy", "/ui/sign-out"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_without_a_session_send_the_person_to_sign_in(web: Web, path: str) -> None:
    r = web.client.get(path, follow_redirects=False)
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith("/ui/sign-in?next=")
    assert unquote(location.partition("next=")[2]) == path


@pytest.mark.parametrize("path", FORMS)
def test_forms_without_a_session_are_refused(web: Web, path: str) -> None:
    r = web.client.post(path, data={"text": "x", "action": "adopt"}, follow_redirects=False)
    assert r.status_code == 401
    assert "sign in" in r.text.lower()
    assert r.headers["content-type"].startswith("text/html")


def test_sign_in_sets_a_signed_http_only_strict_cookie_without_the_key(web: Web) -> None:
    r = web.sign_in("read")
    assert r.status_code == 303 and r.headers["location"] == "/ui"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
    assert web.keys["read"] not in cookie
    assert web.client.get("/ui").status_code == 200


def test_a_wrong_key_does_not_sign_in(web: Web) -> None:
    page = web.client.get("/ui/sign-in")
    r = web.client.post(
        "/ui/sign-in", data={"key": "tk_nope", "csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 401
    assert "not valid" in r.text
    assert SESSION_COOKIE not in web.client.cookies


@pytest.mark.parametrize("scope", ["decide", "ingest"])
def test_keys_without_read_cannot_open_the_dashboard(web: Web, scope: str) -> None:
    r = web.sign_in(scope)
    assert r.status_code == 403
    assert "needs `read`" in r.text
    assert web.client.get("/ui", follow_redirects=False).status_code == 303


def test_sign_in_form_needs_its_csrf_token(web: Web) -> None:
    web.client.get("/ui/sign-in")
    r = web.client.post(
        "/ui/sign-in", data={"key": web.keys["read"], "csrf": "forged"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert SESSION_COOKIE not in web.client.cookies


def test_sign_in_never_redirects_off_the_dashboard(web: Web) -> None:
    for target in ("https://evil.example/", "//evil.example/ui", "/v1/audit", "/ui\\..\\x"):
        page = web.client.get("/ui/sign-in")
        r = web.client.post(
            "/ui/sign-in",
            data={"key": web.keys["read"], "csrf": csrf_of(page.text), "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/ui", target


def test_tampered_or_expired_cookies_are_refused(web: Web) -> None:
    web.sign_in("read")
    good = web.client.cookies[SESSION_COOKIE]
    payload, _, mac = good.partition(".")
    for bad in (f"{payload}.{mac[:-2]}AA", f"{payload[:-2]}xx.{mac}", "garbage", ""):
        web.client.cookies.clear()
        web.client.cookies.set(SESSION_COOKIE, bad, domain="testserver", path="/ui")
        assert web.client.get("/ui", follow_redirects=False).status_code == 303, bad
    # A session ends after its time, even with an intact signature.
    web.client.cookies.clear()
    web.client.cookies.set(SESSION_COOKIE, good, domain="testserver", path="/ui")
    assert web.client.get("/ui").status_code == 200
    web.clock.advance(hours=8, seconds=1)
    assert web.client.get("/ui", follow_redirects=False).status_code == 303


def test_session_cookie_unit() -> None:
    from datetime import UTC, datetime

    from tactful.store.base import ApiKey

    key = ApiKey("k1", "x", frozenset({"read"}), datetime.now(UTC))
    now = datetime.now(UTC)
    cookie, session = issue(key, b"s" * 32, now=now)
    assert read(cookie, b"s" * 32, now=now) == session
    assert read(cookie, b"t" * 32, now=now) is None  # another installation's secret
    assert read(cookie, b"s" * 32, now=now + timedelta(hours=9)) is None


def test_revoking_the_key_ends_its_sessions(web: Web) -> None:
    web.sign_in("read")
    assert web.client.get("/ui").status_code == 200
    key = web.store.check_key(web.keys["read"])
    assert key is not None
    web.store.revoke_key(key.key_id)
    assert web.client.get("/ui", follow_redirects=False).status_code == 303


def test_forms_refuse_a_missing_or_foreign_csrf_token(web: Web) -> None:
    web.sign_in("admin")
    text = web.runtime.policy.text
    for token in (None, "", "forged"):
        data = {"text": text, "action": "adopt"}
        if token is not None:
            data["csrf"] = token
        r = web.client.post("/ui/policy", data=data, follow_redirects=False)
        assert r.status_code == 403, token
        assert "security token" in r.text
    # A token from another session does not fit this one.
    other = web.client.get("/ui/policy").text
    web.client.cookies.clear()
    web.sign_in("admin")
    r = web.client.post(
        "/ui/policy", data={"text": text, "action": "validate", "csrf": csrf_of(other)}
    )
    assert r.status_code == 403


def test_adopting_a_policy_needs_admin(web: Web) -> None:
    web.sign_in("read")
    draft = web.runtime.policy.text.replace("budget: 12", "budget: 10")
    r = web.form("/ui/policy", {"text": draft, "action": "adopt"})
    assert r.status_code == 403
    assert "admin" in r.text
    assert web.runtime.policy.text != draft
    # The read key may still validate and try the draft.
    assert web.form("/ui/policy", {"text": draft, "action": "validate"}).status_code == 200
    page = web.client.get("/ui/policy").text
    assert 'value="adopt"' not in page and "needs an admin key" in page


def test_admin_adopts_and_history_names_who(web: Web) -> None:
    web.sign_in("admin")
    same_version = web.runtime.policy.text.replace("budget: 12", "budget: 10")
    r = web.form("/ui/policy", {"text": same_version, "action": "adopt"})
    assert r.status_code == 422
    assert "give the changed draft a new version" in r.text
    draft = same_version.replace("version:", "version: '2' #", 1)
    r = web.form("/ui/policy", {"text": draft, "action": "adopt"})
    assert r.status_code == 303, r.text
    assert web.runtime.policy.text == draft
    page = web.client.get(r.headers["location"]).text
    assert "Adopted" in page
    assert "admin-person" in page  # the history names who changed it
    assert "budget: 10" in page  # and shows what changed


def test_sign_out_ends_the_session_in_this_browser(web: Web) -> None:
    web.sign_in("read")
    r = web.form("/ui/sign-out", {}, page="/ui")
    assert r.status_code == 303
    assert SESSION_COOKIE not in web.client.cookies
    assert web.client.get("/ui", follow_redirects=False).status_code == 303


def test_pages_carry_protective_headers(web: Web) -> None:
    web.sign_in("read")
    r = web.client.get("/ui")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_dashboard_is_not_part_of_the_api_document(web: Web) -> None:
    paths = web.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/ui", "/p/"))]
