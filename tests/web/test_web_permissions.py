"""The permission matrix: every route of the app × every role × own/other team's case
gives the answer written down in tests/permission_matrix.py — and a route without an
entry there fails this test."""
from __future__ import annotations

from flask import url_for

from .. import permission_matrix as pm
from ..web_client import build_world, web_for

METHODS_SKIPPED = {"HEAD", "OPTIONS"}


def _routes(app):
    return sorted(((rule, method) for rule in app.url_map.iter_rules()
                   for method in rule.methods - METHODS_SKIPPED),
                  key=lambda rm: (rm[1] != "GET", rm[0].endpoint == "auth.logout",
                                  rm[0].endpoint, rm[1]))


def _url(app, rule, world, which):
    missing = [a for a in rule.arguments if a not in pm.PARAMS]
    assert not missing, f"{rule.rule}: add a filler for {missing} to permission_matrix.PARAMS"
    with app.test_request_context():
        return url_for(rule.endpoint, **{a: pm.PARAMS[a](world, which) for a in rule.arguments})


def _matches(expect, resp) -> bool:
    status = resp.status_code
    location = resp.headers.get("Location", "")
    if expect == pm.LOGIN:
        return status in (302, 303) and "/login" in location
    if expect == pm.REDIRECT:
        return status in (302, 303)
    if expect == pm.PASS:
        return status in (200, 303, 409, 422)
    return status == expect


def test_every_route_has_an_entry_and_every_entry_a_route(app):
    keys = {(rule.endpoint, method) for rule, method in _routes(app)}
    missing = sorted(keys - set(pm.MATRIX))
    stale = sorted(set(pm.MATRIX) - keys)
    assert not missing, f"routes without an entry in tests/permission_matrix.py: {missing}"
    assert not stale, f"entries in tests/permission_matrix.py without a route: {stale}"


def test_permission_matrix(app, staff, ctx_for, session):
    world = build_world(staff, ctx_for, session)
    users = {"counsellor": staff.counsellor, "supervisor": staff.supervisor,
             "finance": staff.finance, "admin": staff.admin,
             "records_manager": staff.records, "process_owner": staff.owner}
    failures, checked = [], 0
    for role in pm.ROLES:
        web = web_for(app, users.get(role))
        for rule, method in _routes(app):
            entry = pm.MATRIX[(rule.endpoint, method)]
            if entry in (pm.API, pm.STATIC) or isinstance(entry, pm.covered_by):
                continue
            expected = entry[role]
            cases = expected.items() if isinstance(expected, dict) else [("own", expected)]
            for which, expect in cases:
                url = _url(app, rule, world, which)
                resp = web.get(url) if method == "GET" else web.post(url) \
                    if method == "POST" else web.client.open(url, method=method)
                checked += 1
                if not _matches(expect, resp):
                    failures.append(f"{role:<10} {method:<4} {url} ({which}): expected "
                                    f"{expect}, got {resp.status_code} "
                                    f"{resp.headers.get('Location', '')}")
                assert resp.status_code != 500, f"{role} {method} {url}: server error"
    assert not failures, "\n".join(failures)
    assert checked > 150


def test_api_routes_take_bearer_tokens_not_session_cookies(app, staff, ctx_for, session):
    world = build_world(staff, ctx_for, session)
    web = web_for(app, staff.counsellor)
    from returnprog.web.api.common import PUBLIC_ENDPOINTS
    for rule, method in _routes(app):
        if pm.MATRIX.get((rule.endpoint, method)) != pm.API:
            continue
        url = _url(app, rule, world, "own")
        resp = web.client.open(url, method=method, json={})
        expected = 200 if rule.endpoint in PUBLIC_ENDPOINTS else 401
        assert resp.status_code == expected, f"{method} {url}: {resp.status_code}"
        assert resp.is_json


def test_every_staff_page_declares_who_may_open_it(app):
    """Each view of the staff UI says which roles it admits (or that it is public); the
    matrix above checks that the declaration holds."""
    from returnprog.web.staff import UI_BLUEPRINTS

    undeclared = [endpoint for endpoint, view in app.view_functions.items()
                  if endpoint.split(".")[0] in UI_BLUEPRINTS
                  and not getattr(view, "allowed_roles", None)]
    assert not undeclared
