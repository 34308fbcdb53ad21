"""A participant can decline to sign through a link (when, standard reason, own words), and
an outbox message can carry a signed document as attachment (issue 12 items 3 and 5).

Revision ID: 0018
Revises: 0016
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None

FK_NAME = "fk_outbox_message_document_id_document"


def upgrade():
    with op.batch_alter_table("signing_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("declined_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("decline_code", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch_op.add_column(sa.Column("decline_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(FK_NAME, "document", ["document_id"], ["id"])


def downgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.drop_column("document_id")
    with op.batch_alter_table("signing_request", schema=None) as batch_op:
        batch_op.drop_column("decline_reason")
        batch_op.drop_column("decline_code")
        batch_op.drop_column("declined_at")
