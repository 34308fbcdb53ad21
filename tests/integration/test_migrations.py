"""The Alembic migrations build exactly the schema the models describe, on both databases,
and can be walked down and up again."""
from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import returnprog.models  # noqa: F401  (registers the tables)
from returnprog import db as dbmod
from returnprog.search import alembic_filters


def _diff(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            # The search index is per engine (FTS5 on SQLite, pg_trgm on PostgreSQL).
            context = MigrationContext.configure(conn, opts=alembic_filters(conn.dialect.name))
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def test_the_migrated_schema_matches_the_models(db_url):
    assert _diff(db_url) == []


def test_migrations_walk_down_and_up_again(db_url):
    command.downgrade(dbmod.alembic_config(db_url), "0001")
    engine = create_engine(db_url)
    indexes = {i["name"] for i in inspect(engine).get_indexes("signing_request")}
    engine.dispose()
    assert "ix_signing_request_open" not in indexes
    dbmod.upgrade(db_url)
    assert _diff(db_url) == []


def test_0003_fills_the_new_outbox_columns_from_the_keys_written_under_0002(
        db_url, ctx_for, staff, session):
    """Rows stored before 0003 keep being checked at delivery: their deadline and signing
    link, until then only inside the idempotency key, land in the new columns."""
    import datetime as dt

    from sqlalchemy import text

    from sqlalchemy import select

    from returnprog.models import Participant, SigningRequest

    from ..conftest import drive_to

    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    person = session.execute(select(Participant).where(Participant.case_id == case.id)
                             ).scalars().first()
    now = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.timezone.utc)
    link = SigningRequest(case_id=case.id, participant_id=person.id, kind="commitment",
                          channel="link", token_hash="migration-test", created_at=now,
                          expires_at=now + dt.timedelta(days=7),
                          created_by=case.counsellor_id)
    session.add(link)
    session.commit()
    case_id, link_id = case.id, link.id
    session.close()

    command.downgrade(dbmod.alembic_config(db_url), "0002")
    keys = {
        "deadline_reminder_7d": f"{case_id}|deadline_reminder_7d|2026-05-20|olena@example.org",
        "overdue_alert": f"{case_id}|overdue_alert|2026-05-20|sup@dtenv.example",
        "signing_link_reminder":
            f"{case_id}|signing_link_reminder|2026-05-08~link{link_id}|olena@example.org",
        "signing_link_expired":
            f"{case_id}|signing_link_expired|2026-05-08~link{link_id + 1000}|c@dtenv.example",
        "other": "test:not-a-reminder-key",
    }
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for kind, key in keys.items():
            conn.execute(text(
                "INSERT INTO outbox_message (idempotency_key, case_id, kind, recipient, "
                "language, subject, body_text, body_html, status, attempts, next_attempt_at, "
                "created_at) VALUES (:key, :case, :kind, 'x@example.org', 'nl', 's', 't', "
                "'h', 'pending', 0, :now, :now)"),
                {"key": key, "case": case_id, "kind": kind, "now": now})
    engine.dispose()

    dbmod.upgrade(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = {r.kind: r for r in conn.execute(text(
            "SELECT kind, idempotency_key, deadline, signing_request_id FROM outbox_message"))}
    engine.dispose()

    def day(value):  # SQLite hands the raw text back to a textual SELECT
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)

    assert day(rows["deadline_reminder_7d"].deadline) == dt.date(2026, 5, 20)
    assert rows["deadline_reminder_7d"].signing_request_id is None
    assert day(rows["overdue_alert"].deadline) == dt.date(2026, 5, 20)
    assert rows["signing_link_reminder"].signing_request_id == link_id
    assert rows["signing_link_reminder"].deadline is None
    # A key naming a link that no longer exists cannot satisfy the foreign key: NULL.
    assert rows["signing_link_expired"].signing_request_id is None
    assert rows["other"].deadline is None and rows["other"].signing_request_id is None
    assert {r.idempotency_key for r in rows.values()} == set(keys.values())
    assert _diff(db_url) == []
