"""The case search also stores each name's sound key (issue 13: Gritsenko and Chritsenko
find a Hrytsenko registered in Latin only), so existing cases are indexed again.

Revision ID: 0015
Revises: 0011
"""
from alembic import op

from returnprog import search

revision = "0015"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    search.reindex(op.get_bind())


def downgrade():
    # The older code reads haystacks with keys as well (they only add words): nothing to undo.
    pass
