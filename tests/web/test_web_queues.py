"""The work-queue pages and API (issue 13 item 4): the dashboard's counts link to the
queues, each row links straight to the form of the case's next step, the counsellor is
named by name, and the API gives the same counts and rows."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import update
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import Case, User
from returnprog.services import cases as case_service
from returnprog.services import payment as payment_service

from ..conftest import drive_to, fake_sign, intake, jsonable
from ..web_client import text, web_for


def _section(page: str, marker: str) -> str:
    return page.split(marker)[1].split("</section>")[0]


def _rows(page: str) -> dict[str, str]:
    """Per case reference, the href of its "next step" link on a queue page."""
    body = page.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in page else ""
    out = {}
    for row in body.split("<tr>")[1:]:
        ref = re.search(r'<a href="/cases/([^"/]+)">', row).group(1)
        out[ref] = re.search(r'<a class="next-step" href="([^"]+)"', row).group(1)
    return out


def test_counsellor_follows_the_dashboard_to_each_next_step_form(app, staff, ctx_for, session):
    c = staff.counsellor
    unsigned = case_service.open_case(ctx_for(c), intake(1))
    ready = case_service.open_case(ctx_for(c), intake(1))
    fake_sign(session, ready, workflow.COMMITMENT)
    to_propose = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    paid = drive_to(ctx_for, staff, session, "support_paid", adults=1, minors=0)
    fake_sign(session, paid, workflow.PAYMENT_RECEIPT)  # paid in cash: receipt first
    session.commit()
    other_team = case_service.open_case(ctx_for(staff.other_counsellor), intake(1))
    web = web_for(app, c)
    dashboard = web.get("/").get_data(as_text=True)
    work = _section(dashboard, 'id="queues-title"')
    assert 'href="/queues/mine"' in work and 'href="/queues/participant"' in work
    assert re.search(r'id="queue-count-mine">[^<]*<strong>4</strong>', work)
    assert re.search(r'id="queue-count-ind">[^<]*<strong>0</strong>', work)
    page = web.get("/queues/mine")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = _rows(html)
    assert rows == {
        unsigned.reference: f"/cases/{unsigned.reference}/signatures",
        ready.reference: f"/cases/{ready.reference}/commitment",
        to_propose.reference: f"/cases/{to_propose.reference}/payment/proposal",
        paid.reference: f"/cases/{paid.reference}/departure",
    }
    assert other_team.reference not in html
    assert "Wacht op mij" in text(html)
    # Every link opens a form the counsellor may use.
    for href in rows.values():
        assert web.get(href).status_code == 200, href
    # The step of the ready case is actually possible from its form.
    form = web.get(rows[ready.reference]).get_data(as_text=True)
    assert 'name="csrf_token"' in form


def test_supervisor_and_finance_queues_link_to_their_decisions(app, staff, ctx_for, session):
    c = staff.counsellor
    proposed = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(c), proposed.reference, {"method": "cash"})
    approved = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    payment_service.propose(ctx_for(c), approved.reference, {"method": "cash"})
    payment_service.approve(ctx_for(staff.supervisor), approved.reference)
    late = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(Case).where(Case.id == late.id).values(
            departure_deadline=dt.date.today() - dt.timedelta(days=2)))
        s.commit()
    sup = web_for(app, staff.supervisor)
    dashboard = sup.get("/").get_data(as_text=True)
    assert re.search(r'id="queue-count-approvals">[^<]*<strong>1</strong>', dashboard)
    assert re.search(r'id="queue-count-overdue">[^<]*<strong>1</strong>', dashboard)
    assert _rows(sup.get("/queues/approvals").get_data(as_text=True)) == {
        proposed.reference: f"/cases/{proposed.reference}/payment"}
    overdue = sup.get("/queues/overdue").get_data(as_text=True)
    assert _rows(overdue) == {late.reference: f"/cases/{late.reference}/lapse"}
    assert f'href="/cases/{late.reference}/extension"' in overdue
    assert sup.get(f"/cases/{late.reference}/lapse").status_code == 200
    fin = web_for(app, staff.finance)
    assert _rows(fin.get("/queues/to_pay").get_data(as_text=True)) == {
        approved.reference: f"/cases/{approved.reference}/disbursement"}
    assert fin.get(f"/cases/{approved.reference}/disbursement").status_code == 200
    # Another role's queue, or one that does not exist: not found.
    assert sup.get("/queues/mine").status_code == 404
    assert fin.get("/queues/approvals").status_code == 404
    assert web_for(app, c).get("/queues/nonsense").status_code == 404


def test_case_list_and_case_page_name_the_counsellor(app, staff, ctx_for, session):
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(User).where(User.id == staff.counsellor.id).values(name="Anna de Vries"))
        s.execute(update(User).where(User.id == staff.counsellor2.id).values(name=""))
        s.commit()
    mine = case_service.open_case(ctx_for(staff.counsellor), intake(1))
    bram = case_service.open_case(ctx_for(staff.counsellor2), intake(1))
    web = web_for(app, staff.supervisor)
    listing = web.get("/cases").get_data(as_text=True)
    row = listing.split(f">{mine.reference}<")[1].split("</tr>")[0]
    assert "Anna de Vries" in row and staff.counsellor.email not in row
    # Without a name, the address is all there is.
    assert staff.counsellor2.email in listing.split(f">{bram.reference}<")[1].split("</tr>")[0]
    page = web.get(f"/cases/{mine.reference}").get_data(as_text=True)
    summary = text(page.split("<dt>Regievoerder</dt>")[1].split("</div>")[0])
    assert summary == "Anna de Vries (Team Noord)"


def test_queue_api_gives_the_same_counts_and_rows(app, api_staff):
    client = app.test_client()
    h = api_staff.headers
    resp = client.post("/api/v1/cases", json=jsonable(intake(1)), headers=h["counsellor"])
    assert resp.status_code == 201, resp.get_json()
    ref = resp.get_json()["reference"]
    counts = client.get("/api/v1/queues", headers=h["counsellor"])
    assert counts.status_code == 200
    assert counts.get_json() == {"queues": {"mine": 1, "participant": 0, "ind": 0}}
    rows = client.get("/api/v1/queues/mine", headers=h["counsellor"]).get_json()
    assert rows["name"] == "mine" and rows["total"] == 1
    item = rows["items"][0]
    assert item["reference"] == ref and item["step"] == "sign"
    assert [r["code"] for r in item["reasons"]] == ["commitment_unsigned"]
    assert client.get("/api/v1/queues", headers=h["supervisor"]).get_json() == {
        "queues": {"approvals": 0, "extensions": 0, "overdue": 0}}
    assert client.get("/api/v1/queues/mine", headers=h["supervisor"]).status_code == 404
    assert client.get("/api/v1/queues", headers=h["admin"]).get_json() == {"queues": {}}
    assert client.get("/api/v1/queues").status_code == 401
    assert client.get("/api/v1/queues/mine", headers=h["other_counsellor"]).get_json()["total"] == 0
