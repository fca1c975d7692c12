"""Initial schema: refresh runs, snapshots, current prices, price history, refresh lock.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refresh_lock",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "refresh_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_seen", sa.Integer(), nullable=True),
        sa.Column("priced", sa.Integer(), nullable=True),
        sa.Column("unknown", sa.Integer(), nullable=True),
        sa.Column("changes", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("upstream_latency_ms", sa.Integer(), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refresh_run_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_refresh_run_status"), ["status"], unique=False)

    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("model_count", sa.Integer(), nullable=False),
        sa.Column("priced", sa.Integer(), nullable=False),
        sa.Column("unknown", sa.Integer(), nullable=False),
        sa.Column("field_names", sa.JSON(), nullable=False),
        sa.Column("unmatched_ids", sa.JSON(), nullable=False),
        sa.Column("raw_rows", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["refresh_run.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("snapshot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_snapshot_fetched_at"), ["fetched_at"], unique=False)

    op.create_table(
        "model_price",
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("input_usd_per_million", sa.String(length=40), nullable=True),
        sa.Column("output_usd_per_million", sa.String(length=40), nullable=True),
        sa.Column("cache_read_usd_per_million", sa.String(length=40), nullable=True),
        sa.Column("cache_write_usd_per_million", sa.String(length=40), nullable=True),
        sa.Column("price_basis", sa.String(length=16), nullable=False),
        sa.Column("context_window", sa.Integer(), nullable=True),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("input_modalities", sa.JSON(), nullable=False),
        sa.Column("output_modalities", sa.JSON(), nullable=False),
        sa.Column("pricing_source", sa.String(length=200), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshot.id"],
        ),
        sa.PrimaryKeyConstraint("model_id"),
    )
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_price_snapshot_id"), ["snapshot_id"], unique=False
        )

    op.create_table(
        "price_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("input_usd_per_million", sa.String(length=40), nullable=True),
        sa.Column("output_usd_per_million", sa.String(length=40), nullable=True),
        sa.Column("price_basis", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshot.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_price_history_model_valid_from", ["model_id", "valid_from"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_price_history_valid_from"), ["valid_from"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_price_history_valid_from"))
        batch_op.drop_index("ix_price_history_model_valid_from")

    op.drop_table("price_history")
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_price_snapshot_id"))

    op.drop_table("model_price")
    with op.batch_alter_table("snapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_snapshot_fetched_at"))

    op.drop_table("snapshot")
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_run_status"))
        batch_op.drop_index(batch_op.f("ix_refresh_run_started_at"))

    op.drop_table("refresh_run")
    op.drop_table("refresh_lock")
