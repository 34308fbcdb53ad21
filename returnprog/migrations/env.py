"""Alembic environment: the schema is SQLModel's metadata (returnprog.models)."""
from alembic import context
from sqlalchemy import create_engine, pool
from sqlmodel import SQLModel

from returnprog import models  # noqa: F401  (registers the tables)
from returnprog.search import alembic_filters

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True,
                      **alembic_filters(config.get_main_option("sqlalchemy.url").split(":")[0]
                                        .split("+")[0]))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # SQLite cannot ALTER most things: batch mode recreates tables when needed.
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True,
                          **alembic_filters(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
