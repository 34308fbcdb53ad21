"""JSON API for travel-support payments and finance exports, under /api/v1.

Same bearer authentication and error shape as :mod:`returnprog.web.api`; views parse,
call one service and map the result — nothing else. Disbursement itself is the workflow
action ``POST /api/v1/cases/{ref}/actions/pay_support`` (with an idempotency key).
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request, url_for

from ..messages import M
from .. import export
from .. import schemas_payments as schemas
from ..services import payment as payment_service
from . import api
from .api import ApiError, _json_body, _load
from .sessions import service_context

bp = Blueprint("api_payments", __name__, url_prefix="/api/v1")
bp.before_request(api._authenticate)


def _ctx():
    return service_context(g.api_user)


def _optional_body() -> dict:
    return _json_body() if request.content_length or request.is_json else {}


def _payment_response(payment, reference: str, status: int = 200):
    resp = jsonify(schemas.PaymentDetailOut().dump(
        payment_service.payment_data(payment, reference)))
    resp.status_code = status
    return resp


@bp.get("/cases/<reference>/payment")
def get_payment(reference: str):
    """The case's current payment (live, else the latest) with its bank details."""
    data = payment_service.read_payment(_ctx(), reference)
    return jsonify(schemas.PaymentDetailOut().dump(data))


@bp.post("/cases/<reference>/payment")
def propose_payment(reference: str):
    """A counsellor proposes the travel support (transfer with IBAN and holder, cash or card)."""
    data = _load(schemas.ProposePaymentSchema, _json_body())
    payment = payment_service.propose(_ctx(), reference, data)
    resp = _payment_response(payment, reference, 201)
    resp.headers["Location"] = url_for("api_payments.get_payment", reference=reference)
    return resp


@bp.post("/cases/<reference>/payment/approve")
def approve_payment(reference: str):
    """A supervisor who did not propose it approves the proposal they looked at."""
    data = _load(schemas.ApprovePaymentSchema, _json_body())
    payment = payment_service.approve(_ctx(), reference, data["payment_id"], data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/reject")
def reject_payment(reference: str):
    """A supervisor who did not propose it rejects the proposal, with a reason."""
    data = _load(schemas.ReasonedDecisionSchema, _json_body())
    payment = payment_service.reject(_ctx(), reference, data["reason"], data["payment_id"],
                                     data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/cancel")
def cancel_payment(reference: str):
    """Cancel a proposed or approved payment, with a reason, before the money goes out."""
    data = _load(schemas.ReasonedDecisionSchema, _json_body())
    payment = payment_service.cancel(_ctx(), reference, data["reason"], data["payment_id"],
                                     data["version"])
    return _payment_response(payment, reference)


@bp.post("/cases/<reference>/payment/reentry")
def record_reentry(reference: str):
    """After departure: the re-entry date and the amount reclaimed (whole cents)."""
    data = _load(schemas.ReentrySchema, _json_body())
    payment = payment_service.record_reentry(_ctx(), reference, data)
    return _payment_response(payment, reference)


@bp.get("/payments")
def list_payments():
    """Payments on the cases you may see, filtered by status, method, case or export."""
    filters = _load(schemas.PaymentQuerySchema, request.args.to_dict())
    return jsonify(schemas.PaymentListOut().dump(payment_service.list_payments(_ctx(), filters)))


def _batch_out(batch) -> dict:
    data = batch if isinstance(batch, dict) else {
        k: getattr(batch, k) for k in ("id", "kind", "created_by", "created_at",
                                       "payment_count", "total_cents", "sha256")}
    return {**data, "download": url_for("api_payments.download_export", batch_id=data["id"])}


@bp.post("/exports")
def create_export():
    """A finance officer makes a batch file (sepa | csv) of the approved bank transfers
    not exported yet; each payment is exported once."""
    data = _load(schemas.CreateExportSchema, _json_body())
    debtor = export.debtor_from_config(current_app.config.get("SEPA_DEBTOR"))
    batch = payment_service.create_export(_ctx(), data["kind"], debtor)
    resp = jsonify(schemas.ExportBatchOut().dump(_batch_out(batch)))
    resp.status_code = 201
    resp.headers["Location"] = url_for("api_payments.download_export", batch_id=batch.id)
    return resp


@bp.get("/exports")
def list_exports():
    """The finance exports made so far, newest first."""
    filters = _load(schemas.ExportQuerySchema, request.args.to_dict())
    page = payment_service.list_exports(_ctx(), filters)
    page["items"] = [_batch_out(item) for item in page["items"]]
    return jsonify(schemas.ExportListOut().dump(page))


@bp.get("/exports/<int:batch_id>")
def download_export(batch_id: int):
    """Download an export file; never cached (it holds names and bank details)."""
    if batch_id > 2**31 - 1:
        raise ApiError(404, "not_found", M("payment.no_export", id=batch_id))
    batch = payment_service.download_export(_ctx(), batch_id)
    resp = current_app.response_class(batch.content, mimetype=export.MEDIA_TYPES[batch.kind])
    name = export.filename(batch.id, batch.kind, batch.created_at)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["ETag"] = f'"{batch.sha256}"'
    return resp


def describe(spec) -> None:
    """Add this blueprint's paths and schemas to the API's OpenAPI document
    (``api.build_spec`` can call this)."""
    for name in ("ProposePaymentSchema", "ApprovePaymentSchema", "ReasonedDecisionSchema",
                 "ReentrySchema", "CreateExportSchema", "PaymentDetailOut", "PaymentListOut",
                 "ExportBatchOut", "ExportListOut"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas, name))
    err = {"content": {"application/json": {"schema": "ErrorOut"}}}
    errors = {str(s): {"description": d, **err} for s, d in (
        (401, "missing or bad token"), (403, "role may not, or four eyes"),
        (404, "no such case you may see"), (409, "state or payment conflict"),
        (422, "per-field validation errors"))}
    ref = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}

    def body(schema):
        return {"content": {"application/json": {"schema": schema}}}

    ok = {"description": "the payment", **body("PaymentDetailOut")}
    spec.path(path="/api/v1/cases/{reference}/payment", operations={
        "get": {"summary": "Read the case's payment", "parameters": [ref],
                "responses": {"200": ok, **errors}},
        "post": {"summary": "Propose travel support", "parameters": [ref],
                 "requestBody": body("ProposePayment"), "responses": {"201": ok, **errors}}})
    for action, schema, summary in (
            ("approve", "ApprovePayment", "Approve (supervisor, not the proposer)"),
            ("reject", "ReasonedDecision", "Reject with a reason (supervisor, not the proposer)"),
            ("cancel", "ReasonedDecision", "Cancel before disbursement"),
            ("reentry", "Reentry", "Record a re-entry and reclaim after departure")):
        spec.path(path=f"/api/v1/cases/{{reference}}/payment/{action}", operations={
            "post": {"summary": summary, "parameters": [ref], "requestBody": body(schema),
                     "responses": {"200": ok, **errors}}})
    spec.path(path="/api/v1/payments", operations={
        "get": {"summary": "List payments",
                "parameters": [{"in": "query", "schema": schemas.PaymentQuerySchema}],
                "responses": {"200": {"description": "a page", **body("PaymentListOut")},
                              **errors}}})
    spec.path(path="/api/v1/exports", operations={
        "get": {"summary": "List finance exports",
                "parameters": [{"in": "query", "schema": schemas.ExportQuerySchema}],
                "responses": {"200": {"description": "a page", **body("ExportListOut")}, **errors}},
        "post": {"summary": "Export approved transfers (sepa | csv)",
                 "requestBody": body("CreateExport"),
                 "responses": {"201": {"description": "the batch", **body("ExportBatchOut")},
                               **errors}}})
    spec.path(path="/api/v1/exports/{batch_id}", operations={
        "get": {"summary": "Download an export file",
                "parameters": [{"name": "batch_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "the file", "content": {
                    "application/xml": {}, "text/csv": {}}}, **errors}}})
