"""The web benchmark's loader (bench/load_cases.py) makes a database the service reads
like one it made itself: lists, case reads, the paged trail, the staff pages and the name
search work on it, the audit chain verifies, and new cases can still be opened (the
PostgreSQL sequences were moved past the loaded ids). Kept small (a few hundred cases) so the bench does
not rot between runs."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from returnprog import audit, auth
from returnprog.models import AuditEvent, Case, Participant, User

from ..conftest import intake, jsonable
from ..web_client import PASSWORD, web_for

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import load_cases  # noqa: E402

CASES = 300


@pytest.fixture
def loaded(app, db_url):
    """The app's database loaded with CASES cases and the two trail cases, and a bearer
    token and a password for the benchmark's counsellor."""
    info = load_cases.load(db_url, CASES, trail_events=(10, 120))
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        user = s.execute(select(User).where(User.email == load_cases.BENCH_USER)).scalar_one()
        s.execute(update(User).where(User.id == user.id)
                  .values(password_hash=auth.hash_new_password(PASSWORD, email=user.email)))
        s.commit()
        token = auth.issue_api_token(s, user)
    return info, {"Authorization": f"Bearer {token}"}, user


@pytest.mark.engines_differ
def test_the_service_reads_what_the_loader_wrote(app, loaded, db_url):
    info, headers, user = loaded
    client = app.test_client()
    assert info.cases == CASES + 2
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == CASES + 2
        sizes = s.execute(select(Participant.case_id, func.count()).group_by(Participant.case_id)
                          ).all()
        assert len(sizes) == CASES + 2 and {n for _, n in sizes} >= {1, 2, 3}
        assert audit.verify(s).ok

    listing = client.get("/api/v1/cases?state=intake", headers=headers)
    assert listing.status_code == 200
    assert listing.get_json()["total"] > 0

    for events, ref in info.trail_refs.items():
        case = client.get(f"/api/v1/cases/{ref}", headers=headers)
        assert case.status_code == 200, case.get_data(as_text=True)[:500]
        assert case.get_json()["state"] == "departure_agreed"
        assert case.get_json()["household_size"] == 3
        trail = client.get(f"/api/v1/cases/{ref}/trail?limit=200", headers=headers).get_json()
        assert len(trail["events"]) == events

    # The name search finds the trail case by its principal's surname, as typed.
    ref = info.trail_refs[10]
    with Session(app.extensions["returnprog.engine"]) as s:
        surname = s.execute(select(Participant.family_name_latin).join(
            Case, Case.id == Participant.case_id).where(
            Case.reference == ref, Participant.is_principal)).scalar_one()
    found = client.get("/api/v1/cases", query_string={"q": surname, "per_page": 100},
                       headers=headers).get_json()
    assert ref in [c["reference"] for c in found["items"]] or found["total"] > 100

    # New work after the load: ids and references carry on past the loaded ones.
    opened = client.post("/api/v1/cases", json=jsonable(intake(adults=2, minors=1)),
                         headers=headers)
    assert opened.status_code == 201, opened.get_data(as_text=True)[:500]
    assert opened.get_json()["reference"].endswith(f"{CASES + 3:06d}")
    with Session(app.extensions["returnprog.engine"]) as s:
        assert audit.verify(s).ok
        assert s.execute(select(func.max(AuditEvent.seq))).scalar_one() == \
            audit.verify(s).events


@pytest.mark.engines_differ
def test_the_staff_pages_open_on_the_loaded_database(app, loaded):
    info, _headers, user = loaded
    web = web_for(app, user)
    for ref in info.trail_refs.values():
        page = web.get(f"/cases/{ref}")
        assert page.status_code == 200
        assert ref in page.get_data(as_text=True)
    dashboard = web.get("/")
    assert dashboard.status_code == 200
    assert "Bench Counsellor" in dashboard.get_data(as_text=True)


def test_loading_refuses_a_database_that_already_holds_cases(app, loaded, db_url):
    with pytest.raises(ValueError, match="already holds cases"):
        load_cases.load(db_url, 5)
