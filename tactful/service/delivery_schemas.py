"""The HTTP bodies of deferred delivery: the queue, webhook subscriptions, deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, HttpUrl

from tactful.service.schemas import Strict
from tactful.store.delivery import Attempt, Delivery, QueuedItem, Webhook


class QueuedItemOut(BaseModel):
    id: str
    customer_id: str
    status: Literal["queued", "released", "dropped", "cancelled"]
    priority: int
    source: str | None
    created_at: datetime
    due_at: datetime = Field(description="When it is (or was last) decided again.")
    expires_at: datetime | None
    decision_id: str | None = Field(description="The latest decision (the release's, once out).")
    attempts: int = Field(description="How many times it was decided again.")
    closed_at: datetime | None
    reasons: list[dict[str, Any]] = Field(description="Why it was dropped.")
    proposal: dict[str, Any]

    @classmethod
    def of(cls, i: QueuedItem) -> QueuedItemOut:
        return cls(
            id=i.id,
            customer_id=i.customer_id,
            status=i.status,
            priority=i.priority,
            source=i.source,
            created_at=i.created_at,
            due_at=i.due_at,
            expires_at=i.expires_at,
            decision_id=i.decision_id,
            attempts=i.attempts,
            closed_at=i.closed_at,
            reasons=list(i.reasons),
            proposal=i.proposal,
        )


class QueueOut(BaseModel):
    items: list[QueuedItemOut]


class WebhookIn(Strict):
    url: HttpUrl = Field(description="Where deliveries are POSTed (http or https).")
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The team or sender (a proposal's `source`, a call-back's owner) whose "
        "releases and reminders it receives; omit for all.",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="Signing secret (at least 16 characters); omit to have one made.",
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    source: str | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, w: Webhook) -> WebhookOut:
        return cls(id=w.id, url=w.url, source=w.source, active=w.active, created_at=w.created_at)


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="Shown once: verify `Tactful-Signature` with it.")


class WebhooksOut(BaseModel):
    webhooks: list[WebhookOut]


class AttemptOut(BaseModel):
    at: datetime
    status: int | None = Field(description="The receiver's HTTP status; null: no answer.")
    error: str | None
    duration_ms: float
    worker: str

    @classmethod
    def of(cls, a: Attempt) -> AttemptOut:
        return cls(
            at=a.at, status=a.status, error=a.error, duration_ms=a.duration_ms, worker=a.worker
        )


class DeliveryOut(BaseModel):
    id: str = Field(description="The `Tactful-Delivery` header: the same on every attempt.")
    webhook_id: str
    kind: str = Field(description="queue.released, queue.dropped or callback.due.")
    customer_id: str | None
    state: Literal["pending", "delivered", "dead"]
    created_at: datetime
    next_attempt_at: datetime
    give_up_at: datetime
    attempts: int
    delivered_at: datetime | None
    dead_at: datetime | None
    last_status: int | None
    last_error: str | None
    payload: dict[str, Any]
    history: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            kind=d.kind,
            customer_id=d.customer_id,
            state=d.state,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            give_up_at=d.give_up_at,
            attempts=d.attempts,
            delivered_at=d.delivered_at,
            dead_at=d.dead_at,
            last_status=d.last_status,
            last_error=d.last_error,
            payload=d.payload,
            history=[AttemptOut.of(a) for a in d.history],
        )


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
