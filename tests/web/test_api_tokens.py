"""API tokens: they expire, carry a name and their last use, are listed and revoked by
their owner (page and API) and by administrators for anyone; revoked and expired tokens
are refused with a message saying so; issue and revocation are audited; the value is
shown once and stored hashed. Signing out leaves them working (the page says so)."""
from __future__ import annotations

import datetime as dt
import re

import time_machine
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import auth
from returnprog.models import ApiToken, AuditEvent

from ..web_client import text, web_for

API = "/api/v1"


def _rows(app, **where):
    with Session(app.extensions["returnprog.engine"]) as s:
        query = select(ApiToken)
        for key, value in where.items():
            query = query.where(getattr(ApiToken, key) == value)
        return s.execute(query.order_by(ApiToken.id)).scalars().all()


def _events(app, action) -> list[AuditEvent]:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(AuditEvent).where(AuditEvent.action == action)
                         .order_by(AuditEvent.seq)).scalars().all()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _issue_on_page(web, name="sync script") -> str:
    resp = web.post("/account/tokens", {"name": name})
    assert resp.status_code == 201, resp.get_data(as_text=True)[:2000]
    page = resp.get_data(as_text=True)
    return re.search(r'<code id="new-token">([^<]+)</code>', page).group(1)


def test_a_token_issued_on_the_page_is_shown_once_stored_hashed_and_audited(app, staff, client):
    web = web_for(app, staff.counsellor)
    token = _issue_on_page(web)
    row, = _rows(app, user_id=staff.counsellor.id)
    assert row.token_hash == auth.hash_token(token) and row.name == "sync script"
    days = (row.expires_at.replace(tzinfo=dt.timezone.utc) - dt.datetime.now(dt.timezone.utc)).days
    assert days == 29 and app.config["API_TOKEN_DAYS"] == 30
    event, = _events(app, "issue_api_token")
    assert '"name": "sync script"' in event.details and token not in event.details
    # The list shows it by name, never its value.
    listing = web.get("/account/tokens").get_data(as_text=True)
    assert "sync script" in listing and token not in listing
    assert "Afmelden trekt tokens niet in" in text(listing)
    # It works, and its use is noted.
    assert client.get(f"{API}/cases", headers=_bearer(token)).status_code == 200
    assert _rows(app, id=row.id)[0].last_used_at is not None
    # Signing out of the UI does not revoke it (a decision: tokens serve integrations).
    web.post("/logout")
    assert client.get(f"{API}/cases", headers=_bearer(token)).status_code == 200


def test_a_token_needs_a_clean_name(app, staff):
    web = web_for(app, staff.counsellor)
    for name in ("", "   ", "bad\x07bell", "x" * 101):
        resp = web.post("/account/tokens", {"name": name})
        assert resp.status_code == 422, name
        assert 'href="#name"' in resp.get_data(as_text=True)
    assert _rows(app) == []


def test_an_expired_token_is_refused_saying_so(app, staff, client):
    web = web_for(app, staff.counsellor)
    token = _issue_on_page(web)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30, minutes=1)
    with time_machine.travel(later, tick=False):
        resp = client.get(f"{API}/cases", headers=_bearer(token))
        assert resp.status_code == 401
        assert resp.get_json()["error"]["message"] == (
            "This API token has expired: issue a new one on the API tokens page.")
        assert "verlopen" in text(web_for(app, staff.counsellor).get("/account/tokens")
                                  .get_data(as_text=True))


def test_the_owner_revokes_on_the_page_and_the_token_is_refused(app, staff, client):
    web = web_for(app, staff.counsellor)
    token = _issue_on_page(web)
    keep = _issue_on_page(web, "other script")
    row = _rows(app, token_hash=auth.hash_token(token))[0]
    assert web.post(f"/account/tokens/{row.id}/revoke").status_code == 303
    resp = client.get(f"{API}/cases", headers=_bearer(token))
    assert resp.status_code == 401
    assert resp.get_json()["error"]["message"] == "This API token has been revoked."
    assert client.get(f"{API}/cases", headers=_bearer(keep)).status_code == 200
    revoked = _rows(app, id=row.id)[0]
    assert revoked.revoked and revoked.revoked_by == staff.counsellor.id and revoked.revoked_at
    event, = _events(app, "revoke_api_token")
    assert event.actor_id == staff.counsellor.id and f'"token": {row.id}' in event.details
    assert "ingetrokken" in text(web.get("/account/tokens").get_data(as_text=True))


def test_nobody_but_the_owner_or_an_admin_may_revoke(app, staff, client):
    owner = web_for(app, staff.counsellor)
    token = _issue_on_page(owner)
    row = _rows(app, token_hash=auth.hash_token(token))[0]
    colleague = web_for(app, staff.counsellor2)
    assert colleague.post(f"/account/tokens/{row.id}/revoke").status_code == 404
    assert "sync script" not in colleague.get("/account/tokens").get_data(as_text=True)
    assert client.get(f"{API}/cases", headers=_bearer(token)).status_code == 200
    # An administrator sees everyone's tokens and revokes any.
    admin = web_for(app, staff.admin)
    page = admin.get("/account/tokens").get_data(as_text=True)
    assert "Tokens van andere gebruikers" in page and "sync script" in page
    assert admin.post(f"/account/tokens/{row.id}/revoke").status_code == 303
    assert client.get(f"{API}/cases", headers=_bearer(token)).status_code == 401
    event, = _events(app, "revoke_api_token")
    assert event.actor_id == staff.admin.id


def test_the_api_lists_and_revokes_the_callers_own_tokens(app, api_staff, client):
    mine = api_staff.headers["counsellor"]
    listing = client.get(f"{API}/tokens", headers=mine)
    assert listing.status_code == 200
    items = listing.get_json()["items"]
    assert [t["user_id"] for t in items] == [api_staff.counsellor.id]
    # The owner named as every answer names staff (no e-mail address in the answer).
    assert items[0]["user"] == {"id": api_staff.counsellor.id, "name": api_staff.counsellor.name}
    assert "user_email" not in items[0]
    assert items[0]["status"] == "active" and items[0]["expires_at"]
    assert "token_hash" not in items[0]
    # Not someone else's (indistinguishable from none), and not everyone's.
    theirs = client.get(f"{API}/tokens", headers=api_staff.headers["counsellor2"]
                        ).get_json()["items"][0]["id"]
    assert client.delete(f"{API}/tokens/{theirs}", headers=mine).status_code == 404
    assert client.get(f"{API}/tokens?all=1", headers=mine).status_code == 403
    everyone = client.get(f"{API}/tokens?all=1", headers=api_staff.headers["admin"]).get_json()
    assert len(everyone["items"]) == len(vars(api_staff)) - 1  # one per cast member
    # Revoking your own token works — and from then on it is refused.
    resp = client.delete(f"{API}/tokens/{items[0]['id']}", headers=mine)
    assert resp.status_code == 200 and resp.get_json()["status"] == "revoked"
    assert client.get(f"{API}/tokens", headers=mine).status_code == 401
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "revoke_api_token")).scalar_one() == 1
