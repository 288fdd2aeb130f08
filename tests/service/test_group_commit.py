"""Decision requests that reach the service at the same moment are decided in one
transaction, with one commit (`Runtime.decide_soon`): each answer is what deciding them
one after another would give, and every answered decision is in the audit log."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from tactful import ContactProposal, CustomerProfile, Verdict
from tactful.service import create_app
from tactful.service.config import Settings
from tactful.service.runtime import Runtime
from tactful.store import open_store
from tactful.store.base import DecideCall, DecideResult, StoreError
from tactful.store.sql import SqlStore
from tests.conftest import Clock
from tests.service.conftest import Service


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    opened = open_store(store_url)
    assert isinstance(opened, SqlStore)
    yield opened
    opened.close()


def spy(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every `decide_many` the store is asked for."""
    sizes: list[int] = []
    real = store.decide_many

    def recorded(calls: Sequence[DecideCall]) -> list[DecideResult]:
        sizes.append(len(calls))
        return real(calls)

    monkeypatch.setattr(store, "decide_many", recorded)
    return sizes


#: Groups decided on the event loop, and in the decide thread (`Settings.decide_thread`).
WHERE = pytest.mark.parametrize("in_thread", [False, True], ids=["loop", "thread"])


@WHERE
def test_proposals_arriving_together_share_a_transaction(
    store: SqlStore, store_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch, in_thread: bool
) -> None:
    for customer in ("ann", "bob", "cy", "dee"):
        store.put_profile(CustomerProfile(customer, timezone="America/Chicago", country="US"))
    settings = Settings(database_url=store_url, decide_thread=in_thread)
    runtime = Runtime(settings, store, clock=clock)
    # The same questions one after another, for twins of the customers.
    for customer in ("ann-twin", "bob-twin"):
        store.put_profile(CustomerProfile(customer, timezone="America/Chicago", country="US"))
    alone = [
        runtime.decide(ContactProposal(f"{c}-twin", "email", "marketing"))[0].verdict
        for c in ("ann", "ann", "ann", "bob", "bob", "bob")
    ]
    sizes = spy(store, monkeypatch)
    proposals = [ContactProposal(c, "email", "marketing") for c in ("ann", "bob") * 3]
    proposals += [ContactProposal("cy", "sms", "service", idempotency_key="same")] * 2
    proposals.append(ContactProposal("dee", "push", "service"))

    async def together() -> list[tuple[Any, bool]]:
        return await asyncio.gather(*(runtime.decide_soon(p) for p in proposals))

    answers = asyncio.run(together())
    runtime.close()
    assert sizes == [len(proposals)]
    by_customer = {
        c: [a[0].verdict for p, a in zip(proposals, answers, strict=True) if p.customer_id == c]
        for c in ("ann", "bob")
    }
    assert by_customer["ann"] == alone[:3] and by_customer["bob"] == alone[3:]
    assert Verdict.ALLOW in alone and Verdict.DEFER in alone
    (first, replayed_first), (second, replayed_second) = answers[6], answers[7]
    assert {replayed_first, replayed_second} == {False, True}
    assert first.decision_id == second.decision_id
    for decision, _ in answers:
        assert store.get_decision(decision.decision_id, now=clock()) is not None


@WHERE
def test_concurrent_requests_are_answered_after_one_commit(
    store: SqlStore, store_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch, in_thread: bool
) -> None:
    _, key = store.create_key(["decide"], name="test", now=clock())
    settings = Settings(database_url=store_url, worker=False, decide_thread=in_thread)
    app = create_app(settings, store=store, clock=clock)
    sizes = spy(store, monkeypatch)
    bodies = [
        {"customer_id": f"c{i % 7}", "channel": ("sms", "push", "email")[i % 3],
         "purpose": "service", "idempotency_key": f"k{i}"}
        for i in range(24)
    ]  # fmt: skip

    async def requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
        ):
            headers = {"Authorization": f"Bearer {key}"}
            return await asyncio.gather(
                *(client.post("/v1/decisions", json=b, headers=headers) for b in bodies)
            )

    responses = asyncio.run(requests())
    assert [r.status_code for r in responses] == [200] * len(bodies), responses[0].text
    assert sum(sizes) == len(bodies) and max(sizes) > 1
    # Operators see the groups in /metrics.
    exposed = generate_latest(app.state.runtime.metrics.registry).decode()
    assert f"tactful_decision_group_size_sum {float(len(bodies))}" in exposed
    assert f"tactful_decision_group_size_count {float(len(sizes))}" in exposed
    for response in responses:
        found = store.get_decision(response.json()["decision_id"], now=clock())
        assert found is not None and found.verdict == response.json()["verdict"]


def test_the_next_group_gathers_while_one_is_in_the_decide_thread(
    store: SqlStore, store_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(Settings(database_url=store_url, decide_thread=True), store, clock=clock)
    sizes: list[int] = []
    first_in, let_go = threading.Event(), threading.Event()
    real = store.decide_many

    def held_up(calls: Sequence[DecideCall]) -> list[DecideResult]:
        sizes.append(len(calls))
        if len(sizes) == 1:
            first_in.set()
            # The first group stays in the database until the loop has done more work.
            assert let_go.wait(10), "the event loop stalled while a group was deciding"
        return real(calls)

    monkeypatch.setattr(store, "decide_many", held_up)

    async def scenario() -> list[tuple[Any, bool]]:
        first = asyncio.ensure_future(
            runtime.decide_soon(ContactProposal("ann", "push", "service"))
        )
        while not first_in.is_set():
            await asyncio.sleep(0.001)
        # The loop is free: these arrive, one turn after another, and wait together.
        later = []
        for customer in ("bob", "cy", "dee", "eve"):
            later.append(asyncio.ensure_future(runtime.decide_soon(
                ContactProposal(customer, "push", "service"))))  # fmt: skip
            await asyncio.sleep(0)
        assert not first.done() and sizes == [1]
        let_go.set()
        return await asyncio.gather(first, *later)

    answers = asyncio.run(scenario())
    runtime.close()
    assert sizes == [1, 4]
    assert [a[0].verdict for a in answers] == [Verdict.ALLOW] * 5
    for decision, _ in answers:
        assert store.get_decision(decision.decision_id, now=clock()) is not None


def test_a_closed_decide_thread_fails_requests_instead_of_leaving_them_waiting(
    store: SqlStore, store_url: str, clock: Clock
) -> None:
    runtime = Runtime(Settings(database_url=store_url, decide_thread=True), store, clock=clock)
    runtime.close()
    with pytest.raises(StoreError, match="not deciding any more"):
        asyncio.run(
            asyncio.wait_for(runtime.decide_soon(ContactProposal("ann", "push", "service")), 5)
        )


def test_the_decide_thread_is_on_where_the_store_is_a_server(
    store: SqlStore, store_url: str, clock: Clock
) -> None:
    runtime = Runtime(Settings(database_url=store_url), store, clock=clock)
    assert (runtime._decider is not None) == store_url.startswith("postgresql")
    runtime.close()


def test_a_batch_request_is_one_transaction_in_priority_order(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = service.store
    assert isinstance(store, SqlStore)
    sizes = spy(store, monkeypatch)
    email = {"customer_id": "ann", "channel": "email", "purpose": "marketing"}
    proposals = [
        {**email, "campaign": "low", "priority": 1},
        {**email, "campaign": "high", "priority": 9},
        {**email, "customer_id": "bob", "campaign": "other"},
    ]
    out = service.post("/v1/decisions/batch", {"proposals": proposals}).json()["decisions"]
    assert sizes == [3]
    assert [d["verdict"] for d in out] == ["defer", "allow", "allow"]
    for decision in out:
        assert store.get_decision(decision["decision_id"], now=service.clock()) is not None
    # A defer to queue goes one by one, as a single request would.
    queued = [{**email, "customer_id": "cy"}, {**email, "customer_id": "cy", "on_defer": "queue"}]
    again = service.post("/v1/decisions/batch", {"proposals": queued}).json()["decisions"]
    assert sizes == [3] and [d["verdict"] for d in again] == ["allow", "defer"]
    assert again[1]["queued"] is not None
