"""Segment's HTTP Tracking API, so analytics SDKs send events to tactful unmodified.

Point an SDK's host at tactful and use an API key with the `ingest` scope as the write
key (HTTP Basic user, as Segment's libraries send it). Good messages of a batch are
stored even when others are bad; the bad ones are listed with their index and field.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from tactful.ingest import (
    MAX_BATCH_BYTES,
    IngestError,
    SegmentMessage,
    translate_batch,
    translate_message,
)
from tactful.model import CustomerProfile, Event
from tactful.service.deps import IngestKey, RuntimeDep
from tactful.service.errors import ApiError
from tactful.service.runtime import Runtime
from tactful.service.schemas import ErrorOut

router = APIRouter(prefix="/v1", tags=["segment"])

_TIME = {"type": "string", "format": "date-time"}
_COMMON: dict[str, Any] = {
    "userId": {"type": "string", "minLength": 1},
    "anonymousId": {"type": "string", "minLength": 1},
    "messageId": {"type": "string", "minLength": 1},
    "timestamp": _TIME,
    "originalTimestamp": _TIME,
    "sentAt": _TIME,
    "context": {"type": "object"},
    "integrations": {"type": "object"},
}
_SPECIFIC: dict[str, tuple[dict[str, Any], list[str]]] = {
    "track": ({"event": {"type": "string", "minLength": 1}, "properties": {"type": "object"}},
              ["event"]),
    "identify": ({"traits": {"type": "object"}}, []),
    "page": ({"name": {"type": "string"}, "properties": {"type": "object"}}, []),
    "screen": ({"name": {"type": "string"}, "properties": {"type": "object"}}, []),
    "alias": ({"previousId": {"type": "string", "minLength": 1}}, ["previousId", "userId"]),
    "group": ({"groupId": {"type": "string", "minLength": 1}, "traits": {"type": "object"}},
              ["groupId"]),
}  # fmt: skip


def message_schema(kind: str, *, typed: bool) -> dict[str, Any]:
    """JSON Schema of one Segment message of `kind` (Segment's HTTP Tracking API)."""
    props, required = _SPECIFIC[kind]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {**_COMMON, **props, "type": {"type": "string", "enum": [kind]}},
        "required": [*required, *(["type"] if typed else [])],
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    }
    return schema


def _body_doc(schema: dict[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


TRACK_EXAMPLE = {
    "userId": "cust-1042",
    "event": "Checkout Started",
    "timestamp": "2026-11-24T14:02:00Z",
    "messageId": "ajs-5521",
    "context": {"timezone": "America/Chicago"},
}
BATCH_BODY = _body_doc(
    {
        "type": "object",
        "properties": {
            "batch": {
                "type": "array",
                "minItems": 1,
                "items": {"oneOf": [message_schema(k, typed=True) for k in _SPECIFIC]},
            },
            "context": {"type": "object"},
            "sentAt": _TIME,
        },
        "required": ["batch"],
    },
    {"batch": [{"type": "track", **TRACK_EXAMPLE}]},
)

RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not a Segment payload."},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    413: {"model": ErrorOut},
}


class SegmentOut(BaseModel):
    success: bool = True
    accepted: int = Field(description="Events stored now (duplicates are not counted).")
    messages: int
    errors: list[dict[str, Any]] = Field(default_factory=list)


async def _body(request: Request) -> bytes:
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            raw = d.decompress(raw, MAX_BATCH_BYTES + 1)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise ApiError(
                400, "bad_encoding", f"the {encoding} body could not be decoded"
            ) from exc
    if len(raw) > MAX_BATCH_BYTES:
        raise ApiError(413, "too_large", f"at most {MAX_BATCH_BYTES} bytes per request")
    return raw


def store_messages(runtime: Runtime, messages: tuple[SegmentMessage, ...]) -> int:
    """Join ids (alias; identify with both ids), apply profile changes and store the events
    of translated messages. A join makes the anonymous browsing count for the signed-in
    customer (sessions, checkouts) and both ids' contacts count against the same caps."""
    store = runtime.store
    now = runtime.clock()
    events: list[Event] = []
    for m in messages:
        if m.alias is not None:
            previous, user = m.alias
            store.merge(
                [previous, user], at=m.at, via="segment-alias", reference=m.message_id, now=now
            )
        elif m.user_id and m.anonymous_id and m.user_id != m.anonymous_id:
            # Any message carrying both ids says they are one visitor (Segment sends both
            # from the moment of identify on).
            store.merge(
                [m.anonymous_id, m.user_id],
                at=m.at,
                via=f"segment-{m.type}",
                reference=m.message_id,
                now=now,
            )
        if not m.profile_patch.empty:
            current = store.get_profile(m.customer_id) or CustomerProfile(m.customer_id)
            store.put_profile(m.profile_patch.apply(current))
        events.extend(m.events)
    accepted = store.add_events(events, received_at=now) if events else 0
    runtime.metrics.events.labels("segment").inc(accepted)
    return accepted


def _errors(errors: tuple[IngestError, ...]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in errors]


@router.post(
    "/batch",
    response_model=SegmentOut,
    responses=RESPONSES,
    openapi_extra=BATCH_BODY,
    summary="Segment batch",
)
async def segment_batch(request: Request, runtime: RuntimeDep, key: IngestKey) -> SegmentOut:
    body = await _body(request)
    try:
        batch = translate_batch(body, runtime.clock())
    except IngestError as exc:
        raise ApiError(400, "invalid_payload", exc.as_dict()) from None
    if batch.errors and not batch.messages:
        raise ApiError(400, "invalid_payload", _errors(batch.errors))
    accepted = store_messages(runtime, batch.messages)
    return SegmentOut(accepted=accepted, messages=len(batch.messages), errors=_errors(batch.errors))


async def _single(request: Request, runtime: Runtime, endpoint: str) -> SegmentOut:
    body = await _body(request)
    try:
        message = translate_message(body, runtime.clock(), endpoint=endpoint)
    except IngestError as exc:
        raise ApiError(400, "invalid_payload", exc.as_dict()) from None
    accepted = store_messages(runtime, (message,))
    return SegmentOut(accepted=accepted, messages=1)


def _endpoint(name: str) -> None:
    async def handler(request: Request, runtime: RuntimeDep, key: IngestKey) -> SegmentOut:
        return await _single(request, runtime, name)

    handler.__name__ = f"segment_{name}"
    router.add_api_route(
        f"/{name}",
        handler,
        methods=["POST"],
        response_model=SegmentOut,
        responses=RESPONSES,
        openapi_extra=_body_doc(
            message_schema(name, typed=False),
            TRACK_EXAMPLE if name == "track" else {"userId": "cust-1042"},
        ),
        summary=f"Segment {name}",
    )


for _name in ("track", "identify", "page", "screen", "alias", "group"):
    _endpoint(_name)
