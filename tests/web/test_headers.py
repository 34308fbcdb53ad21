"""Headers on every response type (issue 10): ``no-store`` and ``nosniff`` on every API
answer — JSON, each error status, the OpenAPI document — and HSTS on every response in
production, none in development."""
from __future__ import annotations

import pytest

from ..web_client import build_world, web_for

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture
def responses(app, staff, ctx_for, session):
    """One response of each type, fetched by a function so each app setting is seen."""
    world = build_world(staff, ctx_for, session)
    from returnprog import auth

    token = {"Authorization": f"Bearer {auth.issue_api_token(session, staff.counsellor)}"}
    web = web_for(app, staff.counsellor)
    anonymous = app.test_client()

    def fetch() -> dict[str, object]:
        return {
            "html page": web.get("/"),
            "pdf download": web.get(f"/cases/{world.own}/documents/{world.own_doc}.pdf"),
            "static file": anonymous.get("/static/css/app.css"),
            "redirect": anonymous.get("/"),
            "html 404": web.get("/no-such-page"),
            "api json": anonymous.get("/api/v1/cases", headers=token),
            "api 422": anonymous.post("/api/v1/cases", headers=token, json={}),
            "api 401": anonymous.get("/api/v1/cases"),
            "api 403": anonymous.post(f"/api/v1/cases/{world.own}/actions/lapse", headers=token,
                                      json={"reason": "x"}),
            "api 404": anonymous.get("/api/v1/no-such-thing", headers=token),
            "api 405": anonymous.delete("/api/v1/cases", headers=token),
            "api 413": anonymous.post("/api/v1/cases", headers={**token, "Content-Type":
                                      "application/json"}, data=b" " * (9 * 1024 * 1024)),
            "api 415": anonymous.post("/api/v1/cases", headers=token, data="x",
                                      content_type="text/plain"),
            "openapi": anonymous.get("/api/v1/openapi.json"),
        }
    return fetch


EXPECTED_STATUS = {"html page": 200, "pdf download": 200, "static file": 200, "redirect": 302,
                   "html 404": 404, "api json": 200, "api 422": 422, "api 401": 401,
                   "api 403": 403, "api 404": 404, "api 405": 405, "api 413": 413,
                   "api 415": 415, "openapi": 200}


def test_every_api_response_is_not_stored_and_not_sniffed(responses):
    got = responses()
    assert {k: r.status_code for k, r in got.items()} == EXPECTED_STATUS
    for name, resp in got.items():
        if name.startswith("api") or name == "openapi":
            assert resp.headers.get("Cache-Control") == "no-store", name
            assert resp.headers.get("X-Content-Type-Options") == "nosniff", name
            assert resp.mimetype == "application/json", name
    # No HSTS in development: the service runs on plain http://127.0.0.1 there.
    assert not [n for n, r in got.items() if "Strict-Transport-Security" in r.headers]


def test_in_production_every_response_carries_hsts(app, responses):
    # Set after start-up: this checks the header, not the production start-up checks.
    app.config["ENV_NAME"] = "production"
    got = responses()
    assert {k: r.status_code for k, r in got.items()} == EXPECTED_STATUS
    missing = [n for n, r in got.items() if r.headers.get("Strict-Transport-Security") != HSTS]
    assert not missing, missing
    assert got["api json"].headers["Cache-Control"] == "no-store"
