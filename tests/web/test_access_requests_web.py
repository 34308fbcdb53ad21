"""The access request pages (issue 16): a records manager registers a request by case
reference and participant, sees its term on the dashboard (overdue ones highlighted),
downloads the package, extends, delivers or refuses it; bad input is answered beside its
field with nothing saved; forms need their CSRF token; a process owner only reads."""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

from sqlalchemy import func, select

from returnprog.models import AccessEvent, AccessRequest, AuditEvent, Participant

from ..conftest import drive_to
from ..web_client import text, web_for

NEW = "/records/access-requests/new"


def _count(session, model=AccessRequest) -> int:
    session.rollback()
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def _member(session, case, relationship="spouse") -> Participant:
    return session.execute(select(Participant).where(
        Participant.case_id == case.id, Participant.relationship == relationship)).scalar_one()


def _form(case, member, **over):
    data = {"reference": case.reference, "participant_id": str(member.id),
            "received_on": dt.date.today().isoformat(), "received_via": "email",
            "identity_document_type": "passport", "identity_document_last4": "0042"}
    data.update(over)
    return data


def test_a_records_manager_registers_extends_downloads_and_delivers(app, staff, ctx_for,
                                                                    session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=1)
    spouse = _member(session, case)
    web = web_for(app, staff.records)
    page = web.get(f"{NEW}?reference={case.reference}").get_data(as_text=True)
    assert spouse.full_name in page and 'name="participant_id"' in page
    unknown = web.get(f"{NEW}?reference=VRP-1999-999999")
    assert unknown.status_code == 422 and 'id="reference-error-1"' in unknown.get_data(True)

    # Field errors, nothing saved: a whole document number, no participant, a future date.
    bad = web.post(NEW, _form(case, spouse, identity_document_last4="FM200002",
                              participant_id="", received_on="2999-01-01"))
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert 'id="identity_document_last4-error-1"' in body
    assert 'id="participant_id-error-1"' in body
    assert _count(session) == 0
    future = web.post(NEW, _form(case, spouse, received_on="2999-01-01"))
    assert future.status_code == 422 and 'id="received_on-error-1"' in future.get_data(True)
    assert web.post(NEW, _form(case, spouse), token=False).status_code == 400
    assert _count(session) == 0

    resp = web.post(NEW, _form(case, spouse))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    session.rollback()
    [row] = session.execute(select(AccessRequest)).scalars().all()
    assert (row.participant_id, row.identity_document_last4, row.received_via) == (
        spouse.id, "0042", "email")
    show = f"/records/access-requests/{row.id}"
    page = text(web.get(show).get_data(as_text=True))
    assert spouse.full_name in page and "…0042" in page

    # Extension: a reason is required; then once.
    resp = web.post(f"{show}/extension", {"extend-months": "2", "extend-reason": "",
                                          "extend-version": str(row.version)})
    assert resp.status_code == 422 and 'id="extend-reason-error-1"' in resp.get_data(True)
    resp = web.post(f"{show}/extension", {"extend-months": "5", "extend-reason": "x",
                                          "extend-version": str(row.version)})
    assert resp.status_code == 422 and 'id="extend-months-error-1"' in resp.get_data(True)
    resp = web.post(f"{show}/extension", {"extend-months": "2", "extend-reason": "Archive",
                                          "extend-version": str(row.version)})
    assert resp.status_code == 303
    session.rollback()
    row = session.get(AccessRequest, row.id)
    assert row.status == "extended"
    assert 'action="/records/access-requests/%d/extension"' % row.id not in \
        web.get(show).get_data(as_text=True)

    # Delivery needs the package downloaded first, then a channel.
    resp = web.post(f"{show}/delivery", {"deliver-channel": "post",
                                         "deliver-version": str(row.version)})
    assert resp.status_code == 409 and "Download eerst het pakket" in text(resp.get_data(True))
    package = web.post(f"{show}/package")
    assert package.status_code == 200 and package.mimetype == "application/zip"
    assert package.headers["Cache-Control"] == "no-store"
    names = zipfile.ZipFile(io.BytesIO(package.data)).namelist()
    assert {"data.json", "summary.pdf"} <= set(names)
    resp = web.post(f"{show}/delivery", {"deliver-version": str(row.version)})
    assert resp.status_code == 422 and 'id="deliver-channel-error-1"' in resp.get_data(True)
    resp = web.post(f"{show}/delivery", {"deliver-channel": "post",
                                         "deliver-version": str(row.version)})
    assert resp.status_code == 303
    session.rollback()
    row = session.get(AccessRequest, row.id)
    assert row.status == "delivered" and row.delivered_sha256
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "deliver_access_request")).scalar_one() == 1
    # A stale form (the version shown before) changes nothing.
    resp = web.post(f"{show}/refusal", {"refuse-reason": "late", "refuse-version": "1"})
    assert resp.status_code == 409


def test_the_dashboard_shows_the_term_and_highlights_overdue_requests(app, staff, ctx_for,
                                                                      session):
    from returnprog.services import access_requests

    case = drive_to(ctx_for, staff, session, "intake", adults=2, minors=0)
    spouse = _member(session, case)
    ctx = ctx_for(staff.records)
    base = {"reference": case.reference, "participant_id": spouse.id, "received_via": "letter",
            "identity_document_type": "id_card", "identity_document_last4": "AB12"}
    due = access_requests.register(ctx, {**base, "received_on": dt.date.today()})
    late = access_requests.register(ctx, {**base, "received_on": dt.date.today()
                                          - dt.timedelta(days=70)})
    for user in (staff.records, staff.owner):
        page = web_for(app, user).get("/").get_data(as_text=True)
        rows = re.findall(r"<tr[^>]*>.*?</tr>", page, re.S)
        overdue = [r for r in rows if f"/records/access-requests/{late.id}\"" in r]
        fresh = [r for r in rows if f"/records/access-requests/{due.id}\"" in r]
        assert overdue and 'class="overdue"' in overdue[0] and "dagen te laat" in overdue[0]
        assert fresh and 'class="overdue"' not in fresh[0]
        assert (due.due_on - dt.date.today()).days >= 28
    # The process owner reads the request but is offered no form.
    owner = web_for(app, staff.owner)
    page = owner.get(f"/records/access-requests/{due.id}").get_data(as_text=True)
    assert spouse.full_name in page and "/package" not in page and "/refusal" not in page
    assert owner.post(f"/records/access-requests/{due.id}/package").status_code == 403
    assert owner.get(NEW).status_code == 403
    # Records roles are offered no case pages, which they may not open.
    nav = re.search(r'<nav class="main-nav".*?</nav>', page, re.S).group(0)
    assert "/records/access-requests" in nav and "/cases" not in nav and "/queues/" not in nav
    # Others do not see the records pages at all.
    assert web_for(app, staff.counsellor).get("/records/access-requests").status_code == 403


def test_the_processing_log_pages_per_participant_and_per_staff_member(app, staff, ctx_for,
                                                                      session):
    from returnprog.services import access_requests, case_views

    case = drive_to(ctx_for, staff, session, "intake", adults=2, minors=0)
    spouse = _member(session, case)
    case_views.case_page(ctx_for(staff.supervisor), case.reference)
    row = access_requests.register(ctx_for(staff.records), {
        "reference": case.reference, "participant_id": spouse.id, "received_via": "letter",
        "received_on": dt.date.today(), "identity_document_type": "passport",
        "identity_document_last4": "7777"})
    web = web_for(app, staff.owner)
    page = text(web.get(f"/records/access-requests/{row.id}").get_data(as_text=True))
    assert "open_case" in page and "register_access_request" in page
    assert staff.supervisor.email in page
    assert "Case handling" in page or "Dossierbehandeling" in page
    resp = web.get("/records/processing-log?staff=nobody@example.org")
    assert resp.status_code == 422 and 'id="staff-error-1"' in resp.get_data(True)
    resp = web.get("/records/processing-log?staff=sanne@dtenv.example&since=nonsense")
    assert resp.status_code == 422 and 'id="since-error-1"' in resp.get_data(True)
    page = text(web.get(f"/records/processing-log?staff={staff.supervisor.email}")
                .get_data(as_text=True))
    assert case.reference in page
    # The look at the participant's log is itself in the access log, not the chain.
    session.rollback()
    assert session.execute(select(func.count()).select_from(AccessEvent).where(
        AccessEvent.view == "access_request")).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action.like("%log%"))).scalar_one() == 0


def test_odd_input_is_answered_never_with_a_server_error(app, staff, ctx_for, session):
    from returnprog.services import access_requests

    case = drive_to(ctx_for, staff, session, "intake", adults=2, minors=0)
    spouse = _member(session, case)
    row = access_requests.register(ctx_for(staff.records), {
        "reference": case.reference, "participant_id": spouse.id, "received_via": "letter",
        "received_on": dt.date.today(), "identity_document_type": "passport",
        "identity_document_last4": "7777"})
    web = web_for(app, staff.records)
    show = f"/records/access-requests/{row.id}"
    gets = {f"{NEW}?reference=" + "x" * 5000: 422, f"{NEW}?reference=VRP%00": 422,
            "/records/access-requests/99999999999999": 404, "/records/access-requests/424242": 404,
            "/records/processing-log?staff=x&page=abc": 422,
            "/records/processing-log?staff=sanne@dtenv.example&until=2027-13-45": 422,
            f"{show}?log_page=zz": 200, f"{show}?log_page=999999": 200}
    for url, expected in gets.items():
        assert web.get(url).status_code == expected, url
    posts = [
        (NEW, _form(case, spouse, participant_id="abc")),
        (NEW, _form(case, spouse, participant_id="99999999999")),
        (NEW, _form(case, spouse, received_on="31-02-2027")),
        (NEW, _form(case, spouse, identity_document_last4="ЖЖЖЖ")),
        (NEW, _form(case, spouse, reference="R" * 300)),
        (NEW, _form(case, spouse, identity_document_type="tattoo", received_via="pigeon")),
        (f"{show}/extension", {"extend-months": "1.5", "extend-reason": "x",
                               "extend-version": "x"}),
        (f"{show}/extension", {"extend-months": "1", "extend-reason": "a\x00b",
                               "extend-version": "1"}),
        (f"{show}/delivery", {"deliver-channel": "carrier pigeon", "deliver-version": "1"}),
        (f"{show}/refusal", {"refuse-reason": "x" * 5000, "refuse-version": "1"}),
    ]
    for url, data in posts:
        resp = web.post(url, data)
        assert resp.status_code == 422, (url, data, resp.status_code)
    assert web.post("/records/access-requests/99999999999999/refusal",
                    {"refuse-reason": "x", "refuse-version": "1"}).status_code == 404
    session.rollback()
    assert session.get(AccessRequest, row.id).version == row.version
    assert _count(session) == 1
