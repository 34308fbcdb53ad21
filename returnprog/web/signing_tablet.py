"""Signing at the office and signing links, for counsellors (blueprint ``signing``).

From the case page a counsellor picks one adult and one document and either opens the
tablet page — the participant reads the document in their language, ticks that they
understood and draws (or types) their signature, the counsellor confirms the identity
document checked — or creates a personal signing link, shown once. Links can be
withdrawn. Also serves the signature pad script.

Tablet mode is a kiosk. Opening the tablet page locks this staff session to the one case,
adult and document (``session["kiosk"]``); while it is locked every other route of the
session answers with the hand-back page, which asks the counsellor's password again, and
the participant's pages carry no staff link and no staff data. After signing the tablet
shows the participant a "done" page in their language; only the password unlocks it.
"""
from __future__ import annotations

import datetime as dt
import re

from flask import (Blueprint, Flask, abort, current_app, flash, redirect, render_template,
                   request, session, url_for)
from flask_login import current_user
from sqlalchemy import select

from .. import acknowledgements, documents, i18n, names, workflow
from .. import signature as signature_rules
from ..config import public_base_url
from ..glossary import N_
from ..identifiers import ID_TYPE_RECORDED
from ..models import Case, Document, Participant
from ..roles import SIGNATURE_TAKERS
from ..services import Conflict, Invalid, NotFound, ServiceError
from ..services import accounts, case_views
from ..services import cases as case_service
from ..services import signed_copy
from ..services import signing as signing_service
from . import ratelimit
from .headers import secure_headers
from .sessions import service_context
from .signing_common import (DECLINE_TEXTS, FORMS_DIR, SIGNING_FAILED, acknowledgement_blocks,
                             chosen_language, flat_errors, kept, language_choice, local_time,
                             oversized_signature, page_texts, participant_gettext,
                             participant_language, preview, signature_errors, signature_form,
                             signer_names, signing_panel_data, staff_gettext)
from .staff import CSP as STAFF_CSP
from .ui import CASE_ROLES, actor, ctx, normalise_date, roles

bp = Blueprint("signing", __name__, static_folder=str(FORMS_DIR / "static"),
               static_url_path="/signing/static")
bp.after_request(secure_headers(STAFF_CSP))  # staff pages share the staff UI's policy

ID_TYPES = ("passport", "id_card", "residence", "other")
ID_TYPE_LABELS = {
    "passport": N_("Passport"), "id_card": N_("Ukrainian identity card"),
    "residence": N_("Dutch residence document (W-document)"),
    "other": N_("Other identity document"),
}
# The standard reasons for an extension (``documents.ADDENDUM_REASONS``) as the counsellor
# picks them; the addendum prints each in Dutch and in the participant's language.
ADDENDUM_REASON_LABELS = {
    "travel_documents": N_("Travel documents not ready in time"),
    "transport": N_("Journey could not be arranged in time (e.g. cancelled flight)"),
    "illness": N_("Illness or medical treatment in the household"),
    "family": N_("Serious family circumstances"),
    "safety": N_("Security situation at the destination"),
    "other": N_("Another reason (explain below)"),
}
LINK_STATUS_LABELS = {"open": N_("open"), "used": N_("signed"), "revoked": N_("withdrawn"),
                      "expired": N_("expired"), "declined": N_("declined")}
# How the identity document is written into the signed document (Dutch, its first language).
_ID_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,29}$")


def _selection(form) -> tuple[dict, dict]:
    """Participant, document kind and terms chosen by the counsellor."""
    S = staff_gettext()
    errors: dict[str, list[str]] = {}
    raw_pid = form.get("participant_id", "").strip()
    pid = int(raw_pid) if raw_pid.isascii() and raw_pid.isdigit() and len(raw_pid) < 10 else None
    if pid is None:
        errors["participant_id"] = [S("Choose the adult who signs.")]
    kind = form.get("kind", "").strip()
    if kind not in signing_service.SIGNABLE_KINDS:
        errors["kind"] = [S("Choose a document that can be signed now.")]
        kind = None
    terms: dict = {}
    if kind in (workflow.DEPARTURE_AGREEMENT, workflow.ADDENDUM):
        raw = normalise_date(form.get("departure_deadline", "").strip())
        try:
            terms["departure_deadline"] = dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            errors["departure_deadline"] = [
                S("Enter the departure deadline as a date (dd-mm-yyyy).")]
    if kind == workflow.ADDENDUM:
        terms["reason"] = form.get("reason", "").strip()
        code = form.get("reason_code", "").strip()
        if code:
            terms["reason_code"] = code
    return {"participant_id": pid, "kind": kind, "terms": terms}, errors


def _service_errors(exc: ServiceError) -> dict:
    """A service refusal as field -> messages in the staff UI's language, rendered from
    its message codes. The one place these pages turn a ServiceError into words."""
    out: dict[str, list[str]] = {}
    details = exc.details
    if isinstance(details, dict):
        for field, messages in details.items():
            for m in messages if isinstance(messages, list) else [messages]:
                out.setdefault(field, []).append(i18n.render_message(m))
    elif details:
        for item in details:
            message = item.get("message", "") if isinstance(item, dict) else str(item)
            out.setdefault(None, []).append(i18n.render_message(message))
    out.setdefault(None, []).insert(0, i18n.render_message(exc))
    return out


def _counsellor_case(reference: str):
    """The case if the reader may see it (else 404) and is its counsellor role (else 403)."""
    c = ctx()
    case = case_service.load_case(c, reference)
    if actor().role not in SIGNATURE_TAKERS:
        abort(403)
    return c, case


def _choices(c, reference: str) -> dict:
    """Who can sign what now, and the case's signing links."""
    info = case_views.outlook(c, reference)
    links = signing_service.signing_links(c, reference)
    names = {a["participant_id"]: a["name"] for a in info["signing"]}
    missing = {ln["participant_id"] for ln in links} - set(names)
    people = [{"id": p.id, "given_names_latin": p.given_names_latin,
               "family_name_latin": p.family_name_latin}
              for p in c.session.execute(select(Participant).where(
                  Participant.id.in_(missing))).scalars()] if missing else []
    return signing_panel_data(info, links, people)


def _choose_page(reference: str, status: int = 200, errors: dict | None = None, values=None):
    c = ctx()
    context = _choices(c, reference)
    return render_template("signing/choose.html", reference=reference, S=staff_gettext(),
                           errors=errors or {}, summary=flat_errors(errors or {}),
                           values=values or {}, **context), status


@bp.get("/cases/<reference>/signatures")
@roles(*CASE_ROLES)
def choose(reference: str):
    """Take a signature on the tablet or create a signing link; the case's links."""
    _counsellor_case(reference)
    return _choose_page(reference)


def _tablet_page(c, case: Case, person: Participant, selection: dict, status: int = 200,
                 errors: dict | None = None, values=None, lang: str | None = None):
    lang = chosen_language(person, lang)
    page_preview = preview(c, case, person, selection["kind"], selection["terms"], lang,
                           channel="tablet")
    return render_template(
        "signing/tablet.html", reference=case.reference, person=person,
        **page_texts(lang), S=staff_gettext(), preview=page_preview, selection=selection,
        acks=acknowledgement_blocks(c, case, person, selection["kind"], selection["terms"],
                                    lang),
        signer_names=signer_names(person),
        languages=language_choice(lang, lambda code: url_for("signing.kiosk", lang=code)),
        errors=errors or {}, summary=flat_errors(errors or {}), values=values or {},
        id_types=ID_TYPES, id_type_labels=ID_TYPE_LABELS), status


# --- the kiosk lock ------------------------------------------------------------------------------

KIOSK = "kiosk"
# What a locked session may still reach: the tablet page, its signing, the participant's
# done page, the hand-back page, and public files and pages that show no staff data.
_KIOSK_ENDPOINTS = frozenset({"signing.kiosk", "signing.tablet_sign", "signing.kiosk_done",
                              "signing.kiosk_hand_back", "signing.static", "static"})
_KIOSK_BLUEPRINTS = frozenset({"sign_link", "verify"})


def _lock(reference: str, selection: dict, lang: str) -> None:
    """Lock this staff session to the tablet for one case, adult and document."""
    session[KIOSK] = {"reference": reference, "participant_id": selection["participant_id"],
                      "kind": selection["kind"], "terms": selection["terms"], "lang": lang,
                      "signed": False}


def kiosk_lock() -> dict | None:
    """The tablet lock of this session, if any."""
    lock = session.get(KIOSK)
    return lock if isinstance(lock, dict) else None


def _matches(lock: dict, reference: str, selection: dict) -> bool:
    return (lock["reference"] == reference
            and lock["participant_id"] == selection["participant_id"]
            and lock["kind"] == selection["kind"])


@bp.before_app_request
def _kiosk_guard():
    """While the session is locked to the tablet, every staff route answers with the
    hand-back page: nothing of the staff side is reachable without the password."""
    lock = kiosk_lock()
    if lock is None or not current_user.is_authenticated:
        return None
    endpoint = request.endpoint or ""
    if endpoint in _KIOSK_ENDPOINTS or endpoint.split(".")[0] in _KIOSK_BLUEPRINTS:
        if endpoint == "signing.tablet_sign" and (
                request.view_args or {}).get("reference") != lock["reference"]:
            return _hand_back_page(lock, 403)
        return None
    return _hand_back_page(lock, 403)


def _hand_back_page(lock: dict, status: int, errors: dict | None = None):
    lang = participant_language(lock.get("lang"))
    return render_template("signing/hand_back.html", **page_texts(lang), S=staff_gettext(),
                           errors=errors or {}, summary=flat_errors(errors or {})), status


@bp.get("/tablet")
@roles(*CASE_ROLES)
def kiosk():
    """The tablet page of the locked session again, e.g. in another language (``?lang=``)."""
    lock = kiosk_lock()
    if lock is None or lock.get("signed"):
        abort(404)
    c, case = _counsellor_case(lock["reference"])
    selection = {"participant_id": lock["participant_id"], "kind": lock["kind"],
                 "terms": lock["terms"]}
    try:
        person = signing_service._signer(c, case, selection["participant_id"],
                                         selection["kind"])
        lang = chosen_language(person, request.args.get("lang"))
        page = _tablet_page(c, case, person, selection, lang=lang)
    except (Invalid, Conflict, documents.DocumentDataError):
        # The case moved on meanwhile: nothing to sign here, the counsellor takes over.
        c.session.rollback()
        return _hand_back_page(lock, 409)
    session[KIOSK] = {**lock, "lang": lang}
    return page


@bp.get("/tablet/done")
@roles(*CASE_ROLES)
def kiosk_done():
    """The participant's "done" page after signing on the tablet, in their language."""
    lock = kiosk_lock()
    if lock is None or not lock.get("signed"):
        abort(404)
    lang = participant_language(lock.get("lang"))
    return render_template("signing/done.html", **page_texts(lang), kind=lock["kind"],
                           tablet=True, S=staff_gettext())


@bp.route("/tablet/hand-back", methods=["GET", "POST"])
@roles(*CASE_ROLES)
def kiosk_hand_back():
    """The counsellor takes the tablet back: their password unlocks the session."""
    lock = kiosk_lock()
    if lock is None:
        return redirect(url_for("pages.dashboard"), 303)
    if request.method == "GET":
        return _hand_back_page(lock, 200)
    S = staff_gettext()
    password = request.form.get("password", "")
    if not password:
        return _hand_back_page(lock, 422, {"password": [S("Enter your password.")]})
    try:
        accounts.authenticate(service_context(None), current_user.user.email, password[:200],
                              throttle=ratelimit.sign_in_throttle())
    except accounts.SignInThrottled as exc:
        return _hand_back_page(lock, 429, {"password": [exc.message]})
    except accounts.SignInRefused:
        return _hand_back_page(lock, 401, {"password": [S("The password is not correct.")]})
    session.pop(KIOSK, None)
    if lock.get("signed"):
        flash(S("The document was signed. The tablet is back in your hands."), "success")
        if lock.get("document_id"):
            return redirect(url_for("signing.copy_offer", reference=lock["reference"],
                                    document_id=lock["document_id"]), 303)
        return redirect(url_for("pages.case_page", reference=lock["reference"]) + "#docs-title",
                        303)
    return redirect(url_for("signing.choose", reference=lock["reference"]), 303)


def _selected(c, case: Case, form) -> tuple[dict, Participant | None, dict, int]:
    """The counsellor's selection checked against the case: an adult of this case, a
    document signable now, acceptable terms. Returns it with the errors and their status."""
    selection, errors = _selection(form)
    person, status = None, 422
    if not errors:
        try:
            person = signing_service._signer(c, case, selection["participant_id"],
                                             selection["kind"])
            selection["terms"] = signing_service.validate_terms(c, case, selection["kind"],
                                                                selection["terms"])
        except (Invalid, Conflict) as exc:
            c.session.rollback()
            errors, status, person = _service_errors(exc), exc.status, None
    return selection, person, errors, status


@bp.post("/cases/<reference>/tablet")
@roles(*CASE_ROLES)
def tablet(reference: str):
    """The tablet page for the adult and document chosen on the case page."""
    c, case = _counsellor_case(reference)
    selection, person, errors, status = _selected(c, case, request.form)
    if errors:
        return _choose_page(reference, status, errors, request.form)
    try:
        page = _tablet_page(c, case, person, selection)
    except documents.DocumentDataError as exc:
        S = staff_gettext()
        return _choose_page(reference, 422, {None: [S(
            "The document could not be drawn up: %(message)s", message=str(exc))]},
                            request.form)
    _lock(reference, selection, participant_language(person.language))
    return page


@bp.post("/cases/<reference>/tablet/sign")
@roles(*CASE_ROLES)
def tablet_sign(reference: str):
    """The participant's signature and the counsellor's identity check: sign and seal."""
    c, case = _counsellor_case(reference)
    selection, person, errors, status = _selected(c, case, request.form)
    lock = kiosk_lock()
    if lock is not None and (lock.get("signed") or not _matches(lock, reference, selection)):
        # The tablet is locked to another signature (or has signed): no staff page here.
        return _hand_back_page(lock, 403)
    if errors:
        return _choose_page(reference, status, errors, request.form)
    lang = chosen_language(person, request.form.get("lang"))
    _, S = participant_gettext(lang), staff_gettext()
    given = signature_form(request.form)
    errors = oversized_signature(request.form, _)
    if errors:
        return _tablet_page(c, case, person, selection, 413, errors, kept(request.form, errors),
                            lang)
    id_type = request.form.get("id_type", "")
    id_number = request.form.get("id_number", "").strip()
    if id_type not in ID_TYPES:
        errors["id_type"] = [S("Choose the kind of identity document you checked.")]
    if not _ID_NUMBER.match(id_number):
        errors["id_number"] = [S("Enter the number of the identity document (at most 30 letters "
                                 "and digits).")]
    if request.form.get("id_confirmed") not in ("yes", "on", "1", "true"):
        errors["id_confirmed"] = [S("Confirm that you checked the identity document.")]
    if errors:
        # Nothing is signed, so the signature is checked here, to name every problem at once.
        plain = {k: v for k, v in given.items() if k != "acknowledged"}
        _checked, problems = signature_rules.problems(
            **plain, registered=names.registered_forms(person))
        problems = {**acknowledgements.missing(selection["kind"], given["acknowledged"]),
                    **problems}
        return _tablet_page(c, case, person, selection, 422,
                            {**signature_errors(problems, _, person), **errors},
                            kept(request.form, problems), lang)
    try:
        doc = signing_service.sign_document(
            c, reference, person.id, selection["kind"], selection["terms"], **given,
            channel="tablet", identity_document=f"{ID_TYPE_RECORDED[id_type]} {id_number}")
    except NotFound:
        raise
    except signing_service.SignatureInvalid as exc:
        return _tablet_page(c, case, person, selection, 422,
                            signature_errors(exc.problems, _, person),
                            kept(request.form, exc.problems), lang)
    except (ServiceError, documents.DocumentDataError) as exc:
        c.session.rollback()
        problems = (_service_errors(exc) if isinstance(exc, ServiceError)
                    else {None: [_(SIGNING_FAILED)]})
        status = exc.status if isinstance(exc, ServiceError) else 422
        return _tablet_page(c, case, person, selection, status, problems,
                            kept(request.form, {}), lang)
    # The tablet stays locked, now on the participant's done page, until handed back; then
    # the counsellor is offered the signer's copy (by e-mail, or printed).
    _lock(reference, selection, lang)
    session[KIOSK] = {**session[KIOSK], "signed": True, "document_id": doc.id}
    return redirect(url_for("signing.kiosk_done"), 303)


def _copy_offer_page(c, reference: str, document_id: int, status: int = 200,
                     errors: dict | None = None):
    case = case_service.load_case(c, reference)
    doc = c.session.get(Document, document_id)
    if doc is None or doc.case_id != case.id or doc.participant_id is None:
        abort(404)
    person = c.session.get(Participant, doc.participant_id)
    c.session.rollback()
    return render_template("signing/copy_offer.html", reference=reference, S=staff_gettext(),
                           doc=doc, person=person, has_email=bool((person.email or "").strip()),
                           errors=errors or {}, summary=flat_errors(errors or {})), status


@bp.get("/cases/<reference>/documents/<int:document_id>/copy")
@roles(*CASE_ROLES)
def copy_offer(reference: str, document_id: int):
    """After a signature on the tablet: e-mail the sealed copy to the signer, or print it."""
    c, _case = _counsellor_case(reference)
    return _copy_offer_page(c, reference, document_id)


@bp.post("/cases/<reference>/documents/<int:document_id>/copy/email")
@roles(*CASE_ROLES)
def email_copy(reference: str, document_id: int):
    """Queue the sealed copy to the signer's registered e-mail address."""
    c, _case = _counsellor_case(reference)
    try:
        queued = signed_copy.email_copy(c, reference, document_id)
    except NotFound:
        raise
    except (Invalid, Conflict) as exc:
        c.session.rollback()
        return _copy_offer_page(c, reference, document_id, exc.status, _service_errors(exc))
    S = staff_gettext()
    flash(S("The signed copy will be e-mailed to the signer.") if queued
          else S("The signed copy was already queued for the signer."), "success")
    return redirect(url_for("signing.copy_offer", reference=reference,
                            document_id=document_id), 303)


@bp.post("/cases/<reference>/signing-links")
@roles(*CASE_ROLES)
def create_link(reference: str):
    """Create a personal signing link; its address is shown on this page only."""
    c, case = _counsellor_case(reference)
    selection, errors = _selection(request.form)
    if errors:
        return _choose_page(reference, 422, errors, request.form)
    try:
        link, token = signing_service.create_signing_link(
            c, reference, selection["participant_id"], selection["kind"], selection["terms"])
    except NotFound:
        raise
    except ServiceError as exc:
        c.session.rollback()
        return _choose_page(reference, exc.status, _service_errors(exc), request.form)
    person = c.session.get(Participant, link.participant_id)
    base = public_base_url(current_app.config)
    address = base + url_for("sign_link.page", token=token)
    return render_template("signing/link_created.html", reference=reference, S=staff_gettext(),
                           address=address, name=person.full_name, kind=link.kind,
                           until=local_time(link.expires_at))


@bp.post("/cases/<reference>/signing-links/revoke")
@roles(*CASE_ROLES)
def revoke_link(reference: str):
    """Withdraw a signing link that has not been used."""
    c, _case = _counsellor_case(reference)
    raw = request.form.get("link_id", "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10):
        return _choose_page(reference, 422, {None: [i18n.render_code(
            "error.invalid_fields")]})
    try:
        signing_service.revoke_signing_link(c, reference, int(raw))
    except Conflict as exc:
        c.session.rollback()
        return _choose_page(reference, 409, _service_errors(exc))
    flash(staff_gettext()("The signing link was withdrawn."), "success")
    return redirect(url_for("signing.choose", reference=reference), 303)


@bp.app_context_processor
def _panel_helpers():
    """For the case page's signing panel (``forms/signing/_case_panel.html``)."""

    def signing_panel(reference: str, prepared: dict | None = None) -> dict | None:
        if actor().role not in SIGNATURE_TAKERS:
            return None
        # The case page gathers the panel with its one read; other pages ask here.
        return prepared if prepared is not None else _choices(ctx(), reference)

    return {"signing_panel": signing_panel, "signing_S": staff_gettext,
            "link_status_labels": LINK_STATUS_LABELS, "decline_texts": DECLINE_TEXTS,
            "addendum_reasons": [(code, ADDENDUM_REASON_LABELS[code])
                                 for code in documents.ADDENDUM_REASONS]}



def init_app(app: Flask) -> None:
    """Register the counsellors' signing pages."""
    app.register_blueprint(bp)
