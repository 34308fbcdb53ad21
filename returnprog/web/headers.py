"""Security headers of the signing and verification pages.

Every page there is sent with ``Cache-Control: no-store`` and ``Referrer-Policy:
no-referrer`` (a signing token must not leak through a cache or a Referer), plus a
Content-Security-Policy: the staff UI's for staff pages, ``PUBLIC_CSP`` for public ones.
"""
from __future__ import annotations

from typing import Callable

from flask import Response

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
