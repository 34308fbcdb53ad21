"""A signing POST opens its link once and checks its signature once, against one size
limit; an over-limit drawing is refused clearly and changes nothing."""
from __future__ import annotations

import html

import pytest

from returnprog import documents, signature
from returnprog.services import signing as signing_service

from .test_signing_links import _open_case
from .test_signing_support import (adults_of, create_link, drawn_png, public_form,
                                   snapshot)
from ..web_client import text, web_for


@pytest.fixture
def calls(monkeypatch):
    """Counts of link openings, signature checks and PNG decodes during a test."""
    counts = {"open": 0, "check": 0, "decode": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(signing_service, "open_signing_link",
                        counting("open", signing_service.open_signing_link))
    monkeypatch.setattr(signature, "problems", counting("check", signature.problems))
    monkeypatch.setattr(signature, "read_png", counting("decode", signature.read_png))
    return counts


def test_a_link_signature_opens_the_link_once_and_checks_the_drawing_once(
        app, staff, ctx_for, session, calls):
    reference = _open_case(app, staff, ctx_for)
    signer = adults_of(app, reference)[0]
    path = create_link(web_for(app, staff.counsellor), reference, signer.id)
    client = app.test_client()
    page = client.get(path)
    assert page.status_code == 200
    calls.update(open=0, check=0, decode=0)
    resp = public_form(client, path, consent="yes", method="drawn", signature=drawn_png())
    assert resp.status_code == 303, resp.get_data(as_text=True)[:1500]
    # public_form GETs the page once for its CSRF token: one opening is that page's.
    assert calls == {"open": 2, "check": 1, "decode": 1}


def test_a_tablet_signature_checks_the_drawing_once(app, staff, ctx_for, session, calls):
    reference = _open_case(app, staff, ctx_for)
    signer = adults_of(app, reference)[0]
    web = web_for(app, staff.counsellor)
    resp = web.post(f"/cases/{reference}/tablet/sign", {
        "participant_id": signer.id, "kind": "commitment", "method": "drawn",
        "signature": drawn_png(), "consent": "yes", "id_type": "passport",
        "id_number": "FX123456", "id_confirmed": "yes"})
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:1500]
    assert calls["check"] == 1 and calls["decode"] == 1 and calls["open"] == 0


def _over_limit() -> str:
    uri = drawn_png()
    return uri + "A" * (signature.MAX_SIGNATURE_IMAGE - len(uri) + 4)


def test_one_size_limit_for_the_web_the_service_and_the_renderer():
    assert signing_service.MAX_SIGNATURE_IMAGE is signature.MAX_SIGNATURE_IMAGE
    assert documents._MAX_DATA_URI_CHARS is signature.MAX_SIGNATURE_IMAGE
    with pytest.raises(signature.SignatureImageError) as refused:
        signature.read_png(_over_limit())
    assert refused.value.code == signature.TOO_LARGE


def test_an_over_limit_drawing_is_refused_clearly_and_changes_nothing(
        app, staff, ctx_for, session, calls):
    reference = _open_case(app, staff, ctx_for)
    signer = adults_of(app, reference)[0]
    web = web_for(app, staff.counsellor)
    path = create_link(web, reference, signer.id)
    before = snapshot(app)
    client = app.test_client()
    resp = public_form(client, path, consent="yes", method="drawn", signature=_over_limit())
    assert resp.status_code == 413
    body = html.unescape(resp.get_data(as_text=True))
    assert "Намальований підпис завеликий" in body and 'id="error-summary"' in body
    assert _over_limit()[-50:] not in body  # the drawing is not sent back
    resp = web.post(f"/cases/{reference}/tablet/sign", {
        "participant_id": signer.id, "kind": "commitment", "method": "drawn",
        "signature": _over_limit(), "consent": "yes", "id_type": "passport",
        "id_number": "FX123456", "id_confirmed": "yes"})
    assert resp.status_code == 413
    assert "Намальований підпис завеликий" in html.unescape(resp.get_data(as_text=True))
    assert calls["decode"] == 0  # refused before any decoding
    assert snapshot(app) == before
    # The service refuses it too, for callers that skip the page.
    with pytest.raises(signing_service.SignatureInvalid) as refused:
        signing_service.sign_document(ctx_for(staff.counsellor), reference, signer.id,
                                      "commitment", {}, method="drawn",
                                      image_data_uri=_over_limit(), consent=True,
                                      identity_document="paspoort FX1")
    assert refused.value.problems == {"signature": signature.TOO_LARGE}
    assert snapshot(app) == before
