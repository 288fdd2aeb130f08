"""The preference centre: plain forms under a signed link; each change is in the ledger at
once, and the next decision follows it. A link acts for its own customer only."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tactful.model import CustomerProfile
from tactful.service.tokens import LinkToken, sign
from tests.conftest import CHICAGO
from tests.web.conftest import Web, csrf_of


@pytest.fixture
def ann(web: Web) -> str:
    """Ann's preference-centre path, as a marketing email's decision hands it out."""
    web.store.put_profile(
        CustomerProfile("ann", timezone="America/Chicago", country="US", phones=("+13125550142",))
    )
    web.store.put_profile(CustomerProfile("bob", timezone="Europe/Paris", country="FR"))
    decision = web.decide("ann")
    assert decision["verdict"] == "allow"
    url = decision["unsubscribe"]["preferences"]
    assert url.startswith("https://prefs.example.com/p/")
    # The hold of that email is released: only the customer's choices stand in the way.
    web.client.post(
        f"/v1/decisions/{decision['decision_id']}/cancel",
        headers={"Authorization": f"Bearer {web.keys['decide']}"},
    )
    return url.removeprefix("https://prefs.example.com")


def post(web: Web, path: str, action: str, **data: object) -> object:
    html = web.client.get(path).text
    return web.client.post(
        f"{path}/{action}", data={**data, "csrf": csrf_of(html)}, follow_redirects=False
    )


def test_page_says_in_plain_words_what_may_be_sent(web: Web, ann: str) -> None:
    r = web.client.get(ann)
    assert r.status_code == 200
    assert "How we may contact you" in r.text
    assert "News and offers" in r.text and "Phone calls" in r.text
    assert "<script" not in r.text  # plain forms, no JavaScript
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    # Every form control has a label.
    ids = re.findall(r'<input[^>]+type="(?:checkbox|radio|date|time)"[^>]+id="([^"]+)"', r.text)
    assert ids and all(f'for="{i}"' in r.text for i in ids)


def test_snooze_three_weeks_defers_marketing_to_that_date(web: Web, ann: str) -> None:
    r = post(web, ann, "snooze", length="3w")
    assert r.status_code == 303  # type: ignore[attr-defined]
    page = web.client.get(r.headers["location"]).text  # type: ignore[attr-defined]
    today = web.clock().astimezone(CHICAGO).date()
    until = datetime.combine(today + timedelta(days=21), time(9), CHICAGO)
    assert "We won't contact you until" in page
    assert f"{until:%A} {until.day} {until:%B %Y}" in page
    decision = web.decide("ann")
    assert decision["verdict"] == "defer"
    assert datetime.fromisoformat(decision["not_before"]) == until
    assert "snooze" in [x["rule"] for x in decision["reasons"]]


def test_snooze_until_a_chosen_date_and_end_it(web: Web, ann: str) -> None:
    day = (web.clock().astimezone(CHICAGO) + timedelta(days=10)).date()
    post(web, ann, "snooze", length="date", until=day.isoformat())
    assert web.decide("ann")["verdict"] == "defer"
    web.clock.advance(minutes=5)
    post(web, ann, "snooze", length="cancel")
    assert web.decide("ann")["verdict"] == "allow"
    # A date in the past changes nothing.
    r = post(web, ann, "snooze", length="date", until="2020-01-01")
    assert r.status_code == 400  # type: ignore[attr-defined]


def test_opt_out_of_everything_denies_the_next_decision(web: Web, ann: str) -> None:
    r = post(web, ann, "opt-out")
    page = web.client.get(r.headers["location"]).text  # type: ignore[attr-defined]
    assert "opted out of everything" in page
    for channel, purpose in (("email", "marketing"), ("call", "sales"), ("sms", "service")):
        decision = web.decide("ann", channel, purpose)
        assert decision["verdict"] == "deny"
        assert decision["reasons"][0]["rule"] == "opt-out"
    assert web.decide("ann", "email", "transactional")["verdict"] == "allow"
    web.clock.advance(minutes=5)
    post(web, ann, "opt-in")
    assert web.decide("ann")["verdict"] == "allow"


def test_channels_and_pace_go_into_the_profile(web: Web, ann: str) -> None:
    r = post(web, ann, "channels", channels=["email", "call"], pace="weekly")
    page = web.client.get(r.headers["location"]).text  # type: ignore[attr-defined]
    assert "We'll only use: Email, Phone calls" in page
    profile = web.store.get_profile("ann")
    assert profile is not None
    assert profile.preferences == {"channels": ["call", "email"], "pace": {"count": 1, "per": "7d"}}
    assert profile.timezone == "America/Chicago"  # the rest of the profile is kept
    decision = web.decide("ann", "sms", "marketing")
    assert decision["verdict"] == "deny"
    assert decision["reasons"][0]["rule"] == "customer-preferences"
    # Every channel ticked: no restriction of their own; the pace goes back to none.
    all_channels = ["email", "sms", "call", "push", "onsite", "mail"]
    post(web, ann, "channels", channels=all_channels, pace="any")
    profile = web.store.get_profile("ann")
    assert profile is not None and dict(profile.preferences) == {}


def test_call_back_at_a_chosen_time(web: Web, ann: str) -> None:
    day = (web.clock().astimezone(CHICAGO) + timedelta(days=3)).date()
    r = post(web, ann, "callback", day=day.isoformat(), at="16:30")
    assert r.status_code == 303  # type: ignore[attr-defined]
    at = datetime.combine(day, time(16, 30), CHICAGO)
    page = web.client.get(r.headers["location"]).text  # type: ignore[attr-defined]
    assert "We'll call you on" in page and "16:30" in page
    decision = web.decide("ann", "call", "sales")
    assert decision["verdict"] == "defer"
    assert datetime.fromisoformat(decision["not_before"]) == at
    web.clock.advance(minutes=5)
    post(web, ann, "callback", cancel="1")
    state = web.store.load_state("ann")
    assert state.derived.callback is None


def test_forms_work_without_javascript_as_a_browser_sends_them(web: Web, ann: str) -> None:
    # A browser without JavaScript posts urlencoded forms and follows the redirect.
    html = web.client.get(ann).text
    r = web.client.post(
        f"{ann}/snooze",
        content=f"csrf={csrf_of(html)}&length=1w",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert "We won't contact you until" in r.text


def test_a_link_acts_only_for_its_own_customer(web: Web, ann: str) -> None:
    # Naming another customer in the form changes nothing for them.
    post(web, ann, "opt-out", customer_id="bob")
    assert web.decide("bob")["verdict"] == "allow"
    assert web.decide("ann")["verdict"] == "deny"
    # A token altered to name Bob is refused: the signature covers the customer id.
    token = ann.removeprefix("/p/")
    mac = token.partition(".")[2]
    secret = web.store.secret()
    bobs = sign(LinkToken("bob", "prefs", web.clock() + timedelta(days=1)), secret)
    forged = f"{bobs.partition('.')[0]}.{mac}"
    assert web.client.get(f"/p/{forged}").status_code == 400
    # Bob's own page's CSRF token does not fit Ann's link, nor the other way round.
    bob_page = web.client.get(f"/p/{bobs}").text
    r = web.client.post(f"{ann}/opt-in", data={"csrf": csrf_of(bob_page)})
    assert r.status_code == 403
    assert web.decide("ann")["verdict"] == "deny"


def test_expired_and_foreign_tokens_are_refused(web: Web, ann: str) -> None:
    secret = web.store.secret()
    now = web.clock()
    expired = sign(LinkToken("ann", "prefs", now - timedelta(seconds=1)), secret)
    r = web.client.get(f"/p/{expired}")
    assert r.status_code == 400 and "expired" in r.text
    r = web.client.post(f"/p/{expired}/opt-out", data={"csrf": "x"})
    assert r.status_code == 400
    # An unsubscribe link is not a preference-centre link.
    unsub = sign(LinkToken("ann", "unsubscribe", now + timedelta(days=1), "email"), secret)
    assert web.client.get(f"/p/{unsub}").status_code == 400
    # Another installation's link.
    other = sign(LinkToken("ann", "prefs", now + timedelta(days=1)), b"x" * 32)
    assert web.client.get(f"/p/{other}").status_code == 400
    for junk in ("x", "a.b", "%E2%82%AC.x"):
        assert web.client.get(f"/p/{junk}").status_code == 400
    # The link works until its time, then stops.
    assert web.client.get(ann).status_code == 200
    web.clock.advance(days=web.runtime.settings.link_ttl_days, seconds=1)
    assert web.client.get(ann).status_code == 400


def test_forms_need_the_pages_csrf_token(web: Web, ann: str) -> None:
    for data in ({}, {"csrf": "forged"}):
        r = web.client.post(f"{ann}/opt-out", data=data)
        assert r.status_code == 403
        assert "nothing was changed" in r.text
    assert web.decide("ann")["verdict"] == "allow"


def test_summary_names_an_unsubscribe(web: Web, ann: str) -> None:
    profile = web.store.get_profile("ann")
    assert profile is not None
    web.store.put_profile(replace(profile, consent={"sms": False}))
    page = web.client.get(ann).text
    assert "you did not give consent" in page
    zone = ZoneInfo("America/Chicago")
    assert f"({zone.key})" in page
    assert datetime.now(UTC)  # page renders with the customer's zone
