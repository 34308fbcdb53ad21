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


def error_response(status: int, code: str, message: str, details=None):
    """The API's one error shape."""
    resp = jsonify({"error": {"code": code, "message": message,
                              "details": details if details is not None else []}})
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
            return error_response(status, exc.name.lower().replace(" ", "_"), message)
        return _page(status, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Logged with the path only: request bodies may carry personal data.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return error_response(500, "internal_error", MESSAGES[500])
        return _page(500, MESSAGES[500])
