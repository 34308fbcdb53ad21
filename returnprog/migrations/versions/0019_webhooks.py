"""Webhooks (issue 14 item 5): subscriptions per API client with an encrypted secret, the
outbox's channel (``email`` | ``webhook``) and subscription, one row per delivery attempt,
and the mark that a signing link's ``signing_link.expired`` event was written.

Revision ID: 0019
Revises: 0017
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None

FK_NAME = "fk_outbox_message_webhook_subscription_id_webhook_subscription"


def upgrade():
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_subscription_user_id", ["user_id"], unique=False)
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=10),
                                      server_default="email", nullable=False))
        batch_op.add_column(sa.Column("webhook_subscription_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(FK_NAME, "webhook_subscription",
                                    ["webhook_subscription_id"], ["id"])
        batch_op.create_index("ix_outbox_channel_due", ["channel", "status", "next_attempt_at"],
                              unique=False)
        batch_op.create_index("ix_outbox_subscription", ["webhook_subscription_id", "id"],
                              unique=False)
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["outbox_message.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_attempt_message", ["message_id", "id"], unique=False)
    with op.batch_alter_table("signing_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expiry_emitted_at", sqlmodel.sql.sqltypes.UTCDateTime(),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table("signing_request", schema=None) as batch_op:
        batch_op.drop_column("expiry_emitted_at")
    with op.batch_alter_table("webhook_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_attempt_message")
    op.drop_table("webhook_attempt")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_subscription")
        batch_op.drop_index("ix_outbox_channel_due")
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.drop_column("webhook_subscription_id")
        batch_op.drop_column("channel")
    with op.batch_alter_table("webhook_subscription", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_subscription_user_id")
    op.drop_table("webhook_subscription")
