"""Customer signals in tactful's own vocabulary."""

from __future__ import annotations

from fastapi import APIRouter

from tactful.model import Event, utc
from tactful.service.deps import IngestKey, RuntimeDep
from tactful.service.schemas import ErrorOut, EventIn, EventsIn, IngestOut

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    response_model=IngestOut,
    responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    summary="Record customer events",
)
def ingest_events(body: EventsIn | EventIn, runtime: RuntimeDep, key: IngestKey) -> IngestOut:
    """One event, or `{"events": [...]}`. Each carries its own `timestamp` (event time, not
    arrival) and an optional `messageId`; a repeated `messageId` is stored once. The answer
    comes only after the events are durable, so an acknowledged opt-out is never lost."""
    items = body.events if isinstance(body, EventsIn) else [body]
    events = [
        Event(
            e.customer_id, e.event, utc(e.timestamp), event_id=e.messageId, properties=e.properties
        )
        for e in items
    ]
    accepted = runtime.store.add_events(events, received_at=runtime.clock())
    runtime.metrics.events.labels("api").inc(accepted)
    return IngestOut(accepted=accepted, duplicates=len(events) - accepted)
