"""The participant's signing page through a personal link: the irreversibility of the
withdrawal confirmed on its own (refused until ticked, recorded when given), the page in
another language on request, the signer's name in both scripts."""
from __future__ import annotations

import html
import json

from sqlalchemy import select
from sqlmodel import Session

from returnprog.models import AuditEvent
from returnprog.services import cases as case_service

from ..conftest import intake
from ..web_client import csrf_token, web_for
from .test_signing_support import adults_of, create_link, last_document, pass_code, snapshot


def test_the_withdrawal_is_signed_only_with_its_irreversibility_confirmed_on_its_own(
        app, staff, ctx_for, session):
    reference = case_service.open_case(ctx_for(staff.counsellor), intake(1, 1)).reference
    signer = adults_of(app, reference)[0]
    path = create_link(web_for(app, staff.counsellor), reference, signer.id,
                       "withdrawal_declaration")
    client = app.test_client()
    pass_code(app, client, path)
    page = client.get(path)
    body = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 200 and '<html lang="uk">' in body
    # Its own highlighted block with its own tick box, in Ukrainian and in Dutch.
    block = body[body.index('class="field acknowledgements"'):]
    block = block[:block.index("</fieldset>")]
    assert "Відкликання остаточне." in block and "De intrekking is definitief." in block
    assert 'name="ack" value="cond_irreversible"' in block
    # The name in Cyrillic and Latin letters.
    assert f"Олена Коваленко / {signer.full_name}" in body
    # The language switch: links to this page in the other languages, no personal data.
    for code in ("ru", "en", "nl"):
        assert f'href="{path}?lang={code}"' in body
    token = csrf_token(body)
    form = {"csrf_token": token, "consent": "yes", "method": "typed",
            "typed_name": signer.full_name}

    before = snapshot(app)
    refused = client.post(path, data={**form, "lang": "ru"})
    assert refused.status_code == 422
    text = html.unescape(refused.get_data(as_text=True))
    assert '<html lang="ru">' in text
    assert "Поставьте отметку, чтобы подтвердить, что отзыв окончателен." in text
    assert 'href="#ack-cond_irreversible"' in text
    assert snapshot(app) == before

    signed = client.post(path, data={**form, "ack": "cond_irreversible", "lang": "ru"})
    assert signed.status_code == 303 and "lang=ru" in signed.headers["Location"]
    doc = last_document(app)
    assert doc.kind == "withdrawal_declaration"
    with Session(app.extensions["returnprog.engine"]) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "sign_document")
                          ).scalar_one()
    assert json.loads(event.details)["acknowledged"] == ["cond_irreversible"]


def test_the_language_switch_shows_the_link_page_in_the_chosen_language(
        app, staff, ctx_for, session):
    reference = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0)).reference
    signer = adults_of(app, reference)[0]
    path = create_link(web_for(app, staff.counsellor), reference, signer.id)
    client = app.test_client()
    for code, words in (("ru", "Подписать документ"), ("en", "Sign the document"),
                        ("nl", "Uw handtekening"), ("xx", "Підписати документ")):
        body = html.unescape(client.get(f"{path}?lang={code}").get_data(as_text=True))
        lang = code if code != "xx" else "uk"  # an unknown choice: the registered language
        assert f'<html lang="{lang}">' in body and words in body, code
        assert f'name="lang" value="{lang}"' in body


def test_the_counsellor_picks_a_translated_reason_for_the_addendum(
        app, staff, ctx_for, session):
    import datetime as dt

    from ..conftest import drive_to

    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    signer = adults_of(app, case.reference)[0]
    web = web_for(app, staff.counsellor)
    case_page = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert 'name="reason_code"' in case_page and 'value="travel_documents"' in case_page
    deadline = (case.departure_deadline + dt.timedelta(days=14)).isoformat()
    # Neither a standard reason nor words: refused, as before.
    refused = web.post(f"/cases/{case.reference}/signing-links",
                       {"participant_id": signer.id, "kind": "addendum",
                        "departure_deadline": deadline})
    assert refused.status_code == 422
    path = create_link(web, case.reference, signer.id, "addendum",
                       departure_deadline=deadline, reason_code="travel_documents")
    body = html.unescape(app.test_client().get(path).get_data(as_text=True))
    assert "Проїзні документи не будуть готові вчасно." in body
    assert "De reisdocumenten zijn niet op tijd klaar." in body
