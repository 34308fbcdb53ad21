"""CSRF: every state-changing form is refused without its token, every form carries one;
and no GET changes anything (only the log of who looked at personal data grows)."""
from __future__ import annotations

import hashlib
import re

from flask import url_for
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from returnprog import audit
from returnprog.models import AuditEvent

from .. import permission_matrix as pm
from ..web_client import build_world, web_for

# Looks at personal data go to the access log (DESIGN §5), which a GET may write; the one
# look still in the audit chain is finance's download of a payment file.
VIEW_EVENTS = {"download_export"}


def _rules(app, methods):
    return [(rule, m) for rule in app.url_map.iter_rules()
            for m in sorted(rule.methods & methods) if not rule.rule.startswith("/api/")]


def _url(app, rule, world, which="own"):
    with app.test_request_context():
        return url_for(rule.endpoint, **{a: pm.PARAMS[a](world, which) for a in rule.arguments})


def _snapshot(engine) -> dict:
    """A digest of every table's rows; audit events only as their non-view part. The
    access log and the rate limits' counters are left out: recording looks and counting
    requests is what they are for."""
    out = {}
    with Session(engine) as s:
        for table in SQLModel.metadata.sorted_tables:
            rows = s.execute(select(table).order_by(*table.primary_key.columns)).all()
            if table.name in ("audit_event", "audit_head", "access_log", "rate_limit_counter"):
                continue
            out[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
        events = s.execute(select(AuditEvent.seq, AuditEvent.action)
                           .order_by(AuditEvent.seq)).all()
        out["audit_event (changes)"] = [e for e in events if e.action not in VIEW_EVENTS]
    return out


def test_every_state_changing_form_is_refused_without_a_token(app, staff, ctx_for, session):
    world = build_world(staff, ctx_for, session)
    engine = app.extensions["returnprog.engine"]
    clients = {"counsellor": web_for(app, staff.counsellor), "admin": web_for(app, staff.admin),
               "finance": web_for(app, staff.finance)}
    before = _snapshot(engine)
    unsafe = _rules(app, {"POST", "PUT", "PATCH", "DELETE"})
    assert len(unsafe) > 20
    for rule, method in unsafe:
        url = _url(app, rule, world)
        for role, web in clients.items():
            for token in (None, "forged-token"):
                data = {"reason": "x", "lang": "en", "email": staff.counsellor.email,
                        "password": "correct horse battery", "method": "cash"}
                if token:
                    data["csrf_token"] = token
                resp = web.client.open(url, method=method, data=data)
                assert resp.status_code == 400, f"{role} {method} {url}: {resp.status_code}"
                assert "Traceback" not in resp.get_data(as_text=True)
    assert _snapshot(engine) == before
    # Still signed in: sign-out without a token did nothing either.
    assert clients["counsellor"].get("/").status_code == 200


def test_every_form_on_every_page_carries_a_csrf_token(app, staff, ctx_for, session):
    world = build_world(staff, ctx_for, session)
    users = {"counsellor": staff.counsellor, "supervisor": staff.supervisor,
             "finance": staff.finance, "admin": staff.admin}
    forms_seen = 0
    for role in ("anonymous", *users):
        web = web_for(app, users.get(role))
        for rule, _ in _rules(app, {"GET"}):
            if rule.endpoint == "static":
                continue
            resp = web.get(_url(app, rule, world))
            if resp.status_code != 200 or not resp.mimetype == "text/html":
                continue
            page = resp.get_data(as_text=True)
            for form in re.findall(r"<form\b[^>]*>.*?</form>", page, flags=re.S):
                if re.search(r'method="post"', form[:300], flags=re.I):
                    forms_seen += 1
                    assert 'name="csrf_token"' in form, f"{role} {rule.rule}: {form[:200]}"
    assert forms_seen > 50


def test_no_get_changes_anything(app, staff, ctx_for, session):
    world = build_world(staff, ctx_for, session)
    engine = app.extensions["returnprog.engine"]
    users = {"counsellor": staff.counsellor, "supervisor": staff.supervisor,
             "finance": staff.finance, "admin": staff.admin}
    clients = {role: web_for(app, users.get(role)) for role in ("anonymous", *users)}
    before = _snapshot(engine)
    gets = [(rule, m) for rule, m in _rules(app, {"GET"}) if rule.endpoint != "static"]
    for rule, _ in gets:
        for web in clients.values():
            for which in ("own", "other"):
                # Query strings a page understands must not change anything either.
                resp = web.get(_url(app, rule, world, which), query_string={"views": "1"})
                # /readyz answers 503 by design here: the test world has no scheduler.
                assert resp.status_code < 500 or (rule.endpoint == "health.readyz"
                                                  and resp.status_code == 503)
    assert _snapshot(engine) == before
    with Session(engine) as s:
        assert audit.verify(s).ok
