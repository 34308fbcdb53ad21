"""Implausible households refused in the intake form (beside the member's field, in Dutch)
and in the API (422 naming the field), changing nothing (issue 13 item 6)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import auth
from returnprog.models import Case

from ..conftest import person
from ..web_client import text, web_for
from .test_web_flow import _intake_form

ELEVEN = dt.date.today().replace(year=dt.date.today().year - 11)


def _cases(app) -> int:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(func.count()).select_from(Case)).scalar_one()


def test_the_intake_form_refuses_an_eleven_year_old_partner_beside_the_field(app, staff):
    counsellor = web_for(app, staff.counsellor)
    principal = person()
    resp = counsellor.post("/cases/new", _intake_form(
        principal, [(0, person(), "spouse"), (2, person(date_of_birth=ELEVEN), "partner")]))
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    # The form's row 2 (the third block), not the second member of the list.
    assert 'href="#household-2-relationship"' in html
    assert "Een echtgeno(o)t(e) of partner moet meerderjarig zijn (18 jaar of ouder)" in text(html)
    assert _cases(app) == 0


def test_the_api_refuses_a_child_older_than_the_principal_naming_the_field(app, client, staff,
                                                                          session):
    token = auth.issue_api_token(session, staff.counsellor)
    body = {"principal": person(date_of_birth=dt.date(1990, 1, 1)),
            "household": [dict(person(date_of_birth=dt.date(2015, 1, 1)), relationship="child"),
                          dict(person(date_of_birth=dt.date(1980, 1, 1)), relationship="child")],
            "destination_oblast": "UA-30", "destination_place": "Kyiv"}
    for p in [body["principal"], *body["household"]]:
        p["date_of_birth"] = p["date_of_birth"].isoformat()
    resp = client.post("/api/v1/cases", json=body, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    details = resp.get_json()["error"]["details"]
    assert [(d["field"], d["message"]) for d in details] == [("household.1.relationship",
        "A child or grandchild must be younger than the principal (born 1990-01-01).")]
    assert _cases(app) == 0
