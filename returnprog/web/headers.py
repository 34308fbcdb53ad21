"""Security headers that are not a page's own business.

- Signing and verification pages (:func:`secure_headers`): ``Cache-Control: no-store`` and
  ``Referrer-Policy: no-referrer`` (a signing token must not leak through a cache or a
  Referer), plus a Content-Security-Policy: the staff UI's for staff pages,
  ``PUBLIC_CSP`` for public ones.
- Every API response (:func:`init_app`) — JSON, every error status, the OpenAPI document:
  ``Cache-Control: no-store`` and ``Pragma: no-cache`` (it carries BSNs, V-numbers and
  signing addresses shown once) and ``X-Content-Type-Options: nosniff``.
- Every response when ``ENV_NAME`` is ``production``: ``Strict-Transport-Security``, so a
  browser that once reached the service over HTTPS never falls back to plain HTTP.
  Not in development, where the service runs on plain ``http://127.0.0.1``.
"""
from __future__ import annotations

from typing import Callable

from flask import Flask, Response, current_app, request

API_PREFIX = "/api/"
HSTS = "max-age=31536000; includeSubDomains"

# Public pages load nothing but this site's stylesheet, the signature pad and data: images.
PUBLIC_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def secure_headers(csp: str) -> Callable[[Response], Response]:
    """An ``after_request`` hook adding the headers above with the given policy."""
    def add(response: Response) -> Response:
        headers = response.headers
        headers["Cache-Control"] = "no-store"
        headers["Referrer-Policy"] = "no-referrer"
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
    return add


def init_app(app: Flask) -> None:
    """Add the API and production headers to every response of ``app`` (errors included:
    Flask runs ``after_request`` for responses of error handlers too)."""

    @app.after_request
    def _api_and_transport_headers(response: Response) -> Response:
        if request.path.startswith(API_PREFIX):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"  # for HTTP/1.0 caches in between
            response.headers["X-Content-Type-Options"] = "nosniff"
        if current_app.config.get("ENV_NAME") == "production":
            response.headers["Strict-Transport-Security"] = HSTS
        return response


def pdf_attachment(pdf: bytes, filename: str, sha256: str) -> Response:
    """A signed PDF as a download (the staff page's and the API's): an attachment, never
    cached, not sniffed, with its SHA-256 as the ETag."""
    response = Response(bytes(pdf), mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["ETag"] = f'"{sha256}"'
    return response
