"""The size bound of evidence uploads, applied before anything reads the body.

The app's ``MAX_CONTENT_LENGTH`` (8 MB) bounds every request; an evidence upload may be
up to ``EVIDENCE_MAX_BYTES`` (10 MB by default), so the routes that take a file get their
own bound: ``EVIDENCE_MAX_BYTES`` plus a little room for the form's other fields. A
request whose ``Content-Length`` says it is larger is refused here with 413 and the
reason, before CSRF or the form parser read a byte of it (this hook is registered ahead of
CSRFProtect's). A body without a length (chunked) is cut off by Werkzeug at the same
bound; the file itself is then read at most ``EVIDENCE_MAX_BYTES`` + 1 bytes and a larger
one refused — the same two steps as the verifier's upload (``VERIFY_MAX_BYTES`` within
``MAX_CONTENT_LENGTH``, issue 10).
"""
from __future__ import annotations

from flask import Flask, current_app, make_response, render_template, request

from .. import evidence
from ..i18n import render_message
from ..messages import M
from .errors import error_response

SETTINGS = {"EVIDENCE_MAX_BYTES": evidence.DEFAULT_MAX_BYTES}

# The POST routes that take an evidence file.
UPLOAD_ENDPOINTS = frozenset({
    "case_files.upload_evidence", "pages.action_confirm_departure",
    "pages.record_ind_confirmation", "api.upload_evidence"})


def max_bytes() -> int:
    """The largest evidence file accepted (the ``EVIDENCE_MAX_BYTES`` setting)."""
    return int(current_app.config["EVIDENCE_MAX_BYTES"])


def too_large():
    """The answer to an upload over the bound: 413 with the limit in words."""
    message = M("evidence.too_large", max=max(1, max_bytes() // (1024 * 1024)))
    if request.path.startswith("/api/"):
        resp = error_response(413, "too_large", message)
    else:
        resp = make_response(render_template("error.html", status=413,
                                             message=render_message(message)), 413)
    # The unread body is not drained: the connection ends with this answer.
    resp.headers["Connection"] = "close"
    return resp


def init_app(app: Flask) -> None:
    """Register the bound; call before CSRFProtect is set up, so it runs first."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)

    @app.before_request
    def _evidence_upload_bound():
        if request.method != "POST" or request.endpoint not in UPLOAD_ENDPOINTS:
            return None
        bound = max_bytes() + evidence.MULTIPART_SLACK
        request.max_content_length = bound
        if request.content_length is not None and request.content_length > bound:
            return too_large()
        return None


def read_upload(storage) -> bytes:
    """The bytes of an uploaded file, at most ``EVIDENCE_MAX_BYTES`` + 1 (so that a larger
    one is recognised without reading all of it)."""
    return storage.stream.read(max_bytes() + 1)
