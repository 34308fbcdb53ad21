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


def _diff(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
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
