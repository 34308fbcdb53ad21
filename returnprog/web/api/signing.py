"""Signing and documents in the JSON API (blueprint ``api_signing``, under /api/v1).

- Signing links: create (the answer carries the link's address, the only time it is
  given: only its hash is stored), list, resend (a fresh link replaces the old one),
  revoke (``DELETE``). Counsellors of the case's team, as on the web.
- Tablet sessions: a short-lived single-use address for the office tablet, where the
  participant signs in person on the link pages; the counsellor states the identity
  document checked when opening it (see ``services.signing.create_tablet_session``).
- Documents: the case's register with download addresses; the PDF itself (attachment,
  never cached, recorded in the access log; not for finance, as on the web).
- Verifications: upload a PDF (``multipart/form-data``, field ``file``) for the verdict
  ``/verify`` gives, as JSON, with the same size limit, rate limit and busy guard.

Views parse, call one service and map the result.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request, url_for

from ... import schemas_signing as schemas
from ... import verifier
from ...config import public_base_url
from ...dumping import dump
from ...identifiers import ID_TYPE_RECORDED
from ...messages import M
from ...services import case_views
from ...services import signing as signing_service
from .. import ratelimit
from ..errors import error_response
from ..headers import pdf_attachment
from ..verify import busy_response, check_upload
from .common import ApiError, api_ctx, authenticate, json_body, load

bp = Blueprint("api_signing", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)

# The one path of the API that the busy guard (``web.verify.EarlyBusy``) watches.
VERIFICATIONS_PATH = "/api/v1/verifications"  # = web.verify.API_VERIFICATIONS


def _selection(data: dict) -> tuple[int, str, dict]:
    terms = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
             for k, v in data["terms"].items() if v is not None}
    return data["participant_id"], data["kind"], terms


def _created(request_row, token: str):
    """201 with the new link's entry and its address; never stored, never cached."""
    ctx = api_ctx()
    entry = signing_service.link_entry(ctx, request_row)
    url = public_base_url(current_app.config) + url_for("sign_link.page", token=token)
    resp = jsonify(dump(schemas.SigningLinkCreatedOut, {**entry, "url": url}))
    resp.status_code = 201  # never cached: web.headers marks every API answer no-store
    return resp


def _link_id(link_id: int) -> int:
    if link_id > 2**31 - 1:
        raise ApiError(404, "not_found", M("signing.no_link", id=link_id, ref="-"))
    return link_id


@bp.post("/cases/<reference>/signing-links")
def create_signing_link(reference: str):
    """Create a personal signing link; the answer carries its address, once."""
    pid, kind, terms = _selection(load(schemas.SigningRequestSchema, json_body()))
    link, token = signing_service.create_signing_link(api_ctx(), reference, pid, kind, terms)
    return _created(link, token)


@bp.get("/cases/<reference>/signing-links")
def list_signing_links(reference: str):
    """The case's signing links and tablet sessions with their status; never an address."""
    items = signing_service.link_register(api_ctx(), reference)
    return jsonify(dump(schemas.SigningLinksOut, {"items": items}))


@bp.post("/cases/<reference>/signing-links/<int:link_id>/resend")
def resend_signing_link(reference: str, link_id: int):
    """Issue a fresh link for the same participant, document and terms and withdraw the
    old one (one transaction); the answer carries the new address, once."""
    link, token = signing_service.resend_signing_link(api_ctx(), reference, _link_id(link_id))
    return _created(link, token)


@bp.delete("/cases/<reference>/signing-links/<int:link_id>")
def revoke_signing_link(reference: str, link_id: int):
    """Withdraw a signing link (or tablet session) that has not been used."""
    ctx = api_ctx()
    link = signing_service.revoke_signing_link(ctx, reference, _link_id(link_id))
    return jsonify(dump(schemas.SigningLinkOut, signing_service.link_entry(ctx, link)))


@bp.post("/cases/<reference>/tablet-sessions")
def create_tablet_session(reference: str):
    """Open a tablet session: a short-lived single-use address for the office tablet."""
    data = load(schemas.TabletSessionSchema, json_body())
    pid, kind, terms = _selection(data)
    checked = data["identity_document"]
    identity = f"{ID_TYPE_RECORDED[checked['type']]} {checked['number']}"
    link, token = signing_service.create_tablet_session(api_ctx(), reference, pid, kind, terms,
                                                        identity)
    return _created(link, token)


@bp.get("/cases/<reference>/documents")
def list_documents(reference: str):
    """The case's signed documents, each with its download address."""
    items = case_views.document_register(api_ctx(), reference)
    for item in items:
        item["download"] = url_for("api_signing.download_document", reference=reference,
                                   document_id=item["id"])
    return jsonify(dump(schemas.DocumentListOut, {"items": items}))


@bp.get("/cases/<reference>/documents/<int:document_id>")
def download_document(reference: str, document_id: int):
    """A signed PDF of the case: an attachment, never cached, recorded in the access log."""
    if document_id > 2**31 - 1:
        raise ApiError(404, "not_found", M("case.no_document", id=document_id, ref=reference))
    doc = case_views.document_for_download(api_ctx(), reference, document_id)
    return pdf_attachment(doc.pdf, case_views.document_filename(reference, doc), doc.sha256)


def _verdict(result) -> dict:
    doc = result.document
    evidence = result.evidence if isinstance(result.evidence, dict) else None
    return {"valid": result.valid, "reasons": list(result.reasons), "sha256": result.sha256,
            "registered": doc is not None,
            "document": ({k: v for k, v in doc.items() if k != "case_id"} if doc else None),
            "sealed_by": result.sealed_by, "sealed_at": result.sealed_at,
            "stopped": result.stopped, "evidence": evidence}


@bp.post("/verifications")
def verify_pdf():
    """Upload a PDF (multipart field ``file``) for the verdict of ``/verify`` as JSON:
    valid or exactly why not, what is signed, by whom, the register's entry, the evidence.
    Never a 500 on a hostile file: it is answered ``valid: false``."""
    wait = ratelimit.hit("VERIFY_RATE", "verify")
    if wait:
        resp = error_response(429, "too_many_requests", str(M("verify.rate")))
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "api.send_pdf")
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(422, "invalid", "error.invalid_fields",
                       {"file": [M("evidence.choose_file")]})
    max_bytes = int(current_app.config["VERIFY_MAX_BYTES"])
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        too_large = M("evidence.too_large", max=max(1, max_bytes // (1024 * 1024)))
        raise ApiError(413, "too_large", too_large, {"file": [too_large]})
    if not data:
        raise ApiError(422, "invalid", "error.invalid_fields", {"file": [M("evidence.empty")]})
    try:
        result = check_upload(data, "api")
    except verifier.Busy:
        return busy_response()
    return jsonify(dump(schemas.VerificationOut, _verdict(result)))
