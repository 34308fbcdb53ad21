"""Case notes and evidence files (issue 13, item 3).

``case_note`` holds free-text notes on a case, append-only (a correction is a new note
naming the one it corrects); ``evidence_file`` holds uploaded PDF/JPEG/PNG evidence with
its SHA-256, in the database like the signed documents so that a database backup holds
it. ``ind_confirmation.evidence_file_id`` names the IND's letter a confirmation relies on;
``evidence_file.proves_departure`` marks the files a recorded departure relies on.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "case_note",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["author_id"], ["user.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["corrects_id"], ["case_note.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_note_case", "case_note", ["case_id", "id"])
    op.create_table(
        "evidence_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.Column("uploaded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("proves_departure", sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["uploaded_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evidence_file_case", "evidence_file", ["case_id", "id"])
    # Batch mode: SQLite cannot add a foreign key to an existing table otherwise (the
    # small ind_confirmation table is copied; nothing references it).
    with op.batch_alter_table("ind_confirmation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence_file_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_ind_confirmation_evidence_file", "evidence_file",
                                    ["evidence_file_id"], ["id"])


def downgrade():
    with op.batch_alter_table("ind_confirmation", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ind_confirmation_evidence_file", type_="foreignkey")
        batch_op.drop_column("evidence_file_id")
    op.drop_index("ix_evidence_file_case", table_name="evidence_file")
    op.drop_table("evidence_file")
    op.drop_index("ix_case_note_case", table_name="case_note")
    op.drop_table("case_note")
