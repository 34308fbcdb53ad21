"""The dashboard's deadline lists answered from an index (issue 11): "deadlines in the next
14 days" and "overdue" filter the reader's cases by state and departure deadline. With no
index holding both, SQLite walked ``ix_case_deadline`` over every case in the country with
a deadline in the window and checked each one's counsellor: 5.6 ms of a counsellor's
dashboard at 150,000 cases, against 0.06 ms once the counsellor's index carries the deadline
after the columns it already had (it still answers the counts from the index alone). The
supervisor's team-wide lists get the same from a team index.

Plain CREATE/DROP INDEX, no batch copy: the case table keeps its triggers and rows.

Revision ID: 0026
Revises: 0025
"""
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_case_counsellor_live", table_name="case")
    op.create_index("ix_case_counsellor_live", "case",
                    ["counsellor_id", "team_id", "state", "destroyed_at", "departure_deadline"])
    op.create_index("ix_case_team_deadline", "case",
                    ["team_id", "state", "destroyed_at", "departure_deadline"])


def downgrade():
    op.drop_index("ix_case_team_deadline", table_name="case")
    op.drop_index("ix_case_counsellor_live", table_name="case")
    op.create_index("ix_case_counsellor_live", "case",
                    ["counsellor_id", "team_id", "state", "destroyed_at"])
