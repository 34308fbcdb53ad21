"""The two-step correction form (issue 13 item 1), without JavaScript: the form posts to
a review page that lists the documents to be signed again; confirming saves; the case page
then shows the old version as superseded and still offers its PDF."""
from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import AuditEvent, Document, Participant

from ..conftest import drive_to, fake_sign
from ..web_client import text, web_for


def _form_fields(html: str) -> dict:
    """The named inputs of the page's form with their values (as a browser would post)."""
    fields = {}
    for tag in re.findall(r"<input [^>]*>", html):
        if 'type="checkbox"' in tag and " checked" not in tag:
            continue  # a browser posts a checkbox only when it is ticked
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<select id="[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', body)
        fields[name] = chosen.group(1) if chosen else ""
    for name, body in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        fields[name] = body.strip()
    return fields


def _unescape(fields: dict) -> dict:
    import html as htmllib
    return {k: htmllib.unescape(v) for k, v in fields.items()}


def test_a_name_correction_is_reviewed_then_saved_and_the_old_declaration_shows_superseded(
        app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=0)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    engine = app.extensions["returnprog.engine"]
    with Session(engine) as s:
        principal = s.execute(select(Participant).where(
            Participant.case_id == case.id, Participant.is_principal)).scalar_one()
        own_declaration = s.execute(select(Document.id).where(
            Document.case_id == case.id, Document.participant_id == principal.id,
            Document.kind == workflow.WITHDRAWAL_DECLARATION)).scalar_one()
    web = web_for(app, staff.counsellor)
    page = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert f"/cases/{case.reference}/correction" in page
    assert f"/cases/{case.reference}/intake" not in page

    form_page = web.get(f"/cases/{case.reference}/correction")
    assert form_page.status_code == 200
    fields = _unescape(_form_fields(form_page.get_data(as_text=True)))
    assert fields["step"] == "review" and fields[f"p-{principal.id}-family_name_latin"] == "Kovalenko"
    fields[f"p-{principal.id}-family_name_latin"] = "Kovalenko-Shevchenko"

    review = web.post(f"/cases/{case.reference}/correction", fields)
    html = review.get_data(as_text=True)
    assert review.status_code == 200, text(html)[:1500]
    # Exactly the principal's own declaration is listed; nothing is saved yet.
    assert re.findall(r'data-document-id="(\d+)"', html) == [str(own_declaration)]
    assert "Kovalenko-Shevchenko" in text(html)
    with Session(engine) as s:
        assert s.get(Participant, principal.id).family_name_latin == "Kovalenko"
        assert s.get(Document, own_declaration).superseded_at is None

    confirm = _unescape(_form_fields(html))
    assert confirm.pop("step", None) is None  # the step is the button pressed
    done = web.post(f"/cases/{case.reference}/correction", {**confirm, "step": "confirm"})
    assert done.status_code == 303, text(done.get_data(as_text=True))[:1500]
    with Session(engine) as s:
        assert s.get(Participant, principal.id).family_name_latin == "Kovalenko-Shevchenko"
        assert s.get(Document, own_declaration).superseded_at is not None
        event = s.execute(select(AuditEvent).where(AuditEvent.case_id == case.id)
                          .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
        assert event.action == "correct_case" and "Kovalenko-Shevchenko" not in event.details
    shown = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert 'class="superseded"' in shown
    # The timeline names the field corrected, never the personal value.
    assert "Achternaam (Latijnse letters)" in text(shown)
    assert web.get(f"/cases/{case.reference}/documents/{own_declaration}.pdf").status_code == 200

    # Posting the same form again: the version has moved on, so it is refused, not re-applied.
    again = web.post(f"/cases/{case.reference}/correction", {**confirm, "step": "confirm"})
    assert again.status_code == 409


def test_a_contact_correction_without_signed_data_lists_nothing_to_sign(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    fields = _unescape(_form_fields(web.get(f"/cases/{case.reference}/correction")
                                    .get_data(as_text=True)))
    pid = next(k.split("-")[1] for k in fields if k.endswith("-email"))
    fields[f"p-{pid}-email"] = "new.address@example.org"
    review = web.post(f"/cases/{case.reference}/correction", fields).get_data(as_text=True)
    assert "data-document-id" not in review
    confirm = _unescape(_form_fields(review))
    assert web.post(f"/cases/{case.reference}/correction",
                    {**confirm, "step": "confirm"}).status_code == 303
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.get(Participant, int(pid)).email == "new.address@example.org"


def test_bad_input_is_shown_beside_the_field_and_nothing_is_saved(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    fields = _unescape(_form_fields(web.get(f"/cases/{case.reference}/correction")
                                    .get_data(as_text=True)))
    pid = next(k.split("-")[1] for k in fields if k.endswith("-email"))
    fields[f"p-{pid}-email"] = "not an address"
    resp = web.post(f"/cases/{case.reference}/correction", fields)
    assert resp.status_code == 422
    assert f'id="p-{pid}-email-error-1"' in resp.get_data(as_text=True)


def test_the_form_needs_its_csrf_token_and_a_closed_case_is_refused(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departed", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    assert web.post(f"/cases/{case.reference}/correction", {"step": "review"},
                    token=False).status_code == 400
    assert web.get(f"/cases/{case.reference}/correction").status_code == 409
    page = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert "/correction" not in page


def test_a_child_is_added_and_another_removed_through_the_two_steps(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=1)
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    engine = app.extensions["returnprog.engine"]
    with Session(engine) as s:
        minor = s.execute(select(Participant).where(
            Participant.case_id == case.id, Participant.relationship == "child")).scalar_one()
        declaration = s.execute(select(Document.id).where(
            Document.case_id == case.id, Document.kind == workflow.WITHDRAWAL_DECLARATION)
        ).scalar_one()
    web = web_for(app, staff.counsellor)
    url = f"/cases/{case.reference}/correction"
    form_html = web.get(url).get_data(as_text=True)
    assert f'name="remove-{minor.id}"' in form_html and "new-0-v_number" not in form_html
    fields = _unescape(_form_fields(form_html))
    assert f"remove-{minor.id}" not in fields  # not ticked

    # Without JavaScript: the button re-renders the form with an empty member block.
    grown = web.post(url, {**fields, "add_member": "1"})
    assert grown.status_code == 200
    grown_html = grown.get_data(as_text=True)
    assert 'name="new-0-v_number"' in grown_html
    fields = _unescape(_form_fields(grown_html))
    born = dt.date.today().replace(year=dt.date.today().year - 5)
    fields.update({"new-0-given_names_latin": "Dariabada", "new-0-family_name_latin": "Kovalenko",
                   "new-0-date_of_birth": born.isoformat(), "new-0-v_number": "8765432109",
                   "new-0-relationship": "child", "new-0-asylum_application_pending": "yes",
                   f"remove-{minor.id}": "1"})
    review = web.post(url, fields)
    html = review.get_data(as_text=True)
    assert review.status_code == 200, text(html)[:1500]
    assert "Dariabada" in text(html) and f'data-participant-id="{minor.id}"' in html
    assert re.findall(r'data-document-id="(\d+)"', html) == [str(declaration)]
    with Session(engine) as s:  # nothing saved yet
        assert s.get(Participant, minor.id) is not None
        assert s.get(Document, declaration).superseded_at is None

    confirm = _unescape(_form_fields(html))
    done = web.post(url, {**confirm, "step": "confirm"})
    assert done.status_code == 303, text(done.get_data(as_text=True))[:1500]
    with Session(engine) as s:
        names = s.execute(select(Participant.given_names_latin).where(
            Participant.case_id == case.id)).scalars().all()
        assert "Dariabada" in names and s.get(Participant, minor.id) is None
        assert s.get(Document, declaration).superseded_at is not None


def test_a_refused_household_change_is_shown_on_the_form(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    web = web_for(app, staff.counsellor)
    url = f"/cases/{case.reference}/correction"
    fields = _unescape(_form_fields(web.post(url, {
        **_unescape(_form_fields(web.get(url).get_data(as_text=True))), "add_member": "1"})
        .get_data(as_text=True)))
    fields.update({"new-0-given_names_latin": "Romana", "new-0-family_name_latin": "Kovalenko",
                   "new-0-date_of_birth": "1980-01-01", "new-0-v_number": "8765432110",
                   "new-0-relationship": "sibling", "new-0-email": "r@example.org"})
    resp = web.post(url, fields)
    assert resp.status_code == 409
    page = text(resp.get_data(as_text=True))
    assert "intake" in page and "Romana" in resp.get_data(as_text=True)  # what was typed stays
