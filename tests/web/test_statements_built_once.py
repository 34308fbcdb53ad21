"""The hot reads send statements built once (issue 11, "reads stay reads").

SQLAlchemy finds a statement's compiled form by its cache key, and derives the key of a
statement object built afresh by walking the whole statement; a statement object built
once keeps its key. At 150,000 cases, building and walking the case page's statements cost
more than running them (the case-files UNION: 0.6 ms against 0.03 ms reused), so the case
read, the case page, the trail, the dashboard and the plain case lists build theirs once,
with the case, the reference, the reader's team, the filters and the dates as parameters
(bench/README.md).

This test counts the cache keys derived while a route is served, on the second request of
a reader (the first builds the statements of each kind once per process). It fails when
such a route builds a statement in the request again. The count hooks SQLAlchemy's
``HasCacheKey._generate_cache_key``, the one method every key derivation goes through.
"""
from __future__ import annotations

import collections
import traceback
from pathlib import Path

import pytest
from sqlalchemy.sql import cache_key
from sqlmodel import Session

from returnprog import auth, search
from returnprog.services import cases as case_service

from ..conftest import drive_to, intake, run_queue_job
from ..web_client import web_for

pytestmark = pytest.mark.engines_differ

PROJECT = str(Path(__file__).resolve().parents[2] / "returnprog")

@pytest.fixture
def built(monkeypatch):
    """Where in the project a cache key was derived while ``built.on`` is set."""
    derive = cache_key.HasCacheKey._generate_cache_key
    seen = collections.Counter()
    state = {"on": False}

    def counting(self):
        if state["on"]:
            here = [f for f in traceback.extract_stack(limit=60) if f.filename.startswith(PROJECT)]
            if here:
                seen[f"{Path(here[-1].filename).name}:{here[-1].lineno} {here[-1].name}"] += 1
        return derive(self)

    monkeypatch.setattr(cache_key.HasCacheKey, "_generate_cache_key", counting)

    class Built:
        def during(self, request):
            seen.clear()
            state["on"] = True
            try:
                response = request()
            finally:
                state["on"] = False
            assert response.status_code == 200, response.get_data(as_text=True)[:300]
            return dict(seen)
    return Built()


def test_the_hot_reads_build_no_statement_in_the_request(app, built, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "support_paid", adults=2, minors=1)
    case_service.open_case(ctx_for(staff.counsellor), intake(1))
    ref = case.reference
    token = auth.issue_api_token(session, staff.counsellor)
    api, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    web = web_for(app, staff.counsellor)
    with Session(app.extensions["returnprog.engine"]) as s:
        # The scheduler's queues job has run (a case it has not judged yet is judged in
        # the request, with statements of its own).
        run_queue_job(app, s)
    routes = {
        "case API": lambda: api.get(f"/api/v1/cases/{ref}", headers=headers),
        "trail API": lambda: api.get(f"/api/v1/cases/{ref}/trail", headers=headers),
        "case page": lambda: web.client.get(f"/cases/{ref}"),
        "dashboard": lambda: web.client.get("/"),
        # A plain list, filtered and sorted: the filters' values are parameters.
        "list API": lambda: api.get("/api/v1/cases?state=intake&sort=deadline&page=2",
                                    headers=headers),
        "case list page": lambda: web.client.get("/cases?state=intake"),
        # A search: the words are parameters of a statement built once per shape.
        "search API": lambda: api.get("/api/v1/cases?q=Kovalenko", headers=headers),
    }
    over = {}
    for name, request in routes.items():
        request()  # the first: the statements of each kind are built here, once
        seen = built.during(request)
        if seen:
            over[name] = seen
    assert not over, f"statements built afresh in the request (where): {over}"


def test_the_count_sees_a_statement_built_in_the_request(app, built, staff, ctx_for, session):
    """The hook counts what it should: a search of a shape not seen before builds its
    statements in the request; another search of the same shape (other words, as many
    spellings) builds none. Both ask past the last page, so both run the page and the count
    (the first use of a statement object derives its key once, wherever it happens)."""
    drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    token = auth.issue_api_token(session, staff.counsellor)
    api, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    first, second = "Kovalenko", "Kovalenka"
    assert search.shape(search.parse(first)) == search.shape(search.parse(second))
    case_service._search_shaped.cache_clear()
    past_the_end = "&page=9"
    seen = built.during(lambda: api.get(f"/api/v1/cases?q={first}{past_the_end}",
                                        headers=headers))
    assert any("list_cases" in where for where in seen), seen
    assert built.during(lambda: api.get(f"/api/v1/cases?q={second}{past_the_end}",
                                        headers=headers)) == {}
