from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tactful.service import create_app
from tactful.service.config import Settings
from tactful.service.runtime import Runtime
from tactful.store import open_store
from tactful.store.base import Store
from tests.conftest import Clock


@dataclass
class Service:
    client: TestClient
    store: Store
    clock: Clock
    keys: dict[str, str]

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        return runtime

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post(self, path: str, json: object = None, scope: str = "decide", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.post(path, json=json, headers=self.auth(scope), **kw)  # type: ignore[arg-type]

    def get(self, path: str, scope: str = "read", **kw: object):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=self.auth(scope), **kw)  # type: ignore[arg-type]


@pytest.fixture
def service(store_url: str, clock: Clock) -> Iterator[Service]:
    store = open_store(store_url)
    keys = {}
    for scope in ("decide", "ingest", "read", "admin"):
        _, keys[scope] = store.create_key([scope], name=f"test-{scope}", now=clock())
    settings = Settings(database_url=store_url, public_url="https://prefs.example.com")
    app = create_app(settings, store=store, clock=clock)
    with TestClient(app) as client:
        yield Service(client, store, clock, keys)
    store.close()
