"""Counsellor pages: dashboard, case list, intake, the case page, one form per workflow
action, IND confirmations and document downloads.

Every view parses with the same marshmallow schema as the API, calls the same service,
shows refusals and validation errors beside their fields, and redirects after a change
(POST-redirect-GET). A case the reader may not see is 404; an action their role may not
take is 403.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import secrets

from flask import (Blueprint, abort, current_app, flash, redirect, request,
                   session, url_for)
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import schemas, workflow
from ..i18n import ACTION_LABELS, label, render_message
from ..identifiers import OBLASTS
from ..messages import M
from ..roles import ADMIN, CASE_ROLES, COUNSELLOR, RECORDS_ROLES, ROLES, SIGNATURE_TAKERS
from ..services.health import Thresholds
from ..services import Conflict, NotFound, ServiceError
from ..services import case_views
from ..services import cases as case_service
from ..services import case_files as case_file_service
from ..services import figures as figure_service
from ..services import records as records_service
from .case_files_ui import store_upload
from .headers import pdf_attachment
from .signing_common import signing_panel_data
from .ui import (FormErrors, actor, ctx, errors_from, form_data, load,
                 plausible_reference, render_page, roles)

bp = Blueprint("pages", __name__)
bp.url_value_preprocessor(plausible_reference)

# URL slug of each workflow action's form, from the workflow table.
ACTION_SLUGS = {name: workflow.ACTIONS[name].slug for name in workflow.CASE_ACTIONS}
# What each step that must be confirmed cannot undo, and the side exits, from the table.
CONSEQUENCES = {name: a.consequence for name, a in workflow.ACTIONS.items() if a.consequence}
SIDE_EXITS = frozenset(name for name, a in workflow.ACTIONS.items() if a.destructive)
# The evidence kind of a file uploaded on the departure form, by the evidence chosen there.
DEPARTURE_FILE_KINDS = {"boarding": "boarding_pass", "border_crossing": "border_crossing",
                        "brp_deregistration": "brp_deregistration"}


def action_url(reference: str, action: str) -> str:
    """The form page of ``action`` on case ``reference``."""
    return url_for(f"pages.action_{action}", reference=reference)


@bp.app_context_processor
def _helpers():
    return {"action_url": action_url, "oblasts": OBLASTS, "action_slugs": ACTION_SLUGS,
            "consequences": CONSEQUENCES, "side_exits": SIDE_EXITS,
            "states": [s.value for s in workflow.State],
            "oblast_choices": [(code, f"{code} – {name}") for code, name in sorted(OBLASTS.items())]}


# --- dashboard and list ---------------------------------------------------------------------------

@bp.get("/")
@roles(*ROLES)
def dashboard():
    """My cases by state, deadlines in the next two weeks, overdue cases; for those who
    can act on it, a warning when reminders are not going out."""
    age = dt.timedelta(seconds=Thresholds.from_config(current_app.config).delivery_warning_age)
    delivery = figure_service.delivery_warning(ctx(), age)
    if actor().role == ADMIN:
        return render_page("dashboard.html", data=None, delivery=delivery)
    if actor().role in RECORDS_ROLES:
        # Records roles work on no case: their start is the records lifecycle's steps and
        # the access requests still to answer.
        from ..services import access_requests

        return render_page("dashboard.html", data=None, delivery=delivery,
                           records=records_service.overview(ctx()),
                           access_requests=access_requests.list_requests(ctx(),
                                                                         pending_only=True))
    return render_page("dashboard.html", data=figure_service.dashboard(ctx()),
                       delivery=delivery)


LIST_FIELDS = ("state", "deadline_from", "deadline_to", "sort", "order", "page")
# Searches kept in the (signed) session cookie, so the words — names, V-numbers — never
# appear in an address, the browser's history or a proxy's log. The newest few are kept.
SAVED_SEARCHES = 8


def _save_search(q: str) -> str:
    saved = dict(session.get("searches") or {})
    for key, value in list(saved.items()):
        if value == q:
            del saved[key]  # the same words again: one entry, moved to the end
    key = secrets.token_urlsafe(6)
    saved[key] = q
    session["searches"] = dict(list(saved.items())[-SAVED_SEARCHES:])
    return key


def _list_address(form) -> str:
    """The case list's address for submitted filters: the search words replaced by the key
    of a saved search, the other filters (states, dates, sorting) as they are."""
    query = {k: form.get(k) for k in LIST_FIELDS + ("mine",) if form.get(k)}
    query.pop("page", None)  # new filters start at the first page
    q = (form.get("q") or "").strip()
    if q:
        query["search"] = _save_search(q)
    return url_for("pages.case_list", **query)


@bp.post("/cases")
@roles(*CASE_ROLES)
def case_search():
    """The search form: keeps the words in the session and shows the list at an address
    that holds only a key to them (POST-redirect-GET)."""
    return redirect(_list_address(request.form), 303)


@bp.get("/cases")
@roles(*CASE_ROLES)
def case_list():
    """Search (reference, name, V-number, full BSN), filter, sort and page through the
    cases I may see."""
    if request.args.get("q"):
        # An old bookmark or a typed address: move the words out of the address.
        return redirect(_list_address(request.args), 303)
    raw = form_data(schemas.CaseQuerySchema, source=request.args)
    raw.pop("counsellor", None)
    raw.pop("per_page", None)
    errors, status = FormErrors(), 200
    search_key = request.args.get("search")
    q = None
    if search_key:
        q = (session.get("searches") or {}).get(search_key)
        if q is None:
            errors.add("q", _("This search is no longer kept. Type the words again."))
        else:
            raw["q"] = q
    mine = request.args.get("mine") == "1"
    if mine:
        raw["counsellor"] = actor().email
    result = {"items": [], "total": 0, "page": 1, "per_page": 25, "sort": "reference",
              "order": "desc"}
    if not errors:
        try:
            filters = load(schemas.CaseQuerySchema, raw)
            result = case_service.list_cases(ctx(), filters)
        except ValidationError as exc:
            errors, status = errors_from(exc)
    pages = max(1, math.ceil(result["total"] / result["per_page"]))
    query = {k: request.args.get(k) for k in LIST_FIELDS + ("mine", "search")
             if request.args.get(k)}
    return render_page("cases/list.html", status, result=result, pages=pages, query=query,
                       errors=errors, mine=mine, q=q or "", searching=bool(q))


# --- intake ----------------------------------------------------------------------------------------

_TEXT_FIELDS = ("given_names_latin", "family_name_latin", "given_names_cyrillic",
                "family_name_cyrillic", "date_of_birth", "v_number", "bsn",
                "travel_document_number", "email", "phone", "relationship")


def _row_count() -> int:
    """How many member rows the submitted form had: its ``rows`` field, or more when rows
    were added in the browser (the script need not keep the count right)."""
    rows = request.form.get("rows", "")
    rows = int(rows) if rows.isascii() and rows.isdigit() and len(rows) < 4 else 0
    for key in request.form:
        match = re.match(r"^household-(\d{1,3})-", key)
        if match:
            rows = max(rows, int(match.group(1)) + 1)
    return max(0, min(rows, schemas.MAX_HOUSEHOLD))


def _form_rows(rows: int):
    """The re-rendered form when the submit only adds or removes a member row: what was
    typed stays (rows after a removed one move up), nothing is validated or saved.
    None when the submit is the real one."""
    if "add_member" in request.form:
        return request.form, min(rows + 1, schemas.MAX_HOUSEHOLD)
    remove = request.form.get("remove_row", "")
    if not remove:
        return None
    gone = int(remove) if remove.isascii() and remove.isdigit() and len(remove) < 4 else -1
    values = {}
    for key, value in request.form.items():
        match = re.match(r"^household-(\d{1,3})-(.*)$", key)
        if not match:
            values[key] = value
        elif int(match.group(1)) != gone:
            row = int(match.group(1))
            values[f"household-{row - 1 if row > gone >= 0 else row}-{match.group(2)}"] = value
    return values, max(0, rows - 1) if 0 <= gone < rows else rows


def _intake_data() -> tuple[dict, list[int]]:
    """The intake form as IntakeSchema input; blank member rows are left out. Returns the
    data and, for each household entry, the form row it came from."""
    data = {k: request.form[k].strip() for k in ("destination_oblast", "destination_place",
                                                 "intake_notes") if request.form.get(k, "").strip()}
    data["principal"] = form_data(schemas.ParticipantSchema, "principal-")
    household, rows = [], []
    for row in range(_row_count()):
        member = form_data(schemas.MemberSchema, f"household-{row}-")
        if not any(member.get(k) for k in _TEXT_FIELDS):
            continue
        household.append(member)
        rows.append(row)
    data["household"] = household
    return data, rows


def _form_field(field: str, rows: list[int]) -> str | None:
    """The intake form's id of a request field path (None: not a field of the form)."""
    if field == "principal.v_number":
        return "principal-v_number"
    match = re.match(r"^household\.(\d+)\.v_number$", field)
    if match and int(match.group(1)) < len(rows):
        return f"household-{rows[int(match.group(1))]}-v_number"
    return None


def _intake_errors(exc: Exception, data: dict, rows: list[int]) -> tuple[FormErrors, int]:
    """Errors of the intake form; household indexes are mapped back to form rows, and a
    V-number held by another open case is shown beside that person's V-number."""
    if isinstance(exc, ServiceError) and isinstance(exc.details, list):
        # The refusal names the request's field (principal.v_number, household.N.v_number),
        # never the number: household indexes are mapped to the form's rows.
        errors = FormErrors(render_message(exc))
        for item in exc.details:
            item = item if isinstance(item, dict) else {"message": str(item)}
            errors.add(_form_field(item.get("field") or "", rows), item.get("message", ""))
        return errors, exc.status

    def rename(key: str) -> str:
        match = re.match(r"^household-(\d+)(-.*)?$", key)
        if match and int(match.group(1)) < len(rows):
            return f"household-{rows[int(match.group(1))]}{match.group(2) or ''}"
        return key

    return errors_from(exc, rename=rename)


def _intake_page(template_args: dict, values, errors: FormErrors, status: int, rows: int):
    return render_page("cases/intake.html", status, values=values, errors=errors, rows=rows,
                       relationships=schemas.RELATIONSHIPS, languages=schemas.LANGUAGES,
                       max_rows=schemas.MAX_HOUSEHOLD, **template_args)


@bp.route("/cases/new", methods=["GET", "POST"])
@roles(COUNSELLOR)
def new_case():
    """Open a case: the principal, the household on the same form, the destination."""
    if request.method == "GET":
        return _intake_page({"case": None}, {}, FormErrors(), 200, 0)
    rows = _row_count()
    changed = _form_rows(rows)
    if changed:
        return _intake_page({"case": None}, changed[0], FormErrors(), 200, changed[1])
    data, used = _intake_data()
    try:
        case = case_service.open_case(ctx(), load(schemas.IntakeSchema, data))
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        errors, status = _intake_errors(exc, data, used)
        return _intake_page({"case": None}, request.form, errors, status, rows)
    flash(_("Case %(reference)s opened.", reference=case.reference), "success")
    return redirect(url_for("pages.case_page", reference=case.reference), 303)


def _intake_values(case: dict) -> dict:
    values = {k: case.get(k) or "" for k in ("destination_oblast", "destination_place",
                                             "intake_notes")}
    members = [p for p in case["participants"] if not p["is_principal"]]
    principal = next((p for p in case["participants"] if p["is_principal"]), None)
    for prefix, person in [("principal", principal)] + [
            (f"household-{i}", m) for i, m in enumerate(members)]:
        if person is None:
            continue
        for key, value in person.items():
            if key == "asylum_application_pending":
                value = "yes" if value else "no"
            values[f"{prefix}-{key}"] = "" if value is None else (
                value.isoformat() if hasattr(value, "isoformat") else value)
    return values


@bp.route("/cases/<reference>/intake", methods=["GET", "POST"])
@roles(*CASE_ROLES)
def edit_intake(reference: str):
    """Change the intake and household while the case is in intake and nothing is signed."""
    c = ctx()
    case = case_service.read_case(c, reference)
    if actor().role != COUNSELLOR:
        abort(403)
    if case["state"] != workflow.State.INTAKE.value:
        raise Conflict('case.intake_locked')
    members = sum(1 for p in case["participants"] if not p["is_principal"])
    if request.method == "GET":
        return _intake_page({"case": case}, _intake_values(case), FormErrors(), 200, members)
    rows = _row_count()
    changed = _form_rows(rows)
    if changed:
        return _intake_page({"case": case}, changed[0], FormErrors(), 200, changed[1])
    data, used = _intake_data()
    version = request.form.get("version", "")
    version = int(version) if version.isascii() and version.isdigit() and len(version) < 10 else None
    try:
        case_service.update_intake(c, reference, load(schemas.IntakeSchema, data), version)
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        errors, status = _intake_errors(exc, data, used)
        return _intake_page({"case": case}, request.form, errors, status, rows)
    flash(_("The intake of %(reference)s was saved.", reference=reference), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


# --- the case page -----------------------------------------------------------------------------

def _case_context(reference: str, log_view: bool = True) -> dict:
    """The case as plain data (the look is logged) and what the reader may do next."""
    page = case_views.case_page(ctx(), reference, trail=False, log_view=log_view)
    return {"case": page["case"], "info": page["info"], "case_files": page["case_files"]}


@bp.get("/cases/<reference>")
@roles(*CASE_ROLES)
def case_page(reference: str):
    """Participants, documents, the timeline, and the steps open now with their forms."""
    before = request.args.get("before", "")
    before = int(before) if before.isascii() and before.isdigit() and len(before) < 10 else None
    show_views = request.args.get("views") == "1"
    takes_signatures = actor().role in SIGNATURE_TAKERS
    # The page opens on the latest few changes; "older events" pages back a full page at a
    # time. Rendering a trail row costs more than reading it, so a case with a thousand
    # events would otherwise open slower than one with ten (issue 11's benchmark: 35%).
    page = case_views.case_page(ctx(), reference, before_seq=before, looks=show_views,
                                signing_links=takes_signatures,
                                trail_limit=(case_service.TRAIL_ON_PAGE if before is None
                                             else case_service.TRAIL_PAGE))
    trail = page["trail"]
    panel = signing_panel_data(page["info"], page["signing_links"],
                               page["case"]["participants"]) if takes_signatures else None
    return render_page("cases/show.html", timeline=trail["events"],
                       older_before=trail["next_before_seq"], paged=before is not None,
                       looks=page["looks"], show_views=show_views, signing_prepared=panel,
                       new_key=secrets.token_urlsafe(18), errors=FormErrors(), values={},
                       case=page["case"], info=page["info"], case_files=page["case_files"],
                       may_see_case_files=case_file_service.may_see_case_files(actor().role))


@bp.get("/cases/<reference>/documents/<int:document_id>.pdf")
@roles(*CASE_ROLES)
def download_document(reference: str, document_id: int):
    """A signed PDF of the case, as an attachment, never cached."""
    doc = case_views.document_for_download(ctx(), reference, document_id)
    return pdf_attachment(doc.pdf, case_views.document_filename(reference, doc), doc.sha256)


# --- workflow actions ------------------------------------------------------------------------------

def _action_page(reference: str, action: str, status: int = 200, errors: FormErrors | None = None,
                 values=None):
    context = _case_context(reference)
    step = next((s for s in context["info"]["steps"] if s["action"] == action), None)
    refusals = step["refusals"] if step else [
        r.as_dict() for r in workflow.state_refusals(
            workflow.ACTIONS[action], workflow.State(context["case"]["state"]))]
    return render_page("cases/action.html", status, action=action, step=step,
                       refusals=refusals, errors=errors or FormErrors(), values=values or {},
                       new_key=secrets.token_urlsafe(18), **context)


def _perform(reference: str, action: str):
    """GET: the action's form (or what is missing). POST: validate, perform, redirect."""
    c = ctx()
    case_service.load_case(c, reference)  # 404 before 403: do not reveal other teams' cases
    if workflow.role_refusals(workflow.ACTIONS[action], actor().role):
        abort(403)
    if request.method == "GET":
        return _action_page(reference, action)
    schema = schemas.ACTION_SCHEMAS[action]
    prefix = f"{action}-"  # several actions' forms share a page, so names carry the action
    # The form's explicit confirmation of a step that cannot be undone (a checkbox).
    confirmed = request.form.get(f"{prefix}confirm") == "yes"
    try:
        payload = load(schema, form_data(schema, prefix))
        if action == "confirm_departure":
            # A file chosen on the form is stored first (it is evidence of the case even
            # if the departure is refused) and then named by the departure it proves.
            uploaded = store_upload(c, reference, f"{prefix}file",
                                    DEPARTURE_FILE_KINDS.get(payload["evidence"], "other"))
            if uploaded is not None:
                payload["evidence_file_id"] = uploaded
        case_service.perform(c, reference, action, payload, confirmed=confirmed)
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc, rename=lambda k: f"{prefix}{k}",
                                     fields_known=tuple(f"{prefix}{k}" for k in (
                                         *schema().fields, "confirm")))
        if isinstance(exc, ValidationError) and not confirmed \
                and workflow.ACTIONS[action].needs_confirmation:
            # Say both at once, so a second round is not needed for the checkbox.
            errors.add(f"{prefix}confirm", render_message(M("confirmation_missing")))
        return _action_page(reference, action, status, errors, request.form)
    flash(_("Done: %(action)s.", action=label(ACTION_LABELS, action)), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


def _register_actions() -> None:
    for action, slug in ACTION_SLUGS.items():
        def view(reference: str, _action=action):
            return _perform(reference, _action)
        view.__name__ = f"action_{action}"
        view.__doc__ = f"The form of '{workflow.ACTIONS[action].label}'."
        bp.add_url_rule(f"/cases/<reference>/{slug}", endpoint=f"action_{action}",
                        view_func=roles(*CASE_ROLES)(view), methods=["GET", "POST"])


_register_actions()


@bp.post("/cases/<reference>/ind-confirmations")
@roles(*CASE_ROLES)
def record_ind_confirmation(reference: str):
    """Record the IND's reference and date for one participant (part of the withdrawal)."""
    c = ctx()
    case_service.load_case(c, reference)
    if actor().role != COUNSELLOR:
        abort(403)
    pid = request.form.get("participant_id", "")
    prefix = f"ind-{pid}-" if pid.isdigit() else "ind-x-"
    data = form_data(schemas.IndConfirmationSchema, prefix)
    data["participant_id"] = int(pid) if pid.isascii() and pid.isdigit() and len(pid) < 10 else pid
    try:
        loaded = load(schemas.IndConfirmationSchema, data)
        uploaded = store_upload(c, reference, f"{prefix}file", "ind_letter")
        if uploaded is not None:
            loaded["evidence_file_id"] = uploaded
        case_service.record_ind_confirmation(c, reference, loaded)
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc, rename=lambda k: f"{prefix}{k}",
                                     fields_known=tuple(f"{prefix}{k}" for k in (
                                         "ind_reference", "confirmed_on", "evidence_file_id",
                                         "file")))
        return _action_page(reference, "record_withdrawal", status, errors, request.form)
    flash(_("IND confirmation recorded."), "success")
    return redirect(action_url(reference, "record_withdrawal") + f"#ind-{pid}", 303)
