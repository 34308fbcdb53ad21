"""Corrections after signing (issue 13): a signed document can be superseded by a new
version when the data it states is corrected; the old one stays, marked.

Revision ID: 0012
Revises: 0015
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    # batch mode: SQLite cannot add a foreign key to an existing table otherwise.
    with op.batch_alter_table("document") as batch:
        batch.add_column(sa.Column("superseded_at", sqlmodel.sql.sqltypes.UTCDateTime(),
                                    nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_document_superseded_by", "document",
                                 ["superseded_by"], ["id"])


def downgrade():
    with op.batch_alter_table("document") as batch:
        batch.drop_constraint("fk_document_superseded_by", type_="foreignkey")
        batch.drop_column("superseded_by")
        batch.drop_column("superseded_at")
