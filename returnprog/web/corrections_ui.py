"""The correction form of a case (issue 13 item 1), in two steps that work without
JavaScript: the form posts to a review page that lists what will change and which signed
documents will be superseded and need signing again, per participant; confirming there
saves. Both steps run the same service (:func:`~returnprog.services.corrections.correct_case`),
the review as a dry run, so the review lists exactly what saving does; the version the
form was read at makes a change that landed meanwhile a refusal, not a surprise.

Field names: ``p-<participant id>-<field>`` per participant, ``intake_notes``,
``destination_oblast``, ``destination_place``; ``version``; ``step`` (``review``,
``confirm`` or ``edit`` to go back to the form with what was typed). The household:
``remove-<participant id>`` (a checkbox per member but the principal) and, per member to
add, ``new-<row>-<field>`` as the intake form's member block, ``new_rows`` their count;
the ``add_member`` button re-renders the form with one more block (nothing validated or
saved), as the intake form does without JavaScript. A block left blank is ignored.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import schemas, workflow
from ..roles import CASE_ROLES, INTAKE_ROLES
from ..schemas_corrections import CorrectionSchema
from ..services import NotFound, ServiceError
from ..services import cases as case_service
from ..services import corrections
from .ui import (FormErrors, actor, ctx, errors_from, field_label, form_data, normalise_date,
                 plausible_reference, render_page, roles)

bp = Blueprint("corrections", __name__)
bp.url_value_preprocessor(plausible_reference)

_FORM_FIELDS = corrections.PARTICIPANT_FIELDS
# A block of a member to add counts as filled in when any of these is (as at intake).
_TEXT_FIELDS = ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                "family_name_cyrillic", "date_of_birth", "v_number", "bsn",
                "travel_document_number", "email", "phone", "relationship")


@bp.app_context_processor
def _helpers():
    # The case page's timeline names the fields a correction changed.
    return {"field_label": field_label}


def _values(case: dict) -> dict:
    """The form's fields filled with the case as it is."""
    values = {k: case.get(k) or "" for k in corrections.CASE_FIELDS}
    for p in case["participants"]:
        for name in _FORM_FIELDS:
            value = p.get(name)
            values[f"p-{p['id']}-{name}"] = "" if value is None else (
                value.isoformat() if hasattr(value, "isoformat") else value)
    return values


def _submitted(case: dict) -> dict:
    """The posted form as CorrectionSchema input (fields not posted are left out)."""
    form = request.form
    data = {k: form[k] for k in ("intake_notes", "destination_place") if k in form}
    if form.get("destination_oblast", "").strip():
        data["destination_oblast"] = form["destination_oblast"]
    people = []
    for p in case["participants"]:
        entry = {name: form[f"p-{p['id']}-{name}"] for name in _FORM_FIELDS
                 if f"p-{p['id']}-{name}" in form}
        if "date_of_birth" in entry:
            entry["date_of_birth"] = normalise_date(entry["date_of_birth"].strip())
        if entry:
            people.append({"id": p["id"], **entry})
    if people:
        data["participants"] = people
    removes = [p["id"] for p in case["participants"]
               if not p["is_principal"] and form.get(f"remove-{p['id']}")]
    if removes:
        data["remove_members"] = removes
    adds = _new_members()[0]
    if adds:
        data["add_members"] = adds
    return data


def _new_rows() -> int:
    """How many blocks of members to add the form had (its ``new_rows``, or more)."""
    raw = request.form.get("new_rows", "")
    rows = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 0
    for key in request.form:
        match = re.match(r"^new-(\d{1,3})-", key)
        if match:
            rows = max(rows, int(match.group(1)) + 1)
    return max(0, min(rows, schemas.MAX_HOUSEHOLD))


def _new_members() -> tuple[list[dict], list[int]]:
    """The members to add as MemberSchema input, blank blocks left out, and the form row
    each came from."""
    members, rows = [], []
    for row in range(_new_rows()):
        member = form_data(schemas.MemberSchema, f"new-{row}-")
        if any(member.get(k) for k in _TEXT_FIELDS):
            members.append(member)
            rows.append(row)
    return members, rows


def _rename(case: dict):
    ids = [p["id"] for p in case["participants"]]
    new_rows = _new_members()[1]

    def rename(key: str) -> str:
        # participants-<index>-<field> → the form's p-<id>-<field>;
        # add_members-<index>-<field> (or with dots, from the service) → new-<row>-<field>
        parts = re.split(r"[-.]", key)
        if parts[0] == "participants" and len(parts) == 3 and parts[1].isdigit() \
                and int(parts[1]) < len(ids):
            return f"p-{ids[int(parts[1])]}-{parts[2]}"
        if parts[0] == "add_members" and len(parts) == 3 and parts[1].isdigit() \
                and int(parts[1]) < len(new_rows):
            return f"new-{new_rows[int(parts[1])]}-{parts[2]}"
        return key
    return rename


def _version() -> int | None:
    raw = request.form.get("version", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def _form(case: dict, values, errors: FormErrors, status: int = 200, new_rows: int | None = None):
    return render_page("cases/correction.html", status, case=case, values=values, errors=errors,
                       version=request.form.get("version") or case["version"],
                       languages=schemas.LANGUAGES, relationships=schemas.RELATIONSHIPS,
                       new_rows=_new_rows() if new_rows is None else new_rows,
                       max_rows=schemas.MAX_HOUSEHOLD)


def _review(case: dict, plan: dict):
    names = {p["id"]: f"{p['given_names_latin']} {p['family_name_latin']}"
             for p in case["participants"]}
    by_person: dict[int | None, list] = {}
    for d in plan["reissue"]:
        by_person.setdefault(d["participant_id"], []).append(d)
    return render_page("cases/correction_review.html", case=case, plan=plan, names=names,
                       reissue_by_person=by_person, form=request.form,
                       version=request.form.get("version", ""))


@bp.route("/cases/<reference>/correction", methods=["GET", "POST"])
@roles(*CASE_ROLES)
def correct_case(reference: str):
    """Correct contact data, notes, what signed documents state and the household: form,
    review, save."""
    c = ctx()
    case = case_service.read_case(c, reference)  # 404 before 403
    if actor().role not in INTAKE_ROLES:
        abort(403)
    if workflow.State(case["state"]) in workflow.FINAL_STATES:
        errors = FormErrors(_("A closed case can no longer be corrected."))
        return _form(case, _values(case), errors, 409)
    if request.method == "GET" or request.form.get("step") == "edit":
        values = _values(case) if request.method == "GET" else request.form
        return _form(case, values, FormErrors())
    if "add_member" in request.form:
        return _form(case, request.form, FormErrors(),
                     new_rows=min(_new_rows() + 1, schemas.MAX_HOUSEHOLD))
    confirm = request.form.get("step") == "confirm"
    try:
        data = CorrectionSchema().load(_submitted(case))
        plan = corrections.correct_case(c, reference, data, _version(), dry_run=not confirm)
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc, rename=_rename(case),
                                     fields_known=tuple(request.form))
        return _form(case, request.form, errors, status)
    if not confirm:
        return _review(case, plan)
    if plan["reissue"]:
        flash(_("The correction was saved. %(n)s signed document(s) were superseded and must be "
                "signed again.", n=len(plan["reissue"])), "success")
    else:
        flash(_("The correction was saved."), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)
