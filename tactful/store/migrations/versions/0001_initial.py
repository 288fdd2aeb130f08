"""The initial tables: settings (with the installation secret), customers, addresses,
events, contacts, decisions, policies, api_keys, suppressions.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than taken from tactful.store.sql, so that this migration keeps
# creating the same schema when the table definitions move on.
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
    settings = op.create_table(
        "settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    # The installation secret: signs customer links and keys the suppression hashes.
    op.bulk_insert(settings, [{"key": "secret", "value": os.urandom(32)}])

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("profile", Json, nullable=False),
        sa.Column("created", Time, nullable=False),
        sa.Column("updated", Time, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_customers"),
    )

    op.create_table(
        "addresses",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value_hash", "customer_id", name="pk_addresses"),
        _customer_fk("addresses"),
    )
    op.create_index("ix_addresses_customer_id", "addresses", ["customer_id"])

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column("properties", Json, nullable=False),
        sa.Column("received_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        _customer_fk("events"),
        sa.UniqueConstraint("customer_id", "event_id", name="uq_events_customer_id_event_id"),
    )
    op.create_index("ix_events_customer_id_at", "events", ["customer_id", "at"])

    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(255), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("hold_expires", Time, nullable=True),
        sa.Column("trigger_event", sa.String(64), nullable=True),
        sa.Column("trigger_at", Time, nullable=True),
        sa.Column("offer", sa.String(255), nullable=True),
        sa.Column("campaign", sa.String(255), nullable=True),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("flags", Json, nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.PrimaryKeyConstraint("contact_id", name="pk_contacts"),
        _customer_fk("contacts"),
    )
    op.create_index("ix_contacts_customer_id_at", "contacts", ["customer_id", "at"])

    op.create_table(
        "decisions",
        sa.Column("decision_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=True),
        sa.Column("campaign", sa.String(255), nullable=True),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("not_before", Time, nullable=True),
        sa.Column("reasons", Json, nullable=False),
        sa.Column("flags", Json, nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("policy_name", sa.String(255), nullable=False),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("decided_at", Time, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("proposal", Json, nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name="pk_decisions"),
        _customer_fk("decisions"),
        sa.UniqueConstraint("idempotency_key", name="uq_decisions_idempotency_key"),
    )
    op.create_index(
        "ix_decisions_customer_id_decided_at", "decisions", ["customer_id", "decided_at"]
    )
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at"])

    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies"),
    )
    op.create_index(
        "ix_policies_one_active",
        "policies",
        ["active"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("scopes", Json, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )

    op.create_table(
        "suppressions",
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scope_channel", sa.String(64), nullable=True),
        sa.Column("scope_purpose", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_suppressions"),
    )


def downgrade() -> None:
    for table in (
        "suppressions",
        "api_keys",
        "policies",
        "decisions",
        "contacts",
        "events",
        "addresses",
        "customers",
        "settings",
    ):
        op.drop_table(table)
