"""A service on SQLite for the dashboard and preference-centre tests, driven by TestClient
(the browser tests start a real `tactful serve`; see test_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tactful.service import create_app
from tactful.service.config import Settings
from tactful.service.runtime import Runtime
from tactful.store import open_store
from tactful.store.base import Store
from tests.conftest import Clock

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Web:
    client: TestClient
    store: Store
    clock: Clock
    keys: dict[str, str]

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        return runtime

    def sign_in(self, scope: str = "read") -> httpx.Response:
        page = self.client.get("/ui/sign-in")
        return self.client.post(
            "/ui/sign-in",
            data={"key": self.keys[scope], "csrf": csrf_of(page.text), "next": "/ui"},
            follow_redirects=False,
        )

    def form(self, path: str, data: dict[str, Any], *, page: str | None = None) -> httpx.Response:
        """POST a form with the CSRF token of the page it lives on (default: `path`)."""
        html = self.client.get(page or path).text
        return self.client.post(path, data={**data, "csrf": csrf_of(html)}, follow_redirects=False)

    def decide(self, customer: str, channel: str = "email", purpose: str = "marketing") -> Any:
        r = self.client.post(
            "/v1/decisions",
            json={"customer_id": customer, "channel": channel, "purpose": purpose},
            headers={"Authorization": f"Bearer {self.keys['decide']}"},
        )
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def web(tmp_path: Any, clock: Clock) -> Iterator[Web]:
    url = f"sqlite:///{tmp_path}/tactful.db"
    store = open_store(url)
    keys = {}
    for scope in ("decide", "ingest", "read", "admin"):
        _, keys[scope] = store.create_key([scope], name=f"{scope}-person", now=clock())
    settings = Settings(database_url=url, public_url="https://prefs.example.com")
    app = create_app(settings, store=store, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield Web(client, store, clock, keys)
    store.close()
