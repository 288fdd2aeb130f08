"""Outgoing webhooks: subscriptions, and the deliveries made to them (see tactful.webhooks
for the signature a receiver checks)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from tactful.service.delivery_schemas import (
    DeliveriesOut,
    DeliveryOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookOut,
    WebhooksOut,
)
from tactful.service.deps import AdminKey, ReadKey, RuntimeDep
from tactful.service.schemas import ErrorOut, Responses
from tactful.store.delivery import delivery_store

router = APIRouter(prefix="/v1", tags=["webhooks"])

ERRORS: Responses = {
    401: {"model": ErrorOut, "description": "No or unknown API key."},
    403: {"model": ErrorOut, "description": "The key lacks the scope."},
}


@router.post(
    "/webhooks",
    response_model=WebhookCreatedOut,
    status_code=201,
    responses=ERRORS,
    summary="Subscribe a URL to releases and reminders",
)
def create_webhook(body: WebhookIn, runtime: RuntimeDep, key: AdminKey) -> WebhookCreatedOut:
    """Deliveries are JSON POSTs signed with the secret (`Tactful-Signature: t=..,v1=..`,
    HMAC-SHA256 over `"{t}.{body}"`), retried with exponential back-off for 72 hours. The
    secret is returned here only."""
    hook, secret = delivery_store(runtime.store).add_webhook(
        str(body.url), source=body.source, secret=body.secret, now=runtime.clock()
    )
    return WebhookCreatedOut(**WebhookOut.of(hook).model_dump(), secret=secret)


@router.get("/webhooks", response_model=WebhooksOut, responses=ERRORS, summary="Subscriptions")
def list_webhooks(runtime: RuntimeDep, key: ReadKey) -> WebhooksOut:
    hooks = delivery_store(runtime.store).list_webhooks()
    return WebhooksOut(webhooks=[WebhookOut.of(h) for h in hooks])


@router.delete(
    "/webhooks/{webhook_id}",
    response_model=WebhookOut,
    responses={**ERRORS, 404: {"model": ErrorOut}},
    summary="Remove a subscription",
)
def delete_webhook(webhook_id: str, runtime: RuntimeDep, key: AdminKey) -> WebhookOut:
    """Its pending deliveries are given up; their history stays."""
    hook = delivery_store(runtime.store).remove_webhook(webhook_id, now=runtime.clock())
    return WebhookOut.of(hook)


@router.get(
    "/deliveries", response_model=DeliveriesOut, responses=ERRORS, summary="Webhook deliveries"
)
def list_deliveries(
    runtime: RuntimeDep,
    key: ReadKey,
    state: Literal["pending", "delivered", "dead"] | None = None,
    webhook_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Literal["queue.released", "queue.dropped", "callback.due"] | None = None,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveriesOut:
    """Newest first, each with its attempts (time, HTTP status or error, duration)."""
    found = delivery_store(runtime.store).list_deliveries(
        state=state, webhook_id=webhook_id, kind=kind, customer_id=customer_id, limit=limit
    )
    return DeliveriesOut(deliveries=[DeliveryOut.of(d) for d in found])


@router.get(
    "/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    responses={**ERRORS, 404: {"model": ErrorOut}},
    summary="One delivery and its attempts",
)
def get_delivery(delivery_id: str, runtime: RuntimeDep, key: ReadKey) -> DeliveryOut:
    return DeliveryOut.of(delivery_store(runtime.store).get_delivery(delivery_id))


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    summary="Send a delivery again",
)
def redeliver(delivery_id: str, runtime: RuntimeDep, key: AdminKey) -> DeliveryOut:
    """Pending again from now, same delivery id (a receiver that has it ignores it), with a
    fresh 72-hour window. 409 if its webhook was removed."""
    found = delivery_store(runtime.store).redeliver(delivery_id, now=runtime.clock())
    return DeliveryOut.of(found)
