"""A reminder that could not be delivered after the last retry is shown on the case page and
on the dashboard of those who may see the case (issue 5: "shown on the case and dashboard")."""
from __future__ import annotations

from returnprog.models import OutboxMessage

from ..conftest import drive_to, intake
from ..web_client import text, web_for
from returnprog.services import cases as case_service


def _failed(session, case, error):
    session.add(OutboxMessage(idempotency_key=f"test:{case.id}:{error}", case_id=case.id,
                              kind="deadline_reminder", recipient="olena@example.org",
                              subject="Herinnering", body_text="x", body_html="<p>x</p>",
                              status="failed", attempts=10, last_error=error))
    session.commit()


def test_an_undelivered_reminder_shows_on_the_case_page_and_the_dashboard(app, staff, ctx_for, session):
    own = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    other = case_service.open_case(ctx_for(staff.other_counsellor), intake(1, 0))
    _failed(session, own, "550 mailbox unavailable")
    _failed(session, other, "550 other team's mailbox")

    web = web_for(app, staff.counsellor)
    dashboard = text(web.get("/").get_data(as_text=True))
    assert "Niet-bezorgde herinneringen" in dashboard
    assert own.reference in dashboard and "550 mailbox unavailable" in dashboard
    assert other.reference not in dashboard and "other team" not in dashboard

    page = text(web.get(f"/cases/{own.reference}").get_data(as_text=True))
    assert "Niet-bezorgde herinneringen" in page and "550 mailbox unavailable" in page


def test_no_undelivered_section_when_everything_was_delivered(app, staff, ctx_for, session):
    own = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    assert "Niet-bezorgde herinneringen" not in text(web.get("/").get_data(as_text=True))
    assert "Niet-bezorgde herinneringen" not in text(
        web.get(f"/cases/{own.reference}").get_data(as_text=True))
