"""JSON API under /api/v1. Views parse, call one service and map errors — nothing else.

Marshmallow schemas are the contract: the OpenAPI document is generated from them."""
from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, g, jsonify, request
from werkzeug.exceptions import BadRequest

from .. import schemas
from ..auth import user_for_token
from ..services import Invalid, ServiceError
from ..services import cases as case_service
from ..services import payment as payment_service
from .errors import error_response
from .sessions import db_session, service_context
from ..messages import M

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PUBLIC_ENDPOINTS = {"api.openapi"}


@bp.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(db_session(), token.strip()) if scheme.lower() == "bearer" else None
    # The lookup's read transaction must not pin an old snapshot for the write that follows.
    db_session().rollback()
    if user is None:
        return error_response(401, "unauthorized", "Sign in first: send a valid bearer token.")
    g.api_user = user
    return None


def _json_body() -> dict:
    """The request's JSON object, or a specific 400/415/422 error."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "api.send_json")
    try:
        data = request.get_json()
    except (BadRequest, RecursionError):  # RecursionError: nested too deeply to parse
        raise ApiError(400, "malformed_json", "api.malformed_json") from None
    if not isinstance(data, dict):  # including a JSON null
        raise ApiError(422, "invalid", "api.not_object",
                       {"_schema": [M("api.expected_object")]})
    return data


class ApiError(ServiceError):
    """A request-level error with its own status (malformed JSON, wrong media type)."""

    def __init__(self, status: int, code: str, message, details=None):
        super().__init__(message, details)
        self.status, self.code = status, code


def _load(schema_cls, data: dict) -> dict:
    from marshmallow import ValidationError

    try:
        return schema_cls().load(data)
    except ValidationError as exc:
        raise Invalid('error.invalid_fields', exc.normalized_messages()) from exc


def _ctx():
    return service_context(g.api_user)


def _case_response(reference: str, status: int = 200):
    data = case_service.read_case(_ctx(), reference, log_view=False)
    resp = jsonify(schemas.CaseOut().dump(data))
    resp.status_code = status
    return resp


@bp.get("/cases")
def list_cases():
    """List the cases you may see, filtered and paginated."""
    filters = _load(schemas.CaseQuerySchema, request.args.to_dict())
    return jsonify(schemas.CaseListOut().dump(case_service.list_cases(_ctx(), filters)))


@bp.post("/cases")
def create_case():
    """Open a case (intake) with its principal and household."""
    data = _load(schemas.IntakeSchema, _json_body())
    case = case_service.open_case(_ctx(), data)
    resp = _case_response(case.reference, 201)
    resp.headers["Location"] = f"/api/v1/cases/{case.reference}"
    return resp


@bp.get("/cases/<reference>")
def get_case(reference: str):
    """Read a case: participants, state, allowed actions, documents, audit trail."""
    return jsonify(schemas.CaseOut().dump(case_service.read_case(_ctx(), reference)))


@bp.put("/cases/<reference>")
def update_case(reference: str):
    """Replace intake data and household (only while the case is in intake)."""
    body = _json_body()
    expected = request.headers.get("If-Match")
    data = _load(schemas.IntakeSchema, body)
    version = (int(expected) if expected and expected.isascii() and expected.isdigit()
               and len(expected) < 10 else None)
    case = case_service.update_intake(_ctx(), reference, data, version)
    return _case_response(case.reference)


@bp.post("/cases/<reference>/ind-confirmations")
def add_ind_confirmation(reference: str):
    """Record the IND's confirmation of one participant's withdrawal."""
    data = _load(schemas.IndConfirmationSchema, _json_body())
    case_service.record_ind_confirmation(_ctx(), reference, data)
    return _case_response(reference, 201)


@bp.post("/cases/<reference>/actions/<action>")
def perform_action(reference: str, action: str):
    """Perform a workflow action with its payload; 409 lists what is missing."""
    schema = schemas.ACTION_SCHEMAS.get(action)
    if schema is None:
        raise ApiError(404, "not_found", M("case.no_such_action", name=action),
                       [{"allowed": sorted(schemas.ACTION_SCHEMAS)}])
    body = _json_body() if request.content_length or request.is_json else {}
    payload = _load(schema, body)
    if action == "pay_support":
        payment_service.disburse(_ctx(), reference, payload)
    else:
        case_service.perform(_ctx(), reference, action, payload)
    return _case_response(reference)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API, generated from the marshmallow schemas."""
    return jsonify(build_spec().to_dict())


def build_spec() -> APISpec:
    """Describe the API's paths with the schemas that validate them."""
    spec = APISpec(title="returnprog API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name in ("IntakeSchema", "CaseOut", "CaseListOut", "ErrorOut", "IndConfirmationSchema"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas, name))
    for action, schema in schemas.ACTION_SCHEMAS.items():
        # Several actions share a payload schema; a named subclass per action gives each
        # its own component without registering one class twice.
        spec.components.schema(f"Action_{action}", schema=type(f"Action_{action}", (schema,), {}))
    err = {"content": {"application/json": {"schema": "ErrorOut"}}}
    errors = {str(s): {"description": d, **err} for s, d in (
        (401, "missing or bad token"), (403, "role may not"), (404, "no such case you may see"),
        (409, "state or guard conflict; details list what is missing"),
        (422, "per-field validation errors"))}
    case_ok = {"description": "the case", "content": {"application/json": {"schema": "CaseOut"}}}
    ref = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
    spec.path(path="/api/v1/cases", operations={
        "get": {"summary": "List cases", "parameters": [{"in": "query", "schema": schemas.CaseQuerySchema}],
                "responses": {"200": {"description": "a page",
                                      "content": {"application/json": {"schema": "CaseListOut"}}},
                              **errors}},
        "post": {"summary": "Open a case", "requestBody": {
            "content": {"application/json": {"schema": "Intake"}}},
            "responses": {"201": case_ok, **errors}}})
    spec.path(path="/api/v1/cases/{reference}", operations={
        "get": {"summary": "Read a case", "parameters": [ref], "responses": {"200": case_ok, **errors}},
        "put": {"summary": "Edit intake (only in intake)", "parameters": [ref],
                "requestBody": {"content": {"application/json": {"schema": "Intake"}}},
                "responses": {"200": case_ok, **errors}}})
    spec.path(path="/api/v1/cases/{reference}/ind-confirmations", operations={
        "post": {"summary": "Record an IND confirmation", "parameters": [ref],
                 "requestBody": {"content": {"application/json": {"schema": "IndConfirmation"}}},
                 "responses": {"201": case_ok, **errors}}})
    spec.path(path="/api/v1/cases/{reference}/actions/{action}", operations={
        "post": {"summary": "Perform a workflow action",
                 "parameters": [ref, {"name": "action", "in": "path", "required": True,
                                      "schema": {"type": "string",
                                                 "enum": sorted(schemas.ACTION_SCHEMAS)}}],
                 "requestBody": {"content": {"application/json": {"schema": {
                     "oneOf": [{"$ref": f"#/components/schemas/Action_{a}"}
                               for a in schemas.ACTION_SCHEMAS]}}}},
                 "responses": {"200": case_ok, **errors}}})
    from . import api_payments  # its own blueprint; imported here to avoid a cycle

    api_payments.describe(spec)
    return spec
