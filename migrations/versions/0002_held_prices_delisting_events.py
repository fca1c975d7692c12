"""Held runs and prices, delisting, the change-feed table, unbounded decimal text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PRICE_COLUMNS = {
    "model_price": (
        "input_usd_per_million",
        "output_usd_per_million",
        "cache_read_usd_per_million",
        "cache_write_usd_per_million",
    ),
    "price_history": ("input_usd_per_million", "output_usd_per_million"),
}


def upgrade() -> None:
    for table, columns in _PRICE_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column, existing_type=sa.String(length=40), type_=sa.Text(), nullable=True
                )
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("accepted_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("rows_rejected", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("proposal", sa.JSON(), nullable=True))
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("listed", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("delisted_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "price_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_input_usd_per_million", sa.Text(), nullable=True),
        sa.Column("new_input_usd_per_million", sa.Text(), nullable=True),
        sa.Column("old_output_usd_per_million", sa.Text(), nullable=True),
        sa.Column("new_output_usd_per_million", sa.Text(), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshot.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("price_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_price_event_changed_at"), ["changed_at"], unique=False)
        batch_op.create_index(
            "ix_price_event_model_changed_at", ["model_id", "changed_at"], unique=False
        )
    op.create_table(
        "held_price",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("proposed_input_usd_per_million", sa.Text(), nullable=True),
        sa.Column("proposed_output_usd_per_million", sa.Text(), nullable=True),
        sa.Column("accepted_input_usd_per_million", sa.Text(), nullable=True),
        sa.Column("accepted_output_usd_per_million", sa.Text(), nullable=True),
        sa.Column("proposal", sa.JSON(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["refresh_run.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("held_price", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_price_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_price_run_id"), ["run_id"], unique=False)
    # The feed used to be derived from price_history; keep the changes it already showed.
    op.execute(
        "INSERT INTO price_event (model_id, kind, changed_at, old_input_usd_per_million,"
        " new_input_usd_per_million, old_output_usd_per_million, new_output_usd_per_million,"
        " snapshot_id)"
        " SELECT n.model_id, 'changed', n.valid_from, o.input_usd_per_million,"
        " n.input_usd_per_million, o.output_usd_per_million, n.output_usd_per_million,"
        " n.snapshot_id"
        " FROM price_history n JOIN price_history o"
        " ON o.model_id = n.model_id AND o.valid_to = n.valid_from"
    )


def downgrade() -> None:
    with op.batch_alter_table("held_price", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_price_run_id"))
        batch_op.drop_index(batch_op.f("ix_held_price_model_id"))
    op.drop_table("held_price")
    with op.batch_alter_table("price_event", schema=None) as batch_op:
        batch_op.drop_index("ix_price_event_model_changed_at")
        batch_op.drop_index(batch_op.f("ix_price_event_changed_at"))
    op.drop_table("price_event")
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.drop_column("delisted_at")
        batch_op.drop_column("listed")
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.drop_column("proposal")
        batch_op.drop_column("rows_rejected")
        batch_op.drop_column("accepted_by")
        batch_op.drop_column("accepted_at")
        batch_op.drop_column("held_reason")
    for table, columns in _PRICE_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.alter_column(
                    column, existing_type=sa.Text(), type_=sa.String(length=40), nullable=True
                )
