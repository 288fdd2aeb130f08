"""The HTTP bodies of deferred delivery: the queue, webhook subscriptions, deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, HttpUrl

from tactful.service.schemas import Strict
from tactful.store.delivery import Delivery, QueuedItem, Webhook


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
        return cls.model_validate(i, from_attributes=True)


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
        return cls.model_validate(w, from_attributes=True)


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
        """The store's delivery, field for field (its attempts as `AttemptOut`)."""
        return cls.model_validate(d, from_attributes=True)


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]
