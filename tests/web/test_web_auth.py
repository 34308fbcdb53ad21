"""Signing in and out: a new session at sign-in, cookie flags, a progressive delay after
repeated failures (no lockout, no enumeration), sign-out that makes every earlier cookie useless, the idle timeout."""
from __future__ import annotations

import datetime as dt
import time

import time_machine
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


def test_wrong_passwords_slow_down_the_next_attempt_from_that_address(app, staff):
    """Three free failures, then each attempt waits longer (5 s, 10 s, ...) — answered
    without checking the password — and the owner's own address is not slowed."""
    email = staff.counsellor.email
    web = Web(app.test_client())
    for _attempt in range(3):
        resp = web.sign_in(email, "wrong password!", expect=401)
        assert "Het e-mailadres of wachtwoord klopt niet" in text(resp.get_data(as_text=True))
    # The fourth comes too soon: even the right password is not checked now.
    resp = web.sign_in(email, PASSWORD, expect=429)
    assert resp.headers["Retry-After"] == "5"
    assert "Wacht 5 seconden" in text(resp.get_data(as_text=True))
    assert _events(app, "sign_in_failed") == 3 and _events(app, "sign_in") == 0
    # Another address (the owner's desk) signs in at once: no lockout anyone can trigger.
    desk = Web(app.test_client())
    desk.client.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    desk.sign_in(email)
    # After the wait one more guess is allowed; failing doubles the delay.
    now = time.time()
    with time_machine.travel(now + 6, tick=False):
        web.sign_in(email, "wrong again!", expect=401)
        assert web.sign_in(email, "wrong again!", expect=429).headers["Retry-After"] == "10"
    with time_machine.travel(now + 17, tick=False):
        # The right password after the wait works, and forgives this address's failures.
        web.sign_in(email)
        web.post("/logout")
        web.sign_in(email, "one typo", expect=401)
        web.sign_in(email)


def test_the_throttle_treats_unknown_addresses_like_real_accounts(app, staff):
    web = Web(app.test_client())
    for email in ("nobody@dtenv.example", staff.counsellor.email):
        for _attempt in range(3):
            web.sign_in(email, "wrong password!", expect=401)
        resp = web.sign_in(email, "wrong password!", expect=429)
        assert resp.headers["Retry-After"] == "5"


def test_many_addresses_together_hit_the_generous_cap_per_account(app, staff):
    app.config["SIGNIN_ACCOUNT_FAILURE_LIMIT"] = 6
    email = staff.counsellor.email
    for n in range(3):
        guesser = Web(app.test_client())
        guesser.client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        guesser.sign_in(email, "guess", expect=401)
        guesser.sign_in(email, "guess", expect=401)
    owner = Web(app.test_client())
    owner.client.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    resp = owner.sign_in(email, expect=429)
    assert 3500 < int(resp.headers["Retry-After"]) <= 3600
    # Other accounts are not affected.
    owner.sign_in(staff.supervisor.email)


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(app, staff, monkeypatch):
    from returnprog.services import accounts

    checked = []
    real = accounts.check_password_hash

    def spy(stored, password):
        checked.append(stored)
        return real(stored, password)

    monkeypatch.setattr(accounts, "check_password_hash", spy)
    web = Web(app.test_client())
    unknown = web.sign_in("nobody@dtenv.example", PASSWORD, expect=401)
    wrong = web.sign_in(staff.counsellor.email, "not the password", expect=401)
    # Deactivated accounts get the same answer as well.
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(User).where(User.id == staff.supervisor.id).values(active=False))
        s.commit()
    inactive = web.sign_in(staff.supervisor.email, PASSWORD, expect=401)
    assert "klopt niet" in text(unknown.get_data(as_text=True))
    assert text(unknown.get_data(as_text=True)) == text(wrong.get_data(as_text=True)) \
        == text(inactive.get_data(as_text=True))
    assert "geblokkeerd" not in text(wrong.get_data(as_text=True))
    # The same work in every path: one real password hash check each (the unknown and
    # inactive ones against a dummy hash), so the time does not tell them apart.
    assert len(checked) == 3 and all(h.startswith(("scrypt:", "pbkdf2:")) for h in checked)
    assert checked[0] == checked[2] != checked[1]
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


UNSAFE_NEXT = ("https://evil.example/", "//evil.example/x", "/\\evil.example",
               "/cases\r\nSet-Cookie: x=1", "/cases%0d%0aX: y", "/\tcases", "/ca\x07ses",
               "http://[::1", "/cases\u2028x", "\\\\evil.example", "javascript:alert(1)",
               "/" + "a" * 3000)


def test_after_sign_in_only_local_addresses_are_followed(app, staff):
    from urllib.parse import quote

    web = Web(app.test_client())
    web.refresh_token("/login")
    for target, expected in (("/cases?state=intake", "/cases?state=intake"),
                             *((t, "/") for t in UNSAFE_NEXT)):
        if "%0d" in target:  # already encoded: sent as it is, decoded by the server
            query = target
        else:
            query = quote(target, safe="")
        resp = web.client.post(f"/login?next={query}", data={
            "csrf_token": web.token, "email": staff.counsellor.email, "password": PASSWORD})
        assert resp.status_code == 303 and resp.headers["Location"] == expected, target
        web.client.post("/logout", data={"csrf_token": web.refresh_token("/")})
        web.refresh_token("/login")


def test_the_language_switch_follows_only_local_addresses(app, staff):
    web = Web(app.test_client())
    web.refresh_token("/login")
    for target in UNSAFE_NEXT:
        resp = web.post("/language", {"lang": "en", "next": target})
        assert resp.status_code == 303 and resp.headers["Location"] == "/login", target
    signed_in = web_for(app, staff.counsellor)
    for target in UNSAFE_NEXT:
        resp = signed_in.post("/language", {"lang": "nl", "next": target})
        assert resp.status_code == 303 and resp.headers["Location"] == "/", target
    assert signed_in.post("/language", {"lang": "nl", "next": "/cases"}
                          ).headers["Location"] == "/cases"


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
