"""Join the identity and delivery branches into one head, so later migrations have one
parent again.

Revision ID: 0005
Revises: 0003_identity, 0004_delivery
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005"
down_revision: str | Sequence[str] | None = ("0003_identity", "0004_delivery")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: both branches' tables are in place."""


def downgrade() -> None:
    """Nothing to undo."""
