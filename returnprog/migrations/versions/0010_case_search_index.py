"""The case search index (issues 11 and 13): ``case_search`` holds one folded haystack per
case; PostgreSQL indexes it with a ``pg_trgm`` GIN index, SQLite with an FTS5 trigram table
kept in step by triggers. Existing cases are indexed here.

Revision ID: 0010
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from returnprog import search

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "case_search",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("haystack", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    if bind.dialect.name == "postgresql":
        op.create_index("ix_case_search_haystack_trgm", "case_search", ["haystack"],
                        postgresql_using="gin", postgresql_ops={"haystack": "gin_trgm_ops"})
    else:
        for statement in search.SQLITE_DDL:
            op.execute(statement)
    search.reindex(bind)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_index("ix_case_search_haystack_trgm", table_name="case_search")
    else:
        for trigger in ("case_search_ai", "case_search_ad", "case_search_au"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute(f"DROP TABLE {search.SQLITE_FTS}")
    op.drop_table("case_search")
    # pg_trgm stays: other objects of the database may use it.
