"""Access requests and the processing log (issue 16 items 4 and 5): the access requests a
records manager registers and answers (AVG art. 15), and the purpose of every look in the
access log (BIO2: why personal data was read, recorded when it is read rather than guessed
later).

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
S = sqlmodel.sql.sqltypes.AutoString


def upgrade():
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", S(length=30), nullable=True))
    op.create_table(
        "access_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("status", S(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("received_via", S(length=10), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("original_due_on", sa.Date(), nullable=False),
        sa.Column("identity_document_type", S(length=20), nullable=False),
        sa.Column("identity_document_last4", S(length=4), nullable=False),
        sa.Column("identity_checked_by", sa.Integer(), nullable=False),
        sa.Column("identity_checked_at", UTC(), nullable=False),
        sa.Column("registered_by", sa.Integer(), nullable=False),
        sa.Column("registered_at", UTC(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("extended_by", sa.Integer(), nullable=True),
        sa.Column("extended_at", UTC(), nullable=True),
        sa.Column("package_sha256", S(length=64), nullable=True),
        sa.Column("delivered_sha256", S(length=64), nullable=True),
        sa.Column("delivery_channel", S(length=10), nullable=True),
        sa.Column("delivered_by", sa.Integer(), nullable=True),
        sa.Column("delivered_at", UTC(), nullable=True),
        sa.Column("refusal_reason", sa.Text(), nullable=True),
        sa.Column("refused_by", sa.Integer(), nullable=True),
        sa.Column("refused_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"]),
        sa.ForeignKeyConstraint(["identity_checked_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["registered_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["extended_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["delivered_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["refused_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_access_request_case_id", "access_request", ["case_id"])
    op.create_index("ix_access_request_participant_id", "access_request", ["participant_id"])
    op.create_index("ix_access_request_status_due", "access_request", ["status", "due_on"])
    # The processing log per staff member reads the access log by reader.
    op.create_index("ix_access_log_actor_id", "access_log", ["actor_id", "first_at"])
    op.create_index("ix_audit_actor_id", "audit_event", ["actor_id", "seq"])


def downgrade():
    op.drop_index("ix_audit_actor_id", table_name="audit_event")
    op.drop_index("ix_access_log_actor_id", table_name="access_log")
    op.drop_index("ix_access_request_status_due", table_name="access_request")
    op.drop_index("ix_access_request_participant_id", table_name="access_request")
    op.drop_index("ix_access_request_case_id", table_name="access_request")
    op.drop_table("access_request")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_column("purpose")
