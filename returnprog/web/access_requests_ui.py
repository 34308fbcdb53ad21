"""Access request pages (issue 16 item 4) for the records roles: the list with due dates,
registering a request (the participant picked by case reference, then by name), one
request with its package download, extension, delivery and refusal.

Views only parse (``schemas_access``), call :mod:`returnprog.services.access_requests` and
map errors beside their fields. Records managers act; process owners read.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from marshmallow import ValidationError

from .. import schemas_access as schemas
from ..i18n import RELATIONSHIP_LABELS, format_date, label
from ..roles import RECORDS_MANAGER, RECORDS_ROLES
from ..services import NotFound, ServiceError
from ..services import access_requests as service
from ..services import processing as processing_service
from .ui import FIELD_LABELS, FormErrors, ctx, errors_from, form_data, load, render_page, roles

bp = Blueprint("access_requests", __name__)

MAX_ID = 2**31 - 1

STATUS_LABELS = {"open": _l("Open"), "extended": _l("Extended"), "delivered": _l("Delivered"),
                 "refused": _l("Refused")}
DOCUMENT_TYPE_LABELS = {"passport": _l("Passport"), "id_card": _l("Identity card"),
                        "residence_document": _l("Residence document"),
                        "driving_licence": _l("Driving licence"), "other": _l("Other document")}
RECEIVED_VIA_LABELS = {"letter": _l("Letter"), "email": _l("E-mail"), "desk": _l("At the desk")}
DELIVERY_LABELS = {"post": _l("By post"), "email": _l("By e-mail"), "desk": _l("At the desk")}
PURPOSE_LABELS = {"case_handling": _l("Case handling"), "payment": _l("Payment"),
                  "signing": _l("Signing"), "records_management": _l("Records management"),
                  "verification": _l("Verification of a document"),
                  "access_control": _l("Access control")}
CATEGORY_LABELS = {"identity": _l("Identity"), "contact": _l("Contact details"),
                   "case": _l("Case facts"), "asylum": _l("Asylum application"),
                   "documents": _l("Signed documents"), "payment": _l("Payment and bank"),
                   "notes": _l("Notes"), "evidence": _l("Evidence files"),
                   "history": _l("Case history"), "staff_account": _l("Staff account")}
KIND_LABELS = {"read": _l("Read"), "change": _l("Change")}
RESULT_LABELS = {"success": _l("Done"), "refused": _l("Refused or failed")}

# How the error summary names this module's fields.
FIELD_LABELS.setdefault("participant_id", _l("Participant"))
FIELD_LABELS.setdefault("received_on", _l("Received on"))
FIELD_LABELS.setdefault("received_via", _l("Received by"))
FIELD_LABELS.setdefault("identity_document_type", _l("Identity document checked"))
FIELD_LABELS.setdefault("identity_document_last4", _l("Last four characters of its number"))
FIELD_LABELS.setdefault("months", _l("Extension"))
FIELD_LABELS.setdefault("channel", _l("Delivered"))
FIELD_LABELS.setdefault("reference", _l("Case reference"))
FIELD_LABELS.setdefault("staff", _l("Staff member's e-mail address"))
FIELD_LABELS.setdefault("since", _l("From"))
FIELD_LABELS.setdefault("until", _l("Up to and including"))


@bp.context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "document_type_labels": DOCUMENT_TYPE_LABELS,
            "received_via_labels": RECEIVED_VIA_LABELS, "delivery_labels": DELIVERY_LABELS,
            "purpose_labels": PURPOSE_LABELS, "category_labels": CATEGORY_LABELS,
            "kind_labels": KIND_LABELS, "result_labels": RESULT_LABELS}


def _checked_id(access_request_id: int) -> int:
    if access_request_id > MAX_ID:
        abort(404)
    return access_request_id


@bp.get("/records/access-requests")
@roles(*RECORDS_ROLES)
def access_list():
    """Every access request, those still to answer first, by due date."""
    return render_page("records/access_list.html", items=service.list_requests(ctx()))


def _participants(c, reference: str | None) -> list[tuple[str, str]]:
    """(id, label) of the members of case ``reference`` to choose from."""
    if not reference or len(reference) > 20 or not reference.isprintable():
        return []
    return [(str(p["id"]), f"{p['name']} ({label(RELATIONSHIP_LABELS, p['relationship'])}, "
                           f"{format_date(p['date_of_birth'])})")
            for p in service.participants_of(c, reference)]


@bp.route("/records/access-requests/new", methods=["GET", "POST"])
@roles(RECORDS_MANAGER)
def new_request():
    """Register a request: the case reference first, then the participant, the receipt and
    the identity document checked."""
    c = ctx()
    if request.method == "GET":
        reference = request.args.get("reference", "").strip()
        people = _participants(c, reference)
        errors, status = FormErrors(), 200
        if reference and not people:
            errors.add("reference", _("No case with this reference."))
            status = 422
        return render_page("records/access_new.html", status, values={"reference": reference},
                           participants=people, errors=errors)
    raw = form_data(schemas.RegisterAccessRequestSchema)
    try:
        row = service.register(c, load(schemas.RegisterAccessRequestSchema, raw))
    except (ValidationError, ServiceError) as exc:
        c.session.rollback()
        errors, status = errors_from(exc, fields_known=tuple(
            schemas.RegisterAccessRequestSchema().fields))
        return render_page("records/access_new.html", status, values=request.form,
                           participants=_participants(c, request.form.get("reference", "").strip()),
                           errors=errors)
    flash(_("Access request registered; it is due on %(date)s.", date=row.due_on.strftime("%d-%m-%Y")),
          "success")
    return redirect(url_for("access_requests.show", access_request_id=row.id), 303)


def _page(access_request_id: int, status: int = 200, errors: FormErrors | None = None,
          form: str | None = None):
    c = ctx()
    item = service.get_request(c, access_request_id)
    page = request.args.get("log_page", "1")
    page = int(page) if page.isascii() and page.isdigit() and len(page) < 6 else 1
    log = processing_service.participant_log(c, access_request_id, max(page, 1))
    return render_page("records/access_show.html", status, req=item, log=log,
                       errors=errors or FormErrors(), form=form, values=request.form,
                       may_act=c.actor.role == RECORDS_MANAGER)


@bp.get("/records/access-requests/<int:access_request_id>")
@roles(*RECORDS_ROLES)
def show(access_request_id: int):
    """One request: the identity check, the term, the package and its delivery."""
    return _page(_checked_id(access_request_id))


def _fail(access_request_id: int, exc: Exception, form: str, schema):
    if isinstance(exc, NotFound):
        raise exc
    ctx().session.rollback()
    errors, status = errors_from(exc, rename=lambda k: f"{form}-{k}",
                                 fields_known=tuple(f"{form}-{k}" for k in schema().fields))
    return _page(access_request_id, status, errors, form)


@bp.post("/records/access-requests/<int:access_request_id>/package")
@roles(RECORDS_MANAGER)
def package(access_request_id: int):
    """Download the package (a change: audited with its SHA-256)."""
    c = ctx()
    try:
        body, name = service.download_package(c, _checked_id(access_request_id))
    except ServiceError as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc)
        return _page(access_request_id, status, errors)
    response = current_app.response_class(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/records/access-requests/<int:access_request_id>/extension")
@roles(RECORDS_MANAGER)
def extend(access_request_id: int):
    """Extend the term once by one or two months, with the reason."""
    c, schema = ctx(), schemas.ExtendAccessRequestSchema
    try:
        data = load(schema, form_data(schema, "extend-"))
        service.extend(c, _checked_id(access_request_id), data["months"], data["reason"],
                       data["version"])
    except (ValidationError, ServiceError) as exc:
        return _fail(access_request_id, exc, "extend", schema)
    flash(_("Term extended."), "success")
    return redirect(url_for("access_requests.show", access_request_id=access_request_id), 303)


@bp.post("/records/access-requests/<int:access_request_id>/delivery")
@roles(RECORDS_MANAGER)
def deliver(access_request_id: int):
    """Record how the downloaded package was handed over."""
    c, schema = ctx(), schemas.DeliverAccessRequestSchema
    try:
        data = load(schema, form_data(schema, "deliver-"))
        service.deliver(c, _checked_id(access_request_id), data["channel"], data["version"])
    except (ValidationError, ServiceError) as exc:
        return _fail(access_request_id, exc, "deliver", schema)
    flash(_("Delivery recorded."), "success")
    return redirect(url_for("access_requests.show", access_request_id=access_request_id), 303)


@bp.post("/records/access-requests/<int:access_request_id>/refusal")
@roles(RECORDS_MANAGER)
def refuse(access_request_id: int):
    """Refuse the request, with the reason."""
    c, schema = ctx(), schemas.RefuseAccessRequestSchema
    try:
        data = load(schema, form_data(schema, "refuse-"))
        service.refuse(c, _checked_id(access_request_id), data["reason"], data["version"])
    except (ValidationError, ServiceError) as exc:
        return _fail(access_request_id, exc, "refuse", schema)
    flash(_("Access request refused."), "success")
    return redirect(url_for("access_requests.show", access_request_id=access_request_id), 303)


@bp.get("/records/processing-log")
@roles(*RECORDS_ROLES)
def staff_log():
    """What one staff account read and changed (the security officer's question)."""
    c, schema = ctx(), schemas.StaffLogQuerySchema
    raw = form_data(schema, source=request.args)
    result, errors, status = None, FormErrors(), 200
    if "staff" in request.args:
        try:
            result = processing_service.staff_log(c, load(schema, raw))
        except (ValidationError, ServiceError) as exc:
            c.session.rollback()
            errors, status = errors_from(exc, fields_known=tuple(schema().fields))
    query = {k: request.args.get(k) for k in ("staff", "since", "until")
             if request.args.get(k)}
    return render_page("records/processing_log.html", status, result=result, errors=errors,
                       values=request.args, query=query)
