"""The dashboard's deadline lists ("deadlines in the next 14 days", "overdue") are range
scans of an index that holds the reader's scope, the state and the deadline (migration
0026), on both databases. Before it, SQLite walked the country-wide deadline index and
checked every case's counsellor: 5.6 ms of a counsellor's dashboard at 150,000 cases. The
counsellor's work-queue count is a scan of the queue cache's own index (migration 0027)."""
from __future__ import annotations

import pytest

from returnprog.services import figures

from ..conftest import intake, statements_sent

SCOPE_INDEX = {"counsellor": "ix_case_counsellor_live", "supervisor": "ix_case_team_deadline"}


def _deadline_statements(engine, ctx):
    """The statements the dashboard sends for its two deadline lists."""
    return statements_sent(engine, lambda: figures.dashboard(ctx),
                           "departure_deadline <", "departure_deadline >=")


def _plan(engine, statement, params) -> str:
    with engine.connect() as conn:
        return "\n".join(r[-1] for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, params))


# SQLite only, by design: PostgreSQL chooses by cost, and with a handful of rows and no
# statistics any index is as cheap as another (a test database showed ix_case_deadline and
# ix_case_counsellor_id). Its plan at 150,000 cases, checked with EXPLAIN ANALYZE on the
# benchmark's database, takes the reader's index with the deadline in the index condition;
# the migration test keeps both databases' indexes identical.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ["counsellor", "supervisor"])
def test_the_deadline_lists_are_range_scans_of_the_readers_index(engine, ctx_for, staff, role):
    statements = _deadline_statements(engine, ctx_for(getattr(staff, role)))
    # Upcoming and overdue; a supervisor's overdue queue is a third.
    assert len(statements) >= 2
    for statement, params in statements:
        plan = _plan(engine, statement, params)
        assert SCOPE_INDEX[role] in plan, plan
        assert "ix_case_deadline" not in plan, plan
        assert "departure_deadline<" in plan or "departure_deadline>" in plan, plan


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_counsellors_queue_count_is_one_scan_of_the_cache_index(engine, ctx_for, staff,
                                                                    session):
    """The work-queue count reads the cached judgements from ``ix_case_queue_reader``
    alone (migration 0027), not a row lookup into ``case_queue`` per open case, and the
    open cases themselves from the counsellor's case index."""
    from returnprog.services import cases as case_service
    from returnprog.services import queues


    for _ in range(3):
        case_service.open_case(ctx_for(staff.counsellor), intake(1))
    seen = statements_sent(engine, lambda: queues.queue_counts(ctx_for(staff.counsellor)),
                           "FROM case_queue")
    assert len(seen) >= 1
    plan = _plan(engine, *seen[0])
    assert "COVERING INDEX ix_case_queue_reader" in plan, plan
    assert "COVERING INDEX ix_case_counsellor_live" in plan, plan
    assert "PRIMARY KEY" not in plan, plan
