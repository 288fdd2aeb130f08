"""The latest opt-in that lifted each address's suppressions, per scope, so that an
older opt-out arriving later does not suppress the address again.

Revision ID: 0006_address_lifts
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_address_lifts"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here rather than taken from tactful.store.sql (see 0001).
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "address_lifts",
        sa.Column("value_hash", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("at", Time, nullable=False),
        sa.PrimaryKeyConstraint("value_hash", "channel", "purpose", name="pk_address_lifts"),
    )


def downgrade() -> None:
    op.drop_table("address_lifts")
