"""JSON API of the records roles under /api/v1 (issue 16): the access requests, a
participant's processing log beside their request, and one staff account's processing log.
Read only: registering and answering a request happens on the records pages."""
from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, abort, jsonify, request

from ... import schemas_access
from ...dumping import dump
from ...services import access_requests as service
from ...services import processing as processing_service
from .common import api_ctx, authenticate, load

bp = Blueprint("api_records", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)

MAX_ID = 2**31 - 1


def _page_of(page) -> dict:
    return dump(schemas_access.ProcessingPageOut,
        {"items": [asdict(e) for e in page.items], "page": page.page,
         "per_page": page.per_page, "more": page.more})


@bp.get("/access-requests")
def list_access_requests():
    """Every access request, those still to answer first (records roles)."""
    return jsonify(dump(schemas_access.AccessRequestListOut,
        {"items": service.list_requests(api_ctx())}))


@bp.get("/access-requests/<int:access_request_id>")
def get_access_request(access_request_id: int):
    """One access request: the identity check, the term, the package's hash, the answer."""
    if access_request_id > MAX_ID:
        abort(404)
    return jsonify(dump(schemas_access.AccessRequestOut,
        service.get_request(api_ctx(), access_request_id)))


@bp.get("/access-requests/<int:access_request_id>/processing-log")
def get_participant_processing_log(access_request_id: int):
    """The processing of the requesting participant's data (a look, in the access log)."""
    if access_request_id > MAX_ID:
        abort(404)
    ctx = api_ctx()
    processing_service.require_reader(ctx)
    query = load(schemas_access.PageOnlySchema, request.args.to_dict())
    return jsonify(_page_of(processing_service.participant_log(
        ctx, access_request_id, query["page"])))


@bp.get("/processing-log")
def get_staff_processing_log():
    """What one staff account read and changed, newest first (records roles)."""
    ctx = api_ctx()
    processing_service.require_reader(ctx)
    query = load(schemas_access.StaffLogQuerySchema, request.args.to_dict())
    result = processing_service.staff_log(ctx, query)
    return jsonify({"user": result["user"], **_page_of(result["page"])})
