"""Playwright drives Debian's Chromium against a real `tactful serve` on the demo data, the
way a policy owner, a support agent and a customer use the pages.

Screenshots of each page at desktop (1280x800) and phone (390x844) width land in
`artifacts/screenshots/` (not committed). Without Chromium these tests skip; with
TACTFUL_REQUIRE_SERVICES=1 (CI) they fail instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tactful.demo import load_demo
from tactful.store import open_store
from tests.conftest import CHICAGO, CHROMIUM, CHROMIUM_ARGS, need_browser
from tests.service.server import Server

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@dataclass
class Site:
    base: str
    keys: dict[str, str]

    def decide(self, customer: str, channel: str = "email", purpose: str = "marketing") -> Any:
        r = httpx.post(
            f"{self.base}/v1/decisions",
            json={"customer_id": customer, "channel": channel, "purpose": purpose},
            headers={"Authorization": f"Bearer {self.keys['decide']}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def cancel(self, decision_id: str) -> None:
        httpx.post(
            f"{self.base}/v1/decisions/{decision_id}/cancel",
            headers={"Authorization": f"Bearer {self.keys['decide']}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    need_browser()
    folder = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{folder}/tactful.db"
    store = open_store(url)
    load_demo(store)
    keys = {}
    for scope, name in (("read", "support-desk"), ("admin", "policy-owner"), ("decide", "mailer")):
        _, keys[scope] = store.create_key([scope], name=name, now=datetime.now(UTC))
    store.close()
    with Server(url, log=folder / "serve.log") as server:
        yield Site(server.base, keys)


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page in its own browser context, with console errors collected."""

    def __init__(self, browser: Any, site: Site, *, javascript: bool = True) -> None:
        self.browser = browser
        self.site = site
        self.javascript = javascript
        self.context = browser.new_context(
            viewport=DESKTOP, java_script_enabled=javascript, base_url=site.base
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message: Any) -> None:
        # A page answered with 4xx on purpose (a refused form, a policy error) is logged
        # as a failed load; script errors and CSP refusals are what this looks for.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def sign_in(self, scope: str = "read", path: str = "/ui") -> None:
        self.page.goto(path)
        assert "/ui/sign-in" in self.page.url
        key = self.page.get_by_label("API key")
        key.fill(self.site.keys[scope])
        key.press("Enter")  # the keyboard sends the form
        self.page.wait_for_url(lambda url: "/ui/sign-in" not in url)

    def shoot(self, name: str, *, reload: bool = True) -> None:
        """Screenshots of the page at desktop and at phone width. A page reached by GET
        (`reload`) is opened afresh in a phone-sized mobile context with the same cookies,
        as a phone would lay it out; a page that answers a form is resized in place."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
        if not reload:
            self.page.set_viewport_size(PHONE)
            self.page.wait_for_timeout(300)
            self.page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
            self.page.set_viewport_size(DESKTOP)
            return
        phone = self.browser.new_context(
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            java_script_enabled=self.javascript,
            base_url=self.site.base,
            storage_state=self.context.storage_state(),
        )
        try:
            page = phone.new_page()
            page.goto(self.page.url)
            if self.javascript and page.locator(".plot").count():
                page.wait_for_selector(".plot.drawn .main-svg")
                page.wait_for_timeout(300)
            page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
        finally:
            phone.close()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Page]:
    p = Page(browser, site)
    yield p
    p.close()
    assert not p.errors, p.errors  # no script errors, no CSP violations


def test_sign_in_and_overview(page: Page) -> None:
    page.page.goto("/ui")
    page.shoot("sign-in")
    page.sign_in("read")
    p = page.page
    assert p.locator("h1").first.inner_text().startswith("Overview")
    # plotly.js from the server drew every chart.
    p.wait_for_selector("#plot-suppressions .main-svg")
    assert p.locator(".plot.drawn").count() == 5
    assert p.locator("text=Most pressured customers").is_visible()
    page.shoot("overview")


def test_support_agent_sees_the_second_call_held_back_and_why(page: Page) -> None:
    page.sign_in("read", "/ui/customers")
    p = page.page
    p.get_by_label("Customer id").fill("demo-rebecca")
    p.get_by_role("button", name="Find").click()
    p.wait_for_url(re.compile(r".*/ui/customer\?id=demo-rebecca"))
    p.wait_for_selector("#plot-timeline .main-svg")
    calls = p.locator("#timeline-table tr.decision")
    assert calls.count() == 3
    second = calls.nth(1)
    assert second.locator(".badge").inner_text() == "defer"
    assert "sales-call-gap" in second.inner_text()
    assert "48" in second.inner_text()  # the reason says how long the gap is
    assert "no_answer" in calls.nth(0).inner_text()
    page.shoot("customer-rebecca")


def test_policy_owner_sees_an_error_then_runs_a_what_if(page: Page) -> None:
    page.sign_in("admin", "/ui/policy")
    p = page.page
    editor = p.get_by_label("Policy (YAML)")
    text = editor.input_value()
    line = next(i for i, x in enumerate(text.splitlines(), 1) if "budget: 12" in x)
    editor.fill(text.replace("budget: 12", "budget: lots"))
    p.get_by_role("button", name="Validate").click()
    error = p.locator(".policy-error").first
    assert f"Line {line}" in error.inner_text()
    assert re.search(r"rules\[\d+\]\.budget", error.inner_text())
    page.shoot("policy-error", reload=False)

    editor = p.get_by_label("Policy (YAML)")
    editor.fill(text.replace("budget: 12", "budget: 3"))
    p.get_by_label("What-if over the last").fill("30")
    p.get_by_role("button", name="Run what-if").click()
    p.wait_for_selector("#whatif")
    summary = p.locator("#whatif").inner_text()
    assert re.search(r"\d+ would get a different verdict", summary)
    changes = p.locator("#whatif-changes tbody tr")
    assert changes.count() >= 1 and "→" in changes.first.inner_text()
    assert "pressure" in summary
    page.shoot("policy-whatif", reload=False)
    # The what-if adopted nothing.
    p.goto("/ui/policy")
    assert "budget: 12" in p.get_by_label("Policy (YAML)").input_value()
    page.shoot("policy")


def test_audit_log_filters_and_exports(page: Page) -> None:
    page.sign_in("read", "/ui/audit")
    p = page.page
    p.get_by_label("Verdict").select_option("deny")
    p.get_by_role("button", name="Filter").click()
    p.wait_for_url(re.compile(r".*verdict=deny.*"))
    rows = p.locator("#audit-table tbody tr")
    assert rows.count() > 0
    for i in range(rows.count()):
        assert "deny" in rows.nth(i).locator(".badge").inner_text()
    with p.expect_download() as download:
        p.get_by_role("link", name="Export CSV").click()
    path = download.value.path()
    head = Path(path).read_text().splitlines()
    assert head[0].startswith("decided_at,decision_id,customer_id")
    assert len(head) - 1 == rows.count()
    page.shoot("audit")


def test_customer_snoozes_then_opts_out_without_javascript(browser: Any, site: Site) -> None:
    # A marketing email's decision carries the preference-centre link.
    first = site.decide("demo-chat")
    assert first["verdict"] == "allow"
    link = first["unsubscribe"]["preferences"]
    site.cancel(first["decision_id"])  # that email is not sent after all

    customer = Page(browser, site, javascript=False)  # plain forms, no JavaScript
    try:
        p = customer.page
        p.goto(link)
        assert p.locator("h1").inner_text() == "How we may contact you"
        customer.shoot("preferences")

        p.get_by_role("button", name=re.compile("^Three weeks")).click()
        confirmation = p.locator("#confirmation").inner_text()
        today = datetime.now(CHICAGO).date()
        until = datetime.combine(today + timedelta(days=21), time(9), CHICAGO)
        assert f"until {until:%A} {until.day} {until:%B %Y}" in confirmation
        customer.shoot("preferences-snoozed")

        decision = site.decide("demo-chat")
        assert decision["verdict"] == "defer"
        assert datetime.fromisoformat(decision["not_before"]) == until

        p.get_by_role("button", name="Opt out of everything").click()
        assert "opted out of everything" in p.locator("#confirmation").inner_text()
        customer.shoot("preferences-opted-out")
        decision = site.decide("demo-chat")
        assert decision["verdict"] == "deny"
        assert decision["reasons"][0]["rule"] == "opt-out"
        assert not customer.errors, customer.errors
    finally:
        customer.close()


def test_customer_sees_their_changes_on_the_support_view(page: Page, site: Site) -> None:
    # The call-back a customer books shows to the support agent at once.
    first = site.decide("demo-consult")
    link = first["unsubscribe"]["preferences"]
    p = page.page
    p.goto(link)
    day = datetime.now(CHICAGO).date() + timedelta(days=5)
    p.get_by_label("Date", exact=True).fill(day.isoformat())
    p.get_by_label("Time").fill("16:30")
    p.get_by_role("button", name="Request the call").click()
    assert "16:30" in p.locator("#confirmation").inner_text()
    page.sign_in("read", "/ui/customer?id=demo-consult")
    facts = p.locator("dl.facts").inner_text()
    assert "Call-back" in facts and "16:30" in facts


def test_dashboard_reads_without_javascript(browser: Any, site: Site) -> None:
    reader = Page(browser, site, javascript=False)
    try:
        reader.sign_in("read")
        p = reader.page
        # With no charts drawn, the tables are open.
        assert p.locator("details.data[open]").count() == 4
        assert p.locator("text=The chart needs JavaScript").first.is_visible()
        reader.shoot("overview-nojs")
    finally:
        reader.close()


TWO_SECOND_GAP = """
name: two-second-gap
version: "1"
rules:
  - id: email-gap
    kind: gap
    scope: {channels: [email]}
    gap: 2s
    message: "Emails are at least 2 seconds apart."
"""


def test_ops_sees_a_release_delivered_and_sends_it_again(browser: Any, tmp_path: Path) -> None:
    """A queued email is released by the server's own worker and delivered to a signed
    webhook; the Deliveries page shows it with its attempt, and an admin sends it again."""
    from tests.delivery.receiver import Receiver

    url = f"sqlite:///{tmp_path}/tactful.db"
    store = open_store(url)
    keys = {}
    for scope in ("admin", "decide"):
        _, keys[scope] = store.create_key([scope], name=f"ops-{scope}", now=datetime.now(UTC))
    store.close()
    (tmp_path / "policy.yaml").write_text(TWO_SECOND_GAP)
    env = {"TACTFUL_WORKER_POLL_SECONDS": "0.2"}
    with (
        Receiver() as receiver,
        Server(url, policy=str(tmp_path / "policy.yaml"), env=env, log=tmp_path / "s.log") as s,
    ):
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        hook = httpx.post(
            f"{s.base}/v1/webhooks",
            json={"url": receiver.url, "secret": receiver.secret, "source": "newsletter"},
            headers=admin,
            timeout=30,
        )
        assert hook.status_code < 300, hook.text
        answers = [
            httpx.post(
                f"{s.base}/v1/decisions",
                json={
                    "customer_id": "ops-ann",
                    "channel": "email",
                    "purpose": "marketing",
                    "source": "newsletter",
                    "on_defer": "queue",
                },
                headers={"Authorization": f"Bearer {keys['decide']}"},
                timeout=30,
            ).json()
            for _ in range(2)
        ]
        assert [a["verdict"] for a in answers] == ["allow", "defer"]
        assert answers[1]["queued"]
        assert receiver.arrived.wait(30), "the worker did not deliver the release"
        (first,) = receiver.deliveries.values()
        assert first.kind == "queue.released"

        page = Page(browser, Site(s.base, keys))
        try:
            page.sign_in("admin", "/ui/deliveries")
            p = page.page
            assert "newsletter" in p.locator("#webhooks-table").inner_text()
            row = p.locator("#deliveries-table tbody tr", has_text=first.delivery_id)
            assert "delivered" in row.inner_text() and "200" in row.inner_text()
            page.shoot("deliveries")
            row.get_by_role("button", name="Send again").click()
            p.wait_for_selector("p.notice")
            assert first.delivery_id in p.locator("p.notice").inner_text()
            deadline = datetime.now(UTC) + timedelta(seconds=30)
            while first.delivery_id not in receiver.duplicates and datetime.now(UTC) < deadline:
                p.wait_for_timeout(200)
            # Sent again under the same id: a careful receiver sees a duplicate, not news.
            assert receiver.duplicates == [first.delivery_id]
            assert not page.errors, page.errors
        finally:
            page.close()
