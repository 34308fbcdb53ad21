"""The personal signing link, public (blueprint ``sign_link``, no sign-in).

``/s/<token>`` shows the document in the signer's language and takes a drawn signature or
a typed full name. When the policy wants a verified signer for the document kind, the page
first asks where to send a one-time code (``POST /s/<token>/code``), then for the code
(``GET /s/<token>/code``, ``POST /s/<token>/code/check``); the document opens only after
the right one (:mod:`returnprog.services.signing_codes`).

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

from flask import (Blueprint, Flask, Response, current_app, redirect, render_template,
                   request, url_for)
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .. import documents
from ..glossary import N_
from ..messages import MESSAGES
from ..models import Case, Document, Participant
from ..services import Conflict, Invalid, NotFound
from ..services import signed_copy
from .. import sms as sms_module
from ..services import signing as signing_service
from ..services import signing_codes
from . import ratelimit, redaction
from .headers import PUBLIC_CSP, secure_headers
from .sessions import service_context
from .signing_common import (DECLINE_TEXTS, SIGNING_FAILED, acknowledgement_blocks, chosen_language,
                             flat_errors, kept, language_choice, multilingual,
                             oversized_signature, page_texts, participant_gettext,
                             participant_language, preview, signature_errors, signature_form,
                             signer_names, too_many)

log = logging.getLogger(__name__)

bp = Blueprint("sign_link", __name__)
bp.after_request(secure_headers(PUBLIC_CSP))


# Why a link cannot be used -> the sentence saying it (in every participant language).
REFUSED_TEXTS = {
    "invalid": N_("This signing link is not valid. Check that you opened the whole link."),
    "used": N_("This signing link has already been used: the document is signed."),
    "revoked": N_("Your counsellor has withdrawn this signing link."),
    "expired": N_("This signing link has expired."),
    "declined": N_("You declined to sign through this link."),
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


def _link_page(c, link, status: int = 200, errors: dict | None = None, values=None,
               lang: str | None = None, token: str = ""):
    case = c.session.get(Case, link.case_id)
    person = c.session.get(Participant, link.participant_id)
    lang = chosen_language(person, lang)
    texts = page_texts(lang)
    terms = json.loads(link.terms or "{}")
    try:
        terms = signing_service.validate_terms(c, case, link.kind, terms)
        # A tablet session's receipt is signed where the cash is handed over: the office.
        page_preview = preview(c, case, person, link.kind, terms, lang, channel=link.channel)
        acks = acknowledgement_blocks(c, case, person, link.kind, terms, lang)
    except (Invalid, Conflict, documents.DocumentDataError):
        c.session.rollback()
        return render_template("signing/not_signable.html", **texts), 409
    # The same link in another language (the token is in the address already, and the
    # log filters hide it; the language is no personal data).
    languages = language_choice(lang, lambda code: url_for("sign_link.page", token=token,
                                                           lang=code))
    return render_template("signing/link.html", **texts, person=person,
                           signer_names=signer_names(person), acks=acks, languages=languages,
                           reference=case.reference, kind=link.kind, preview=page_preview,
                           errors=errors or {}, summary=flat_errors(errors or {}),
                           values=values or {}), status


# --- signer verification (one-time code) ------------------------------------------------------
#
# A verified code is carried by a cookie signed with the app's secret: the link's id and the
# code's id, valid VERIFIED_MINUTES. The signing service checks the code row itself (this
# link's, spent lately), so the cookie of another link, an old one or a forged one opens
# nothing; the cookie holds no personal data and no code.

VERIFIED_COOKIE = "returnprog_signer"
_COOKIE_SALT = "signing-code-verified"

# Why a code does not open the document -> the sentence saying it to the participant.
CODE_TEXTS = {
    "wrong": N_("This code is not right. Check the digits and try again."),
    "locked": N_("You entered a wrong code too many times, so this code no longer works. "
                 "Ask for a new code."),
    "expired": N_("This code has expired. Ask for a new code."),
    "none": N_("There is no valid code for this link. Ask for a code first."),
    "format": N_("Enter the 6 digits of the code."),
}
CHANNEL_TEXTS = {
    "channel": N_("Choose where we should send the code."),
    "undeliverable": N_("The code could not be sent. Try the other way, or try again later."),
}


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_COOKIE_SALT)


def verified_code_id(link) -> int | None:
    """The code id the signer's cookie names for ``link`` (None when absent, expired,
    forged or for another link)."""
    raw = request.cookies.get(VERIFIED_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw, max_age=signing_codes.VERIFIED_MINUTES * 60)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("l") != link.id:
        return None
    code_id = data.get("c")
    return code_id if isinstance(code_id, int) else None


def _verified(c, link) -> bool:
    return signing_codes.verification(c, link, verified_code_id(link)) is not None


def _code_page(c, link, template: str, status: int = 200, errors: dict | None = None, **extra):
    person = c.session.get(Participant, link.participant_id)
    lang = participant_language(person.language)
    token = request.view_args["token"]
    return render_template(
        f"signing/{template}.html", **page_texts(lang), kind=link.kind,
        errors=errors or {}, summary=flat_errors(errors or {}),
        channels=signing_codes.contacts(person), minutes=signing_codes.CODE_MINUTES,
        send_url=url_for("sign_link.send_code", token=token),
        check_url=url_for("sign_link.check_code", token=token),
        again_url=url_for("sign_link.page", token=token), **extra), status


def _not_signable(c, link):
    """The 409 page when the link's document can no longer be signed (the case moved on):
    said before any code is asked for or sent; else None."""
    case = c.session.get(Case, link.case_id)
    try:
        signing_service.validate_terms(c, case, link.kind, json.loads(link.terms or "{}"))
    except (Invalid, Conflict):
        c.session.rollback()
        person = c.session.get(Participant, link.participant_id)
        return render_template("signing/not_signable.html",
                               **page_texts(participant_language(person.language))), 409
    return None


def _opened(token: str):
    """The context and the usable link of ``token`` with this request counted against
    its limit; else the response refusing it (a refusal or the 429 page)."""
    c = service_context(None)
    try:
        link = signing_service.open_signing_link(c, token)
    except signing_service.LinkRefused as exc:
        return c, None, _refused(c, exc)
    wait = _spend_link_request(c, link)
    if wait:
        return c, None, too_many(wait)
    return c, link, None


@bp.post("/s/<token>/code")
def send_code(token: str):
    """Send a one-time code on the channel the participant chose (at most
    SIGNING_CODE_SEND_LIMIT per window and link), then ask for it."""
    c, link, refused = _opened(token)
    if refused is not None:
        return refused
    if not signing_codes.required(c, link):
        return redirect(url_for("sign_link.page", token=token), 303)
    unsignable = _not_signable(c, link)
    if unsignable is not None:
        return unsignable
    person = c.session.get(Participant, link.participant_id)
    _ = participant_gettext(participant_language(person.language))
    channel = request.form.get("channel", "")
    if channel not in dict(signing_codes.contacts(person)):
        unknown = CHANNEL_TEXTS["channel"]
        return _code_page(c, link, "code_choose", 422, {"channel": [_(unknown)]})
    c.session.rollback()  # the limiter writes on its own connection
    wait = ratelimit.hit("SIGNING_CODE_SEND", "link-code", key=link.token_hash[:32])
    if wait:
        return too_many(wait)
    sender = (sms_module.sender_from_config(current_app.config, current_app.instance_path)
              if channel == "sms" else None)
    try:
        signing_codes.send_code(c, link, channel, secret=current_app.config["SECRET_KEY"],
                                sms=sender)
    except (Invalid, Conflict):
        log.warning("a signing code could not be sent on channel %s", channel)
        failed = CHANNEL_TEXTS["undeliverable"]
        return _code_page(c, link, "code_choose", 503, {"channel": [_(failed)]})
    return redirect(url_for("sign_link.enter_code", token=token), 303)


@bp.get("/s/<token>/code")
def enter_code(token: str):
    """Where the participant enters the code sent to them ("we sent a code to o***@…")."""
    c, link, refused = _opened(token)
    if refused is not None:
        return refused
    latest = signing_codes.latest_code(c, link)
    if latest is None or not signing_codes.required(c, link):
        return redirect(url_for("sign_link.page", token=token), 303)
    person = c.session.get(Participant, link.participant_id)
    return _code_page(c, link, "code_enter", channel=latest.channel,
                      sent_to=dict(signing_codes.contacts(person)).get(latest.channel),
                      locked=latest.attempts >= signing_codes.MAX_TRIES)


@bp.post("/s/<token>/code/check")
def check_code(token: str):
    """Check the code; the right one opens the document (a cookie for this link)."""
    c, link, refused = _opened(token)
    if refused is not None:
        return refused
    person = c.session.get(Participant, link.participant_id)
    _ = participant_gettext(participant_language(person.language))
    try:
        row = signing_codes.check_code(c, link, request.form.get("code", ""),
                                       secret=current_app.config["SECRET_KEY"])
    except signing_codes.CodeRefused as exc:
        text = _(CODE_TEXTS[exc.reason])
        if exc.reason == "wrong":
            text += " " + _.ngettext("You have %(num)d more try.", "You have %(num)d more tries.",
                                     exc.tries_left)
        latest = signing_codes.latest_code(c, link)
        channel = latest.channel if latest is not None else None
        return _code_page(c, link, "code_enter", 422, {"code": [text]}, channel=channel,
                          sent_to=dict(signing_codes.contacts(person)).get(channel),
                          locked=exc.reason in ("locked", "expired", "none"))
    response = redirect(url_for("sign_link.page", token=token), 303)
    response.set_cookie(VERIFIED_COOKIE, _serializer().dumps({"l": link.id, "c": row.id}),
                        max_age=signing_codes.VERIFIED_MINUTES * 60, path="/s/",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")
                                    or request.is_secure),
                        httponly=True, samesite="Strict")
    return response


@bp.get("/s/<token>")
def page(token: str):
    """The signer's page: the document in their language, consent, signature — after the
    one-time code when the policy wants one for this document."""
    c, link, refused = _opened(token)
    if refused is not None:
        return refused
    # The first opening, for the evidence certificate (a conditional update, set once).
    signing_service.record_link_opened(c, link)
    if not _verified(c, link):
        return _not_signable(c, link) or _code_page(c, link, "code_choose")
    return _link_page(c, link, lang=request.args.get("lang"), token=token)


@bp.post("/s/<token>")
def sign(token: str):
    """Sign through the link (single use: the link is spent with the signature). The link
    is opened once, here, and the signature checked once, by the signing service."""
    c, link, refused = _opened(token)
    if refused is not None:
        return refused
    if not _verified(c, link):
        # Nothing of the document is shown before the code (the service checks it again).
        return _not_signable(c, link) or _code_page(c, link, "code_choose", 403)
    person = c.session.get(Participant, link.participant_id)
    lang = chosen_language(person, request.form.get("lang"))
    _ = participant_gettext(lang)
    errors = oversized_signature(request.form, _)
    if errors:
        return _link_page(c, link, 413, errors, kept(request.form, errors), lang, token)
    kind = link.kind
    try:
        signed = signing_service.sign_with_link(c, token, link=link,
                                                **signature_form(request.form),
                                                verified_code_id=verified_code_id(link))
    except signing_service.LinkRefused as exc:
        return _refused(c, exc)
    except signing_codes.VerificationRequired:
        c.session.rollback()
        return _code_page(c, link, "code_choose", 403)
    except signing_service.SignatureInvalid as exc:
        return _link_page(c, link, 422, signature_errors(exc.problems, _, person),
                          kept(request.form, exc.problems), lang, token)
    except (Invalid, Conflict):
        # The case moved on, or the agreed terms are no longer acceptable.
        c.session.rollback()
        return render_template("signing/not_signable.html", **page_texts(lang)), 409
    except documents.DocumentDataError:
        c.session.rollback()
        log.warning("a signing link's document could not be rendered", exc_info=True)
        return _link_page(c, link, 422, {None: [_(SIGNING_FAILED)]}, kept(request.form, {}),
                          lang, token)
    response = redirect(url_for("sign_link.done", lang=lang, kind=kind), 303)
    if link.channel != signing_service.TABLET_CHANNEL:
        # Not on the office tablet, which the next participant uses: their copy is e-mailed.
        _give_copy_cookie(response, doc_id=signed.id, link_id=link.id)
    return response


# --- the signer's copy ---------------------------------------------------------------------------
# The browser that signed gets a cookie holding a value signed with the app's secret key,
# naming the document and the link, limited to ``signed_copy.DOWNLOAD_WINDOW``; /s/copy
# serves the sealed PDF to that browser only. Nothing about the document or the person is
# in any address; the service checks the window again against the signing time.

COPY_COOKIE = "rp_signed_copy"
_COPY_SALT = "returnprog.signed-copy"


def _copy_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_COPY_SALT)


def _give_copy_cookie(response, *, doc_id: int, link_id: int) -> None:
    window = int(signed_copy.DOWNLOAD_WINDOW.total_seconds())
    response.set_cookie(COPY_COOKIE, _copy_serializer().dumps({"d": doc_id, "l": link_id}),
                        max_age=window, path="/s/", httponly=True, samesite="Strict",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))


def _copy_claim() -> tuple[int, int] | None:
    """(document id, link id) from this browser's copy cookie, if genuine and fresh."""
    raw = request.cookies.get(COPY_COOKIE)
    if not raw or len(raw) > 300:
        return None
    try:
        value = _copy_serializer().loads(
            raw, max_age=int(signed_copy.DOWNLOAD_WINDOW.total_seconds()))
        return int(value["d"]), int(value["l"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


@bp.get("/s/done")
def done():
    """Thank you, what happens next, and the signer's copy to download (from the browser
    that signed; no token, no personal data in this address)."""
    lang = participant_language(request.args.get("lang"))
    kind = request.args.get("kind")
    kind = kind if kind in signing_service.SIGNABLE_KINDS else None
    claim, emailed = _copy_claim(), False
    if claim is not None:
        c = service_context(None)
        doc = c.session.get(Document, claim[0])
        if doc is None:
            claim = None
        else:
            kind = doc.kind
            person = c.session.get(Participant, doc.participant_id)
            emailed = bool(person is not None and (person.email or "").strip())
        c.session.rollback()
    texts = page_texts(lang)
    return render_template("signing/done.html", **texts, kind=kind, download=claim is not None,
                           emailed=emailed, next_step=signed_copy.next_step(kind, texts["_"]),
                           minutes=int(signed_copy.DOWNLOAD_WINDOW.total_seconds() // 60))


@bp.get("/s/copy")
def copy():
    """The sealed PDF, to the browser that signed it, for a short while after signing."""
    claim = _copy_claim()
    c = service_context(None)
    try:
        if claim is None:
            raise NotFound("signing.copy_not_signed")
        doc = signed_copy.copy_for_signer(c, claim[0], claim[1])
    except NotFound:
        c.session.rollback()
        wait = ratelimit.hit("SIGNING_FAILURE", "link-fail")
        if wait:
            return too_many(wait)
        return render_template("signing/copy_gone.html", **multilingual()), 410
    case = c.session.get(Case, doc.case_id)
    response = Response(bytes(doc.pdf), mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{signed_copy.attachment_name(case.reference, doc)}"')
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- declining -----------------------------------------------------------------------------------

def _decline_page(c, link, status: int = 200, errors: dict | None = None, values=None):
    person = c.session.get(Participant, link.participant_id)
    case = c.session.get(Case, link.case_id)
    lang = participant_language(person.language)
    c.session.rollback()
    return render_template("signing/decline.html", **page_texts(lang), kind=link.kind,
                           reference=case.reference, codes=signing_service.DECLINE_CODES,
                           decline_texts=DECLINE_TEXTS,
                           max_reason=signing_service.MAX_DECLINE_REASON,
                           errors=errors or {}, summary=flat_errors(errors or {}),
                           values=values or {}), status


@bp.route("/s/<token>/decline", methods=("GET", "POST"))
def decline(token: str):
    """GET: the form to decline signing, with a reason. POST: decline (the participant
    confirms that the link is closed then); the case itself does not change."""
    c, link, refused = _opened(token)
    if refused is not None:
        return refused
    if request.method == "GET":
        return _decline_page(c, link)
    person = c.session.get(Participant, link.participant_id)
    lang = participant_language(person.language)
    _ = participant_gettext(lang)
    values = {k: request.form.get(k, "") for k in ("decline_code", "decline_reason", "confirm")}
    if values["confirm"] not in ("yes", "on", "1", "true"):
        return _decline_page(c, link, 422, {"confirm": [_(
            "Confirm that you do not want to sign through this link.")]}, values)
    try:
        signing_service.decline_signing_link(c, token, code=values["decline_code"],
                                             reason=values["decline_reason"], link=link)
    except signing_service.LinkRefused as exc:
        return _refused(c, exc)
    except Invalid as exc:
        c.session.rollback()
        errors = {field: [_(MESSAGES[m.code]) % m.params for m in messages]
                  for field, messages in exc.details.items()}
        return _decline_page(c, link, 422, errors, values)
    return redirect(url_for("sign_link.declined", lang=lang), 303)


@bp.get("/s/declined")
def declined():
    """The participant declined (no token, no personal data in this address)."""
    lang = participant_language(request.args.get("lang"))
    return render_template("signing/declined.html", **page_texts(lang))



def init_app(app: Flask) -> None:
    """Register the public signing-link pages, their rate limits and the log filters that
    keep their tokens out of the logs."""
    ratelimit.init_app(app)
    redaction.install_log_filters()
    app.register_blueprint(bp)
