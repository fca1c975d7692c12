"""Second-source comparison on runs and held prices; benchmarks, speed and description on prices.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cross_agree", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cross_disagree", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cross_uncovered", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("second_source_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cross_source", sa.JSON(), nullable=True))
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.add_column(sa.Column("benchmarks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("tokens_per_second", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("time_to_first_token", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))
    with op.batch_alter_table("held_price", schema=None) as batch_op:
        batch_op.add_column(sa.Column("second_input_usd_per_million", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("second_output_usd_per_million", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("second_source", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("accepted_figure", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("held_price", schema=None) as batch_op:
        batch_op.drop_column("accepted_figure")
        batch_op.drop_column("second_source")
        batch_op.drop_column("second_output_usd_per_million")
        batch_op.drop_column("second_input_usd_per_million")
    with op.batch_alter_table("model_price", schema=None) as batch_op:
        batch_op.drop_column("description")
        batch_op.drop_column("time_to_first_token")
        batch_op.drop_column("tokens_per_second")
        batch_op.drop_column("benchmarks")
    with op.batch_alter_table("refresh_run", schema=None) as batch_op:
        batch_op.drop_column("cross_source")
        batch_op.drop_column("second_source_version")
        batch_op.drop_column("cross_uncovered")
        batch_op.drop_column("cross_disagree")
        batch_op.drop_column("cross_agree")
