"""Price baselines (the last accepted non-null price of each model and kind), longer hold
reasons, and each run's worker and phase.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The kinds as model_price names their columns (domain.PriceKind at this revision).
_KINDS = ("input", "output", "cache_read", "cache_write")


def upgrade() -> None:
    op.create_table(
        "price_baseline",
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("usd_per_million", sa.Text(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_id"], ["snapshot.id"]),
        sa.PrimaryKeyConstraint("model_id", "kind"),
    )
    with op.batch_alter_table("held_price", schema=None) as batch_op:
        batch_op.alter_column(
            "reason", existing_type=sa.String(length=16), type_=sa.String(length=32)
        )
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("phase", sa.String(length=16), nullable=True))
    _backfill()


def _backfill() -> None:
    """Baselines from what is served now, then, for input and output, from the price history
    (the last non-null figure of a model whose current price is unknown)."""
    bind = op.get_bind()
    now = datetime.now(UTC)
    found: dict[tuple[str, str], tuple[str, int]] = {}
    history = bind.execute(
        sa.text(
            "SELECT model_id, input_usd_per_million, output_usd_per_million, snapshot_id "
            "FROM price_history ORDER BY valid_from, id"
        )
    )
    for model_id, input_usd, output_usd, snapshot_id in history:
        for kind, value in (("input", input_usd), ("output", output_usd)):
            if value is not None:
                found[(model_id, kind)] = (value, snapshot_id)
    columns = ", ".join(f"{kind}_usd_per_million" for kind in _KINDS)
    current = bind.execute(sa.text(f"SELECT model_id, snapshot_id, {columns} FROM model_price"))  # noqa: S608
    for model_id, snapshot_id, *values in current:
        for kind, value in zip(_KINDS, values, strict=True):
            if value is not None:
                found[(model_id, kind)] = (value, snapshot_id)
    if not found:
        return
    table = sa.table(
        "price_baseline",
        sa.column("model_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("usd_per_million", sa.Text),
        sa.column("accepted_at", sa.DateTime(timezone=True)),
        sa.column("snapshot_id", sa.Integer),
    )
    op.bulk_insert(
        table,
        [
            {
                "model_id": model_id,
                "kind": kind,
                "usd_per_million": value,
                "accepted_at": now,
                "snapshot_id": snapshot_id,
            }
            for (model_id, kind), (value, snapshot_id) in sorted(found.items())
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.drop_column("phase")
        batch_op.drop_column("worker")
    op.execute("UPDATE held_price SET reason = substr(reason, 1, 16) WHERE length(reason) > 16")
    with op.batch_alter_table("held_price", schema=None) as batch_op:
        batch_op.alter_column(
            "reason", existing_type=sa.String(length=32), type_=sa.String(length=16)
        )
    op.drop_table("price_baseline")
