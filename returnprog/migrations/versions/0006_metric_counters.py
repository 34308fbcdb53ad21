"""Metric counters: named counts per day (``metric_counter``).

Anonymous uploads to the public verification page used to write one audit event each, so
any visitor could grow the audit chain and serialise on its head row. They are counted
here instead (name, day, count), incremented by an upsert.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "metric_counter",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "day"),
    )


def downgrade():
    op.drop_table("metric_counter")
