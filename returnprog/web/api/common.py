"""What every API view shares: who is calling (bearer token), the JSON body, loading it
with a marshmallow schema, and the request-level errors (wrong media type, bad JSON).

Service errors are mapped to the JSON error shape by :mod:`returnprog.web.errors`.
"""
from __future__ import annotations

from flask import g, request
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter

from ...messages import M
from ...auth import check_api_token
from ...db import end_read
from ...dumping import shared_schema as schema
from ...services import Invalid, ServiceError
from ..errors import error_response
from ..sessions import db_session, service_context

class CaseReferenceConverter(BaseConverter):
    """A case reference in ``/cases/<case_ref:reference>``: any path segment but the
    fixed sub-path ``search``, so ``/cases/search`` is not also "the case called search"
    (its ``Allow`` then lists only what ``/cases/search`` itself takes)."""

    regex = r"(?!search(?:/|$))[^/]+"


# Endpoints anyone may call without a token.
PUBLIC_ENDPOINTS = {"api.openapi"}
TOKEN_REFUSALS = {"expired": M("api.token_expired"), "revoked": M("api.token_revoked")}


class ApiError(ServiceError):
    """A request-level error with its own status (malformed JSON, wrong media type)."""

    def __init__(self, status: int, code: str, message, details=None):
        super().__init__(message, details)
        self.status, self.code = status, code


def authenticate():
    """``before_request`` of every API blueprint: admit a valid bearer token (its user is
    ``g.api_user``), else answer 401."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user, why = (check_api_token(db_session(), token.strip()) if scheme.lower() == "bearer"
                 else (None, "unknown"))
    # The lookup's read must not pin an old SQLite snapshot for a write that follows
    # (on PostgreSQL it pins nothing, and the request keeps its connection).
    end_read(db_session())
    if user is None:
        # Revoked and expired say so (the caller holds the token, nothing is revealed).
        message = TOKEN_REFUSALS.get(why, "Sign in first: send a valid bearer token.")
        return error_response(401, "unauthorized", message)
    g.api_user = user
    # A parameter given twice would silently be read as its first value: refuse it instead.
    repeated = sorted(key for key, values in request.args.lists() if len(values) > 1)
    if repeated:
        return error_response(422, "invalid", M("error.invalid_fields"),
                              {key: [M("api.parameter_repeated")] for key in repeated})
    return None


def api_ctx():
    """A service context for the API caller of this request."""
    return service_context(g.api_user)


def json_body() -> dict:
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


def optional_body() -> dict:
    """The JSON body if one was sent, else an empty payload (actions without fields).
    An empty body counts as none even under ``Content-Type: application/json``: generated
    clients send that header on every operation that documents a JSON body, optional or
    not. (The body's size is bounded by MAX_CONTENT_LENGTH before it is read.)"""
    if request.content_length or (request.is_json and request.get_data(cache=True)):
        return json_body()
    return {}


def load(schema_cls, data: dict) -> dict:
    """``data`` loaded with the schema; per-field errors become a 422 ``Invalid``."""
    try:
        return schema(schema_cls).load(data)
    except ValidationError as exc:
        raise Invalid("error.invalid_fields", exc.normalized_messages()) from exc
