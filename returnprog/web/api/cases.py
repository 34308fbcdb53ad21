"""JSON API for cases under /api/v1: open, read, list and edit cases, record IND
confirmations, perform workflow actions. Views parse, call one service and map errors —
nothing else. Marshmallow schemas are the contract: the OpenAPI document
(:mod:`.openapi`) is generated from them."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ... import schemas
from ...dumping import dump
from ...messages import M
from ...schemas_corrections import CorrectionOut, CorrectionSchema
from ...services import cases as case_service
from ...services import corrections
from .common import ApiError, api_ctx, authenticate, json_body, load, optional_body
from .openapi import build_spec

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


def _case_response(reference: str, status: int = 200):
    data = case_service.read_case(api_ctx(), reference, log_view=False)
    resp = jsonify(dump(schemas.CaseOut, data))
    resp.status_code = status
    return resp


@bp.get("/cases")
def list_cases():
    """List the cases you may see, filtered and paginated."""
    filters = load(schemas.CaseQuerySchema, request.args.to_dict())
    return jsonify(dump(schemas.CaseListOut, case_service.list_cases(api_ctx(), filters)))


@bp.post("/cases/search")
def search_cases():
    """List the cases you may see, with the filters (and above all the search words, which
    may be names or V-numbers) in the request body rather than in the address, where
    proxies and access logs would keep them. Same filters and answer as ``GET /cases``."""
    filters = load(schemas.CaseQuerySchema, json_body())
    return jsonify(dump(schemas.CaseListOut, case_service.list_cases(api_ctx(), filters)))


@bp.post("/cases")
def create_case():
    """Open a case (intake) with its principal and household."""
    data = load(schemas.IntakeSchema, json_body())
    case = case_service.open_case(api_ctx(), data)
    resp = _case_response(case.reference, 201)
    resp.headers["Location"] = f"/api/v1/cases/{case.reference}"
    return resp


@bp.get("/cases/<case_ref:reference>")
def get_case(reference: str):
    """Read a case: participants, state, allowed actions, documents, payments."""
    return jsonify(dump(schemas.CaseOut, case_service.read_case(api_ctx(), reference)))


def _trail_page(reference: str):
    query = load(schemas.TrailQuerySchema, request.args.to_dict())
    return jsonify(dump(schemas.TrailOut, case_service.case_trail(
        api_ctx(), reference, before_seq=query["before"], limit=query["limit"])))


@bp.get("/cases/<reference>/events")
def get_events(reference: str):
    """A page of the case's audit trail (its changes), newest first; ``before`` pages on."""
    return _trail_page(reference)


@bp.get("/cases/<reference>/trail")
def get_trail(reference: str):
    """Deprecated alias of ``/cases/{reference}/events``."""
    return _trail_page(reference)


@bp.get("/cases/<reference>/access-log")
def get_access_log(reference: str):
    """A page of who looked at the case, newest first."""
    query = load(schemas.TrailQuerySchema, request.args.to_dict())
    return jsonify(dump(schemas.LooksOut, case_service.case_looks(
        api_ctx(), reference, before_id=query["before"], limit=query["limit"])))


@bp.put("/cases/<case_ref:reference>")
def update_case(reference: str):
    """Replace intake data and household (only while the case is in intake)."""
    body = json_body()
    expected = request.headers.get("If-Match")
    data = load(schemas.IntakeSchema, body)
    version = (int(expected) if expected and expected.isascii() and expected.isdigit()
               and len(expected) < 10 else None)
    case = case_service.update_intake(api_ctx(), reference, data, version)
    return _case_response(case.reference)


def _if_match() -> int | None:
    expected = request.headers.get("If-Match", "").strip('"')
    return (int(expected) if expected and expected.isascii() and expected.isdigit()
            and len(expected) < 10 else None)


@bp.post("/cases/<reference>/corrections")
def correct_case(reference: str):
    """Correct contact data, notes, names, dates of birth or the destination at any state
    before a final one (If-Match: the case's version). Stated data supersedes the signed
    documents that state it; ``?dry_run=1`` says what would be done without saving."""
    data = load(CorrectionSchema, json_body())
    dry_run = request.args.get("dry_run", "").lower() in ("1", "true", "yes")
    plan = corrections.correct_case(api_ctx(), reference, data, _if_match(), dry_run=dry_run)
    iso = lambda v: v.isoformat() if hasattr(v, "isoformat") else v  # noqa: E731
    plan["changes"] = [{**c, "old": iso(c["old"]), "new": iso(c["new"])} for c in plan["changes"]]
    return jsonify(dump(CorrectionOut, {**plan, "dry_run": dry_run}))


@bp.post("/cases/<reference>/ind-confirmations")
def add_ind_confirmation(reference: str):
    """Record the IND's confirmation of one participant's withdrawal."""
    data = load(schemas.IndConfirmationSchema, json_body())
    case_service.record_ind_confirmation(api_ctx(), reference, data)
    return _case_response(reference, 201)


@bp.post("/cases/<reference>/actions/<action>")
def perform_action(reference: str, action: str):
    """Perform a workflow action with its payload; 409 lists what is missing."""
    schema = schemas.ACTION_SCHEMAS.get(action)
    if schema is None:
        allowed = sorted(schemas.ACTION_SCHEMAS)
        raise ApiError(404, "not_found", M("case.no_such_action", name=action),
                       [{"code": "validate.one_of", "field": "action", "params": {"allowed": allowed},
                         "message": M("validate.one_of", choices=", ".join(allowed))}])
    # Actions with fields need their JSON body (none: 415, empty or broken: 400, as
    # documented); actions without fields take none, {} or an empty body.
    body = optional_body() if schema is schemas.EmptyPayload else json_body()
    payload = load(schema, body)
    case_service.perform(api_ctx(), reference, action, payload)
    return _case_response(reference)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API, generated from the marshmallow schemas."""
    return jsonify(build_spec().to_dict())
