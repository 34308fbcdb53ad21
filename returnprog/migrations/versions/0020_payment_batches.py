"""Payment batches and bank-statement reconciliation (issue 15): a payment's bank leg
(end-to-end id, sent, booked, returned with the bank's reason, who recorded the answer),
corrected re-proposals,
the cash hand-over place; a batch holds both renderings (SEPA + CSV) with a status; the
imported statements and their entries. The one-live-payment index widens to the new live
statuses (scheduled, sent, booked).

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

OLD_LIVE = "status IN ('proposed','approved','disbursed')"
NEW_LIVE = "status IN ('proposed','approved','disbursed','scheduled','sent','booked')"
UTC = sqlmodel.sql.sqltypes.UTCDateTime
S = sqlmodel.sql.sqltypes.AutoString


def _live_index(batch_op, where):
    batch_op.create_index("uq_payment_live_per_case", ["case_id"], unique=True,
                          sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade():
    with op.batch_alter_table("export_batch", schema=None) as batch_op:
        batch_op.alter_column("kind", type_=S(length=12), existing_type=S(length=10))
        # Batches from before this revision were single-format exports, already used.
        batch_op.add_column(sa.Column("status", S(length=10), server_default="legacy",
                                      nullable=False))
        batch_op.add_column(sa.Column("csv_content", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("csv_sha256", S(length=64), nullable=True))
        batch_op.add_column(sa.Column("sent_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sent_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", UTC(), nullable=True))
        batch_op.create_foreign_key("fk_export_batch_sent_by_user", "user", ["sent_by"], ["id"])
        batch_op.create_foreign_key("fk_export_batch_withdrawn_by_user", "user",
                                    ["withdrawn_by"], ["id"])
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("end_to_end_id", S(length=35), nullable=True))
        batch_op.add_column(sa.Column("sent_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("booked_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("returned_at", UTC(), nullable=True))
        batch_op.add_column(sa.Column("return_reason", S(length=4), nullable=True))
        batch_op.add_column(sa.Column("settled_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("replaces_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("handed_over_place", S(length=200), nullable=True))
        batch_op.create_foreign_key("fk_payment_replaces_id_payment", "payment",
                                    ["replaces_id"], ["id"])
        batch_op.create_foreign_key("fk_payment_settled_by_user", "user", ["settled_by"], ["id"])
        batch_op.create_index("ix_payment_end_to_end_id", ["end_to_end_id"], unique=False)
        batch_op.drop_index("uq_payment_live_per_case")
        _live_index(batch_op, NEW_LIVE)
    op.create_table(
        "bank_statement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_id", S(length=70), nullable=False),
        sa.Column("format", S(length=20), nullable=False),
        sa.Column("account_iban", S(length=34), nullable=True),
        sa.Column("sha256", S(length=64), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(["imported_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("statement_id"),
    )
    op.create_table(
        "statement_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("statement_row_id", sa.Integer(), nullable=False),
        sa.Column("reference", S(length=80), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("direction", S(length=6), nullable=False),
        sa.Column("status", S(length=8), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", S(length=3), nullable=False),
        sa.Column("end_to_end_id", S(length=35), nullable=True),
        sa.Column("counterparty_iban", S(length=34), nullable=True),
        sa.Column("counterparty_name", S(length=140), nullable=True),
        sa.Column("return_reason", S(length=4), nullable=True),
        sa.Column("outcome", S(length=10), nullable=False),
        sa.Column("review_reason", S(length=30), nullable=True),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", UTC(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["statement_row_id"], ["bank_statement.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payment.id"]),
        sa.ForeignKeyConstraint(["resolved_by"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("statement_row_id", "reference", name="uq_statement_entry_reference"),
    )
    with op.batch_alter_table("statement_entry", schema=None) as batch_op:
        batch_op.create_index("ix_statement_entry_statement_row_id", ["statement_row_id"])
        batch_op.create_index("ix_statement_entry_payment_id", ["payment_id"])


def downgrade():
    op.drop_table("statement_entry")
    op.drop_table("bank_statement")
    with op.batch_alter_table("payment", schema=None) as batch_op:
        batch_op.drop_index("uq_payment_live_per_case")
        _live_index(batch_op, OLD_LIVE)
        batch_op.drop_index("ix_payment_end_to_end_id")
        batch_op.drop_constraint("fk_payment_replaces_id_payment", type_="foreignkey")
        batch_op.drop_constraint("fk_payment_settled_by_user", type_="foreignkey")
        for column in ("handed_over_place", "replaces_id", "settled_by", "return_reason",
                       "returned_at",
                       "booked_at", "sent_at", "end_to_end_id"):
            batch_op.drop_column(column)
    with op.batch_alter_table("export_batch", schema=None) as batch_op:
        batch_op.drop_constraint("fk_export_batch_withdrawn_by_user", type_="foreignkey")
        batch_op.drop_constraint("fk_export_batch_sent_by_user", type_="foreignkey")
        for column in ("withdrawn_at", "withdrawn_by", "sent_at", "sent_by", "csv_sha256",
                       "csv_content", "status"):
            batch_op.drop_column(column)
        batch_op.alter_column("kind", type_=S(length=10), existing_type=S(length=12))
