"""Four eyes between people: ``user.person`` and the ``account_request`` table.

``user.person`` says who holds an account (a personnel number, shared by a person's
accounts), so that payment four eyes compares people instead of accounts. Existing
accounts become each a person of their own (``@`` + e-mail), which is what the old
account-id check assumed; an administrator can tell the real numbers apart later only
through the operator, never by giving himself a role.

``account_request`` holds privileged account changes waiting for a second administrator.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PENDING_WHERE = "status = 'pending'"


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=255),
                                      nullable=True))
    users = sa.table("user", sa.column("id", sa.Integer), sa.column("email", sa.String),
                     sa.column("person", sa.String))
    op.get_bind().execute(sa.update(users).values(person="@" + users.c.email))
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column("person", existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
                              nullable=False)
        batch_op.create_index(batch_op.f("ix_user_person"), ["person"], unique=False)

    op.create_table(
        "account_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("team", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("person", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("old_role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["requested_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_request", schema=None) as batch_op:
        batch_op.create_index("uq_account_request_pending_email", ["email"], unique=True,
                              sqlite_where=sa.text(PENDING_WHERE),
                              postgresql_where=sa.text(PENDING_WHERE))


def downgrade():
    with op.batch_alter_table("account_request", schema=None) as batch_op:
        batch_op.drop_index("uq_account_request_pending_email",
                            sqlite_where=sa.text(PENDING_WHERE),
                            postgresql_where=sa.text(PENDING_WHERE))
    op.drop_table("account_request")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_person"))
        batch_op.drop_column("person")
