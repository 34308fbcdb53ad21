"""Public verification of signed PDFs (blueprint ``verify``): upload a PDF and get the
answer, valid or exactly why not. Rate-limited per client address; the check itself runs
bounded in a child process (``returnprog.verifier``), at most ``VERIFY_MAX_CONCURRENT``
at once on the machine — over that, :class:`EarlyBusy` answers 503 before the upload is
parsed."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from urllib.parse import parse_qs

from flask import Blueprint, Flask, current_app, render_template, request, session

from .. import documents, verifier
from ..db import session_scope
from ..glossary import N_
from ..messages import M
from ..services import verification as verification_service
from .errors import error_response
from . import ratelimit
from .headers import PUBLIC_CSP, secure_headers
from .sessions import db_session, seal
from .signing_common import LANGUAGE_NAMES, flat_errors, local_time, page_texts, too_many

log = logging.getLogger(__name__)

bp = Blueprint("verify", __name__)
bp.after_request(secure_headers(PUBLIC_CSP))

VERIFY_LANGUAGES = ("nl", "en", "uk", "ru")
SETTINGS = {
    # The largest upload checked.
    "VERIFY_MAX_BYTES": 5 * 1024 * 1024,
    # Retired seal certificates (PEM paths) that documents sealed earlier still verify with.
    "SEAL_TRUSTED_CERT_PATHS": [],
    # Bounds of one check, which runs in a child process (returnprog.verifier): CPU
    # seconds (a normal sealed document takes ~0.1 s, the 50,000-deep field chain of
    # issue 10 1.5–5 s); the child's whole address space (RLIMIT_AS) in MB (it starts at
    # ~125 MB; a normal sealed document is checked within 150 MB, ~85 MB resident);
    # wall-clock seconds after which the child is killed.
    "VERIFY_CPU_SECONDS": 3,
    "VERIFY_MEMORY_MB": 512,
    "VERIFY_TIMEOUT_SECONDS": 6,
    # Checks running at once on this machine, across all web workers (slot files in the
    # instance folder). Keep it below the number of web workers so that a flood of
    # uploads always leaves a worker for every other page; over the cap → 503.
    "VERIFY_MAX_CONCURRENT": 1,
}
BUSY_RETRY_SECONDS = 60
# The uploads the busy guard (:class:`EarlyBusy`) watches: the page and the API's
# verifications (answered there in the API's JSON error shape).
API_VERIFICATIONS = "/api/v1/verifications"
GUARDED_PATHS = frozenset({"/verify", API_VERIFICATIONS})
API_PAGE = "api"  # the key of the API's cached answer among the pages
DRAIN_MAX_BYTES = 1024 * 1024
SLOT_KEY = "returnprog.verify_slot"  # WSGI environ key of the slot EarlyBusy claimed


def _verify_language() -> str:
    lang = request.values.get("lang")
    if lang in VERIFY_LANGUAGES:
        return lang
    chosen = session.get("lang")
    return chosen if chosen in VERIFY_LANGUAGES else "nl"


_REASON_TEXTS = {
    documents.REASON_UNREADABLE: N_("the file is not a readable PDF"),
    documents.REASON_NO_SEAL: N_("the file has no seal"),
    documents.REASON_SEVERAL_SEALS: N_("the file carries more than one seal; the service seals "
                                       "each document once"),
    documents.REASON_DAMAGED: N_("the seal is damaged and cannot be checked"),
    documents.REASON_CHANGED: N_("the file was changed after it was sealed"),
    documents.REASON_APPENDED: N_("the file was changed after it was sealed: content was added "
                                  "after the seal"),
    documents.REASON_BAD_SIGNATURE: N_("the seal's signature value is not valid: the seal was "
                                       "damaged or forged"),
    documents.REASON_UNTRUSTED: N_("the seal was made with a key the service does not trust"),
    documents.REASON_CERT_INVALID: N_("the seal certificate is not valid at this time (expired, "
                                      "not yet valid or not usable for sealing)"),
    documents.REASON_TIMESTAMP: N_("the seal's timestamp cannot be verified"),
    documents.REASON_NOT_REGISTERED: N_("the document is not in the register"),
    verifier.REASON_UNCHECKED: N_("the file could not be checked: checking it needs more time "
                                  "or memory than the check allows (it may be damaged or "
                                  "built to overload the check)"),
}
CHECK_FAILED = "the file could not be checked"
METHOD_TEXTS = {"drawn": N_("drawn signature"), "typed": N_("typed full name")}
CHANNEL_TEXTS = {"tablet": N_("at the DTenV office"),
                 "link": N_("through a personal signing link")}


def trusted_certs() -> list[bytes]:
    """The seal certificates this service trusts (current seal plus retired ones)."""
    return verification_service.trusted_cert_pems(
        seal(), current_app.config.get("SEAL_TRUSTED_CERT_PATHS") or ())


def limits(config=None, instance_path: str | None = None) -> verifier.Limits:
    """The bounds of one check from the configuration (``VERIFY_*``; the current app's
    unless given); the concurrency slots live in the instance folder, shared by every
    worker of the machine."""
    if config is None:
        config, instance_path = current_app.config, current_app.instance_path
    return verifier.Limits(cpu_seconds=float(config["VERIFY_CPU_SECONDS"]),
                           memory_mb=int(config["VERIFY_MEMORY_MB"]),
                           timeout_seconds=float(config["VERIFY_TIMEOUT_SECONDS"]),
                           max_concurrent=int(config["VERIFY_MAX_CONCURRENT"]),
                           slots_dir=str(Path(instance_path) / "verify-slots"))


def _verify_page(status: int = 200, result=None, errors: dict | None = None):
    lang = _verify_language()
    texts = page_texts(lang)
    _ = texts["_"]
    reasons = []
    if result is not None and not result.valid:
        reasons = [_(_REASON_TEXTS[r]) if r in _REASON_TEXTS else
                   (_("the file could not be checked") if r == CHECK_FAILED else r)
                   for r in result.reasons]
    mb = current_app.config["VERIFY_MAX_BYTES"] // (1024 * 1024)
    doc = (result.document or {}) if result is not None else {}
    return render_template("signing/verify.html", **texts, result=result,
                           reasons=reasons, doc=doc, signed_local=local_time(doc.get("signed_at")),
                           errors=errors or {}, summary=flat_errors(errors or {}), mb=mb,
                           method_labels=METHOD_TEXTS, channel_labels=CHANNEL_TEXTS,
                           evidence=_evidence_rows(result, lang),
                           cert_text=lambda key: documents.text(_document_language(lang), key),
                           languages=[(code, LANGUAGE_NAMES[code])
                                      for code in VERIFY_LANGUAGES]), status


def _document_language(lang: str) -> str:
    return lang if lang in documents.LANGUAGES else "en"


def _evidence_rows(result, lang: str) -> list[dict] | None:
    """The events sealed into a valid file, worded as on its certificate page."""
    evidence = getattr(result, "evidence", None) if result is not None and result.valid else None
    if not evidence:
        return None
    language, rows = _document_language(lang), []
    for event in evidence.get("events") or ():
        local, utc = documents.format_event_times(event)
        channel = event.get("channel")
        rows.append({**event, "local": local, "utc": utc,
                     "label": documents.text(language, f"event_{event['event']}")
                     if event["event"] in documents.EVIDENCE_EVENTS else event["event"],
                     "channel_label": documents.text(language, f"channel_{channel}")
                     if channel in documents.EVIDENCE_CHANNELS else channel})
    return rows


@bp.get("/verify")
def verify_form():
    """Upload a PDF to check it."""
    # Start this worker's check fork server now (it returns at once; the server imports
    # and warms pyHanko in the background), so the upload that follows does not wait ~1 s.
    try:
        verifier.warm_up()
    except Exception:  # noqa: BLE001 - an optimisation; the check starts it otherwise
        log.warning("could not start the verification fork server", exc_info=True)
    return _verify_page()


@bp.post("/verify")
def verify_check():
    """The answer for an uploaded PDF: valid, or exactly why not. Never a 500 on garbage."""
    wait = ratelimit.hit("VERIFY_RATE", "verify")
    if wait:
        return too_many(wait)
    _ = page_texts(_verify_language())["_"]
    upload = request.files.get("pdf")
    if upload is None or not upload.filename:
        return _verify_page(422, errors={"pdf": [_("Choose a PDF file to check.")]})
    max_bytes = int(current_app.config["VERIFY_MAX_BYTES"])
    data = upload.stream.read(max_bytes + 1)
    mb = max_bytes // (1024 * 1024)
    if len(data) > max_bytes:
        return _verify_page(413, errors={"pdf": [_("The file is too large: at most %(mb)s MB.",
                                                     mb=mb)]})
    if not data:
        return _verify_page(422, errors={"pdf": [_("The file is empty.")]})
    try:
        result = check_upload(data, "web")
    except verifier.Busy:
        return _busy()
    return _verify_page(200, result=result)


def check_upload(data: bytes, channel: str) -> "verification_service.Verification":
    """The verdict on an uploaded file for the page (``web``) and the API (``api``): the
    same limits and check slot; any failure of the check itself is the answer "could not
    be checked", never a 500. Raises ``verifier.Busy`` when no slot is free."""
    try:
        return verification_service.verify(db_session(), data, trusted_certs(),
                                           channel=channel, limits=limits(),
                                           slot=request.environ.get(SLOT_KEY))
    except verifier.Busy:
        raise
    except Exception:  # noqa: BLE001 - the answer is "could not be checked", never a 500
        log.exception("verification of an uploaded file failed")
        db_session().rollback()
        return verification_service.Verification(valid=False, reasons=[CHECK_FAILED])


def _busy():
    # Only when a slot was lost between EarlyBusy and the check (e.g. a direct caller).
    return _busy_page(_verify_language())


class EarlyBusy:
    """WSGI middleware in front of the app for ``POST /verify`` and ``POST
    /api/v1/verifications``: claim a check slot of the machine before anything else runs,
    and when none is free answer 503 right here (the page, or the API's JSON error).

    Why this low: in a flood of uploads, every refusal occupies a sync worker, and the
    sign-in page waits behind them. Refused inside Flask, each one cost a multipart parse
    of up to 5 MB (CSRF reads the whole form), a session, a page render — tens of ms. Here
    it costs a few syscalls and a cached page: no Flask, no database, no parsing. Uploads
    up to ``DRAIN_MAX_BYTES`` (every document the service issues is ~30–40 KB) are read
    and dropped first so the browser surely gets the page; larger ones are not read, and
    the connection is closed after the answer (a client still sending may see a reset).
    Refusals are counted in ``verify.web.busy`` (``verify.api.busy`` for the API), written at most once a second per worker
    and at the next check that gets a slot.
    """

    FLUSH_SECONDS = 1.0

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._pages: dict[str, tuple[str, list, bytes]] = {}
        self._pending: dict[str, int] = {}  # refusals not counted yet, by channel
        self._flushed = time.monotonic()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO")
        if environ.get("REQUEST_METHOD") != "POST" or path not in GUARDED_PATHS:
            return self.wsgi_app(environ, start_response)
        slot = verifier.claim(limits(self.app.config, self.app.instance_path))
        if slot is None:
            return self._refuse(environ, start_response, api=path != "/verify")
        environ[SLOT_KEY] = slot
        try:
            self._flush()
            return self.wsgi_app(environ, start_response)
        finally:
            # The view has run (and its check ended) by the time the app returns.
            slot.release()

    def _refuse(self, environ, start_response, api: bool = False):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = DRAIN_MAX_BYTES + 1
        small = length <= DRAIN_MAX_BYTES
        if small and length > 0:
            stream = environ["wsgi.input"]
            try:
                while length > 0:
                    chunk = stream.read(min(length, 64 * 1024))
                    if not chunk:
                        break
                    length -= len(chunk)
            except Exception:  # noqa: BLE001 - a broken body: nothing more to read
                pass
        lang = parse_qs(environ.get("QUERY_STRING", "")).get("lang", ["nl"])[0]
        status, headers, body = (self._page(API_PAGE) if api else
                                 self._page(lang if lang in VERIFY_LANGUAGES else "nl"))
        headers = list(headers)
        if not small:
            headers.append(("Connection", "close"))
        channel = "api" if api else "web"
        self._pending[channel] = self._pending.get(channel, 0) + 1
        if time.monotonic() - self._flushed >= self.FLUSH_SECONDS:
            self._flush()
        start_response(status, headers)
        return [body]

    def _page(self, lang: str) -> tuple[str, list, bytes]:
        if lang not in self._pages:
            path = API_VERIFICATIONS if lang == API_PAGE else f"/verify?lang={lang}"
            with self.app.test_request_context(path):
                if lang == API_PAGE:
                    response = busy_response()
                else:
                    response = self.app.make_response(_busy_page(lang))
                response = self.app.process_response(response)
                headers = [(k, v) for k, v in response.headers.items() if k != "Set-Cookie"]
                self._pages[lang] = (response.status, headers, response.get_data())
        return self._pages[lang]

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        self._flushed = time.monotonic()
        if not pending:
            return
        try:
            with session_scope(self.app.extensions["returnprog.engine"]) as session:
                for channel, count in sorted(pending.items()):
                    verification_service.count_busy(session, channel, by=count)
        except Exception:  # noqa: BLE001 - a counter must never turn "busy" into a 500
            log.warning("could not count %d busy verifications", sum(pending.values()),
                        exc_info=True)

def busy_response():
    """The API's answer (JSON) when every check slot of the machine is taken: 503 with
    Retry-After."""
    resp = error_response(503, "busy", str(M("verify.busy")))
    resp.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
    return resp


def _busy_page(lang: str):
    texts = page_texts(lang)
    return (render_template("signing/verify_busy.html", **texts,
                            languages=[(code, LANGUAGE_NAMES[code]) for code in VERIFY_LANGUAGES]),
            503, {"Retry-After": str(BUSY_RETRY_SECONDS)})


def init_app(app: Flask) -> None:
    """Register the verification page and its settings."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
    ratelimit.init_app(app)
    app.register_blueprint(bp)
    # In front of everything, CSRFProtect included (it reads the whole form).
    app.wsgi_app = EarlyBusy(app, app.wsgi_app)
