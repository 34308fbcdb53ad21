"""Partial index on open signing links, for the link-reminder sweep.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "used_at IS NULL AND revoked_at IS NULL"


def upgrade():
    op.create_index("ix_signing_request_open", "signing_request", ["expires_at"],
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade():
    op.drop_index("ix_signing_request_open", table_name="signing_request")
