"""Deferred delivery: the queue of proposals waiting for `not_before`, call-back reminders,
outgoing webhook subscriptions, and the outbox of deliveries with their attempts.

Revision ID: 0004_delivery
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_delivery"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than taken from tactful.store.delivery, so that this migration
# keeps creating the same schema when the table definitions move on.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def _customer_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["customer_id"],
        ["customers.customer_id"],
        name=f"fk_{table}_customer_id_customers",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "queued",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("proposal", Json, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("lane", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("due_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision_id", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", Time, nullable=True),
        sa.Column("closed_at", Time, nullable=True),
        sa.Column("reasons", Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_queued"),
        _customer_fk("queued"),
    )
    op.create_index("ix_queued_status_lane_due_at", "queued", ["status", "lane", "due_at"])
    op.create_index("ix_queued_customer_id", "queued", ["customer_id"])

    op.create_table(
        "reminders",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("requested_at", Time, nullable=False),
        sa.Column("for_at", Time, nullable=False),
        sa.Column("due_at", Time, nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reminders"),
        sa.UniqueConstraint(
            "customer_id", "requested_at", name="uq_reminders_customer_id_requested_at"
        ),
        _customer_fk("reminders"),
    )
    op.create_index("ix_reminders_status_due_at", "reminders", ["status", "due_at"])

    op.create_table(
        "reminder_sync",
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("marked_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_reminder_sync"),
        _customer_fk("reminder_sync"),
    )

    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=True),
        sa.Column("payload", Json, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("next_attempt_at", Time, nullable=False),
        sa.Column("give_up_at", Time, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", Time, nullable=True),
        sa.Column("dead_at", Time, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["webhooks.id"], name="fk_outbox_webhook_id_webhooks"
        ),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])

    op.create_table(
        "delivery_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delivery_id", sa.String(64), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["outbox.id"],
            name="fk_delivery_attempts_delivery_id_outbox",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_delivery_attempts_delivery_id", "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    for table in (
        "delivery_attempts",
        "outbox",
        "webhooks",
        "reminder_sync",
        "reminders",
        "queued",
    ):
        op.drop_table(table)
