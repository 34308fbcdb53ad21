"""The records screens over HTTP (issue 16): the rules in force, legal holds with field
errors, a destruction list proposed, a case taken off with a reason, reviewed by the
records manager and approved by the process owner, and the dashboard's records panel."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select, text as sql
from sqlmodel import Session

from returnprog.models import DestructionItem, DestructionList, LegalHold
from returnprog.services import records as records_service

from ..conftest import drive_to
from ..web_client import text, web_for


def _due_today(session, *cases):
    # End the fixture session's read snapshot first: the app wrote since it began.
    session.rollback()
    for case in cases:
        session.execute(sql('UPDATE "case" SET archive_action_date = :d WHERE id = :i'),
                        {"d": dt.date.today(), "i": case.id})
    session.commit()


def test_the_records_manager_and_the_process_owner_review_a_list_in_two_steps(
        app, staff, ctx_for, session):
    keep, go = (drive_to(ctx_for, staff, session, "departed") for _ in range(2))
    _due_today(session, keep, go)
    manager, owner = web_for(app, staff.records), web_for(app, staff.owner)

    page = text(manager.get("/records").get_data(as_text=True))
    assert "EXAMPLE" in page and "84" in page
    assert "nog niet op een lijst staan: 2" in page
    assert manager.get("/cases").status_code == 403  # records roles see no case files

    assert owner.post("/records/lists", {}).status_code == 403
    proposed = manager.post("/records/lists", {})
    assert proposed.status_code == 303
    list_id = int(re.search(r"/records/lists/(\d+)", proposed.headers["Location"]).group(1))
    page = manager.get(f"/records/lists/{list_id}").get_data(as_text=True)
    assert keep.reference in page and go.reference in page

    item = {i.reference: i for i in Session(app.extensions["returnprog.engine"]).execute(
        select(DestructionItem).where(DestructionItem.list_id == list_id)).scalars()}
    missing = manager.post(f"/records/lists/{list_id}/items/{item[keep.reference].id}/remove",
                           {"reason": " "})
    assert missing.status_code == 422 and "error-summary" in missing.get_data(as_text=True)
    assert manager.post(f"/records/lists/{list_id}/items/{item[keep.reference].id}/remove",
                        {"reason": "Objection expected"}).status_code == 303
    # The process owner cannot take the manager's step, nor approve before the review.
    assert owner.post(f"/records/lists/{list_id}/review", {}).status_code == 403
    early = owner.post(f"/records/lists/{list_id}/approve", {})
    assert early.status_code == 409 and "Traceback" not in early.get_data(as_text=True)
    assert manager.post(f"/records/lists/{list_id}/review", {}).status_code == 303
    assert manager.post(f"/records/lists/{list_id}/approve", {}).status_code == 403
    no_reason = owner.post(f"/records/lists/{list_id}/return", {"reason": ""})
    assert no_reason.status_code == 422 and 'href="#reason"' in no_reason.get_data(as_text=True)
    assert owner.post(f"/records/lists/{list_id}/approve", {}).status_code == 303

    with Session(app.extensions["returnprog.engine"]) as s:
        dlist = s.get(DestructionList, list_id)
        assert (dlist.status, dlist.reviewed_by, dlist.approved_by) == (
            "approved", staff.records.id, staff.owner.id)
        removed = s.get(DestructionItem, item[keep.reference].id)
        assert (removed.status, removed.reason) == ("removed", "Objection expected")
    dashboard = text(owner.get("/").get_data(as_text=True))
    assert "Records" in dashboard or "Archief" in dashboard


def test_a_legal_hold_is_placed_with_field_errors_first_and_lifted_with_a_reason(
        app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departed")
    manager = web_for(app, staff.records)
    bad = manager.post("/records/holds", {"reference": "VRP-1900-000000", "reason": "whim"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'href="#reference"' in body and 'href="#reason"' in body
    other = manager.post("/records/holds", {"reference": case.reference, "reason": "other"})
    assert other.status_code == 422 and 'href="#note"' in other.get_data(as_text=True)
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(LegalHold)).first() is None  # nothing was saved
    assert manager.post("/records/holds", {"reference": case.reference.lower(),
                                           "reason": "objection"}).status_code == 303
    page = manager.get("/records/holds").get_data(as_text=True)
    assert case.reference in page
    with Session(app.extensions["returnprog.engine"]) as s:
        hold = s.execute(select(LegalHold)).scalar_one()
        assert (hold.reason, hold.placed_by) == ("objection", staff.records.id)
    _due_today(session, case)
    assert records_service.due_cases(session, dt.date.today()) == []
    session.rollback()
    assert manager.post(f"/records/holds/{hold.id}/lift", {"note": ""}).status_code == 422
    assert manager.post(f"/records/holds/{hold.id}/lift",
                        {"note": "Objection withdrawn"}).status_code == 303
    assert [c.reference for c in records_service.due_cases(session, dt.date.today())] == [
        case.reference]
