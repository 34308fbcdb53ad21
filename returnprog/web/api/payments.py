"""JSON API for travel-support payments and finance exports, under /api/v1.

Same bearer authentication and error shape as the case routes (:mod:`.common`); views
parse, call one service and map the result — nothing else.

A case's payments are a sub-resource: ``/cases/{ref}/payments`` (list, propose) and
``/cases/{ref}/payments/{id}`` (read) with its actions ``approve``, ``reject``,
``cancel``, ``pay`` and ``reentry``, each taking the payment's ``version`` in the JSON
body. ``pay`` is the workflow action ``pay_support`` (also still at
``/cases/{ref}/actions/pay_support``). The older ``/cases/{ref}/payment[/…]`` routes,
which act on "the current payment", are deprecated aliases answering the same shape.
"""
from __future__ import annotations

import hashlib

from flask import Blueprint, current_app, g, jsonify, request, url_for

from ... import export
from ... import schemas_payments as schemas
from ...dumping import dump
from ...messages import M
from ...services import batches as batch_service
from ...services import payment as payment_service
from ...services.lookups import user_ref
from .common import ApiError, api_ctx, authenticate, json_body, load

bp = Blueprint("api_payments", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


def _payment_response(payment, reference: str, status: int = 200):
    """The payment as the API answers it, from an ORM row or :func:`read_payment`'s dict."""
    data = (payment if isinstance(payment, dict)
            else payment_service.payment_out(api_ctx(), payment, reference))
    resp = jsonify(dump(schemas.PaymentDetailOut, data))
    resp.status_code = status
    return resp


def _proposed(reference: str, deprecated_location: bool = False):
    data = load(schemas.ProposePaymentSchema, json_body())
    payment = payment_service.propose(api_ctx(), reference, data)
    resp = _payment_response(payment, reference, 201)
    # The old route keeps answering with its own address (callers may follow it).
    resp.headers["Location"] = (
        url_for("api_payments.get_payment", reference=reference) if deprecated_location
        else url_for("api_payments.read_case_payment", reference=reference,
                     payment_id=payment.id))
    return resp


# --- the payment sub-resource: /cases/{reference}/payments[/{payment_id}[/{action}]] --------
# The payment is named in the address; each action takes the payment's ``version`` (read
# from it) in the body and answers the payment as it is afterwards.

@bp.get("/cases/<reference>/payments")
def list_case_payments(reference: str):
    """Every payment of the case, oldest first (IBANs masked), each with its version."""
    return jsonify(dump(schemas.CasePaymentsOut,
        payment_service.case_payments(api_ctx(), reference)))


@bp.post("/cases/<reference>/payments")
def propose_case_payment(reference: str):
    """A counsellor proposes the travel support (transfer with IBAN and holder, cash or
    card); 201 with the payment and its address (Location)."""
    return _proposed(reference)


@bp.get("/cases/<reference>/payments/<int:payment_id>")
def read_case_payment(reference: str, payment_id: int):
    """One payment of the case with its bank details (the look is logged)."""
    return _payment_response(payment_service.read_payment(
        api_ctx(), reference, _payment_id(reference, payment_id)), reference)


@bp.post("/cases/<reference>/payments/<int:payment_id>/approve")
def approve_case_payment(reference: str, payment_id: int):
    """A supervisor who did not propose it approves the payment at the version read."""
    data = load(schemas.PaymentVersionSchema, json_body())
    return _payment_response(payment_service.approve(
        api_ctx(), reference, _payment_id(reference, payment_id), data["version"], by_id=True), reference)


@bp.post("/cases/<reference>/payments/<int:payment_id>/reject")
def reject_case_payment(reference: str, payment_id: int):
    """A supervisor who did not propose it rejects the payment, with a reason."""
    data = load(schemas.PaymentReasonSchema, json_body())
    return _payment_response(payment_service.reject(
        api_ctx(), reference, data["reason"], _payment_id(reference, payment_id), data["version"],
        by_id=True), reference)


@bp.post("/cases/<reference>/payments/<int:payment_id>/cancel")
def cancel_case_payment(reference: str, payment_id: int):
    """Cancel a proposed or approved payment, with a reason, before the money goes out."""
    data = load(schemas.PaymentReasonSchema, json_body())
    return _payment_response(payment_service.cancel(
        api_ctx(), reference, data["reason"], _payment_id(reference, payment_id), data["version"],
        by_id=True), reference)


@bp.post("/cases/<reference>/payments/<int:payment_id>/pay")
def pay_case_payment(reference: str, payment_id: int):
    """A finance officer pays out the approved payment: the workflow action
    ``pay_support`` under the body's idempotency key (the case moves to support_paid)."""
    data = load(schemas.PaymentPaySchema, json_body())
    return _payment_response(payment_service.pay(
        api_ctx(), reference, _payment_id(reference, payment_id), data["version"],
        data["idempotency_key"]), reference)


@bp.post("/cases/<reference>/payments/<int:payment_id>/reentry")
def record_case_payment_reentry(reference: str, payment_id: int):
    """After departure: the re-entry date and the amount of this paid-out support
    reclaimed (whole cents)."""
    data = load(schemas.PaymentReentrySchema, json_body())
    return _payment_response(payment_service.record_reentry(
        api_ctx(), reference, {**data, "payment_id": _payment_id(reference, payment_id)}, by_id=True),
        reference)


def _payment_id(reference: str, payment_id: int) -> int:
    # Beyond what the column holds: no such payment (PostgreSQL would refuse the number).
    if payment_id > 2**31 - 1:
        raise ApiError(404, "not_found", M("payment.not_found", ref=reference, id=payment_id))
    return payment_id


# --- deprecated: the case's "current payment" routes, kept as aliases of the above ---------

@bp.get("/cases/<reference>/payment")
def get_payment(reference: str):
    """Deprecated (use ``/cases/{reference}/payments/{payment_id}``): the case's current
    payment (live, else the latest) with its bank details."""
    return _payment_response(payment_service.read_payment(api_ctx(), reference), reference)


@bp.post("/cases/<reference>/payment")
def propose_payment(reference: str):
    """Deprecated (use ``POST /cases/{reference}/payments``): propose the travel support."""
    return _proposed(reference, deprecated_location=True)


@bp.post("/cases/<reference>/payment/approve")
def approve_payment(reference: str):
    """Deprecated (use ``…/payments/{payment_id}/approve``): approve the live proposal,
    named by ``payment_id`` in the body (and optionally its version)."""
    data = load(schemas.ApprovePaymentSchema, json_body())
    payment = payment_service.approve(api_ctx(), reference, data["payment_id"], data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/reject")
def reject_payment(reference: str):
    """Deprecated (use ``…/payments/{payment_id}/reject``): reject the live proposal."""
    data = load(schemas.ReasonedDecisionSchema, json_body())
    payment = payment_service.reject(api_ctx(), reference, data["reason"], data["payment_id"],
                                     data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/cancel")
def cancel_payment(reference: str):
    """Deprecated (use ``…/payments/{payment_id}/cancel``): cancel the live payment."""
    data = load(schemas.ReasonedDecisionSchema, json_body())
    payment = payment_service.cancel(api_ctx(), reference, data["reason"], data["payment_id"],
                                     data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/reentry")
def record_reentry(reference: str):
    """Deprecated (use ``…/payments/{payment_id}/reentry``): record a re-entry."""
    data = load(schemas.ReentrySchema, json_body())
    payment = payment_service.record_reentry(api_ctx(), reference, data)
    return _payment_response(payment, reference)


@bp.get("/payments")
def list_payments():
    """Payments on the cases you may see, filtered by status, method, case or export."""
    filters = load(schemas.PaymentQuerySchema, request.args.to_dict())
    return jsonify(dump(schemas.PaymentListOut, payment_service.list_payments(api_ctx(), filters)))


def _batch_out(batch, fmt: str | None = None) -> dict:
    # A new batch was made by the caller, who is named from the request's own user.
    data = batch if isinstance(batch, dict) else batch_service.batch_data(
        batch, {batch.created_by: user_ref(batch.created_by, g.api_user.name,
                                           g.api_user.email)})
    args = {"format": fmt} if fmt else {}
    return {**data, "download": url_for("api_payments.download_export", batch_id=data["id"],
                                        **args)}


@bp.post("/exports")
def create_export():
    """A finance officer makes a batch of the released bank transfers not in a batch yet,
    with both files (SEPA pain.001 and CSV; CSV only for accounts outside SEPA); ``kind``
    says which file the answer's ``download`` link gives."""
    data = load(schemas.CreateExportSchema, json_body())
    debtor = export.debtor_from_config(current_app.config.get("SEPA_DEBTOR"))
    batch = batch_service.create_batch(api_ctx(), None if data["kind"] == "csv" else "sepa",
                                       debtor)
    fmt = data["kind"] if batch_service.file_of(batch, data["kind"]) else "csv"
    resp = jsonify(dump(schemas.ExportBatchOut, _batch_out(batch, fmt)))
    resp.status_code = 201
    resp.headers["Location"] = url_for("api_payments.download_export", batch_id=batch.id,
                                       format=fmt)
    return resp


@bp.get("/exports")
def list_exports():
    """The payment batches made so far, newest first."""
    filters = load(schemas.ExportQuerySchema, request.args.to_dict())
    page = batch_service.list_batches(api_ctx(), filters)
    page["items"] = [_batch_out(item) for item in page["items"]]
    return jsonify(dump(schemas.ExportListOut, page))


@bp.get("/exports/<int:batch_id>")
def download_export(batch_id: int):
    """Download a batch's file (``format`` sepa | csv; by default its SEPA file, else its
    CSV): the same bytes every time; never cached (it holds names and bank details)."""
    if batch_id > 2**31 - 1:
        raise ApiError(404, "not_found", M("payment.no_export", id=batch_id))
    query = load(schemas.DownloadQuerySchema, request.args.to_dict())
    batch, content, fmt = batch_service.download_file(api_ctx(), batch_id, query.get("format"))
    resp = current_app.response_class(content, mimetype=export.MEDIA_TYPES[fmt])
    name = export.filename(batch.id, fmt, batch.created_at)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["ETag"] = f'"{hashlib.sha256(content).hexdigest()}"'
    return resp
