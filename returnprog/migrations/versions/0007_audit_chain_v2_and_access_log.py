"""Audit chain version 2 (every column hashed) and the access log.

``audit_event.chain_version`` says which formula an event was hashed with: existing rows
are version 1 (``ip`` and ``actor_id`` outside the hash) and keep verifying as they were;
new events are version 2. Looks at personal data move out of the chain into
``access_log`` (DESIGN §5); view events already in the chain stay where they are — the
chain is append-only.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_version", sa.Integer(), nullable=False,
                                      server_default="1"))
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("view", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("ip", sqlmodel.sql.sqltypes.AutoString(length=45), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("actor", "case_id", "view", "subject", "interval",
                            name="uq_access_log_look"),
    )
    op.create_index("ix_access_log_case", "access_log", ["case_id", "first_at"])


def downgrade():
    op.drop_index("ix_access_log_case", table_name="access_log")
    op.drop_table("access_log")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("chain_version")
