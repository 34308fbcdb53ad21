"""The administrators' pages under four eyes between people: a privileged account waits
for a second administrator, who approves it on the requests page; a role change likewise;
passwords are taken as typed and weak ones refused at the field, in Dutch."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlmodel import Session

from returnprog import auth
from returnprog.models import AccountRequest, AuditEvent, User

from ..web_client import PASSWORD, text, web_for


def _db(app):
    return Session(app.extensions["returnprog.engine"], expire_on_commit=False)


def _admins(app):
    with _db(app) as s:
        adam = auth.create_user(s, email="adam@dtenv.example", role="admin", password=PASSWORD,
                                person="P-0001")
        bea = auth.create_user(s, email="bea@dtenv.example", role="admin", password=PASSWORD,
                               person="P-0002")
        return adam, bea


def _user(app, email):
    with _db(app) as s:
        return s.execute(select(User).where(User.email == email)).scalar_one_or_none()


def test_a_new_supervisor_waits_for_a_second_admin_who_approves_it(app, staff):
    adam, bea = _admins(app)
    web = web_for(app, adam)
    resp = web.post("/admin/users/new", {"email": "nina@dtenv.example", "name": "Nina",
                                         "role": "supervisor", "team": "Team Noord",
                                         "person": "P-0100", "password": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/requests")
    assert _user(app, "nina@dtenv.example") is None
    page = web.get("/admin/requests").get_data(as_text=True)
    assert "nina@dtenv.example" in page and "P-0100" in page
    assert "andere beheerder beslist" in text(page)          # no buttons for his own request
    request_id = int(re.search(r"/admin/requests/(\d+)/approve", web_for(app, bea).get(
        "/admin/requests").get_data(as_text=True)).group(1))
    own = web.post(f"/admin/requests/{request_id}/approve")
    assert own.status_code == 403 and "vier ogen" in text(own.get_data(as_text=True))
    assert _user(app, "nina@dtenv.example") is None
    second = web_for(app, bea)
    ok = second.post(f"/admin/requests/{request_id}/approve")
    assert ok.status_code == 303
    nina = _user(app, "nina@dtenv.example")
    assert nina.role == "supervisor" and nina.person == "P-0100"
    web_for(app, nina)  # she can sign in with the password Adam gave
    with _db(app) as s:
        assert s.get(AccountRequest, request_id).decided_by == bea.id
        assert s.execute(select(AuditEvent.actor_id).where(
            AuditEvent.action == "approve_account_request")).scalar_one() == bea.id


def test_a_role_change_is_a_request_until_another_admin_approves(app, staff):
    adam, bea = _admins(app)
    web = web_for(app, adam)
    form = web.get(f"/admin/users/{staff.counsellor.id}/role")
    assert form.status_code == 200 and 'name="csrf_token"' in form.get_data(as_text=True)
    resp = web.post(f"/admin/users/{staff.counsellor.id}/role", {"role": "finance"})
    assert resp.status_code == 303
    assert _user(app, staff.counsellor.email).role == "counsellor"
    same = web.post(f"/admin/users/{staff.counsellor.id}/role", {"role": "finance"})
    assert same.status_code == 409 and "wacht al" in text(same.get_data(as_text=True))
    own = web.post(f"/admin/users/{adam.id}/role", {"role": "supervisor"})
    assert own.status_code == 403
    bad = web.post(f"/admin/users/{staff.counsellor2.id}/role", {"role": "boss"})
    assert bad.status_code == 422 and 'href="#role"' in bad.get_data(as_text=True)
    with _db(app) as s:
        request_id = s.execute(select(AccountRequest.id)).scalar_one()
    rejected = web_for(app, bea).post(f"/admin/requests/{request_id}/reject",
                                      {"reason": "wrong person"})
    assert rejected.status_code == 303
    assert _user(app, staff.counsellor.email).role == "counsellor"


def test_the_personnel_number_is_required_and_weak_passwords_are_refused_at_the_field(app, staff):
    adam, _ = _admins(app)
    web = web_for(app, adam)
    resp = web.post("/admin/users/new", {"email": "kim@dtenv.example", "role": "counsellor",
                                         "team": "Team Noord", "password": "password1234"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'href="#password"' in page and 'href="#person"' in page
    assert "wachtwoord dat veel mensen gebruiken" in text(page)
    own_email = web.post("/admin/users/new", {"email": "kim@dtenv.example", "role": "counsellor",
                                              "team": "Team Noord", "person": "P-7",
                                              "password": "kim@dtenv.example"})
    assert own_email.status_code == 422
    assert "e-mailadres" in text(own_email.get_data(as_text=True))
    reset = web.post(f"/admin/users/{staff.counsellor.id}/password",
                     {"password": "anna@dtenv.example"})
    assert reset.status_code == 422 and 'href="#password"' in reset.get_data(as_text=True)
    assert _user(app, "kim@dtenv.example") is None


def test_passwords_are_taken_as_typed_never_trimmed(app, staff):
    adam, _ = _admins(app)
    web = web_for(app, adam)
    typed = "  tulpen langs de dijk  "
    resp = web.post("/admin/users/new", {"email": "kim@dtenv.example", "role": "counsellor",
                                         "team": "Team Noord", "person": "P-7",
                                         "password": typed})
    assert resp.status_code == 303
    kim = _user(app, "kim@dtenv.example")
    assert auth.check_password(kim, typed) and not auth.check_password(kim, typed.strip())
    web_for(app, None).sign_in(kim.email, typed)
    web_for(app, None).sign_in(kim.email, typed.strip(), expect=401)
