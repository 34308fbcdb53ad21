"""The case page shows the latest events of the trail with a way back to older ones, and
who looked at the case from the access log; looking at the page writes no audit event."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from returnprog.models import AccessEvent, AuditEvent
from returnprog.services import cases as case_service

from ..conftest import intake
from ..web_client import text, web_for


def _count(app, model, *where):
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def test_the_page_shows_the_latest_events_and_pages_back(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    for n in range(case_service.TRAIL_PAGE + 5):  # a long trail of intake edits
        case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(1), None)
    web = web_for(app, staff.counsellor)
    before = _count(app, AuditEvent)
    page = web.get(f"/cases/{case.reference}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('<li>\n      <span class="when">') == case_service.TRAIL_PAGE
    assert "Oudere gebeurtenissen" in text(html) or "Older events" in text(html)
    with Session(app.extensions["returnprog.engine"]) as s:
        seqs = s.execute(select(AuditEvent.seq).where(AuditEvent.case_id == case.id)
                         .order_by(AuditEvent.seq)).scalars().all()
    older = web.get(f"/cases/{case.reference}", query_string={"before": seqs[6]})
    older_html = older.get_data(as_text=True)
    assert older_html.count('<li>\n      <span class="when">') == 6  # the case's first six
    assert _count(app, AuditEvent) == before  # reading wrote nothing to the chain


def test_who_looked_is_listed_from_the_access_log(app, staff, ctx_for):
    case = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    web_for(app, staff.supervisor).get(f"/cases/{case.reference}")
    page = web_for(app, staff.counsellor).get(f"/cases/{case.reference}", query_string={"views": 1})
    body = text(page.get_data(as_text=True))
    assert staff.supervisor.email in body and staff.counsellor.email in body
    assert _count(app, AccessEvent, AccessEvent.case_id == case.id) == 2
