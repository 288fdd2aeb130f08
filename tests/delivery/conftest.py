"""Deferred-delivery tests: the service (TestClient) and a worker on one store, each
store kind, with one injected clock; webhooks go to a real local receiver."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tactful.service import create_app
from tactful.service.config import Settings
from tactful.store import open_store
from tactful.store.base import Store
from tactful.worker import Worker
from tests.conftest import Clock
from tests.delivery.receiver import Receiver


@dataclass
class Desk:
    """The service, its worker and a receiver, all on the test's clock."""

    client: TestClient
    store: Store
    clock: Clock
    worker: Worker
    receiver: Receiver
    keys: dict[str, str]

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def post(self, path: str, json: Any = None, scope: str = "admin") -> Any:
        r = self.client.post(path, json=json, headers=self.auth(scope))
        assert r.status_code < 300, r.text
        return r.json()

    def get(self, path: str, scope: str = "read", **params: Any) -> Any:
        r = self.client.get(path, headers=self.auth(scope), params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def subscribe(self, source: str | None) -> str:
        body: dict[str, Any] = {"url": self.receiver.url, "secret": self.receiver.secret}
        if source is not None:
            body["source"] = source
        return str(self.post("/v1/webhooks", body)["id"])

    def work(self) -> None:
        """Let the worker do everything due now."""
        tally = self.worker.run_until_idle()
        assert not tally.errors, tally.errors


@pytest.fixture
def desk(store_url: str, clock: Clock) -> Iterator[Desk]:
    store = open_store(store_url)
    keys = {}
    for scope in ("decide", "ingest", "read", "admin"):
        _, keys[scope] = store.create_key([scope], name=f"test-{scope}", now=clock())
    settings = Settings(database_url=store_url, worker_retry_base_seconds=30)
    app = create_app(settings, store=store, clock=clock)
    with Receiver(clock=clock) as receiver, TestClient(app) as client:
        worker = Worker(client.app.state.runtime, name="test-worker")  # type: ignore[attr-defined]
        yield Desk(client, store, clock, worker, receiver, keys)
    store.close()
