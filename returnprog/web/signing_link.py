"""The personal signing link, public (blueprint ``sign_link``, no sign-in).

``/s/<token>`` shows the document in the signer's language and takes a drawn signature or
a typed full name.

Limits, shared by every worker (:mod:`.ratelimit`): the token is looked up first (one
indexed query on its hash). A link that is not usable (unknown, used, expired, withdrawn)
counts against the client's address, and after ``SIGNING_FAILURE_LIMIT`` of those the
address gets 429 for every further unusable link — so guessing tokens gets nowhere. A
valid link is never refused because of that penalty (someone guessing behind the same
address or proxy cannot lock a participant out); it has its own limit per link,
``SIGNING_TOKEN_LIMIT`` requests per window, whoever sends them.
"""
from __future__ import annotations

import json
import logging

from flask import Blueprint, Flask, redirect, render_template, request, url_for

from .. import documents
from ..glossary import N_
from ..models import Case, Participant
from ..services import Conflict, Invalid
from ..services import signing as signing_service
from . import ratelimit, redaction
from .headers import PUBLIC_CSP, secure_headers
from .sessions import service_context
from .signing_common import (SIGNING_FAILED, flat_errors, kept, multilingual,
                             oversized_signature, page_texts, participant_gettext,
                             participant_language, preview, signature_errors, signature_form,
                             too_many)

log = logging.getLogger(__name__)

bp = Blueprint("sign_link", __name__)
bp.after_request(secure_headers(PUBLIC_CSP))


# Why a link cannot be used -> the sentence saying it (in every participant language).
REFUSED_TEXTS = {
    "invalid": N_("This signing link is not valid. Check that you opened the whole link."),
    "used": N_("This signing link has already been used: the document is signed."),
    "revoked": N_("Your counsellor has withdrawn this signing link."),
    "expired": N_("This signing link has expired."),
}


def _refused(c, exc: signing_service.LinkRefused):
    # The limiter writes on its own connection: end this request's transaction first.
    c.session.rollback()
    wait = ratelimit.hit("SIGNING_FAILURE", "link-fail")
    if wait:
        return too_many(wait)
    reason = getattr(exc, "reason", "invalid")
    return render_template("signing/refused.html", reason=reason,
                           refused_text=REFUSED_TEXTS.get(reason, REFUSED_TEXTS["invalid"]),
                           **multilingual()), exc.status


def _spend_link_request(c, link) -> float:
    """Count a request on a valid link against its own limit (seconds to wait, else 0)."""
    # Only read so far (no write lock held), so the limiter's own connection can write.
    return ratelimit.hit("SIGNING_TOKEN", "link", key=link.token_hash[:32])


def _link_page(c, link, status: int = 200, errors: dict | None = None, values=None):
    case = c.session.get(Case, link.case_id)
    person = c.session.get(Participant, link.participant_id)
    lang = participant_language(person.language)
    texts = page_texts(lang)
    terms = json.loads(link.terms or "{}")
    try:
        terms = signing_service.validate_terms(c, case, link.kind, terms)
        page_preview = preview(c, case, person, link.kind, terms, lang, channel="link")
    except (Invalid, Conflict, documents.DocumentDataError):
        c.session.rollback()
        return render_template("signing/not_signable.html", **texts), 409
    return render_template("signing/link.html", **texts, person=person,
                           reference=case.reference, kind=link.kind, preview=page_preview,
                           errors=errors or {}, summary=flat_errors(errors or {}),
                           values=values or {}), status


@bp.get("/s/<token>")
def page(token: str):
    """The signer's page: the document in their language, consent, signature."""
    c = service_context(None)
    try:
        link = signing_service.open_signing_link(c, token)
    except signing_service.LinkRefused as exc:
        return _refused(c, exc)
    wait = _spend_link_request(c, link)
    if wait:
        return too_many(wait)
    signing_service.record_link_opened(c, link)
    return _link_page(c, link)


@bp.post("/s/<token>")
def sign(token: str):
    """Sign through the link (single use: the link is spent with the signature). The link
    is opened once, here, and the signature checked once, by the signing service."""
    c = service_context(None)
    try:
        link = signing_service.open_signing_link(c, token)
    except signing_service.LinkRefused as exc:
        return _refused(c, exc)
    wait = _spend_link_request(c, link)
    if wait:
        return too_many(wait)
    person = c.session.get(Participant, link.participant_id)
    lang = participant_language(person.language)
    _ = participant_gettext(lang)
    errors = oversized_signature(request.form, _)
    if errors:
        return _link_page(c, link, 413, errors, kept(request.form, errors))
    kind = link.kind
    try:
        signing_service.sign_with_link(c, token, link=link, **signature_form(request.form))
    except signing_service.LinkRefused as exc:
        return _refused(c, exc)
    except signing_service.SignatureInvalid as exc:
        return _link_page(c, link, 422, signature_errors(exc.problems, _, person),
                          kept(request.form, exc.problems))
    except (Invalid, Conflict):
        # The case moved on, or the agreed terms are no longer acceptable.
        c.session.rollback()
        return render_template("signing/not_signable.html", **page_texts(lang)), 409
    except documents.DocumentDataError:
        c.session.rollback()
        log.warning("a signing link's document could not be rendered", exc_info=True)
        return _link_page(c, link, 422, {None: [_(SIGNING_FAILED)]}, kept(request.form, {}))
    return redirect(url_for("sign_link.done", lang=lang, kind=kind), 303)


@bp.get("/s/done")
def done():
    """Thank you (no token, no personal data in this address)."""
    lang = participant_language(request.args.get("lang"))
    kind = request.args.get("kind")
    return render_template("signing/done.html", **page_texts(lang),
                           kind=kind if kind in signing_service.SIGNABLE_KINDS else None)



def init_app(app: Flask) -> None:
    """Register the public signing-link pages, their rate limits and the log filters that
    keep their tokens out of the logs."""
    ratelimit.init_app(app)
    redaction.install_log_filters()
    app.register_blueprint(bp)
