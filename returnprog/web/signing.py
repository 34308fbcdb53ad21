"""Signing pages: the office tablet, personal signing links, and the public verification
of signed PDFs.

Three blueprints:

- ``signing`` (staff, counsellors): from the case page a counsellor picks one adult and
  one document and either opens the tablet page — the participant reads the document in
  their language, ticks that they understood and draws (or types) their signature, the
  counsellor confirms the identity document checked — or creates a personal signing link,
  shown once. Links can be withdrawn. Also serves the signature pad script.
- ``sign_link`` (public, no sign-in): ``/s/<token>`` shows the document in the signer's
  language and takes a drawn signature or a typed full name.
- ``verify`` (public): upload a PDF and get the answer, valid or exactly why not.

The public routes are rate-limited per client address (an in-process sliding window; each
worker process counts for itself). A client whose link attempts are refused too often is
answered 429 for a while, so guessing tokens gets nowhere. Tokens never reach a log in the
clear: a logging filter replaces them with the first characters of their SHA-256 (the
stored ``token_hash``), so an operator can still correlate. Every page here is sent with
``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``.

Participant pages speak Ukrainian, English, Russian or Dutch; staff parts speak the staff
UI's Dutch or English. Their sentences are in ``forms/signing/texts/<lang>.json``.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import io
import json
import logging
import re
import threading
import time
from collections import deque
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import (Blueprint, Flask, Response, abort, current_app, flash, redirect,
                   render_template, request, session, url_for)
from markupsafe import Markup
from PIL import Image
from sqlalchemy import select

from .. import documents, i18n, workflow
from ..models import Case, Participant
from ..services import Conflict, Invalid, NotFound, ServiceError
from ..services import case_views
from ..services import cases as case_service
from ..services import signing as signing_service
from ..services import verification as verification_service
from .sessions import db_session, seal, service_context
from .staff import CSP as STAFF_CSP
from .ui import CASE_ROLES, actor, ctx, normalise_date, roles

log = logging.getLogger(__name__)

FORMS_DIR = Path(__file__).resolve().parent.parent.parent / "forms" / "signing"

bp = Blueprint("signing", __name__, static_folder=str(FORMS_DIR / "static"),
               static_url_path="/signing/static")
link_bp = Blueprint("sign_link", __name__)
verify_bp = Blueprint("verify", __name__)

BLUEPRINTS = ("signing", "sign_link", "verify")
PARTICIPANT_LANGUAGES = ("uk", "en", "ru", "nl")
DEFAULT_PARTICIPANT_LANGUAGE = "uk"
VERIFY_LANGUAGES = ("nl", "en", "uk", "ru")

SETTINGS = {
    # Public signing pages: at most this many requests per client address per window.
    "SIGNING_RATE_LIMIT": 60,
    "SIGNING_RATE_WINDOW_SECONDS": 60,
    # Refused link attempts (unknown, used, expired, withdrawn) per client address; beyond
    # this the address gets 429 on every signing page until the window has passed.
    "SIGNING_FAILURE_LIMIT": 10,
    "SIGNING_FAILURE_WINDOW_SECONDS": 15 * 60,
    # Verification uploads per client address per window, and their size.
    "VERIFY_RATE_LIMIT": 20,
    "VERIFY_RATE_WINDOW_SECONDS": 60,
    "VERIFY_MAX_BYTES": 5 * 1024 * 1024,
    # Retired seal certificates (PEM paths) that documents sealed earlier still verify with.
    "SEAL_TRUSTED_CERT_PATHS": [],
}

# Public pages load nothing but this site's stylesheet, the signature pad and data: images.
PUBLIC_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

ID_TYPES = ("passport", "id_card", "residence", "other")
# How the identity document is written into the signed document (Dutch, its first language).
ID_TYPE_RECORDED = {"passport": "paspoort", "id_card": "Oekraïense identiteitskaart",
                    "residence": "verblijfsdocument", "other": "identiteitsbewijs"}
_ID_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,29}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PNG_PREFIX = "data:image/png;base64,"
ZONE = ZoneInfo("Europe/Amsterdam")


# --- texts --------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _table(lang: str) -> dict:
    with open(FORMS_DIR / "texts" / f"{lang}.json", encoding="utf-8") as fh:
        return json.load(fh)


class Texts:
    """The sentences of one part of these pages (``participant``, ``verify``, ``staff``) in
    one language; ``T("key", name=...)`` fills in the values. Jinja escapes the result."""

    def __init__(self, part: str, lang: str):
        self.part, self.lang = part, lang
        self._texts = _table(lang)[part]

    def __call__(self, key: str, **values) -> str:
        text = self._texts.get(key)
        if text is None:
            text = _table("en")[self.part].get(key, key)
        return text.format(**values) if values else text


def participant_language(code: str | None) -> str:
    """The language of a participant's pages: theirs if offered, else Ukrainian."""
    return code if code in PARTICIPANT_LANGUAGES else DEFAULT_PARTICIPANT_LANGUAGE


def staff_texts() -> Texts:
    """Staff sentences in the staff UI's language (Dutch or English)."""
    return Texts("staff", "en" if i18n.language() == "en" else "nl")


def _local(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(ZONE).strftime("%d-%m-%Y %H:%M")


# --- rate limiting ------------------------------------------------------------------------------

class SlidingWindowLimiter:
    """Counts events per key in a sliding time window, in this process.

    ``hit`` records an event and says whether it was within the limit; ``full`` only
    looks. Memory stays bounded: each key keeps at most ``limit`` timestamps and idle keys
    are dropped now and then.
    """

    MAX_KEYS = 50_000

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._events: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _window(self, key: str, limit: int, window: float, now: float) -> deque:
        events = self._events.get(key)
        if events is None or events.maxlen != limit:
            events = self._events[key] = deque(events or (), maxlen=limit)
        while events and events[0] <= now - window:
            events.popleft()
        return events

    def full(self, key: str, limit: int, window: float) -> float:
        """Seconds until ``key`` may act again (0 when it may now)."""
        with self._lock:
            now = self._clock()
            events = self._window(key, limit, window, now)
            return (events[0] + window - now) if len(events) >= limit else 0.0

    def hit(self, key: str, limit: int, window: float) -> float:
        """Record one event for ``key``; returns 0 if it was allowed, else the seconds to
        wait (the refused event is not counted)."""
        with self._lock:
            now = self._clock()
            if len(self._events) > self.MAX_KEYS:
                self._prune(now, window)
            events = self._window(key, limit, window, now)
            if len(events) >= limit:
                return max(events[0] + window - now, 1.0)
            events.append(now)
            return 0.0

    def _prune(self, now: float, window: float) -> None:
        for key in [k for k, ev in self._events.items() if not ev or ev[-1] <= now - window]:
            del self._events[key]


def limiter() -> SlidingWindowLimiter:
    return current_app.extensions["returnprog.signing_limiter"]


def _client() -> str:
    return request.remote_addr or "-"


def _limit(name: str) -> tuple[int, int]:
    cfg = current_app.config
    return int(cfg[f"{name}_LIMIT"]), int(cfg[f"{name}_WINDOW_SECONDS"])


def _too_many(wait: float):
    minutes = max(1, int((wait + 59) // 60))
    body = render_template("signing/too_many.html", minutes=minutes, **_multilingual())
    response = Response(body, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


def _record_refusal() -> None:
    limit, window = _limit("SIGNING_FAILURE")
    limiter().hit(f"fail:{_client()}", limit, window)


@link_bp.before_request
def _rate_limit_links():
    limit, window = _limit("SIGNING_FAILURE")
    wait = limiter().full(f"fail:{_client()}", limit, window)
    if wait:
        return _too_many(wait)
    limit, window = _limit("SIGNING_RATE")
    wait = limiter().hit(f"link:{_client()}", limit, window)
    if wait:
        return _too_many(wait)
    return None


# --- tokens out of the logs ---------------------------------------------------------------------

_TOKEN_IN_PATH = re.compile(r"(/s/)([A-Za-z0-9_-]{6,})")
_NOT_TOKENS = {"done"}


# Case searches carry names and V-numbers in the query string (``q=``): personal data
# that must not reach the access logs either.
_SEARCH_IN_QUERY = re.compile(r"([?&]q=)[^&\s\"]*")


def _needs_redaction(text: str) -> bool:
    return "/s/" in text or "q=" in text


def redact_tokens(text: str) -> str:
    """``/s/<token>`` becomes ``/s/[h:<first 12 hex of its SHA-256>]``, and a search term
    ``q=…`` becomes ``q=[redacted]``."""
    def hide(match: re.Match) -> str:
        token = match.group(2)
        if token in _NOT_TOKENS:
            return match.group(0)
        return f"{match.group(1)}[h:{hashlib.sha256(token.encode()).hexdigest()[:12]}]"
    return _SEARCH_IN_QUERY.sub(r"\1[redacted]", _TOKEN_IN_PATH.sub(hide, text))


class TokenRedactingFilter(logging.Filter):
    """A logging filter for werkzeug's and gunicorn's access logs (and the app's own):
    signing-link tokens in request lines and paths are replaced by their hash prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str) and _needs_redaction(record.msg):
                record.msg = redact_tokens(record.msg)
            args = record.args
            if isinstance(args, tuple):
                record.args = tuple(redact_tokens(a) if isinstance(a, str) and _needs_redaction(a)
                                    else a for a in args)
            elif isinstance(args, dict):  # gunicorn's access-log atoms
                for key, value in list(args.items()):
                    if isinstance(value, str) and _needs_redaction(value):
                        args[key] = redact_tokens(value)
        except Exception:  # a log line must never break a request
            pass
        return True


REDACTED_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "returnprog", "flask.app")


def install_log_filters() -> None:
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
            logger.addFilter(TokenRedactingFilter())


# --- headers --------------------------------------------------------------------------------------

def _headers(csp: str):
    def add(response: Response) -> Response:
        headers = response.headers
        headers["Cache-Control"] = "no-store"
        headers["Referrer-Policy"] = "no-referrer"
        headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
    return add


bp.after_request(_headers(STAFF_CSP))  # staff pages share the staff UI's policy
link_bp.after_request(_headers(PUBLIC_CSP))
verify_bp.after_request(_headers(PUBLIC_CSP))


# --- shared pieces -------------------------------------------------------------------------------

def _preview(c, case: Case, person: Participant, kind: str, terms: dict, lang: str) -> Markup:
    """The document as it will be signed (without the signature), as HTML for the page:
    the body of ``documents.render_html`` (autoescaped there; no URLs are loaded)."""
    data = signing_service.document_data(c, case, person, kind, terms)
    html = documents.render_html(kind, data, lang)
    match = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    body = match.group(1) if match else ""
    # The document's headings sit under the page's "The document" (h2): h1 -> h3, h2 -> h4.
    body = _HEADING.sub(lambda m: f"<{m.group(1)}h{min(int(m.group(2)) + 2, 6)}", body)
    return Markup(body)


_HEADING = re.compile(r"<(/?)h([1-6])(?=[\s>])", re.I)


def _signature_input(form, T: Texts) -> tuple[dict, dict]:
    """Consent, method, drawing and typed name from a signing form: the values for the
    signing service and the errors (field -> messages in the signer's language)."""
    errors: dict[str, list[str]] = {}
    consent = form.get("consent") in ("yes", "on", "1", "true")
    if not consent:
        errors["consent"] = [T("err_consent")]
    method = form.get("method", "")
    drawing = form.get("signature", "").strip()
    typed = form.get("typed_name", "").strip()
    if method not in ("drawn", "typed"):
        method = "drawn" if drawing else "typed"
    image = None
    if method == "drawn":
        if not _drawn_something(drawing):
            errors["signature"] = [T("err_drawn")]
        else:
            image = drawing
    else:
        if not typed:
            errors["typed_name"] = [T("err_typed")]
        elif len(typed) > 200:
            errors["typed_name"] = [T("err_typed_long")]
        elif _CONTROL.search(typed):
            errors["typed_name"] = [T("err_typed_chars")]
    values = {"consent": consent, "method": method, "typed_name": typed if method == "typed"
              else None, "image_data_uri": image}
    return values, errors


def _kept(form, signature: dict) -> dict:
    """The submitted values to show again after a refusal; the drawing only when it was a
    real one (it goes back into the page)."""
    values = {key: form.get(key, "") for key in form.keys()}
    values["signature"] = signature.get("image_data_uri") or ""
    return values


def _drawn_something(uri: str) -> bool:
    """A PNG data URI small enough, readable, and with at least one visible stroke."""
    if not uri.startswith(_PNG_PREFIX) or len(uri) > signing_service.MAX_SIGNATURE_IMAGE:
        return False
    try:
        raw = base64.b64decode(uri[len(_PNG_PREFIX):], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != "PNG" or image.width * image.height > 4_000_000:
                return False
            drawing = image.convert("RGBA")
        # Laid on white paper, is anything clearly darker than the paper?
        paper = Image.new("RGBA", drawing.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(paper, drawing).convert("L")
        return flat.point(lambda v: 255 if v < 200 else 0).getbbox() is not None
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        return False


def _flat_errors(errors: dict) -> list[tuple[str | None, str]]:
    return [(field, message) for field, messages in errors.items() for message in messages]


def _multilingual() -> dict:
    """Texts in every participant language, for pages that do not know the reader's."""
    return {"all_texts": [Texts("participant", lang) for lang in PARTICIPANT_LANGUAGES]}


def _selection(form) -> tuple[dict, dict]:
    """Participant, document kind and terms chosen by the counsellor."""
    S = staff_texts()
    errors: dict[str, list[str]] = {}
    raw_pid = form.get("participant_id", "").strip()
    pid = int(raw_pid) if raw_pid.isascii() and raw_pid.isdigit() and len(raw_pid) < 10 else None
    if pid is None:
        errors["participant_id"] = [S("err_participant")]
    kind = form.get("kind", "").strip()
    if kind not in signing_service.SIGNABLE_KINDS:
        errors["kind"] = [S("err_kind")]
        kind = None
    terms: dict = {}
    if kind in (workflow.DEPARTURE_AGREEMENT, workflow.ADDENDUM):
        raw = normalise_date(form.get("departure_deadline", "").strip())
        try:
            terms["departure_deadline"] = dt.date.fromisoformat(raw).isoformat()
        except ValueError:
            errors["departure_deadline"] = [S("err_deadline")]
    if kind == workflow.ADDENDUM:
        terms["reason"] = form.get("reason", "").strip()
    return {"participant_id": pid, "kind": kind, "terms": terms}, errors


def _service_errors(exc: ServiceError) -> dict:
    """A service refusal as field -> messages (English sentences, translated where the
    staff UI knows them)."""
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


# --- staff: choosing, the tablet, links ------------------------------------------------------------

def _counsellor_case(reference: str):
    """The case if the reader may see it (else 404) and is its counsellor role (else 403)."""
    c = ctx()
    case = case_service.load_case(c, reference)
    if actor().role != "counsellor":
        abort(403)
    return c, case


def _choices(c, reference: str) -> dict:
    """Who can sign what now, and the case's signing links."""
    info = case_views.outlook(c, reference)
    adults = [{"id": a["participant_id"], "name": a["name"]} for a in info["signing"]]
    kinds = [d["kind"] for d in info["signing"][0]["documents"]] if info["signing"] else []
    names = {a["id"]: a["name"] for a in adults}
    links = signing_service.signing_links(c, reference)
    if links:
        missing = {ln["participant_id"] for ln in links} - set(names)
        if missing:
            for p in c.session.execute(select(Participant).where(
                    Participant.id.in_(missing))).scalars():
                names[p.id] = p.full_name
    for link in links:
        link["name"] = names.get(link["participant_id"], "")
        link["expires_local"] = _local(link["expires_at"])
        link["created_local"] = _local(link["created_at"])
    return {"signers": adults, "kinds": kinds, "links": links, "bounds": info["bounds"]}


def _choose_page(reference: str, status: int = 200, errors: dict | None = None, values=None):
    c = ctx()
    context = _choices(c, reference)
    return render_template("signing/choose.html", reference=reference, S=staff_texts(),
                           errors=errors or {}, summary=_flat_errors(errors or {}),
                           values=values or {}, **context), status


@bp.get("/cases/<reference>/signatures")
@roles(*CASE_ROLES)
def choose(reference: str):
    """Take a signature on the tablet or create a signing link; the case's links."""
    _counsellor_case(reference)
    return _choose_page(reference)


def _tablet_page(c, case: Case, person: Participant, selection: dict, status: int = 200,
                 errors: dict | None = None, values=None):
    lang = participant_language(person.language)
    preview = _preview(c, case, person, selection["kind"], selection["terms"], lang)
    return render_template(
        "signing/tablet.html", reference=case.reference, person=person, lang=lang,
        T=Texts("participant", lang), S=staff_texts(), preview=preview, selection=selection,
        errors=errors or {}, summary=_flat_errors(errors or {}), values=values or {},
        id_types=ID_TYPES), status


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
        return _tablet_page(c, case, person, selection)
    except documents.DocumentDataError as exc:
        return _choose_page(reference, 422, {None: [staff_texts()("err_document",
                                                                  message=str(exc))]},
                            request.form)


@bp.post("/cases/<reference>/tablet/sign")
@roles(*CASE_ROLES)
def tablet_sign(reference: str):
    """The participant's signature and the counsellor's identity check: sign and seal."""
    c, case = _counsellor_case(reference)
    selection, person, errors, status = _selected(c, case, request.form)
    if errors:
        return _choose_page(reference, status, errors, request.form)
    lang = participant_language(person.language)
    T, S = Texts("participant", lang), staff_texts()
    signature, errors = _signature_input(request.form, T)
    id_type = request.form.get("id_type", "")
    id_number = request.form.get("id_number", "").strip()
    if id_type not in ID_TYPES:
        errors["id_type"] = [S("err_id_type")]
    if not _ID_NUMBER.match(id_number):
        errors["id_number"] = [S("err_id_number")]
    if request.form.get("id_confirmed") not in ("yes", "on", "1", "true"):
        errors["id_confirmed"] = [S("err_id_confirm")]
    if errors:
        return _tablet_page(c, case, person, selection, 422, errors,
                            _kept(request.form, signature))
    try:
        doc = signing_service.sign_document(
            c, reference, person.id, selection["kind"], selection["terms"],
            method=signature["method"], typed_name=signature["typed_name"],
            image_data_uri=signature["image_data_uri"], channel="tablet",
            identity_document=f"{ID_TYPE_RECORDED[id_type]} {id_number}",
            consent=signature["consent"])
    except NotFound:
        raise
    except (ServiceError, documents.DocumentDataError) as exc:
        c.session.rollback()
        problems = (_service_errors(exc) if isinstance(exc, ServiceError)
                    else {None: [T("err_failed")]})
        status = exc.status if isinstance(exc, ServiceError) else 422
        return _tablet_page(c, case, person, selection, status, problems,
                            _kept(request.form, signature))
    flash(S("signed_flash", kind=i18n.label(i18n.DOCUMENT_LABELS, doc.kind),
            name=doc.signer_name), "success")
    return redirect(url_for("pages.case_page", reference=reference) + "#docs-title", 303)


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
    base = (current_app.config.get("PUBLIC_BASE_URL") or request.host_url).rstrip("/")
    address = base + url_for("sign_link.page", token=token)
    return render_template("signing/link_created.html", reference=reference, S=staff_texts(),
                           address=address, name=person.full_name, kind=link.kind,
                           until=_local(link.expires_at))


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
    flash(staff_texts()("revoked_flash"), "success")
    return redirect(url_for("signing.choose", reference=reference), 303)


@bp.app_context_processor
def _panel_helpers():
    """For the case page's signing panel (``forms/signing/_case_panel.html``)."""

    def signing_panel(reference: str) -> dict | None:
        if actor().role != "counsellor":
            return None
        return _choices(ctx(), reference)

    return {"signing_panel": signing_panel, "signing_S": staff_texts}


# --- public: the personal signing link --------------------------------------------------------------

def _refused(exc: signing_service.LinkRefused):
    _record_refusal()
    return render_template("signing/refused.html", reason=getattr(exc, "reason", "invalid"),
                           **_multilingual()), exc.status


def _link_page(c, link, status: int = 200, errors: dict | None = None, values=None):
    case = c.session.get(Case, link.case_id)
    person = c.session.get(Participant, link.participant_id)
    lang = participant_language(person.language)
    T = Texts("participant", lang)
    terms = json.loads(link.terms or "{}")
    try:
        terms = signing_service.validate_terms(c, case, link.kind, terms)
        preview = _preview(c, case, person, link.kind, terms, lang)
    except (Invalid, Conflict, documents.DocumentDataError):
        c.session.rollback()
        return render_template("signing/not_signable.html", T=T, lang=lang), 409
    return render_template("signing/link.html", T=T, lang=lang, person=person,
                           reference=case.reference, kind=link.kind, preview=preview,
                           errors=errors or {}, summary=_flat_errors(errors or {}),
                           values=values or {}), status


@link_bp.get("/s/<token>")
def page(token: str):
    """The signer's page: the document in their language, consent, signature."""
    c = service_context(None)
    try:
        link = signing_service.open_signing_link(c, token)
    except signing_service.LinkRefused as exc:
        return _refused(exc)
    return _link_page(c, link)


@link_bp.post("/s/<token>")
def sign(token: str):
    """Sign through the link (single use: the link is spent with the signature)."""
    c = service_context(None)
    try:
        link = signing_service.open_signing_link(c, token)
    except signing_service.LinkRefused as exc:
        return _refused(exc)
    person = c.session.get(Participant, link.participant_id)
    lang = participant_language(person.language)
    signature, errors = _signature_input(request.form, Texts("participant", lang))
    if errors:
        return _link_page(c, link, 422, errors, _kept(request.form, signature))
    kind = link.kind
    try:
        signing_service.sign_with_link(c, token, method=signature["method"],
                                       typed_name=signature["typed_name"],
                                       image_data_uri=signature["image_data_uri"],
                                       consent=signature["consent"])
    except signing_service.LinkRefused as exc:
        c.session.rollback()
        return _refused(exc)
    except (Invalid, Conflict):
        # The case moved on, or the agreed terms are no longer acceptable.
        c.session.rollback()
        return render_template("signing/not_signable.html", T=Texts("participant", lang),
                               lang=lang), 409
    except documents.DocumentDataError:
        c.session.rollback()
        log.warning("a signing link's document could not be rendered", exc_info=True)
        try:
            link = signing_service.open_signing_link(c, token)
        except signing_service.LinkRefused as exc:
            return _refused(exc)
        return _link_page(c, link, 422, {None: [Texts("participant", lang)("err_failed")]},
                          _kept(request.form, signature))
    return redirect(url_for("sign_link.done", lang=lang, kind=kind), 303)


@link_bp.get("/s/done")
def done():
    """Thank you (no token, no personal data in this address)."""
    lang = participant_language(request.args.get("lang"))
    kind = request.args.get("kind")
    return render_template("signing/done.html", T=Texts("participant", lang), lang=lang,
                           kind=kind if kind in signing_service.SIGNABLE_KINDS else None)


# --- public: verification -------------------------------------------------------------------------

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
                           reasons=reasons, doc=doc, signed_local=_local(doc.get("signed_at")),
                           errors=errors or {}, summary=_flat_errors(errors or {}), mb=mb,
                           languages=[(code, Texts("participant", code)("lang_name"))
                                      for code in VERIFY_LANGUAGES]), status


@verify_bp.get("/verify")
def verify_form():
    """Upload a PDF to check it."""
    return _verify_page()


@verify_bp.post("/verify")
def verify_check():
    """The answer for an uploaded PDF: valid, or exactly why not. Never a 500 on garbage."""
    limit, window = _limit("VERIFY_RATE")
    wait = limiter().hit(f"verify:{_client()}", limit, window)
    if wait:
        return _too_many(wait)
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


# --- wiring ----------------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Register the signing and verification pages, the limiter and the log filters."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
    app.extensions["returnprog.signing_limiter"] = SlidingWindowLimiter()
    install_log_filters()
    for blueprint in (bp, link_bp, verify_bp):
        app.register_blueprint(blueprint)
