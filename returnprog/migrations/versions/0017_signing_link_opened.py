"""Signing links remember when they were first opened (issue 12, evidence certificate):
``signing_request.opened_at``, ``opened_ip`` and ``opened_user_agent``, set once by the
first GET of the link page and printed among the events of the signed document.

Revision ID: 0017
Revises: 0018
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0017"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("signing_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("opened_ip", sqlmodel.sql.sqltypes.AutoString(length=45),
                                      nullable=True))
        batch_op.add_column(sa.Column("opened_user_agent",
                                      sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))


def downgrade():
    with op.batch_alter_table("signing_request", schema=None) as batch_op:
        batch_op.drop_column("opened_user_agent")
        batch_op.drop_column("opened_ip")
        batch_op.drop_column("opened_at")
