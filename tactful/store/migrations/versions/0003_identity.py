"""Identity: customers.canonical_id (an id merged into another resolves to it), the
identity log of merges, and the suppression list by address (keyed hashes and scopes).

Revision ID: 0003_identity
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_identity"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than taken from tactful.store.sql (see 0001).
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("canonical_id", sa.String(255), nullable=True))
        batch.create_index("ix_customers_canonical_id", ["canonical_id"])

    op.create_table(
        "address_suppressions",
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("value_hash", "channel", "purpose", name="pk_address_suppressions"),
    )

    op.create_table(
        "identity_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("canonical_id", sa.String(255), nullable=False),
        sa.Column("merged_ids", Json, nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.Column("via", sa.String(64), nullable=False),
        sa.Column("reference", sa.String(255), nullable=True),
        sa.Column("recorded_at", Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_log"),
    )
    op.create_index("ix_identity_log_canonical_id", "identity_log", ["canonical_id"])


def downgrade() -> None:
    op.drop_index("ix_identity_log_canonical_id", table_name="identity_log")
    op.drop_table("identity_log")
    op.drop_table("address_suppressions")
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_canonical_id")
        batch.drop_column("canonical_id")
