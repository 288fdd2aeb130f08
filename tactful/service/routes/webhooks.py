"""Provider webhooks: SendGrid's Event Webhook and Twilio's inbound SMS (STOP keywords).

Each accepts the provider's own signature when its secret is configured
(`TACTFUL_SENDGRID_VERIFICATION_KEY`, `TACTFUL_TWILIO_AUTH_TOKEN`), or an API key with the
`ingest` scope (both providers can put basic-auth credentials in the webhook URL).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from tactful.ingest import (
    IngestError,
    translate_sendgrid,
    translate_twilio_inbound,
    validate_twilio_signature,
    verify_sendgrid_signature,
)
from tactful.ingest.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tactful.model import Event
from tactful.service.deps import RuntimeDep, authorize
from tactful.service.errors import ApiError
from tactful.service.identity import customers_for
from tactful.service.runtime import Runtime
from tactful.service.schemas import ErrorOut
from tactful.store.base import Conflict, NotFound

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
}


class WebhookOut(BaseModel):
    accepted: int = Field(description="Events stored now (duplicates are not counted).")
    outcomes: int = 0
    unresolved: list[str] = Field(default_factory=list, description="Addresses of no customer.")
    errors: list[dict[str, Any]] = Field(default_factory=list)


def _authorize(request: Request, runtime: Runtime, signed: bool) -> None:
    if not signed:
        authorize(request, runtime, "ingest")


SENDGRID_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "email": {"type": "string", "format": "email"},
                            "timestamp": {"type": "integer", "minimum": 0},
                            "event": {"type": "string"},
                            "sg_event_id": {"type": "string", "minLength": 1},
                            "sg_message_id": {"type": "string"},
                        },
                        "required": ["email", "timestamp", "event", "sg_event_id"],
                    },
                },
                "example": [
                    {
                        "email": "ann@example.com",
                        "timestamp": 1795528800,
                        "event": "unsubscribe",
                        "sg_event_id": "sg-1",
                        "sg_message_id": "msg-1",
                    }
                ],
            }
        },
    }
}


@router.post(
    "/sendgrid",
    response_model=WebhookOut,
    responses=RESPONSES,
    openapi_extra=SENDGRID_BODY,
    summary="SendGrid Event Webhook",
)
async def sendgrid(request: Request, runtime: RuntimeDep) -> WebhookOut:
    body = await request.body()
    key = runtime.settings.sendgrid_verification_key
    signed = False
    if key and request.headers.get(SIGNATURE_HEADER):
        signed = verify_sendgrid_signature(
            key,
            body,
            request.headers.get(SIGNATURE_HEADER, ""),
            request.headers.get(TIMESTAMP_HEADER, ""),
        )
        if not signed:
            raise ApiError(401, "bad_signature", "The SendGrid signature does not verify.")
    _authorize(request, runtime, signed)
    groups = {int(k): v for k, v in runtime.settings.sendgrid_group_purposes.items()}
    try:
        batch = translate_sendgrid(body, runtime.clock(), group_purposes=groups)
    except IngestError as exc:
        raise ApiError(400, "invalid_payload", exc.as_dict()) from None
    events: list[Event] = []
    unresolved: list[str] = []
    outcomes = 0
    for item in batch.events:
        # Sent with a customer id (custom args), or from an address: every record holding
        # it gets the signal (an unsubscribe suppresses the address either way).
        cids = [item.customer_id] if item.customer_id else []
        if not cids and item.email:
            cids = customers_for(runtime.store, "email", item.email)
        if not cids:
            unresolved.append(item.email or item.event_id)
            continue
        for cid in cids:
            event = item.event(cid)
            if event is not None:
                events.append(event)
        if item.outcome is not None and item.decision_id:
            try:
                runtime.store.record_outcome(
                    item.decision_id, item.outcome.value, now=runtime.clock()
                )
                outcomes += 1
            except (NotFound, Conflict):
                pass  # a decision erased or unknown to this installation: nothing to update
    accepted = runtime.store.add_events(events, received_at=runtime.clock()) if events else 0
    runtime.metrics.events.labels("sendgrid").inc(accepted)
    return WebhookOut(
        accepted=accepted,
        outcomes=outcomes,
        unresolved=unresolved,
        errors=[e.as_dict() for e in batch.errors],
    )


TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@router.post(
    "/twilio",
    responses={
        **RESPONSES,
        200: {"content": {"application/xml": {}}, "description": "Empty TwiML."},
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "From": {"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"},
                            "To": {"type": "string"},
                            "Body": {"type": "string"},
                            "MessageSid": {"type": "string", "pattern": "^[A-Za-z0-9]{2,64}$"},
                        },
                        "required": ["From", "MessageSid"],
                    }
                }
            }
        }
    },
    summary="Twilio inbound SMS (STOP, START, replies)",
)
async def twilio(request: Request, runtime: RuntimeDep) -> Response:
    form = await request.form()
    params: dict[str, Any] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            params.setdefault(k, []).append(v)
    flat = {k: v[0] if len(v) == 1 else v for k, v in params.items()}
    token = runtime.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature")
    signed = False
    if token and signature:
        url = runtime.settings.base_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        signed = validate_twilio_signature(token, url, flat, signature)
        if not signed:
            raise ApiError(401, "bad_signature", "The Twilio signature does not verify.")
    _authorize(request, runtime, signed)
    try:
        sms = translate_twilio_inbound(flat, runtime.clock())
    except IngestError as exc:
        raise ApiError(400, "invalid_payload", exc.as_dict()) from None
    # Every record holding the number hears it (STOP suppresses the number for them all).
    found = [e for cid in customers_for(runtime.store, "phone", sms.phone) for e in sms.events(cid)]
    accepted = runtime.store.add_events(found, received_at=runtime.clock())
    runtime.metrics.events.labels("twilio").inc(accepted)
    # Twilio itself answers STOP/START with its standard message; tactful adds nothing.
    return Response(TWIML_EMPTY, media_type="application/xml")
