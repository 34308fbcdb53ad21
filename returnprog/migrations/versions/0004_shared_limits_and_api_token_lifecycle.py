"""Shared rate-limit counters, and API tokens with a label, an expiry and a revocation.

``rate_limit_counter`` holds the counters of the rate limits and sign-in throttles, so
that every worker and machine counts in one place (returnprog.limiter). ``api_token``
gains ``name``, ``expires_at``, ``revoked_at`` and ``revoked_by``. Tokens issued before
this revision get an expiry 30 days after the upgrade (the default ``API_TOKEN_DAYS``),
so integrations keep working for a grace period instead of failing at the upgrade.

Revision ID: 0004
Revises: 0003
"""
import datetime as dt

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FK_NAME = "fk_api_token_revoked_by_user"
GRACE_DAYS = 30


def upgrade():
    op.create_table(
        "rate_limit_counter",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_limit_counter_expires_at"), ["expires_at"],
                              unique=False)

    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100),
                                      nullable=False, server_default=""))
        batch_op.add_column(sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))
        batch_op.add_column(sa.Column("revoked_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(FK_NAME, "user", ["revoked_by"], ["id"])
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.alter_column("name", server_default=None)

    tokens = sa.table("api_token", sa.column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime()))
    op.get_bind().execute(sa.update(tokens).values(
        expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=GRACE_DAYS)))


def downgrade():
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.drop_column("revoked_by")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("name")
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limit_counter_expires_at"))
    op.drop_table("rate_limit_counter")
