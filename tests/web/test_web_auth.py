"""Signing in and out: a new session at sign-in, cookie flags, lockout after repeated
failures, sign-out that makes every earlier cookie useless, the idle timeout."""
from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import func, select, update
from sqlmodel import Session

from returnprog import create_app
from returnprog.models import AuditEvent, User

from ..web_client import PASSWORD, Web, text, web_for


def _user(app, email) -> User:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(User).where(User.email == email)).scalar_one()


def _events(app, action) -> int:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action)).scalar_one()


def test_sign_in_starts_a_new_session_with_safe_cookie_flags(app, staff):
    web = Web(app.test_client())
    web.refresh_token("/login")
    with web.client.session_transaction() as sess:
        sess["planted"] = "by someone else"
        old_token = sess["csrf_token"]
    resp = web.client.post("/login", data={"csrf_token": web.token, "email": staff.counsellor.email,
                                           "password": PASSWORD})
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    with web.client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("csrf_token") != old_token
        assert sess["epoch"] == _user(app, staff.counsellor.email).session_epoch
    assert web.get("/").status_code == 200
    assert _events(app, "sign_in") == 1


def test_the_session_cookie_is_secure_outside_development():
    prod = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "k", "ENV_NAME": "acceptance"})
    dev = create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "k"})
    assert prod.config["SESSION_COOKIE_SECURE"] is True
    assert prod.config["SESSION_COOKIE_HTTPONLY"] and prod.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert dev.config["SESSION_COOKIE_SECURE"] is False


def test_a_cookie_replayed_after_sign_out_is_refused(app, staff):
    web = web_for(app, staff.counsellor)
    stolen = web.client.get_cookie("session").value
    epoch = _user(app, staff.counsellor.email).session_epoch
    assert web.post("/logout").status_code == 303
    assert _user(app, staff.counsellor.email).session_epoch == epoch + 1
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    resp = replay.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert replay.get("/cases").status_code == 302
    # A POST with the stolen cookie and its CSRF token does nothing either.
    replay.set_cookie("session", stolen)
    resp = replay.post("/cases/new", data={"csrf_token": web.token})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_wrong_passwords_lock_the_account_for_fifteen_minutes(app, staff):
    email = staff.counsellor.email
    web = Web(app.test_client())
    for attempt in range(4):
        resp = web.sign_in(email, "wrong password!", expect=401)
        assert "Het e-mailadres of wachtwoord klopt niet" in text(resp.get_data(as_text=True))
    resp = web.sign_in(email, "wrong password!", expect=401)
    assert "geblokkeerd tot" in text(resp.get_data(as_text=True))
    locked = _user(app, email).locked_until
    assert locked is not None
    minutes = (locked.replace(tzinfo=locked.tzinfo or dt.timezone.utc)
               - dt.datetime.now(dt.timezone.utc)).total_seconds() / 60
    assert 14 < minutes <= 15
    # Even the right password is refused while locked.
    resp = web.sign_in(email, PASSWORD, expect=401)
    assert "geblokkeerd tot" in text(resp.get_data(as_text=True))
    assert _events(app, "sign_in_failed") == 4 and _events(app, "sign_in_locked") == 1
    # After the lock the right password works again, and the count starts afresh.
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(User).where(User.email == email).values(
            locked_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        s.commit()
    web.sign_in(email, PASSWORD)
    assert _user(app, email).failed_logins == 0


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(app, staff):
    web = Web(app.test_client())
    unknown = web.sign_in("nobody@dtenv.example", PASSWORD, expect=401)
    wrong = web.sign_in(staff.counsellor.email, "not the password", expect=401)
    assert "klopt niet" in text(unknown.get_data(as_text=True))
    assert text(unknown.get_data(as_text=True)) == text(wrong.get_data(as_text=True))
    empty = web.client.post("/login", data={"csrf_token": web.token, "email": "", "password": ""})
    assert empty.status_code == 422 and 'href="#email"' in empty.get_data(as_text=True)


def test_an_idle_session_ends_and_stay_signed_in_keeps_it(app, staff):
    web = web_for(app, staff.counsellor)
    page = web.get("/").get_data(as_text=True)
    assert "Aangemeld blijven" in page and 'data-session-timeout="1800"' in page
    with web.client.session_transaction() as sess:
        sess["seen"] = int(time.time()) - 29 * 60
    assert web.post("/session/keepalive", {"next": "/cases"}).headers["Location"] == "/cases"
    with web.client.session_transaction() as sess:
        assert int(time.time()) - sess["seen"] < 5
        sess["seen"] = int(time.time()) - 31 * 60
    resp = web.get("/cases")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    page = text(web.client.get(resp.headers["Location"]).get_data(as_text=True))
    assert "afgemeld na 30 minuten zonder activiteit" in page
    assert web.get("/").status_code == 302  # the session is gone, not only this request


def test_deactivating_a_user_ends_their_session(app, staff):
    counsellor = web_for(app, staff.counsellor)
    admin = web_for(app, staff.admin)
    assert admin.post(f"/admin/users/{staff.counsellor.id}/deactivate").status_code == 303
    assert counsellor.get("/").status_code == 302
    Web(app.test_client()).sign_in(staff.counsellor.email, expect=401)
    assert admin.post(f"/admin/users/{staff.counsellor.id}/activate").status_code == 303
    Web(app.test_client()).sign_in(staff.counsellor.email)


def test_a_password_reset_ends_sessions_and_lifts_a_lock(app, staff):
    counsellor = web_for(app, staff.counsellor)
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(User).where(User.id == staff.counsellor.id).values(
            locked_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=10)))
        s.commit()
    admin = web_for(app, staff.admin)
    short = admin.post(f"/admin/users/{staff.counsellor.id}/password", {"password": "short"})
    assert short.status_code == 422 and 'href="#password"' in short.get_data(as_text=True)
    assert admin.post(f"/admin/users/{staff.counsellor.id}/password",
                      {"password": "a brand new passphrase"}).status_code == 303
    assert counsellor.get("/").status_code == 302
    Web(app.test_client()).sign_in(staff.counsellor.email, "a brand new passphrase")


def test_after_sign_in_only_local_addresses_are_followed(app, staff):
    web = Web(app.test_client())
    web.refresh_token("/login")
    for target, expected in (("/cases?state=intake", "/cases?state=intake"),
                             ("https://evil.example/", "/"), ("//evil.example/x", "/"),
                             ("/\\evil.example", "/")):
        resp = web.client.post(f"/login?next={target}", data={
            "csrf_token": web.token, "email": staff.counsellor.email, "password": PASSWORD})
        assert resp.headers["Location"] == expected, target
        web.client.post("/logout", data={"csrf_token": web.refresh_token("/")})
        web.refresh_token("/login")


def test_the_language_choice_survives_sign_in_and_sign_out(app, staff):
    web = Web(app.test_client())
    web.refresh_token("/login")
    assert 'lang="nl"' in web.get("/login").get_data(as_text=True)
    web.post("/language", {"lang": "en", "next": "/login"})
    page = web.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page and "Sign in" in page
    web.sign_in(staff.counsellor.email)
    assert "Dashboard" in web.get("/").get_data(as_text=True)
    web.post("/logout")
    assert "You are signed out." in web.get("/login").get_data(as_text=True)
