"""One-time codes for personal signing links (issue 12, item 1).

``signing_code`` holds each code sent to a link's signer: the HMAC of the code (never the
code), its channel, expiry, tries and when it was used. ``document.signer_verification``
records how the signer of a document was verified (email_code, sms_code, id_document,
none); documents signed before this revision have NULL (not recorded).

Revision ID: 0016
Revises: 0012
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "signing_code",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signing_request_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["signing_request_id"], ["signing_request.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signing_code_request", "signing_code", ["signing_request_id", "id"])
    # A plain ADD COLUMN (nullable): SQLite need not copy the table of sealed PDFs.
    op.add_column("document", sa.Column("signer_verification",
                                        sqlmodel.sql.sqltypes.AutoString(length=20),
                                        nullable=True))


def downgrade():
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("signer_verification")
    op.drop_index("ix_signing_code_request", table_name="signing_code")
    op.drop_table("signing_code")
