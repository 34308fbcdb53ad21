"""Records lifecycle (issue 16): archive fields on the case (nomination, term start, action
date, status; the tombstone's destruction), legal holds, destruction lists and their items,
and audit chain version 3's salted digest of an event's personal part with its erasure marks.

Cases closed before this revision get their archive fields from the records job (with the
policy in force, which a migration cannot read from ``instance/``).

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
S = sqlmodel.sql.sqltypes.AutoString


def upgrade():
    op.create_table(
        "destruction_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", S(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", UTC(), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("approved_at", UTC(), nullable=True),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("destroyed_at", UTC(), nullable=True),
        sa.Column("replay_of", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["created_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["reviewed_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["approved_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archive_nomination", S(length=10), nullable=True))
        batch_op.add_column(sa.Column("archive_term_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("archive_action_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("archive_status", S(length=12), nullable=False,
                                      server_default="to_archive"))
        batch_op.add_column(sa.Column("destroyed_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("destruction_list_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_case_destruction_list_id_destruction_list",
                                    "destruction_list", ["destruction_list_id"], ["id"])
        batch_op.create_index("ix_case_archive_action_date", ["archive_action_date"])
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("personal_digest", S(length=64), nullable=True))
        batch_op.add_column(sa.Column("personal_salt", S(length=32), nullable=True))
        batch_op.add_column(sa.Column("erased_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("erased_by_list", sa.Integer(), nullable=True))
    op.create_table(
        "destruction_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reference", S(length=20), nullable=False),
        sa.Column("final_state", S(length=20), nullable=False),
        sa.Column("action_date", sa.Date(), nullable=False),
        sa.Column("status", S(length=10), nullable=False),
        sa.Column("removed_by", sa.Integer(), nullable=True),
        sa.Column("removed_at", UTC(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("destroyed_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(["list_id"], ["destruction_list.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["removed_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "case_id", name="uq_destruction_item"),
    )
    with op.batch_alter_table("destruction_item", schema=None) as batch_op:
        batch_op.create_index("ix_destruction_item_list_id", ["list_id"])
        batch_op.create_index("ix_destruction_item_case", ["case_id", "status"])
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reason", S(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.Integer(), nullable=False),
        sa.Column("placed_at", UTC(), nullable=False),
        sa.Column("lifted_by", sa.Integer(), nullable=True),
        sa.Column("lifted_at", UTC(), nullable=True),
        sa.Column("lift_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["placed_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["lifted_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("legal_hold", schema=None) as batch_op:
        batch_op.create_index("ix_legal_hold_case", ["case_id", "lifted_at"])


def downgrade():
    op.drop_table("legal_hold")
    op.drop_table("destruction_item")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        for column in ("erased_by_list", "erased_at", "personal_salt", "personal_digest"):
            batch_op.drop_column(column)
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_archive_action_date")
        batch_op.drop_constraint("fk_case_destruction_list_id_destruction_list",
                                 type_="foreignkey")
        for column in ("destruction_list_id", "destroyed_at", "archive_status",
                       "archive_action_date", "archive_term_start", "archive_nomination"):
            batch_op.drop_column(column)
    op.drop_table("destruction_list")
