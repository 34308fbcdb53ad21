"""Public verification of signed PDFs (blueprint ``verify``): upload a PDF and get the
answer, valid or exactly why not. Rate-limited per client address."""
from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, render_template, request, session

from .. import documents
from ..services import verification as verification_service
from . import ratelimit
from .headers import PUBLIC_CSP, secure_headers
from .sessions import db_session, seal
from .signing_common import Texts, flat_errors, local_time, too_many

log = logging.getLogger(__name__)

bp = Blueprint("verify", __name__)
bp.after_request(secure_headers(PUBLIC_CSP))

VERIFY_LANGUAGES = ("nl", "en", "uk", "ru")
SETTINGS = {
    # The largest upload checked.
    "VERIFY_MAX_BYTES": 5 * 1024 * 1024,
    # Retired seal certificates (PEM paths) that documents sealed earlier still verify with.
    "SEAL_TRUSTED_CERT_PATHS": [],
}


def _verify_language() -> str:
    lang = request.values.get("lang")
    if lang in VERIFY_LANGUAGES:
        return lang
    chosen = session.get("lang")
    return chosen if chosen in VERIFY_LANGUAGES else "nl"


_REASON_KEYS = {
    documents.REASON_UNREADABLE: "reason_unreadable",
    documents.REASON_NO_SEAL: "reason_no_seal",
    documents.REASON_SEVERAL_SEALS: "reason_several",
    documents.REASON_DAMAGED: "reason_damaged",
    documents.REASON_CHANGED: "reason_changed",
    documents.REASON_APPENDED: "reason_appended",
    documents.REASON_BAD_SIGNATURE: "reason_bad_signature",
    documents.REASON_UNTRUSTED: "reason_untrusted",
    documents.REASON_CERT_INVALID: "reason_cert_invalid",
    documents.REASON_TIMESTAMP: "reason_timestamp",
    documents.REASON_NOT_REGISTERED: "reason_not_registered",
}
CHECK_FAILED = "the file could not be checked"


def trusted_certs() -> list[bytes]:
    """The seal certificates this service trusts (current seal plus retired ones)."""
    return verification_service.trusted_cert_pems(
        seal(), current_app.config.get("SEAL_TRUSTED_CERT_PATHS") or ())


def _verify_page(status: int = 200, result=None, errors: dict | None = None):
    lang = _verify_language()
    V, T = Texts("verify", lang), Texts("participant", lang)
    reasons = []
    if result is not None and not result.valid:
        reasons = [V(_REASON_KEYS[r]) if r in _REASON_KEYS else
                   (V("reason_check_failed") if r == CHECK_FAILED else r)
                   for r in result.reasons]
    mb = current_app.config["VERIFY_MAX_BYTES"] // (1024 * 1024)
    doc = (result.document or {}) if result is not None else {}
    return render_template("signing/verify.html", V=V, T=T, lang=lang, result=result,
                           reasons=reasons, doc=doc, signed_local=local_time(doc.get("signed_at")),
                           errors=errors or {}, summary=flat_errors(errors or {}), mb=mb,
                           languages=[(code, Texts("participant", code)("lang_name"))
                                      for code in VERIFY_LANGUAGES]), status


@bp.get("/verify")
def verify_form():
    """Upload a PDF to check it."""
    return _verify_page()


@bp.post("/verify")
def verify_check():
    """The answer for an uploaded PDF: valid, or exactly why not. Never a 500 on garbage."""
    wait = ratelimit.hit("VERIFY_RATE", "verify")
    if wait:
        return too_many(wait)
    V = Texts("verify", _verify_language())
    upload = request.files.get("pdf")
    if upload is None or not upload.filename:
        return _verify_page(422, errors={"pdf": [V("err_nofile")]})
    max_bytes = int(current_app.config["VERIFY_MAX_BYTES"])
    data = upload.stream.read(max_bytes + 1)
    mb = max_bytes // (1024 * 1024)
    if len(data) > max_bytes:
        return _verify_page(413, errors={"pdf": [V("err_too_large", mb=mb)]})
    if not data:
        return _verify_page(422, errors={"pdf": [V("err_empty")]})
    try:
        result = verification_service.verify(db_session(), data, trusted_certs(),
                                             channel="web")
    except Exception:  # noqa: BLE001 - the answer is "could not be checked", never a 500
        log.exception("verification of an uploaded file failed")
        db_session().rollback()
        result = verification_service.Verification(valid=False, reasons=[CHECK_FAILED])
    return _verify_page(200, result=result)



def init_app(app: Flask) -> None:
    """Register the verification page and its settings."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
    ratelimit.init_app(app)
    app.register_blueprint(bp)
