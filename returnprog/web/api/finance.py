"""JSON API for finance (issue 15 item 6), under /api/v1: payment batches and their
files, bank-statement import (multipart upload), the review list and the monthly
reconciliation. Thin views over :mod:`services.batches` and :mod:`services.reconcile`."""
from __future__ import annotations

import hashlib

from flask import Blueprint, current_app, jsonify, request, url_for

from ... import export
from ... import schemas_finance as schemas
from ...dumping import dump
from ...messages import M
from ...services import batches as batch_service
from ...services import reconcile as reconcile_service
from .common import ApiError, api_ctx, authenticate, load, optional_body

bp = Blueprint("api_finance", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)

_ID_MAX = 2**31 - 1


def _with_links(batch: dict) -> dict:
    files = [{**f, "download": url_for("api_finance.download_batch_file", batch_id=batch["id"],
                                       fmt=f["format"])} for f in batch["files"]]
    return {**batch, "files": files}


def _batch_response(batch_id: int, status: int = 200):
    data = batch_service.read_batch(api_ctx(), batch_id)
    resp = jsonify(dump(schemas.BatchOut, _with_links(data)))
    resp.status_code = status
    return resp


def _check_id(value: int, code: str = "payment.no_export") -> None:
    if value > _ID_MAX:
        raise ApiError(404, "not_found", M(code, id=value))


@bp.get("/batches")
def list_batches():
    """The payment batches, newest first (filter by status)."""
    filters = load(schemas.BatchQuerySchema, request.args.to_dict())
    page = batch_service.list_batches(api_ctx(), filters)
    page["items"] = [_with_links(item) for item in page["items"]]
    return jsonify(dump(schemas.BatchListOut, page))


@bp.post("/batches")
def create_batch():
    """Put the released transfers that are in no batch yet into a new batch."""
    data = load(schemas.CreateBatchSchema, optional_body())
    debtor = export.debtor_from_config(current_app.config.get("SEPA_DEBTOR"))
    batch = batch_service.create_batch(api_ctx(), data.get("scope"), debtor)
    resp = _batch_response(batch.id, 201)
    resp.headers["Location"] = url_for("api_finance.get_batch", batch_id=batch.id)
    return resp


@bp.get("/batches/<int:batch_id>")
def get_batch(batch_id: int):
    """One batch with its payments and files."""
    _check_id(batch_id)
    return _batch_response(batch_id)


@bp.get("/batches/<int:batch_id>/files/<fmt>")
def download_batch_file(batch_id: int, fmt: str):
    """A batch's file: the same bytes every time (ETag: its SHA-256); never cached."""
    _check_id(batch_id)
    if fmt not in batch_service.FORMATS:
        raise ApiError(404, "not_found", M("batch.no_such_file", id=batch_id, format="?"))
    batch, content, fmt = batch_service.download_file(api_ctx(), batch_id, fmt)
    resp = current_app.response_class(content, mimetype=export.MEDIA_TYPES[fmt])
    name = export.filename(batch.id, fmt, batch.created_at)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["ETag"] = f'"{hashlib.sha256(content).hexdigest()}"'
    return resp


@bp.post("/batches/<int:batch_id>/send")
def send_batch(batch_id: int):
    """Mark the batch as handed to the bank (a second finance officer above the limit)."""
    _check_id(batch_id)
    load(schemas.NoFieldsSchema, optional_body())
    batch_service.send_batch(api_ctx(), batch_id)
    return _batch_response(batch_id)


@bp.post("/batches/<int:batch_id>/withdraw")
def withdraw_batch(batch_id: int):
    """Withdraw a batch that was not sent, with a reason: its payments are freed."""
    _check_id(batch_id)
    data = load(schemas.WithdrawBatchSchema, optional_body())
    batch_service.withdraw_batch(api_ctx(), batch_id, data["reason"])
    return _batch_response(batch_id)


@bp.post("/statements")
def import_statement():
    """Import a bank statement: multipart field ``file`` (camt.053 or MT940). 201 with the
    outcomes; 200 with ``already_imported`` when this statement was imported before."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "api.send_multipart")
    unknown = sorted(set(request.form) | (set(request.files) - {"file"}))
    if unknown:
        raise ApiError(422, "invalid", "error.invalid_fields",
                       {name: [M("field.unknown")] for name in unknown})
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(422, "invalid", "error.invalid_fields", {"file": [M("field.required")]})
    limit = int(current_app.config["STATEMENT_MAX_BYTES"])
    result = reconcile_service.import_statement(api_ctx(), upload.stream.read(limit + 1),
                                                max_bytes=limit)
    resp = jsonify(dump(schemas.StatementOut, result))
    resp.status_code = 200 if result["already_imported"] else 201
    return resp


@bp.get("/statements")
def list_statements():
    """The imported statements, newest first, with what their entries did."""
    filters = load(schemas.PageQuerySchema, request.args.to_dict())
    return jsonify(dump(schemas.StatementListOut,
        reconcile_service.list_statements(api_ctx(), filters)))


@bp.get("/statement-entries")
def review_list():
    """The review list: entries that could not be matched for sure (``state=open``), or
    those already decided (``state=resolved``)."""
    filters = load(schemas.ReviewQuerySchema, request.args.to_dict())
    return jsonify(dump(schemas.EntryListOut, reconcile_service.review_list(api_ctx(), filters)))


@bp.post("/statement-entries/<int:entry_id>/resolve")
def resolve_entry(entry_id: int):
    """Decide a reviewed entry: book or return it against a payment, or dismiss it."""
    _check_id(entry_id, "statement.no_entry")
    data = load(schemas.ResolveEntrySchema, optional_body())
    result = reconcile_service.resolve_entry(api_ctx(), entry_id, data["resolution"],
                                             data["note"], data.get("payment_id"))
    return jsonify(dump(schemas.EntryOut, result))


@bp.get("/reports/reconciliation")
def reconciliation_report():
    """The monthly reconciliation (``month`` YYYY-MM, default this month); with
    ``Accept: text/csv`` as CSV."""
    query = load(schemas.ReportQuerySchema, request.args.to_dict())
    ctx = api_ctx()
    year, month = map(int, (query.get("month") or ctx.today().strftime("%Y-%m")).split("-"))
    report = reconcile_service.monthly_report(ctx, year, month)
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        resp = current_app.response_class(reconcile_service.report_csv(report),
                                          mimetype="text/csv")
        resp.headers["Content-Disposition"] = \
            f'attachment; filename="travel-support-reconciliation-{report["month"]}.csv"'
        return resp
    return jsonify(dump(schemas.ReportOut, report))
