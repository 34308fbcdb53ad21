"""The office tablet is a kiosk: once the counsellor opens the tablet page, the staff
session is locked to that one signature. Every staff route answers with the hand-back
page (no staff link, no case data), the participant ends on a "done" page in their
language, and only the counsellor's password unlocks the session."""
from __future__ import annotations

import re

from returnprog.services import cases as case_service

from ..conftest import intake
from ..web_client import PASSWORD, text, web_for
from .test_signing_support import adults_of, snapshot

ID_CHECK = {"id_type": "passport", "id_number": "FX123456", "id_confirmed": "yes"}


def _staff_urls(reference: str) -> list[str]:
    # The case page (the old "cancel and go back to the case" link), the dashboard, the
    # case list, the signatures page, the account pages.
    return [f"/cases/{reference}", "/", "/cases", f"/cases/{reference}/signatures",
            "/account/tokens"]


def _assert_locked(web, reference: str, names: list[str]) -> None:
    for url in _staff_urls(reference):
        resp = web.get(url)
        assert resp.status_code == 403, url
        body = resp.get_data(as_text=True)
        assert 'action="/tablet/hand-back"' in body, url
        assert reference not in body, url
        assert not any(name in body for name in names), url
        assert 'href="/cases' not in body and 'href="/"' not in body, url


def test_from_the_tablet_no_staff_page_is_reachable_without_the_password(
        app, staff, ctx_for, session):
    reference = case_service.open_case(ctx_for(staff.counsellor), intake(2, 1)).reference
    signer, spouse = adults_of(app, reference)[:2]
    web = web_for(app, staff.counsellor)
    household = [spouse.full_name, spouse.family_name_cyrillic or "-"]

    page = web.post(f"/cases/{reference}/tablet", {"participant_id": signer.id,
                                                    "kind": "commitment"})
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    # No way back to the staff side on the participant's page, only the hand-back page.
    assert f'href="/cases/{reference}"' not in body
    assert 'href="/tablet/hand-back"' in body
    _assert_locked(web, reference, household)
    # Another case's tablet signing is refused too.
    assert web.post("/cases/VRP-2026-999999/tablet/sign", {}).status_code == 403

    # The language switch keeps the lock and the page: now in Russian.
    ru = web.get("/tablet?lang=ru")
    assert ru.status_code == 200 and '<html lang="ru">' in ru.get_data(as_text=True)
    assert 'name="lang" value="ru"' in ru.get_data(as_text=True)

    resp = web.post(f"/cases/{reference}/tablet/sign", {
        "participant_id": signer.id, "kind": "commitment", "consent": "yes", "lang": "ru",
        "method": "typed", "typed_name": signer.full_name, **ID_CHECK})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/tablet/done")
    done = web.get("/tablet/done")
    body = done.get_data(as_text=True)
    assert done.status_code == 200 and '<html lang="ru">' in body
    assert "Документ подписан" in body and reference not in body
    assert 'href="/cases' not in body
    _assert_locked(web, reference, household)
    # Signed once: the locked tablet cannot sign again either.
    before = snapshot(app)
    again = web.post(f"/cases/{reference}/tablet/sign", {
        "participant_id": signer.id, "kind": "commitment", "consent": "yes",
        "method": "typed", "typed_name": signer.full_name, **ID_CHECK})
    assert again.status_code == 403 and snapshot(app) == before

    # A wrong or missing password keeps the lock.
    for password, status in (("", 422), ("not the password", 401)):
        resp = web.post("/tablet/hand-back", {"password": password})
        assert resp.status_code == status
        assert "action=\"/tablet/hand-back\"" in resp.get_data(as_text=True)
        _assert_locked(web, reference, household)
    # Without the CSRF token nothing is unlocked.
    assert web.post("/tablet/hand-back", {"password": PASSWORD}, token=False).status_code == 400
    _assert_locked(web, reference, household)

    resp = web.post("/tablet/hand-back", {"password": PASSWORD})
    assert resp.status_code == 303
    # Handed back after a signature: the counsellor is offered the signer's copy.
    assert re.search(rf"/cases/{reference}/documents/\d+/copy$", resp.headers["Location"])
    case_page = web.get(f"/cases/{reference}")
    assert case_page.status_code == 200
    assert "tablet" in text(case_page.get_data(as_text=True)).lower()
    # Unlocked: the kiosk pages are gone.
    assert web.get("/tablet").status_code == 404
    assert web.get("/tablet/done").status_code == 404


def test_a_tablet_handed_back_before_signing_goes_to_the_signatures_page(
        app, staff, ctx_for, session):
    reference = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0)).reference
    signer = adults_of(app, reference)[0]
    web = web_for(app, staff.counsellor)
    before = snapshot(app)
    assert web.post(f"/cases/{reference}/tablet", {"participant_id": signer.id,
                                                    "kind": "commitment"}).status_code == 200
    assert web.get("/tablet/hand-back").status_code == 200
    resp = web.post("/tablet/hand-back", {"password": PASSWORD})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/cases/{reference}/signatures")
    assert web.get(f"/cases/{reference}").status_code == 200
    assert snapshot(app).documents == before.documents  # the password check is audited
