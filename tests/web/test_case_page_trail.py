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
    for n in range(case_service.TRAIL_PAGE + case_service.TRAIL_ON_PAGE + 5):  # a long trail
        case_service.update_intake(ctx_for(staff.counsellor), case.reference, intake(1), None)
    web = web_for(app, staff.counsellor)
    before = _count(app, AuditEvent)
    page = web.get(f"/cases/{case.reference}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # It opens on the latest changes only, the newest first ...
    assert html.count('<li>\n      <span class="when">') == case_service.TRAIL_ON_PAGE
    assert "Oudere gebeurtenissen" in text(html) or "Older events" in text(html)
    with Session(app.extensions["returnprog.engine"]) as s:
        seqs = s.execute(select(AuditEvent.seq).where(AuditEvent.case_id == case.id)
                         .order_by(AuditEvent.seq)).scalars().all()
    # ... and "older events" pages back a full page at a time.
    assert f"before={seqs[-case_service.TRAIL_ON_PAGE]}" in html
    back = web.get(f"/cases/{case.reference}",
                   query_string={"before": seqs[-case_service.TRAIL_ON_PAGE]})
    assert back.get_data(as_text=True).count('<li>\n      <span class="when">') \
        == case_service.TRAIL_PAGE
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


def test_the_signing_panel_on_the_case_page_is_the_signatures_page_s(app, staff, ctx_for):
    """The case page gathers its signing panel in its one read; it lists the same links,
    with the signer's name, as the signatures page that asks for them apart."""
    import re

    from returnprog import workflow
    from returnprog.services import signing as signing_service

    c = ctx_for(staff.counsellor)
    case = case_service.open_case(c, intake(2))
    spouse = case_service.read_case(c, case.reference, log_view=False)["participants"][1]
    signing_service.create_signing_link(c, case.reference, spouse["id"], workflow.COMMITMENT, {})
    web = web_for(app, staff.counsellor)
    table = re.compile(r'<table class="signing-links">.*?</table>', re.S)
    on_case_page = table.search(web.get(f"/cases/{case.reference}").get_data(as_text=True))
    on_own_page = table.search(web.get(f"/cases/{case.reference}/signatures").get_data(as_text=True))
    assert on_case_page and on_own_page
    assert f"{spouse['given_names_latin']} {spouse['family_name_latin']}" in on_case_page.group(0)
    strip = lambda html: re.sub(r'name="csrf_token" value="[^"]*"', "", html)  # noqa: E731
    assert strip(on_case_page.group(0)) == strip(on_own_page.group(0))
