"""The dashboard's Deliveries page: subscriptions, deliveries with their attempts, and
sending one again (admin, through the session's CSRF-protected form)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from tactful.model import ContactProposal, Event
from tactful.service.routes.queue import decide_or_queue
from tactful.service.schemas import DecisionOut
from tactful.store.delivery import delivery_store
from tactful.worker import Worker
from tests.web.conftest import Web

SECRET = "whsec_dashboard_test_secret"


def _one_failed_delivery(web: Web) -> str:
    """A release to a receiver that is not there: one failed attempt, then given up."""
    runtime = web.runtime
    ds = delivery_store(web.store)
    ds.add_webhook("http://127.0.0.1:9/hook", source="shop", secret=SECRET, now=web.clock())
    web.store.add_events(
        [Event("ann", "snooze_requested", web.clock(), "s1", {"duration": "1h"})],
        received_at=web.clock(),
    )
    out = decide_or_queue(
        runtime,
        ContactProposal("ann", "email", "marketing", source="shop"),
        None,
        lambda r, p, d, replayed: DecisionOut.of(d, replayed=replayed),
    )
    assert out.queued is not None
    web.clock.advance(hours=1, seconds=1)
    statuses: list[int] = []

    def refused(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        statuses.append(0)
        raise ConnectionRefusedError("connection refused")

    worker = Worker(runtime, name="dash-worker", send=refused)
    worker.deliveries.give_up_after = timedelta(seconds=1)  # give up after this attempt
    worker.run_until_idle()
    assert statuses == [0]
    (delivery,) = ds.list_deliveries()
    assert delivery.state == "dead"
    return delivery.id


def test_deliveries_page_lists_subscriptions_deliveries_and_attempts(web: Web) -> None:
    delivery_id = _one_failed_delivery(web)
    web.sign_in("read")
    page = web.client.get("/ui/deliveries")
    assert page.status_code == 200
    html = page.text
    assert "http://127.0.0.1:9/hook" in html and "shop" in html
    assert delivery_id in html and "queue.released" in html
    assert "ConnectionRefusedError" in html and "dead" in html
    assert "Send again" not in html  # a read key sees no button
    assert 'href="/ui/deliveries" aria-current="page"' in html
    only_delivered = web.client.get("/ui/deliveries", params={"state": "delivered"}).text
    assert delivery_id not in only_delivered


def test_an_admin_sends_a_delivery_again_from_the_page(web: Web) -> None:
    delivery_id = _one_failed_delivery(web)
    web.sign_in("admin")
    assert "Send again" in web.client.get("/ui/deliveries").text
    r = web.form("/ui/deliveries/redeliver", {"delivery_id": delivery_id}, page="/ui/deliveries")
    assert r.status_code == 303
    assert r.headers["location"] == f"/ui/deliveries?sent={delivery_id}"
    again = delivery_store(web.store).get_delivery(delivery_id)
    assert again.state == "pending" and again.next_attempt_at == web.clock()
    assert len(again.history) == 1  # the first attempt stays in the history


def test_sending_again_needs_admin_and_the_form_token(web: Web) -> None:
    delivery_id = _one_failed_delivery(web)
    web.sign_in("read")
    r = web.form("/ui/deliveries/redeliver", {"delivery_id": delivery_id}, page="/ui/deliveries")
    assert r.status_code == 403
    web.sign_in("admin")
    r = web.client.post(
        "/ui/deliveries/redeliver",
        data={"delivery_id": delivery_id, "csrf": "forged"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert delivery_store(web.store).get_delivery(delivery_id).state == "dead"


def test_the_deliveries_page_needs_a_session(web: Web) -> None:
    r = web.client.get("/ui/deliveries", follow_redirects=False)
    assert r.status_code in (303, 401)
