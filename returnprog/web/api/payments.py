"""JSON API for travel-support payments and finance exports, under /api/v1.

Same bearer authentication and error shape as the case routes (:mod:`.common`); views
parse, call one service and map the result — nothing else. Disbursement itself is the
workflow action ``POST /api/v1/cases/{ref}/actions/pay_support`` (with an idempotency key).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, url_for

from ...messages import M
from ... import export
from ... import schemas_payments as schemas
from ...services import payment as payment_service
from .common import ApiError, api_ctx, authenticate, json_body, load

bp = Blueprint("api_payments", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


def _payment_response(payment, reference: str, status: int = 200):
    resp = jsonify(schemas.PaymentDetailOut().dump(
        payment_service.payment_data(payment, reference)))
    resp.status_code = status
    return resp


@bp.get("/cases/<reference>/payment")
def get_payment(reference: str):
    """The case's current payment (live, else the latest) with its bank details."""
    data = payment_service.read_payment(api_ctx(), reference)
    return jsonify(schemas.PaymentDetailOut().dump(data))


@bp.post("/cases/<reference>/payment")
def propose_payment(reference: str):
    """A counsellor proposes the travel support (transfer with IBAN and holder, cash or card)."""
    data = load(schemas.ProposePaymentSchema, json_body())
    payment = payment_service.propose(api_ctx(), reference, data)
    resp = _payment_response(payment, reference, 201)
    resp.headers["Location"] = url_for("api_payments.get_payment", reference=reference)
    return resp


@bp.post("/cases/<reference>/payment/approve")
def approve_payment(reference: str):
    """A supervisor who did not propose it approves the proposal they looked at."""
    data = load(schemas.ApprovePaymentSchema, json_body())
    payment = payment_service.approve(api_ctx(), reference, data["payment_id"], data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/reject")
def reject_payment(reference: str):
    """A supervisor who did not propose it rejects the proposal, with a reason."""
    data = load(schemas.ReasonedDecisionSchema, json_body())
    payment = payment_service.reject(api_ctx(), reference, data["reason"], data["payment_id"],
                                     data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/cancel")
def cancel_payment(reference: str):
    """Cancel a proposed or approved payment, with a reason, before the money goes out."""
    data = load(schemas.ReasonedDecisionSchema, json_body())
    payment = payment_service.cancel(api_ctx(), reference, data["reason"], data["payment_id"],
                                     data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/reentry")
def record_reentry(reference: str):
    """After departure: the re-entry date and the amount reclaimed (whole cents)."""
    data = load(schemas.ReentrySchema, json_body())
    payment = payment_service.record_reentry(api_ctx(), reference, data)
    return _payment_response(payment, reference)


@bp.get("/payments")
def list_payments():
    """Payments on the cases you may see, filtered by status, method, case or export."""
    filters = load(schemas.PaymentQuerySchema, request.args.to_dict())
    return jsonify(schemas.PaymentListOut().dump(payment_service.list_payments(api_ctx(), filters)))


def _batch_out(batch) -> dict:
    data = batch if isinstance(batch, dict) else {
        k: getattr(batch, k) for k in ("id", "kind", "created_by", "created_at",
                                       "payment_count", "total_cents", "sha256")}
    return {**data, "download": url_for("api_payments.download_export", batch_id=data["id"])}


@bp.post("/exports")
def create_export():
    """A finance officer makes a batch file (sepa | csv) of the approved bank transfers
    not exported yet; each payment is exported once."""
    data = load(schemas.CreateExportSchema, json_body())
    debtor = export.debtor_from_config(current_app.config.get("SEPA_DEBTOR"))
    batch = payment_service.create_export(api_ctx(), data["kind"], debtor)
    resp = jsonify(schemas.ExportBatchOut().dump(_batch_out(batch)))
    resp.status_code = 201
    resp.headers["Location"] = url_for("api_payments.download_export", batch_id=batch.id)
    return resp


@bp.get("/exports")
def list_exports():
    """The finance exports made so far, newest first."""
    filters = load(schemas.ExportQuerySchema, request.args.to_dict())
    page = payment_service.list_exports(api_ctx(), filters)
    page["items"] = [_batch_out(item) for item in page["items"]]
    return jsonify(schemas.ExportListOut().dump(page))


@bp.get("/exports/<int:batch_id>")
def download_export(batch_id: int):
    """Download an export file; never cached (it holds names and bank details)."""
    if batch_id > 2**31 - 1:
        raise ApiError(404, "not_found", M("payment.no_export", id=batch_id))
    batch = payment_service.download_export(api_ctx(), batch_id)
    resp = current_app.response_class(batch.content, mimetype=export.MEDIA_TYPES[batch.kind])
    name = export.filename(batch.id, batch.kind, batch.created_at)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["ETag"] = f'"{batch.sha256}"'
    return resp
