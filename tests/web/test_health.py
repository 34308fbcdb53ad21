"""``/healthz`` and ``/readyz`` over HTTP, the dashboard's delivery warning, and the intake
form refusing a control character (issue 10)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import create_app
from returnprog import reminders as plan
from returnprog.models import AuditEvent, Case
from returnprog.services import health, outbox

from ..web_client import text, web_for


def _now():
    return dt.datetime.now(dt.timezone.utc)


def test_healthz_answers_200_without_sign_in_even_when_the_database_is_gone(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "x",
                      "DATABASE_URL": f"sqlite:///{tmp_path}/missing/returnprog.sqlite"})
    client = app.test_client()
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}
    assert resp.headers["Cache-Control"] == "no-store"
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] == {
        "status": "failing", "reason": "unreachable (OperationalError)"}


def test_readyz_is_503_until_a_scheduler_beats_then_200_and_names_each_check(app, session):
    client = app.test_client()  # not signed in
    resp = client.get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "not ready"
    assert {k: v["status"] for k, v in body["checks"].items()} == {
        "database": "ok", "migrations": "ok", "scheduler": "failing", "outbox": "ok"}
    health.beat(session, "host:42", _now(), started=True)
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "ready"
    assert resp.headers["Cache-Control"] == "no-store"
    assert client.post("/readyz").status_code == 405


def test_readyz_reports_a_backlog_without_any_recipient(app, session):
    health.beat(session, "host:42", _now(), started=True)
    app.config["READY_OUTBOX_MAX_DUE_AGE_SECONDS"] = 60
    outbox.enqueue(session, [plan.Message(
        key="t|1", case_id=None, kind="test", recipient="olena@example.org", language="nl",
        subject="Herinnering", body_text="x", body_html="x")],
        now=_now() - dt.timedelta(minutes=5))
    session.commit()
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["outbox"]["status"] == "failing"
    assert "olena" not in resp.get_data(as_text=True)


def _outage(session):
    """An SMTP server refusing a recipient, and a reminder due for 20 minutes."""
    now = _now()
    health.beat(session, "host:42", now, started=True)
    outbox.enqueue(session, [plan.Message(
        key="t|2", case_id=None, kind="test", recipient="olena@example.org", language="nl",
        subject="Herinnering", body_text="x", body_html="x")],
        now=now - dt.timedelta(minutes=20))
    session.commit()
    health.record_delivery(session, sent_at=now - dt.timedelta(hours=2),
                           error="cannot reach SMTP server mail.example:25: ConnectionRefusedError; "
                                 "last recipient <olena@example.org>",
                           error_at=now - dt.timedelta(minutes=1))


def test_supervisors_and_admins_see_a_delivery_warning_without_addresses(app, staff, session):
    _outage(session)
    for user in (staff.supervisor, staff.admin):
        page = text(web_for(app, user).get("/").get_data(as_text=True))
        assert "Herinneringen worden niet bezorgd" in page, user.role
        assert "De laatste poging om herinneringen aan de mailserver te geven is mislukt" in page
        assert "ConnectionRefusedError" in page and "[address]" in page
        assert "1 herinnering moet verstuurd worden en wacht al 20 minuten." in page
        assert "1 herinnering is nog niet verstuurd." in page
        assert "olena@example.org" not in page
    # Counsellors and finance cannot fix the mail set-up: no warning for them.
    for user in (staff.counsellor, staff.finance):
        page = text(web_for(app, user).get("/").get_data(as_text=True))
        assert "Herinneringen worden niet bezorgd" not in page, user.role


def test_no_delivery_warning_while_delivery_works(app, staff, session):
    now = _now()
    health.beat(session, "host:42", now, started=True)
    health.record_delivery(session, sent_at=now, error="old trouble",
                           error_at=now - dt.timedelta(minutes=5))
    page = text(web_for(app, staff.supervisor).get("/").get_data(as_text=True))
    assert "Herinneringen worden niet bezorgd" not in page


def test_the_warning_in_english(app, staff, session):
    _outage(session)
    web = web_for(app, staff.admin)
    web.post("/language", {"lang": "en", "next": "/"})
    page = text(web.get("/").get_data(as_text=True))
    assert "Reminders are not being delivered" in page
    assert "1 reminder is due and has been waiting for 20 minutes." in page


def _events(app) -> int:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def test_a_bel_in_a_name_on_the_intake_form_is_refused_beside_the_field(app, staff):
    web = web_for(app, staff.counsellor)
    events = _events(app)
    form = {"rows": "6", "principal-given_names_latin": "Olena\x07",
            "principal-family_name_latin": "Kovalenko", "principal-date_of_birth": "01-05-1985",
            "principal-v_number": "1234567890", "principal-language": "uk",
            "principal-email": "olena@example.org",
            "principal-asylum_application_pending": "yes", "destination_oblast": "UA-46",
            "destination_place": "Lviv"}
    resp = web.post("/cases/new", form)
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert 'href="#principal-given_names_latin"' in page
    assert "Bevat een stuurteken (zoals een bel- of escapeteken); verwijder het." in text(page)
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 0
    assert _events(app) == events
