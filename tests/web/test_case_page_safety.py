"""The safer case page (issue 13, item 5): the next main-line step first, the side exits
apart after the main steps, a confirmation stating the consequence before anything that
cannot be undone, IND forms only once the withdrawal declarations are signed, and a
new-case form that grows member blocks on demand (without JavaScript too)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select, update
from sqlmodel import Session

from returnprog import workflow
from returnprog.models import Case, Participant

from ..conftest import drive_to, fake_sign, person
from ..web_client import audit_count, text, web_for

TODAY = dt.date.today()


def _case(app, reference: str) -> Case:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(Case).where(Case.reference == reference)).scalar_one()


def _positions(page: str, *markers: str) -> list[int]:
    found = [page.find(m) for m in markers]
    assert all(i >= 0 for i in found), dict(zip(markers, found))
    return found


def _first_control_of_steps(page: str) -> str:
    """The name of the first form control on the page after the steps heading."""
    rest = page[page.index('id="steps-title"'):]
    match = re.search(r'<(?:input|textarea|select|button)\b(?![^>]*type="hidden")[^>]*>', rest)
    return match.group(0)


def test_intake_main_step_first_and_leaving_apart_after_the_signatures(app, staff, ctx_for,
                                                                       session):
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    fake_sign(session, case, workflow.COMMITMENT)
    page = web_for(app, staff.counsellor).get(f"/cases/{case.reference}").get_data(as_text=True)
    commit, signing, exits, leave = _positions(
        page, 'id="step-confirm_commitment"', 'id="signing-title"', 'id="exits-title"',
        'id="step-leave_programme"')
    assert commit < signing < exits < leave
    # The first control Tab reaches among the steps is the commitment's, not "leave".
    assert "leave_programme" not in _first_control_of_steps(page)
    assert f'action="/cases/{case.reference}/commitment"' in page.split('id="signing-title"')[0]
    assert "leave_programme-reason" not in page.split('id="exits-title"')[0]


def test_a_refused_main_step_still_comes_before_the_exit(app, staff, ctx_for, session):
    # Nothing signed: the commitment shows what is missing; "leave" has a form, but apart.
    case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
    page = web_for(app, staff.counsellor).get(f"/cases/{case.reference}").get_data(as_text=True)
    first, leave = _positions(page, 'id="step-confirm_commitment"', 'id="step-leave_programme"')
    assert first < leave
    assert "leave_programme" not in _first_control_of_steps(page)
    sup = web_for(app, staff.supervisor).get(f"/cases/{case.reference}").get_data(as_text=True)
    assert 'id="step-reject"' in sup.split('id="exits-title"')[1]


def test_departure_agreed_extension_before_lapse(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    page = web_for(app, staff.supervisor).get(f"/cases/{case.reference}").get_data(as_text=True)
    extend, exits, lapse = _positions(page, 'id="step-extend_deadline"', 'id="exits-title"',
                                      'id="step-lapse"')
    assert extend < exits < lapse


def test_committed_declarations_before_the_ind_forms(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=2, minors=1)
    web = web_for(app, staff.counsellor)
    ind_form = f'action="/cases/{case.reference}/ind-confirmations"'
    page = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    # Not signed yet: no IND form; the page says why and points to the signatures.
    assert ind_form not in page
    waiting = page.split('id="step-ind"')[1].split("</section>")[0]
    assert "#signing-title" in waiting and "Kovalenko" in waiting
    withdrawal, ind, exits = _positions(page, 'id="step-record_withdrawal"', 'id="step-ind"',
                                        'id="exits-title"')
    assert withdrawal < ind < exits
    session.rollback()  # end the test session's read snapshot before it writes
    fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
    page = web.get(f"/cases/{case.reference}").get_data(as_text=True)
    assert page.count(ind_form) == 3  # two adults and the child
    assert page.index(ind_form) < page.index('id="exits-title"')


def _ready(app, staff, ctx_for, session, action: str) -> tuple[str, object, str, dict]:
    """A case on which ``action`` may happen now, who may take it, its URL and a valid form."""
    if action == "record_withdrawal":
        case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
        fake_sign(session, case, workflow.WITHDRAWAL_DECLARATION)
        from ..conftest import confirm_ind
        confirm_ind(ctx_for(staff.counsellor), case)
        return case.reference, staff.counsellor, "withdrawal", {}
    if action == "leave_programme":
        case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
        return case.reference, staff.counsellor, "leave", {"leave_programme-reason": "Family"}
    if action == "reject":
        case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
        return case.reference, staff.supervisor, "rejection", {"reject-reason": "Not eligible"}
    case = drive_to(ctx_for, staff, session, "departure_agreed", adults=1, minors=0)
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(Case).where(Case.id == case.id).values(
            departure_deadline=TODAY - dt.timedelta(days=2)))
        s.commit()
    return case.reference, staff.supervisor, "lapse", {"lapse-reason": "Did not leave"}


@pytest.mark.parametrize("action", ["record_withdrawal", "leave_programme", "reject", "lapse"])
def test_an_irreversible_step_needs_its_confirmation(app, staff, ctx_for, session, action):
    ref, who, slug, form = _ready(app, staff, ctx_for, session, action)
    session.rollback()
    web = web_for(app, who)
    before_state, before_events = _case(app, ref).state, audit_count(app.extensions["returnprog.engine"])

    # The form states the consequence and has the (required) confirmation checkbox.
    page = web.get(f"/cases/{ref}/{slug}").get_data(as_text=True)
    box = f'id="{action}-confirm"'
    assert box in page and re.search(rf'{box}[^>]*required', page)
    assert f'aria-describedby="{action}-confirm-consequence' in page
    assert workflow.ACTIONS[action].consequence  # marked in the workflow table

    refused = web.post(f"/cases/{ref}/{slug}", form)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert f'href="#{action}-confirm"' in body
    assert re.search(rf'{box}[^>]*aria-invalid="true"', body)
    assert _case(app, ref).state == before_state
    assert audit_count(app.extensions["returnprog.engine"]) == before_events

    done = web.post(f"/cases/{ref}/{slug}", {**form, f"{action}-confirm": "yes"})
    assert done.status_code == 303, text(done.get_data(as_text=True))[:1500]
    assert _case(app, ref).state == workflow.ACTIONS[action].target.value


def test_missing_reason_and_missing_confirmation_are_said_at_once(app, staff, ctx_for, session):
    case = drive_to(ctx_for, staff, session, "committed", adults=1, minors=0)
    resp = web_for(app, staff.counsellor).post(f"/cases/{case.reference}/leave",
                                               {"leave_programme-reason": " "})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'href="#leave_programme-reason"' in page and 'href="#leave_programme-confirm"' in page
    assert _case(app, case.reference).state == "committed"


# --- the new-case form ------------------------------------------------------------------------

def _fields(prefix: str, data: dict) -> dict:
    return {f"{prefix}-{k}": ("yes" if v is True else str(v or "")) for k, v in data.items()}


def test_the_new_case_form_starts_with_the_principal_only(app, staff):
    page = web_for(app, staff.counsellor).get("/cases/new").get_data(as_text=True)
    outside_template = re.sub(r"<template.*?</template>", "", page, flags=re.S)
    assert 'id="principal-v_number"' in outside_template
    assert not re.search(r'id="household-\d+-', outside_template)
    # 13 fields for the principal, not ~90 for six empty member blocks.
    assert len(re.findall(r'<(?:input|select)\b(?![^>]*type="(?:hidden|radio)")', outside_template)) < 20
    assert 'name="add_member"' in page
    assert "js/household.js" in page and "<script>" not in page  # no inline script (CSP)


def test_add_member_without_script_keeps_values_and_adds_one_empty_row(app, staff):
    web = web_for(app, staff.counsellor)
    principal, spouse = person(), person()
    form = {"rows": "1", "add_member": "1", **_fields("principal", principal),
            **_fields("household-0", spouse), "household-0-relationship": "spouse",
            "principal-v_number": "12"}  # invalid, but not validated by this submit
    resp = web.post("/cases/new", form)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'id="error-summary"' not in page and 'aria-invalid' not in page
    assert f'value="{spouse["given_names_latin"]}"' in page and 'value="12"' in page
    assert 'id="household-1-v_number" name="household-1-v_number" type="text" value=""' in page
    assert 'id="household-2-v_number"' not in page
    assert 'name="rows" value="2"' in page
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 0


def test_removing_a_row_without_script_moves_the_later_rows_up(app, staff):
    web = web_for(app, staff.counsellor)
    form = {"rows": "3", "remove_row": "1", "principal-given_names_latin": "Olena",
            "household-0-given_names_latin": "Taras", "household-2-given_names_latin": "Ira"}
    page = web.post("/cases/new", form).get_data(as_text=True)
    assert re.search(r'id="household-0-given_names_latin"[^>]*value="Taras"', page)
    assert re.search(r'id="household-1-given_names_latin"[^>]*value="Ira"', page)
    assert 'id="household-2-given_names_latin"' not in page
    assert 'id="error-summary"' not in page


def test_a_case_with_three_members_opens(app, staff):
    web = web_for(app, staff.counsellor)
    form = {"rows": "3", "destination_oblast": "UA-46", "destination_place": "Lviv",
            **_fields("principal", person())}
    for row, (member, rel) in enumerate([(person(), "spouse"), (person(adult=False, email=None),
                                                                "child"),
                                         (person(adult=False, email=None), "child")]):
        form.update(_fields(f"household-{row}", member))
        form[f"household-{row}-relationship"] = rel
    form.pop("rows")  # rows added in the browser: the server counts them from the fields
    resp = web.post("/cases/new", form)
    assert resp.status_code == 303, text(resp.get_data(as_text=True))[:2000]
    case = _case(app, resp.headers["Location"].rsplit("/", 1)[1])
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(Participant).where(
            Participant.case_id == case.id)).scalar_one() == 4

    # The intake edit form shows exactly the household's blocks and grows the same way.
    page = web.get(f"/cases/{case.reference}/intake").get_data(as_text=True)
    outside = re.sub(r"<template.*?</template>", "", page, flags=re.S)
    assert 'id="household-2-v_number"' in outside and 'id="household-3-v_number"' not in outside
    values = dict(re.findall(r'name="([^"]+)" type="[^"]+" value="([^"]*)"', outside))
    values.pop("csrf_token", None)
    values["add_member"] = "1"
    grown = web.post(f"/cases/{case.reference}/intake", values).get_data(as_text=True)
    assert 'id="household-3-v_number"' in grown and 'id="error-summary"' not in grown
