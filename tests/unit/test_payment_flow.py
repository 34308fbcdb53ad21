"""The payment's state table (issue 15): consistent, reachable, and the database rule
'one live payment per case' is the table's own live statuses."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from returnprog import payment_flow as flow
from returnprog.models import Payment


def _reachable(method: str) -> set[str]:
    seen, todo = {"proposed"}, ["proposed"]
    while todo:
        status = todo.pop()
        for step in flow.STEPS.values():
            if status in step.sources and method in step.methods and step.target not in seen:
                seen.add(step.target)
                todo.append(step.target)
    return seen


def test_every_step_names_known_statuses():
    for step in flow.STEPS.values():
        assert step.sources <= set(flow.STATUSES) and step.target in flow.STATUSES, step
        assert step.methods <= flow.ALL_METHODS


def test_a_transfer_can_reach_every_status_and_cash_never_enters_the_bank_leg():
    assert _reachable("transfer") == set(flow.STATUSES)
    cash = _reachable("cash")
    assert cash == {"proposed", "approved", "rejected", "cancelled", "disbursed"}
    assert not cash & set(flow.BANK_STATUSES)
    assert not flow.can("schedule", "disbursed", "cash")
    assert flow.can("schedule", "disbursed", "transfer")


def test_only_a_return_rejection_or_cancellation_frees_the_case_for_a_new_payment():
    assert set(flow.STATUSES) - set(flow.LIVE_STATUSES) == {"rejected", "cancelled", "returned"}
    assert set(flow.PAID_OUT_STATUSES) <= set(flow.LIVE_STATUSES)
    # Money once booked can only come back as a return, never be sent again.
    assert [s.name for s in flow.STEPS.values() if "booked" in s.sources] == ["return"]
    assert not flow.can("cancel", "disbursed", "transfer")


def test_the_unique_index_and_the_migration_use_the_tables_live_statuses():
    [index] = [i for i in Payment.__table__.indexes if i.name == "uq_payment_live_per_case"]
    assert str(index.dialect_options["sqlite"]["where"]) == flow.live_predicate()
    path = Path(__file__).parents[2] / "returnprog/migrations/versions/0020_payment_batches.py"
    spec = importlib.util.spec_from_file_location("m0020", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.NEW_LIVE == flow.live_predicate()


def test_a_released_cash_payment_reads_as_handed_over():
    assert flow.status_label("disbursed", "cash") == "Handed over"
    assert flow.status_label("disbursed", "transfer") == "Released"
