"""Errors become clear answers: JSON ``{"error": {...}}`` under /api, friendly pages
elsewhere, and never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ..services import ServiceError

log = logging.getLogger("returnprog")

MESSAGES = {
    400: "The request could not be understood.",
    401: "Sign in first: send a valid bearer token.",
    403: "You may not do this.",
    404: "Not found.",
    405: "This method is not allowed here.",
    409: "Conflict.",
    413: "The request is too large.",
    415: "Send JSON (Content-Type: application/json).",
    422: "Some fields are not valid.",
    429: "Too many requests; wait a moment.",
    500: "Something went wrong on our side; nothing was saved.",
}


def wants_json() -> bool:
    """API requests get JSON errors; pages get HTML."""
    return request.path.startswith("/api/")


def _jsonable(value):
    """A parameter value as JSON (dates as ISO text, anything odd as text)."""
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _entry(message, field: str | None, code: str | None = None, params=None) -> dict:
    entry = {"code": code or getattr(message, "code", None) or "invalid",
             "message": str(message)}
    if field:
        entry["field"] = field
    params = params if params is not None else getattr(message, "params", None)
    # The refused value itself is never echoed back: it may be an identifier (a V-number
    # that failed its pattern), and the field already says which value it was.
    params = {k: v for k, v in (params or {}).items() if k != "input"}
    if params:
        entry["params"] = _jsonable(params)
    return entry


def _flatten(messages, path: tuple) -> list[dict]:
    # marshmallow nests per field (dicts), per list index (int keys) and per message (lists);
    # "_schema" is about the object at `path` itself, not a field of it.
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            out += _flatten(value, path if key == "_schema" else (*path, str(key)))
        return out
    if isinstance(messages, (list, tuple)):
        return [entry for item in messages for entry in _flatten(item, path)]
    return [_entry(messages, ".".join(path) or None)]


def error_details(details) -> list[dict]:
    """``details`` (marshmallow's per-field dict of messages, or a list of entries) as the
    API's one shape: a list of ``{code, message, field?, params?}``, with dotted field paths
    (``household.0.v_number``). ``code`` is the message's code (``validate.v_number``,
    ``field.required``) for field errors, the refusal's code for conflicts."""
    if not details:
        return []
    if isinstance(details, dict):
        return _flatten(details, ())
    out = []
    for item in details:
        if isinstance(item, dict) and "message" in item:
            # Only params given explicitly: a refusal's message params may name people.
            out.append(_entry(item["message"], item.get("field"), item.get("code"),
                              item.get("params") or {}))
        elif isinstance(item, dict):  # bare facts, e.g. {"allowed": [...]}
            out.append({"code": "info", "message": ", ".join(
                f"{k}: {_jsonable(v)}" for k, v in item.items()), "params": _jsonable(item)})
        else:
            out += _flatten(item, ())
    return out


def error_response(status: int, code: str, message: str, details=None):
    """The API's one error shape: ``{"error": {"code", "message", "details": [...]}}``,
    ``details`` always a list (:func:`error_details`)."""
    resp = jsonify({"error": {"code": code, "message": str(message),
                              "details": error_details(details)}})
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="returnprog"'
    return resp


def _page(status: int, message: str):
    try:
        return render_template("error.html", status=status, message=message), status
    except Exception:  # the template itself failing must not turn a 404 into a 500
        return f"<!doctype html><title>{status}</title><p>{message}</p>", status


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        if wants_json():
            return error_response(exc.status, exc.code, exc.message, exc.details)
        return _page(exc.status, exc.message)

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError):
        if wants_json():
            return error_response(422, "invalid", MESSAGES[422], exc.normalized_messages())
        return _page(422, MESSAGES[422])

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        message = MESSAGES.get(status, exc.name)
        if wants_json():
            resp = error_response(status, exc.name.lower().replace(" ", "_"), message)
            if getattr(exc, "valid_methods", None):  # a 405 says what is allowed (RFC 9110)
                resp.headers["Allow"] = ", ".join(exc.valid_methods)
            return resp
        return _page(status, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Logged with the path only: request bodies may carry personal data.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal_error", MESSAGES[500])
        return _page(500, MESSAGES[500])
