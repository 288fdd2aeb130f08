"""`POST /v1/decisions` through `service/fastpath.py`: a valid, authorised proposal is
answered without FastAPI's routing, with the route's very answer; everything else goes to
the route, so every error reads as it always did."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tactful.service import create_app
from tactful.service.config import Settings
from tactful.service.deps import get_runtime
from tactful.service.errors import ApiError
from tactful.service.runtime import Runtime
from tactful.store import open_store
from tactful.store.base import Store, StoreError
from tests.conftest import Clock


@dataclass
class Pair:
    """One store behind two apps: `fast` as served, `route` without the fast path."""

    fast: TestClient
    route: TestClient
    store: Store
    keys: dict[str, str]

    def auth(self, scope: str = "decide") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}


def _app(url: str, store: Store, clock: Clock, *, fast: bool) -> FastAPI:
    return create_app(Settings(database_url=url, decide_fast_path=fast), store=store, clock=clock)


@pytest.fixture
def pair(store_url: str, clock: Clock) -> Iterator[Pair]:
    store = open_store(store_url)
    keys = {}
    for scope in ("decide", "read"):
        _, keys[scope] = store.create_key([scope], name=f"test-{scope}", now=clock())
    with (
        TestClient(_app(store_url, store, clock, fast=True)) as fast,
        TestClient(_app(store_url, store, clock, fast=False)) as route,
    ):
        yield Pair(fast, route, store, keys)
    store.close()


def email(cid: str = "ann", **kw: object) -> dict[str, object]:
    return {"customer_id": cid, "channel": "email", "purpose": "marketing", **kw}


def test_the_fast_path_gives_the_routes_answer(pair: Pair) -> None:
    for proposal in (
        email(idempotency_key="k1"),  # allow, with unsubscribe links
        email(idempotency_key="k2"),  # defer: the 20 h gap
        {
            "customer_id": "bo",
            "channel": "sms",
            "purpose": "transactional",
            "idempotency_key": "k3",
        },
    ):
        first = pair.fast.post("/v1/decisions", json=proposal, headers=pair.auth())
        # The same idempotency key through the route replays the fast path's decision.
        again = pair.route.post("/v1/decisions", json=proposal, headers=pair.auth())
        assert first.status_code == again.status_code == 200
        assert first.headers["content-type"] == again.headers["content-type"]
        assert {**again.json(), "replayed": False} == first.json()
        # And a replay through the fast path is byte for byte the route's replay.
        replay = pair.fast.post("/v1/decisions", json=proposal, headers=pair.auth())
        assert replay.content == again.content


BAD: list[tuple[str, dict[str, str] | None, bytes, str | None]] = [
    ("no key", None, b'{"customer_id":"ann","channel":"email","purpose":"marketing"}', None),
    ("wrong scope", "read", b'{"customer_id":"ann","channel":"email","purpose":"marketing"}', None),
    (
        "bad field",
        "decide",
        b'{"customer_id":"ann","channel":"E MAIL","purpose":"marketing"}',
        None,
    ),
    ("unknown field", "decide", b'{"customer_id":"a","channel":"email","purpose":"x","y":1}', None),
    ("missing field", "decide", b'{"customer_id":"ann"}', None),
    ("not JSON", "decide", b'{"customer_id": ', None),
    ("empty body", "decide", b"", None),
    ("a list", "decide", b"[]", None),
    ("form content", "decide", b"customer_id=ann", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize(("case", "scope", "body", "content_type"), BAD, ids=[b[0] for b in BAD])
def test_every_other_request_is_answered_by_the_route(
    pair: Pair, case: str, scope: str | None, body: bytes, content_type: str | None
) -> None:
    headers = pair.auth(scope) if scope else {}
    headers["Content-Type"] = content_type or "application/json"
    fast = pair.fast.post("/v1/decisions", content=body, headers=headers)
    route = pair.route.post("/v1/decisions", content=body, headers=headers)
    assert fast.status_code == route.status_code and fast.status_code in (401, 403, 422), case
    assert fast.json() == route.json(), case
    assert fast.headers.get("www-authenticate") == route.headers.get("www-authenticate")


def test_which_requests_take_the_fast_path(pair: Pair) -> None:
    """With the route's runtime dependency failing, only the fast path can answer 200."""

    async def no_route() -> Runtime:
        raise ApiError(418, "the_route", "the route was asked")

    app = pair.fast.app
    assert isinstance(app, FastAPI)
    app.dependency_overrides[get_runtime] = no_route
    ok = pair.fast.post("/v1/decisions", json=email(), headers=pair.auth())
    assert ok.status_code == 200 and ok.json()["verdict"] == "allow"
    # A proposal with an unset content type is JSON to FastAPI, and to the fast path.
    raw = pair.fast.post(
        "/v1/decisions", content=b'{"customer_id":"cy","channel":"sms","purpose":"service"}',
        headers={**pair.auth(), "Content-Type": ""},
    )  # fmt: skip
    assert raw.status_code == 200, raw.text
    # Big bodies, other paths and methods, bad requests: the route.
    big = b" " * (70 * 1024) + json.dumps(email("dee")).encode()
    for response in (
        pair.fast.post("/v1/decisions", content=big, headers=pair.auth()),
        pair.fast.post("/v1/decisions", json={"customer_id": ""}, headers=pair.auth()),
        pair.fast.post("/v1/decisions/batch", json={"proposals": [email()]}, headers=pair.auth()),
    ):
        assert response.status_code == 418, response.text


def test_a_store_failure_reads_as_the_route_makes_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object, **kwargs: object) -> None:
        raise StoreError("the database is gone")

    monkeypatch.setattr(pair.store, "decide", down)
    monkeypatch.setattr(pair.store, "decide_many", down)
    fast = pair.fast.post("/v1/decisions", json=email(), headers=pair.auth())
    route = pair.route.post("/v1/decisions", json=email(), headers=pair.auth())
    assert fast.status_code == route.status_code == 503
    assert fast.json() == route.json() and fast.json()["error"] == "store_unavailable"
    assert fast.headers["retry-after"] == route.headers["retry-after"] == "5"


def test_a_store_failure_while_checking_the_key_reads_as_the_route_makes_it(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(secret: str) -> None:
        raise StoreError("the database is gone")

    monkeypatch.setattr(pair.store, "check_key", down)
    fast = pair.fast.post("/v1/decisions", json=email(), headers=pair.auth())
    route = pair.route.post("/v1/decisions", json=email(), headers=pair.auth())
    assert fast.status_code == route.status_code == 503
    assert fast.json() == route.json()
