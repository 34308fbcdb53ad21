"""The day a correction added a participant (issue 13): a minor who joins a case is named
only by the withdrawal declarations signed since, so the IND's confirmation of their
withdrawal is judged against those, not against a declaration signed before they were on
the case. Empty for every participant there is (they came with the intake).

Revision ID: 0025
Revises: 0024
"""
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (no batch copy on SQLite): the participant table keeps its
    # triggers (the work-queue cache's) and its rows stay where they are.
    op.add_column("participant", sa.Column("joined_on", sa.Date(), nullable=True))


def downgrade():
    op.drop_column("participant", "joined_on")  # SQLite >= 3.35 drops it in place
