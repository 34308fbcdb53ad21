"""Outbox: the deadline and signing link a message is about, as real columns.

Until now both lived only inside the idempotency key (``<case>|<kind>|<ref>|<recipient>``
with ``ref`` the deadline, or ``<expiry>~link<id>`` for signing-link messages) and were
parsed back with LIKE. This adds ``outbox_message.deadline`` and
``outbox_message.signing_request_id`` and fills them for the existing rows by parsing their
keys once, here. ``recipient`` already is a column. The key itself and its unique
constraint stay: they are what makes a duplicate impossible.

Revision ID: 0003
Revises: 0002
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FK_NAME = "fk_outbox_message_signing_request_id"
# Frozen copies of the kinds as they were written under 0002 (the migration must not
# change meaning if returnprog.reminders renames them later).
DEADLINE_PREFIX = "deadline_reminder_"
OVERDUE_ALERT = "overdue_alert"
LINK_KINDS = ("signing_link_reminder", "signing_link_expired")


def carried_over(key: str, kind: str) -> dict:
    """The column values an 0002 key encodes: ``deadline`` for deadline reminders and
    overdue alerts, ``signing_request_id`` for signing-link messages; {} for a key in
    another format (left NULL, as such messages were never checked before either)."""
    try:
        _case, _kind, ref, _recipient = key.split("|", 3)
    except ValueError:
        return {}
    if kind.startswith(DEADLINE_PREFIX) or kind == OVERDUE_ALERT:
        try:
            return {"deadline": dt.date.fromisoformat(ref[:10])}
        except ValueError:
            return {}
    if kind in LINK_KINDS and "~link" in ref:
        try:
            return {"signing_request_id": int(ref.split("~link", 1)[1])}
        except ValueError:
            return {}
    return {}


def upgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("signing_request_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(FK_NAME, "signing_request", ["signing_request_id"], ["id"])

    outbox = sa.table("outbox_message", sa.column("id", sa.Integer),
                      sa.column("idempotency_key", sa.String), sa.column("kind", sa.String),
                      sa.column("deadline", sa.Date),
                      sa.column("signing_request_id", sa.Integer))
    links = sa.table("signing_request", sa.column("id", sa.Integer))
    conn = op.get_bind()
    existing_links = set(conn.execute(sa.select(links.c.id)).scalars())
    for row in conn.execute(sa.select(outbox.c.id, outbox.c.idempotency_key,
                                      outbox.c.kind)).all():
        values = carried_over(row.idempotency_key, row.kind)
        link_id = values.get("signing_request_id")
        if link_id is not None and link_id not in existing_links:
            del values["signing_request_id"]  # a key naming a deleted link: keep it NULL
        if values:
            conn.execute(sa.update(outbox).where(outbox.c.id == row.id).values(**values))


def downgrade():
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(FK_NAME, type_="foreignkey")
        batch_op.drop_column("signing_request_id")
        batch_op.drop_column("deadline")
