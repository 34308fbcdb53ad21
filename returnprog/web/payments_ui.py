"""Payment pages: the payment list (supervisors decide, finance disburses), a case's payment
with its decisions (propose, approve, reject, cancel, re-entry), and the finance exports.

Same schemas (``schemas_payments``) and services (``services.payment``) as the payment API.
Disbursement is the workflow action ``pay_support`` (its form lives with the other
actions in :mod:`returnprog.web.pages`).
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import export, payment_flow, payments
from .. import schemas_payments as pay_schemas
from ..i18n import language
from ..messages import M
from ..roles import (CASE_ROLES, COUNSELLOR, FINANCE, PAYMENT_FOLLOW_UP_ROLES,
                     PAYMENT_OVERVIEW_ROLES, SUPERVISOR)
from ..services import NotFound, ServiceError
from ..services import case_views
from ..services import cases as case_service
from ..services import batches as batch_service
from ..services import payment as payment_service
from ..services import reconcile as reconcile_service
from .ui import (FormErrors, actor, ctx, errors_from, form_data, load,
                 plausible_reference, render_page, roles)

bp = Blueprint("payments_ui", __name__)
bp.url_value_preprocessor(plausible_reference)

LIST_FIELDS = ("status", "method", "case", "exported", "awaiting_correction", "page")


@bp.get("/payments")
@roles(*PAYMENT_OVERVIEW_ROLES)
def payment_list():
    """Payments on the cases I may see: proposals to decide on, approved ones to pay out."""
    raw = form_data(pay_schemas.PaymentQuerySchema, source=request.args)
    raw.pop("per_page", None)
    if "status" not in request.args:
        raw["status"] = "approved" if actor().role == FINANCE else "proposed"
    errors, status = FormErrors(), 200
    try:
        result = payment_service.list_payments(ctx(), load(pay_schemas.PaymentQuerySchema, raw))
    except ValidationError as exc:
        errors, status = errors_from(exc)
        result = {"items": [], "total": 0, "page": 1, "per_page": 25}
    pages = max(1, math.ceil(result["total"] / result["per_page"]))
    query = {k: request.args.get(k) for k in LIST_FIELDS if request.args.get(k) is not None}
    return render_page("payments/list.html", status, result=result, pages=pages, query=query,
                       chosen_status=raw.get("status", ""), errors=errors,
                       statuses=payments.STATUSES, methods=payments.METHODS)


# --- one case's payment ---------------------------------------------------------------------------

def _payment_page(reference: str, status: int = 200, errors: FormErrors | None = None,
                  values=None, form: str | None = None):
    page = case_views.payment_page(ctx(), reference)
    payment, case = page["payment"], page["case"]
    role = actor().role
    live = payment["status"] in payments.LIVE_STATUSES
    can = {
        "decide": role == SUPERVISOR and payment["status"] == "proposed",
        "own_proposal": payment["own_proposal"],
        "cancel": role in PAYMENT_FOLLOW_UP_ROLES and live
        and payment["status"] in payments.CANCELLABLE_STATUSES
        and payment["export_batch_id"] is None,
        "disburse": role == FINANCE and payment["status"] == "approved"
        and "pay_support" in case["allowed_actions"],
        "reentry": role in PAYMENT_FOLLOW_UP_ROLES and case["state"] == "departed"
        and payment["status"] in payment_flow.PAID_OUT_STATUSES and payment["reentry_on"] is None,
        "propose": role == COUNSELLOR and not live and (
            case["state"] == "departure_agreed"
            or (payment["status"] == "returned"
                and case["state"] in ("support_paid", "departed"))),
    }
    return render_page("payments/case.html", status, case=case, payment=payment, can=can,
                       errors=errors or FormErrors(), values=values or {}, form=form)


@bp.get("/cases/<reference>/payment")
@roles(*CASE_ROLES)
def case_payment(reference: str):
    """The case's current payment (live, else the latest) and the decisions open to me."""
    return _payment_page(reference)


def _guard(reference: str, *allowed: str):
    """404 for a case I may not see, then 403 for a role that may not do this."""
    c = ctx()
    case_service.load_case(c, reference)
    if actor().role not in allowed:
        abort(403)
    return c


def _fail(reference: str, exc: Exception, form: str, prefix: str):
    """Show the payment page again with the errors beside the fields of ``form``."""
    if isinstance(exc, NotFound):
        raise exc
    ctx().session.rollback()
    visible = {"approve": (), "reject": ("reason",), "cancel": ("reason",),
               "reentry": ("reentry_on", "reclaim_cents", "note")}[form]
    errors, status = errors_from(exc, rename=lambda k: f"{prefix}{k}",
                                 fields_known=tuple(f"{prefix}{k}" for k in visible) or ("-",))
    return _payment_page(reference, status, errors, request.form, form)


@bp.route("/cases/<reference>/payment/proposal", methods=["GET", "POST"])
@roles(*CASE_ROLES)
def propose(reference: str):
    """A counsellor proposes the travel support: bank transfer, cash or prepaid card."""
    c = _guard(reference, COUNSELLOR)

    def page(errors=None, status=200, values=None):
        read = case_views.case_page(c, reference, trail=False, log_view=False)
        return render_page("payments/propose.html", status, case=read["case"], info=read["info"],
                           errors=errors or FormErrors(), values=values or {},
                           methods=payments.METHODS)

    if request.method == "GET":
        return page()
    try:
        payment_service.propose(c, reference, load(pay_schemas.ProposePaymentSchema,
                                                   form_data(pay_schemas.ProposePaymentSchema)))
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc)
        return page(errors, status, request.form)
    flash(_("Travel support proposed; a supervisor must approve it."), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


@bp.post("/cases/<reference>/payment/approval")
@roles(*CASE_ROLES)
def approve(reference: str):
    """A supervisor who did not propose it approves the proposal shown to them."""
    c = _guard(reference, SUPERVISOR)
    try:
        data = load(pay_schemas.ApprovePaymentSchema,
                    form_data(pay_schemas.ApprovePaymentSchema))
        payment_service.approve(c, reference, data["payment_id"], data["version"])
    except (ValidationError, ServiceError) as exc:
        return _fail(reference, exc, "approve", "approve-")
    flash(_("Payment approved."), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


@bp.post("/cases/<reference>/payment/rejection")
@roles(*CASE_ROLES)
def reject(reference: str):
    """A supervisor who did not propose it rejects the proposal, with a reason."""
    c = _guard(reference, SUPERVISOR)
    try:
        data = load(pay_schemas.ReasonedDecisionSchema,
                    form_data(pay_schemas.ReasonedDecisionSchema, "reject-"))
        payment_service.reject(c, reference, data["reason"], data["payment_id"], data["version"])
    except (ValidationError, ServiceError) as exc:
        return _fail(reference, exc, "reject", "reject-")
    flash(_("Payment rejected."), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


@bp.post("/cases/<reference>/payment/cancellation")
@roles(*CASE_ROLES)
def cancel(reference: str):
    """Cancel a proposed or approved payment, with a reason, before the money goes out."""
    c = _guard(reference, *PAYMENT_FOLLOW_UP_ROLES)
    try:
        data = load(pay_schemas.ReasonedDecisionSchema,
                    form_data(pay_schemas.ReasonedDecisionSchema, "cancel-"))
        payment_service.cancel(c, reference, data["reason"], data["payment_id"], data["version"])
    except (ValidationError, ServiceError) as exc:
        return _fail(reference, exc, "cancel", "cancel-")
    flash(_("Payment cancelled."), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


_AMOUNT = re.compile(r"^\d{1,3}([.,\s]?\d{3})*([.,]\d{1,2})?$|^\d+([.,]\d{1,2})?$")


def euros_to_cents(text: str):
    """``1.234,50`` (Dutch) or ``1,234.50`` (English) or ``1234`` → whole cents; the text
    unchanged when it is not an amount (the schema then refuses it)."""
    raw = (text or "").strip().replace("€", "").replace(" ", "")
    if not raw or not _AMOUNT.match(raw):
        return text
    decimal_mark = "," if language() == "nl" else "."
    thousands = "." if decimal_mark == "," else ","
    raw = raw.replace(thousands, "").replace(decimal_mark, ".")
    try:
        return int((Decimal(raw) * 100).to_integral_exact())
    except (InvalidOperation, ValueError):
        return text


@bp.post("/cases/<reference>/payment/reentry")
@roles(*CASE_ROLES)
def reentry(reference: str):
    """After departure: the person came back; record when, and the amount reclaimed."""
    c = _guard(reference, *PAYMENT_FOLLOW_UP_ROLES)
    data = form_data(pay_schemas.ReentrySchema, "reentry-")
    data.pop("reclaim_cents", None)
    amount = request.form.get("reentry-reclaim_cents", "").strip()
    if amount:
        data["reclaim_cents"] = euros_to_cents(amount)
    try:
        payment_service.record_reentry(c, reference, load(pay_schemas.ReentrySchema,
                                                          data))
    except (ValidationError, ServiceError) as exc:
        return _fail(reference, exc, "reentry", "reentry-")
    flash(_("Re-entry recorded."), "success")
    return redirect(url_for("pages.case_page", reference=reference), 303)


# --- finance exports --------------------------------------------------------------------------

@bp.route("/payments/exports", methods=["GET", "POST"])
@roles(FINANCE)
def exports():
    """Payment batches: released bank transfers made once into a SEPA file and a CSV,
    then sent to the bank or withdrawn."""
    c = ctx()
    errors, status = FormErrors(), 200
    if request.method == "POST":
        try:
            data = load(pay_schemas.CreateBatchSchema, form_data(pay_schemas.CreateBatchSchema))
            debtor = export.debtor_from_config(current_app.config.get("SEPA_DEBTOR"))
            batch = batch_service.create_batch(c, data["scope"], debtor)
        except (ValidationError, ServiceError) as exc:
            c.session.rollback()
            errors, status = errors_from(exc)
        else:
            flash(_("Batch %(id)s made with %(count)s payment(s).", id=batch.id,
                    count=batch.payment_count), "success")
            return redirect(url_for("payments_ui.exports"), 303)
    return _batches_page(c, errors, status)


def _batches_page(c, errors: FormErrors, status: int):
    page = request.args.get("page", "1")
    result = batch_service.list_batches(c, load(pay_schemas.ExportQuerySchema, {
        "page": int(page) if page.isascii() and page.isdigit() and len(page) < 7 else 1}))
    pages = max(1, math.ceil(result["total"] / result["per_page"]))
    return render_page("payments/exports.html", status, result=result, pages=pages,
                       errors=errors, limit=c.policy.batch_second_release_cents)


@bp.post("/payments/exports/<int:batch_id>/<any(send, withdraw):step>")
@roles(FINANCE)
def batch_step(batch_id: int, step: str):
    """Mark a batch as sent to the bank, or withdraw one not yet sent (with a reason)."""
    if batch_id > 2**31 - 1:
        abort(404)
    c = ctx()
    try:
        if step == "send":
            batch_service.send_batch(c, batch_id)
            flash(_("Batch %(id)s is marked as sent to the bank.", id=batch_id), "success")
        else:
            batch_service.withdraw_batch(c, batch_id, request.form.get("reason", ""))
            flash(_("Batch %(id)s was withdrawn; its payments wait for a new batch.",
                    id=batch_id), "success")
    except NotFound:
        abort(404)
    except ServiceError as exc:
        c.session.rollback()
        errors, status = errors_from(exc)
        return _batches_page(c, errors, status)
    return redirect(url_for("payments_ui.exports"), 303)


@bp.get("/payments/exports/<int:batch_id>")
@roles(FINANCE)
def download_export(batch_id: int):
    """Download a batch's file (``?format=sepa|csv``; logged; never cached): the bytes
    stored when the batch was made."""
    if batch_id > 2**31 - 1:
        abort(404)
    fmt = request.args.get("format")
    if fmt not in (None, *batch_service.FORMATS):
        abort(404)
    batch, content, fmt = batch_service.download_file(ctx(), batch_id, fmt)
    response = current_app.response_class(content, mimetype=export.MEDIA_TYPES[fmt])
    name = export.filename(batch.id, fmt, batch.created_at)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- bank statements and the review list -----------------------------------------------------

@bp.route("/payments/statements", methods=["GET", "POST"])
@roles(FINANCE)
def statements():
    """Import the bank's statement (camt.053 or MT940) and see the imports so far."""
    c = ctx()
    errors, status = FormErrors(), 200
    if request.method == "POST":
        upload = request.files.get("statement")
        limit = int(current_app.config["STATEMENT_MAX_BYTES"])
        try:
            if upload is None or not upload.filename:
                raise ValidationError({"statement": [M("field.required")]})
            # One byte past the limit is enough for the parser to refuse the file.
            result = reconcile_service.import_statement(c, upload.stream.read(limit + 1),
                                                        max_bytes=limit)
        except (ValidationError, ServiceError) as exc:
            c.session.rollback()
            errors, status = errors_from(exc, rename=lambda key: "statement" if key == "file" else key)
        else:
            if result["already_imported"]:
                flash(_("Statement %(id)s was imported before; nothing was changed.",
                        id=result["statement_id"]), "success")
            else:
                o = result["outcomes"]
                flash(_("Statement %(id)s imported: %(booked)s booked, %(returned)s returned, "
                        "%(review)s for review.", id=result["statement_id"], booked=o["booked"],
                        returned=o["returned"], review=o["review"]), "success")
            return redirect(url_for("payments_ui.statements"), 303)
    listed = reconcile_service.list_statements(c, {"page": 1, "per_page": 50})
    return render_page("payments/statements.html", status, result=listed, errors=errors,
                       mb=max(1, int(current_app.config["STATEMENT_MAX_BYTES"]) // 1_000_000))


@bp.get("/payments/review")
@roles(FINANCE)
def review():
    """Statement entries that could not be matched for sure: a person decides each."""
    return _review_page(ctx(), FormErrors(), 200)


def _review_page(c, errors: FormErrors, status: int, values=None):
    state = "resolved" if request.args.get("state") == "resolved" else "open"
    result = reconcile_service.review_list(c, {"state": state, "page": 1, "per_page": 100})
    return render_page("payments/review.html", status, result=result, errors=errors,
                       state=state, values=values or {})


@bp.post("/payments/review/<int:entry_id>")
@roles(FINANCE)
def resolve_entry(entry_id: int):
    """Book or return a reviewed entry against a payment, or dismiss it, with a note."""
    if entry_id > 2**31 - 1:
        abort(404)
    c = ctx()
    raw_id = (request.form.get("payment_id") or "").strip()
    try:
        if raw_id and not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 10):
            raise ValidationError({"payment_id": [M("field.invalid_integer")]})
        reconcile_service.resolve_entry(c, entry_id, request.form.get("resolution", ""),
                                        request.form.get("note", ""),
                                        int(raw_id) if raw_id else None)
    except NotFound:
        abort(404)
    except (ValidationError, ServiceError) as exc:
        c.session.rollback()
        errors, status = errors_from(exc)
        return _review_page(c, errors, status, request.form)
    flash(_("Entry %(id)s decided.", id=entry_id), "success")
    return redirect(url_for("payments_ui.review"), 303)


def _report_month(c) -> tuple[int, int]:
    raw = request.args.get("month") or c.today().strftime("%Y-%m")
    match = re.fullmatch(r"(\d{4})-(\d{2})", raw)
    if not match:
        raise ValidationError({"month": [M("report.month_format")]})
    return int(match.group(1)), int(match.group(2))


@bp.get("/payments/report")
@roles(FINANCE)
def report():
    """The monthly reconciliation: proposed, paid, booked, returned and outstanding."""
    c = ctx()
    try:
        result = reconcile_service.monthly_report(c, *_report_month(c))
    except (ValidationError, ServiceError) as exc:
        c.session.rollback()
        errors, status = errors_from(exc)
        return render_page("payments/report.html", status, report=None, errors=errors,
                           month=request.args.get("month", ""))
    return render_page("payments/report.html", 200, report=result, errors=FormErrors(),
                       month=result["month"])


@bp.get("/payments/report.csv")
@roles(FINANCE)
def report_csv():
    """The monthly reconciliation as CSV (never cached)."""
    c = ctx()
    try:
        result = reconcile_service.monthly_report(c, *_report_month(c))
    except (ValidationError, ServiceError):
        abort(404)
    response = current_app.response_class(reconcile_service.report_csv(result),
                                          mimetype="text/csv")
    response.headers["Content-Disposition"] = \
        f'attachment; filename="travel-support-reconciliation-{result["month"]}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
