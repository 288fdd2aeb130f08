"""The queue: deferred proposals kept until they are allowed (`on_defer: "queue"`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from tactful.engine import pin_trigger
from tactful.model import ContactProposal, Decision, Verdict
from tactful.service.delivery_schemas import QueuedItemOut, QueueOut
from tactful.service.deps import DecideKey, ReadKey, RuntimeDep
from tactful.service.runtime import Runtime
from tactful.service.schemas import DecisionOut, ErrorOut, QueuedOut, Responses
from tactful.store.base import StoreError
from tactful.store.delivery import QueuedItem, delivery_store
from tactful.store.sql import proposal_data

router = APIRouter(prefix="/v1/queue", tags=["queue"])

ERRORS: Responses = {
    401: {"model": ErrorOut, "description": "No or unknown API key."},
    403: {"model": ErrorOut, "description": "The key lacks the scope."},
}

Render = Callable[[Runtime, ContactProposal, Decision, bool], DecisionOut]


def decide_or_queue(
    runtime: Runtime, proposal: ContactProposal, expires_at: datetime | None, render: Render
) -> DecisionOut:
    """Decide; a defer (with `not_before` no later than `expires_at`) is stored in the
    queue in the decision's own transaction, and the answer says where."""
    ds = delivery_store(runtime.store)
    now = runtime.clock()
    if proposal.customer_id and proposal.trigger is not None and proposal.trigger.at is None:
        # Kept and decided again later: with the time of its trigger, as decided now.
        proposal = pin_trigger(runtime.store.load_state(proposal.customer_id), proposal, now)
    found: list[QueuedItem] = []
    also = ds.queue_on_defer(
        proposal, proposal_data(proposal), expires_at=expires_at, now=now, found=found
    )
    try:
        decision, replayed = runtime.decide(proposal, also=also)
    except StoreError as error:
        return unavailable(runtime, proposal, error)
    out = render(runtime, proposal, decision, replayed)
    item = found[0] if found else None
    if item is None and replayed and decision.verdict is Verdict.DEFER and decision.decision_id:
        item = ds.queued_for_decision(decision.decision_id)
    if item is not None:
        out.queued = QueuedOut(id=item.id, due_at=item.due_at, expires_at=item.expires_at)
    return out


def unavailable(runtime: Runtime, proposal: ContactProposal, error: StoreError) -> DecisionOut:
    """The answer to a decision while the store is down: a transactional allow if the
    settings say so, else the error (503). Every decide route answers so."""
    fallback = runtime.unavailable_decision(proposal)
    if fallback is None:
        raise error
    return DecisionOut.of(fallback)


@router.get("", response_model=QueueOut, responses=ERRORS, summary="Queued proposals")
def list_queue(
    runtime: RuntimeDep,
    key: ReadKey,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    status: Literal["queued", "released", "dropped", "cancelled"] | None = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> QueueOut:
    """Proposals kept on defer, soonest due first: `queued` (waiting), `released` (allowed:
    the hold was placed and the sender notified), `dropped` (denied or expired, with
    `reasons`) or `cancelled`."""
    items = delivery_store(runtime.store).list_queue(
        customer_id=customer_id, status=status, source=source, limit=limit
    )
    return QueueOut(items=[QueuedItemOut.of(i) for i in items])


@router.get(
    "/{queued_id}",
    response_model=QueuedItemOut,
    responses={**ERRORS, 404: {"model": ErrorOut}},
    summary="One queued proposal",
)
def get_queued(queued_id: str, runtime: RuntimeDep, key: ReadKey) -> QueuedItemOut:
    return QueuedItemOut.of(delivery_store(runtime.store).get_queued(queued_id))


@router.delete(
    "/{queued_id}",
    response_model=QueuedItemOut,
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    summary="Withdraw a queued proposal",
)
def cancel_queued(queued_id: str, runtime: RuntimeDep, key: DecideKey) -> QueuedItemOut:
    """It will not be decided again (409 once it was released or dropped)."""
    item = delivery_store(runtime.store).cancel_queued(queued_id, now=runtime.clock())
    return QueuedItemOut.of(item)
