"""USD -> COP rates fetched from the TRM, with their validity dates and hold state.

Revision ID: 0007
Revises: 0006 (on this branch 0005: re-point to 0006 when the webhook outbox lands)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cop_rate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("rate", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "valid_from", "rate", name="uq_cop_rate"),
    )
    op.create_index(op.f("ix_cop_rate_status"), "cop_rate", ["status"], unique=False)
    op.create_index(op.f("ix_cop_rate_valid_from"), "cop_rate", ["valid_from"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_cop_rate_valid_from"), table_name="cop_rate")
    op.drop_index(op.f("ix_cop_rate_status"), table_name="cop_rate")
    op.drop_table("cop_rate")
