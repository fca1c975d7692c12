"""Per-call prices of a model: web searches and requests (USD per 1,000 calls), and their source;
its long-context tiers (the second source's, stored with the price as a refresh wrote them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = ("web_search_usd_per_thousand", "request_usd_per_thousand")


def upgrade() -> None:
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        for column in _COLUMNS:
            batch_op.add_column(sa.Column(column, sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("call_prices_source", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("long_context_tiers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.drop_column("long_context_tiers")
        batch_op.drop_column("call_prices_source")
        for column in reversed(_COLUMNS):
            batch_op.drop_column(column)
