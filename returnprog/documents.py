"""Documents: render, seal and verify the programme's signed PDFs.

Flask-free and database-free. Callers dump their records to plain dicts and get
bytes back; storing the PDF and its SHA-256 is the caller's job.

Three steps, each usable on its own:

* ``render_html`` / ``render_pdf`` turn a document kind, a data dict and the
  participant's language into bilingual HTML (Dutch + that language) and then
  into a PDF/A-3b file. WeasyPrint only gets to load the packaged stylesheet and
  fonts (``asset:`` URLs) and ``data:`` images; every other URL is refused
  without being fetched.
* ``seal_pdf`` adds DTenV's organisational seal: an invisible PAdES
  certification signature, optionally with an RFC 3161 timestamp.
* ``verify_pdf`` answers "is this exactly a document we issued?" and says why
  not when it is not.

WeasyPrint, pyHanko, asn1crypto and ``cryptography`` are imported inside the functions
that render, seal, verify or make a key, not with the module: the app and every ``flask``
command import this module, and most of them never render (issue 11). A web server that
forks workers preloads them and warms each worker instead (:mod:`returnprog.web.warmup`).

Document kinds (``KINDS``) and the keys their data dict takes
--------------------------------------------------------------
Every kind:

``reference`` (str, required)
    Case reference, e.g. ``"VRP-2026-000123"``.
``issued_at`` (ISO date or datetime str, or ``date``/``datetime``; required)
    When the document was drawn up; printed as dd-mm-yyyy.
``participants`` (list of dicts, at least one; required)
    The people the document is about, each with ``given_names_latin``,
    ``family_name_latin`` (required), ``given_names_cyrillic``,
    ``family_name_cyrillic`` (optional), ``date_of_birth`` (ISO date, required),
    ``is_adult`` (bool, required) and ``v_number`` (optional; a V-number column
    is shown on the withdrawal declaration when any participant has one).
``signer`` (dict, required)
    The adult who signs this copy; same keys as a participant, of which only
    the Latin names are required. Their ``v_number``, when given, is printed
    with their signature (and in the withdrawal declaration's heading).
``counsellor`` (str, optional)
    Name of the counsellor responsible for the case, printed in DTenV's box.
``signature`` (dict, optional)
    Present once the signer has signed: ``method`` (``"drawn"`` or
    ``"typed"``), ``image_png_data_uri`` (``data:image/png;base64,...``;
    required when drawn), ``typed_name`` (required when typed), ``signed_at``
    (ISO datetime with a UTC offset), ``signer_name`` (required) and
    ``identity_document`` (optional, e.g. ``"passport FX123456"``).
``departure_deadline`` (ISO date)
    Required for ``departure_agreement`` and ``addendum`` (the new deadline);
    optional elsewhere. Without it the conditions are stated in general terms.
``amount_cents`` (int, euro cents)
    Travel support for the whole household. Required for
    ``departure_agreement`` and ``payment_receipt``; optional elsewhere.

Kind-specific:

``withdrawal_declaration``
    ``participants`` are the signer (the only adult) and the minors they
    represent: one declaration per adult.
``departure_agreement``
    ``destination_oblast`` (ISO 3166-2:UA code such as ``"UA-46"``, required),
    ``destination_place`` (str, optional), ``breakdown`` (required, see below).
``addendum``
    ``previous_deadline`` (ISO date, required), ``reason`` (str, required).
``payment_receipt``
    ``breakdown`` (required), ``method`` (``"cash"`` or ``"transfer"``,
    required), ``iban`` and ``payment_reference`` (str, optional),
    ``cash_handover`` (``"office"`` or ``"departure"``, optional: where the cash was
    handed over; without it the receipt says only "in cash").

A signed document can end with an evidence certificate page: pass ``evidence`` to
``render_pdf`` (see ``evidence_record`` and the "Evidence certificate" section).

``breakdown`` is a list of ``{"category": "adult"|"minor", "count": int,
"unit_cents": int}``; the subtotals are computed here and their sum must equal
``amount_cents``.

Wrong or missing data raises ``DocumentDataError`` naming the key; a document is
never rendered with a gap where a condition should be.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import signers
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import URLFetcherResponse

from .characters import control_character, normalise_newlines
from . import glossary, mailtext
from .files import open_private, private_dir, write_private
from . import signature as signature_rules
from .policy import TIMEZONE
from .safety import DEV_SEAL_COMMON_NAME  # named once: production refuses this seal

__all__ = [
    "KINDS",
    "LANGUAGES",
    "TEMPLATE_DIR",
    "DocumentDataError",
    "RestrictedURLFetcher",
    "SealConfig",
    "SealError",
    "VerificationResult",
    "ensure_dev_seal",
    "format_date",
    "preload_libraries",
    "format_eur",
    "load_seal",
    "render_html",
    "render_pdf",
    "text",
    "format_event_times",
    "read_evidence",
    "evidence_record",
    "content_sha256",
    "content_bytes",
    "canonical_json",
    "EVIDENCE_EVENTS",
    "EVIDENCE_FILE",
    "CONTENT_FILE",
    "seal_pdf",
    "verify_pdf",
    "check_seal",
    "complete_with_register",
    "warm_templates",
    "REASON_UNREADABLE",
    "REASON_NO_SEAL",
    "REASON_SEVERAL_SEALS",
    "REASON_DAMAGED",
    "REASON_CHANGED",
    "REASON_APPENDED",
    "REASON_BAD_SIGNATURE",
    "REASON_UNTRUSTED",
    "REASON_CERT_INVALID",
    "REASON_TIMESTAMP",
    "REASON_NOT_REGISTERED",
]

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "pdf_templates"

KINDS = (
    "commitment",
    "withdrawal_declaration",
    "departure_agreement",
    "addendum",
    "payment_receipt",
)
LANGUAGES = ("nl", "uk", "en", "ru")
# The standard reasons for extending a deadline (addendum), each translated in the texts
# (``addendum_reason_<code>``), so the participant reads the reason in their language; the
# counsellor's own words, if any, are printed as an untranslated explanation below it.
ADDENDUM_REASONS = ("travel_documents", "transport", "illness", "family", "safety", "other")

# Dutch is always the first language; a Dutch-speaking participant gets English
# as the second so that every document stays bilingual.
_SECOND_LANGUAGE = {"nl": "en", "uk": "uk", "en": "en", "ru": "ru"}

_DISPLAY_ZONE = TIMEZONE  # signing times are shown in the programme's calendar
PDF_VARIANT = "pdf/a-3b"
SEAL_FIELD_NAME = "DTenV-seal"


class DocumentDataError(ValueError):
    """The data dict for a document is missing a key or has a wrong value."""


class SealError(RuntimeError):
    """Seal key material is missing, unreadable or inconsistent, or sealing failed."""


# ---------------------------------------------------------------------------
# Formatting


def format_eur(cents: int) -> str:
    """Format integer euro cents the Dutch way, e.g. ``123450`` -> ``"€ 1.234,50"``."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise DocumentDataError(f"amount must be whole cents (int), got {cents!r}")
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"€ {sign}{euros:,}".replace(",", ".") + f",{rest:02d}"


def format_date(value: Any) -> str:
    """Format a date, datetime or ISO string as dd-mm-yyyy (the date part only).

    Timezone-aware datetimes are first converted to Dutch time, so a moment
    late in the evening is dated the day it was in the Netherlands.
    """
    return _format_date_of(value, "date")


def _format_date_of(value: Any, key: str) -> str:
    return _parse_date(value, key).strftime("%d-%m-%Y")


def _parse_date(value: Any, key: str) -> dt.date:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise DocumentDataError(f"{key} must be an ISO date (yyyy-mm-dd), got {value!r}") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(_DISPLAY_ZONE)
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise DocumentDataError(f"{key} must be an ISO date (yyyy-mm-dd), got {value!r}")


def _parse_aware_datetime(value: Any, key: str) -> dt.datetime:
    parsed = value
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if not isinstance(parsed, dt.datetime):
        raise DocumentDataError(f"{key} must be an ISO datetime, got {value!r}")
    # A signing time without a zone is ambiguous by up to two hours, which is
    # not acceptable for a statement of when someone signed.
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise DocumentDataError(f"{key} must include a UTC offset, got {value!r}")
    return parsed


def _format_datetime(value: dt.datetime) -> str:
    local = value.astimezone(_DISPLAY_ZONE)
    return local.strftime("%d-%m-%Y %H:%M ") + (local.tzname() or "")


# ---------------------------------------------------------------------------
# Restricted URL fetcher

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Path segments of packaged assets: plain names only, so "..", "%2e", "//",
# backslashes, queries and fragments can never reach the filesystem.
_ASSET_PATH_RE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*\.[a-z0-9]+")
_ASSET_TYPES = {".css": "text/css", ".ttf": "font/ttf"}
_DATA_IMAGE_TYPES = {"image/png", "image/jpeg"}
# The only data: URI in a document is the drawn signature: the signature's limit.
_MAX_DATA_URI_CHARS = signature_rules.MAX_SIGNATURE_IMAGE


class _Refused(ValueError):
    pass


@lru_cache(maxsize=32)
def _read_asset(path: Path) -> bytes:
    return path.read_bytes()


class RestrictedURLFetcher:
    """WeasyPrint URL fetcher that loads only packaged assets and data: images.

    ``asset:<relative path>`` resolves inside ``pdf_templates/`` (CSS and TTF
    files only); ``data:image/png`` and ``data:image/jpeg`` base64 URIs are
    decoded in-process. Everything else (``file:``, ``http:``, relative paths,
    other schemes, traversal attempts) raises before any I/O, and WeasyPrint
    skips the resource. Refused URLs are recorded in ``refused`` for logging and
    tests.
    """

    # WeasyPrint calls the fetcher and reads this flag when a fetch raises; that
    # call and this flag are all it asks of a fetcher. Not deriving from its
    # URLFetcher (a urllib opener with file, HTTP and FTP handlers) keeps those
    # handlers out of reach, saves building them for every document and lets this
    # module load without WeasyPrint: only rendering imports it.
    _fail_on_errors = False

    def __init__(self, asset_root: Path | str = TEMPLATE_DIR):
        self._asset_root = Path(asset_root).resolve()
        self.refused: list[str] = []

    def __call__(self, url):
        """WeasyPrint's entry point: the same as ``fetch(url)``."""
        return self.fetch(url)

    def fetch(self, url, headers=None):
        """Return the resource for an allowed URL; raise ValueError for anything else."""
        try:
            if not isinstance(url, str):
                raise _Refused("not a string URL")
            match = _SCHEME_RE.match(url)
            scheme = match[1].lower() if match else ""
            if scheme == "data":
                return self._fetch_data(url)
            if scheme == "asset":
                return self._fetch_asset(url[match.end():])
            raise _Refused("scheme not allowed" if scheme else "relative URL")
        except _Refused as refusal:
            shown = url[:120] if isinstance(url, str) else repr(url)[:120]
            self.refused.append(shown)
            log.warning("document renderer refused URL %r: %s", shown, refusal)
            raise ValueError(f"URL refused by the document renderer: {refusal}") from None

    def _fetch_data(self, url: str) -> URLFetcherResponse:
        from weasyprint.urls import URLFetcherResponse

        header, sep, payload = url[len("data:"):].partition(",")
        if not sep:
            raise _Refused("malformed data: URI")
        params = [p.strip().lower() for p in header.split(";")]
        media_type = params[0]
        if media_type not in _DATA_IMAGE_TYPES:
            raise _Refused(f"data: URI of type {media_type or 'text/plain'} not allowed")
        if "base64" not in params[1:]:
            raise _Refused("data: URI must be base64")
        if len(payload) > _MAX_DATA_URI_CHARS:
            raise _Refused("data: URI too large")
        try:
            body = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise _Refused("data: URI is not valid base64") from None
        return URLFetcherResponse(url="data:", body=body, headers={"Content-Type": media_type})

    def _fetch_asset(self, rel: str) -> URLFetcherResponse:
        from weasyprint.urls import URLFetcherResponse

        if not _ASSET_PATH_RE.fullmatch(rel):
            raise _Refused("asset path not allowed")
        suffix = Path(rel).suffix
        if suffix not in _ASSET_TYPES:
            raise _Refused(f"asset type {suffix} not allowed")
        path = (self._asset_root / rel).resolve()
        if not path.is_relative_to(self._asset_root) or not path.is_file():
            raise _Refused("no such asset")
        return URLFetcherResponse(
            url=f"asset:{rel}",
            body=_read_asset(path),
            headers={"Content-Type": _ASSET_TYPES[suffix]},
        )


# ---------------------------------------------------------------------------
# Templates and texts


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        # autoescape=True (not select_autoescape) so that every template, of
        # whatever file name, escapes participant-supplied values.
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def glossary_gettext(language: str) -> Callable[[str], str]:
    """``gettext`` of the one catalogue in ``language`` (English for ``en``), Flask-free:
    the PDFs name the service, the programme and each document from the glossary."""
    return mailtext.translations(language).gettext


@lru_cache(maxsize=8)
def _texts(language: str) -> Mapping[str, str]:
    # The reviewed legal sentences are content files; the names come from the glossary,
    # so a document calls the service and itself what the UI and the e-mails call them.
    with open(TEMPLATE_DIR / "texts" / f"{language}.json", encoding="utf-8") as fh:
        texts = json.load(fh)
    _ = glossary_gettext(language)
    texts["service_name"] = glossary.service_name(_)
    texts["programme_name"] = _(glossary.PROGRAMME_NAME)
    for kind in glossary.DOCUMENT_NAMES:
        texts[f"title_{kind}"] = glossary.document_name(kind, _)
    return texts


@lru_cache(maxsize=1)
def _oblasts() -> Mapping[str, Mapping[str, str]]:
    with open(TEMPLATE_DIR / "texts" / "oblasts.json", encoding="utf-8") as fh:
        return json.load(fh)


def _translator(language: str) -> Callable[..., Markup]:
    texts = _texts(language)

    def translate(key: str, **values: Any) -> Markup:
        # Markup.format escapes every value that is not already Markup, so a
        # name or a reason can never turn into markup inside a sentence.
        return escape(texts[key]).format(**values)

    return translate


def sentence(key: str, language: str, **values: Any) -> Markup:
    """One sentence of the documents' texts (``pdf_templates/texts``) in ``language``, its
    values escaped: the signing page repeats a condition in the very words signed."""
    if language not in LANGUAGES:
        raise DocumentDataError(f"unknown language {language!r}")
    return _translator(language)(key, **values)


def text(language: str, key: str) -> str:
    """One sentence or label of the documents' texts in ``language`` (e.g. an event name
    of the evidence certificate, for the verification page to word it the same way)."""
    return _texts(language)[key]


def _strong(value: Any) -> Markup:
    return Markup("<strong>{}</strong>").format(value)


# ---------------------------------------------------------------------------
# Data validation: plain dicts in, template context out



def _text(data: Mapping[str, Any], key: str, *, required: bool = True,
          max_len: int = 200, where: str = "") -> str | None:
    value = data.get(key)
    label = f"{where}{key}"
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DocumentDataError(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise DocumentDataError(f"{label} must be text, got {type(value).__name__}")
    # The input rule (returnprog.characters), as for multi-line text: HTML folds line
    # feeds and tabs into spaces, so data stored before names were held to one line
    # still renders.
    value = normalise_newlines(value).strip()
    if len(value) > max_len:
        raise DocumentDataError(f"{label} is longer than {max_len} characters")
    if control_character(value, multiline=True) is not None:
        raise DocumentDataError(f"{label} contains control characters")
    return value


def _person(raw: Any, where: str, *, signer: bool = False) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise DocumentDataError(f"{where} must be a dict")
    prefix = f"{where}."
    given = _text(raw, "given_names_latin", where=prefix)
    family = _text(raw, "family_name_latin", where=prefix)
    given_cyr = _text(raw, "given_names_cyrillic", required=False, where=prefix)
    family_cyr = _text(raw, "family_name_cyrillic", required=False, where=prefix)
    dob = raw.get("date_of_birth")
    if dob is None and not signer:
        raise DocumentDataError(f"{prefix}date_of_birth is required")
    # The signer's own adult flag is never printed, so it may be left out.
    is_adult = raw.get("is_adult", True) if signer else raw.get("is_adult")
    if not isinstance(is_adult, bool):
        raise DocumentDataError(f"{prefix}is_adult must be true or false")
    return {
        "name_latin": f"{family.upper()}, {given}",
        "name_cyrillic": " ".join(p for p in (family_cyr, given_cyr) if p),
        "date_of_birth": _format_date_of(dob, f"{prefix}date_of_birth") if dob is not None else "",
        "is_adult": is_adult,
        "v_number": _text(raw, "v_number", required=False, max_len=20, where=prefix) or "",
    }


def _signature(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise DocumentDataError("signature must be a dict")
    method = raw.get("method")
    if method not in ("drawn", "typed"):
        raise DocumentDataError("signature.method must be 'drawn' or 'typed'")
    result = {
        "method": method,
        "signer_name": _text(raw, "signer_name", where="signature."),
        "signed_at": _format_datetime(_parse_aware_datetime(raw.get("signed_at"), "signature.signed_at")),
        "identity_document": _text(raw, "identity_document", required=False, where="signature."),
        "image_png_data_uri": None,
        "typed_name": None,
    }
    if method == "drawn":
        result["image_png_data_uri"] = _signature_png(raw.get("image_png_data_uri"))
    else:
        result["typed_name"] = _text(raw, "typed_name", where="signature.")
    return result


def _signature_png(uri: Any) -> str:
    # The drawing arrives from a browser canvas; accept exactly one well-formed PNG and
    # rebuild the data URI from its bytes, so nothing else reaches the renderer. The
    # signing service hands over a drawing it has already checked (a ``CheckedPng``).
    if isinstance(uri, signature_rules.CheckedPng):
        return uri
    try:
        return signature_rules.read_png(uri, require_stroke=False)
    except signature_rules.SignatureImageError as exc:
        raise DocumentDataError(f"signature.image_png_data_uri: {exc}") from None


def _amount(data: Mapping[str, Any], *, required: bool) -> int | None:
    cents = data.get("amount_cents")
    if cents is None:
        if required:
            raise DocumentDataError("amount_cents is required")
        return None
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise DocumentDataError("amount_cents must be a non-negative whole number of cents")
    return cents


def _breakdown(raw: Any, total_cents: int) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise DocumentDataError("breakdown is required (a list of category rows)")
    rows, total = [], 0
    for i, row in enumerate(raw):
        where = f"breakdown[{i}]"
        if not isinstance(row, Mapping):
            raise DocumentDataError(f"{where} must be a dict")
        category = row.get("category")
        if category not in ("adult", "minor"):
            raise DocumentDataError(f"{where}.category must be 'adult' or 'minor'")
        count, unit = row.get("count"), row.get("unit_cents")
        for name, value in (("count", count), ("unit_cents", unit)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DocumentDataError(f"{where}.{name} must be a non-negative whole number")
        total += count * unit
        rows.append({
            "category": category,
            "count": count,
            "unit": format_eur(unit),
            "subtotal": format_eur(count * unit),
        })
    if total != total_cents:
        raise DocumentDataError(
            f"breakdown adds up to {format_eur(total)} but amount_cents is {format_eur(total_cents)}"
        )
    return rows


def _destination(data: Mapping[str, Any], lang2: str) -> str:
    code = data.get("destination_oblast")
    names = _oblasts().get(code) if isinstance(code, str) else None
    if names is None:
        raise DocumentDataError(f"destination_oblast must be an ISO 3166-2:UA code, got {code!r}")
    place = _text(data, "destination_place", required=False)
    region = names["nl"] if names["nl"] == names[lang2] else f"{names['nl']} / {names[lang2]}"
    return f"{place + ', ' if place else ''}{region} ({code})"


def _check_withdrawal_covers_one_adult(participants: list[dict], signer: dict) -> None:
    # Each adult withdraws their own application; the declaration's wording
    # ("I withdraw mine and that of the minors I represent") is only true when
    # the signer is the one adult listed.
    adults = [p for p in participants if p["is_adult"]]
    if len(adults) != 1 or adults[0]["name_latin"].casefold() != signer["name_latin"].casefold():
        raise DocumentDataError(
            "withdrawal_declaration: participants must be the signer (the only adult) "
            "and the minors they represent; make one declaration per adult"
        )


def _context(kind: str, data: Mapping[str, Any], language: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise DocumentDataError(f"unknown document kind {kind!r}; expected one of {', '.join(KINDS)}")
    if language not in LANGUAGES:
        raise DocumentDataError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    if not isinstance(data, Mapping):
        raise DocumentDataError("data must be a dict")
    lang2 = _SECOND_LANGUAGE[language]

    people = data.get("participants")
    if not isinstance(people, list) or not people:
        raise DocumentDataError("participants is required (a non-empty list)")
    if "issued_at" not in data:
        raise DocumentDataError("issued_at is required")

    deadline_required = kind in ("departure_agreement", "addendum")
    deadline = data.get("departure_deadline")
    if deadline is None and deadline_required:
        raise DocumentDataError("departure_deadline is required")
    amount = _amount(data, required=kind in ("departure_agreement", "payment_receipt"))

    participants = [_person(p, f"participants[{i}]") for i, p in enumerate(people)]
    ctx: dict[str, Any] = {
        "kind": kind,
        "lang2": lang2,
        "t1": _translator("nl"),
        "t2": _translator(lang2),
        "strong": _strong,
        "reference": _text(data, "reference", max_len=64),
        "issued_at": _format_date_of(data["issued_at"], "issued_at"),
        "participants": participants,
        "show_v_number": any(p["v_number"] for p in participants),
        "signer": _person(data.get("signer"), "signer", signer=True),
        "counsellor": _text(data, "counsellor", required=False),
        "signature": _signature(data.get("signature")),
        "departure_deadline": _format_date_of(deadline, "departure_deadline") if deadline is not None else None,
        "amount": format_eur(amount) if amount is not None else None,
        "certificate": None,
    }

    if kind == "withdrawal_declaration":
        _check_withdrawal_covers_one_adult(participants, ctx["signer"])
    elif kind == "departure_agreement":
        ctx["destination"] = _destination(data, lang2)
        ctx["breakdown"] = _breakdown(data.get("breakdown"), amount)
    elif kind == "addendum":
        if data.get("previous_deadline") is None:
            raise DocumentDataError("previous_deadline is required")
        ctx["previous_deadline"] = _format_date_of(data["previous_deadline"], "previous_deadline")
        code = data.get("reason_code")
        if code is not None and code not in ADDENDUM_REASONS:
            raise DocumentDataError(f"reason_code must be one of {', '.join(ADDENDUM_REASONS)}")
        ctx["reason_code"] = code
        # With a standard reason the counsellor's explanation is optional.
        ctx["reason"] = _text(data, "reason", max_len=2000,
                              required=code is None or code == "other")
    elif kind == "payment_receipt":
        method = data.get("method")
        if method not in ("cash", "transfer"):
            raise DocumentDataError("method must be 'cash' or 'transfer'")
        ctx["method"] = method
        handover = data.get("cash_handover")
        if handover not in (None, *CASH_HANDOVER_PLACES):
            raise DocumentDataError(
                f"cash_handover must be one of {', '.join(CASH_HANDOVER_PLACES)}, got {handover!r}")
        ctx["cash_handover"] = handover
        ctx["breakdown"] = _breakdown(data.get("breakdown"), amount)
        ctx["iban"] = _text(data, "iban", required=False, max_len=42)
        ctx["payment_reference"] = _text(data, "payment_reference", required=False, max_len=64)
    return ctx


# ---------------------------------------------------------------------------
# Rendering


def render_html(kind: str, data: Mapping[str, Any], language: str,
                evidence: Mapping[str, Any] | None = None) -> str:
    """Render one document to bilingual HTML (Dutch + the participant's language).

    ``kind`` is one of ``KINDS``; ``language`` is the participant's language
    (``nl`` gives Dutch + English). ``data`` follows the key list in this
    module's docstring. With ``evidence`` (see ``evidence_record``) the document
    ends with the evidence certificate page. Raises ``DocumentDataError`` when
    data is missing or wrong. The result references ``asset:`` URLs and is meant
    for ``render_pdf``, not for a browser.
    """
    context = _context(kind, data, language)
    if evidence is not None:
        context["certificate"] = _certificate_context(evidence_record(kind, data, language, evidence))
    return _environment().get_template(f"{kind}.html").render(**context)


_font_configs = threading.local()


def _font_config() -> FontConfiguration:
    # Building a FontConfiguration scans the system fonts and re-registers the
    # packaged @font-face files; keeping one per thread saves most of that on
    # every render after the first. Fontconfig objects are not shared across
    # threads. Nor across processes: WeasyPrint deletes the configuration's font
    # folder when the object goes, so a gunicorn master must never build one for
    # its workers to inherit (returnprog.warmup warms each worker instead).
    config = getattr(_font_configs, "config", None)
    if config is None:
        from weasyprint.text.fonts import FontConfiguration

        config = _font_configs.config = FontConfiguration()
    return config


def _drop_producer(document, pdf) -> None:
    # pyHanko's seal rewrites the XMP producer to "pyHanko x.y" and would append
    # itself to an existing /Info producer, leaving the two disagreeing, which
    # PDF/A forbids. Without an /Info producer both end up identical.
    pdf.info.pop("Producer", None)


def _html_to_pdf(html: str, fetcher: RestrictedURLFetcher | None = None,
                 attachments: Iterable[tuple[str, bytes, str, str]] = ()) -> bytes:
    from weasyprint import HTML, Attachment

    fetcher = fetcher or RestrictedURLFetcher()
    # Attachments come from bytes in memory (file_obj); the fetcher is the restricted one
    # all the same, so nothing about an attachment can reach the filesystem or network.
    files = [Attachment(file_obj=io.BytesIO(body), url_fetcher=fetcher, name=name,
                        description=description, relationship=relationship)
             for name, body, description, relationship in attachments]
    return HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf(
        pdf_variant=PDF_VARIANT,
        font_config=_font_config(),
        finisher=_drop_producer,
        attachments=files or None,
    )


def preload_libraries() -> None:
    """Import WeasyPrint, pyHanko and Pillow without rendering, sealing or building any
    font configuration: for a server master about to fork workers that will render (see
    :mod:`returnprog.web.warmup`). Everything else in this module imports them on first
    use, so that code that never renders does not load them."""
    import PIL.Image  # noqa: F401 - drawn signatures
    import pyhanko.pdf_utils.incremental_writer  # noqa: F401
    import pyhanko.pdf_utils.reader  # noqa: F401
    import pyhanko.sign.signers  # noqa: F401
    import pyhanko.sign.timestamps  # noqa: F401
    import pyhanko.sign.validation  # noqa: F401
    import weasyprint  # noqa: F401
    import weasyprint.text.fonts  # noqa: F401


def warm_templates() -> None:
    """Compile every document template and load every language's texts now, so that no
    participant's first document in a process waits for it."""
    for kind in KINDS:
        _environment().get_template(f"{kind}.html")
    for language in LANGUAGES:
        _texts(language)
    _oblasts()


def render_pdf(kind: str, data: Mapping[str, Any], language: str,
               evidence: Mapping[str, Any] | None = None) -> bytes:
    """Render one document to an unsealed PDF/A-3b file with embedded fonts.

    Same arguments as ``render_html``. Only the packaged stylesheet and fonts
    and ``data:`` images are loaded; nothing is fetched from the filesystem or
    the network. With ``evidence`` the last page is the evidence certificate and
    the file carries two attachments (PDF/A-3 associated files): ``CONTENT_FILE``
    (the exact bytes whose SHA-256 the certificate prints) and ``EVIDENCE_FILE``
    (the certificate's record as JSON), so the seal covers both. Seal the result
    with ``seal_pdf`` before storing it.
    """
    if evidence is None:
        return _html_to_pdf(render_html(kind, data, language))
    context = _context(kind, data, language)
    record = evidence_record(kind, data, language, evidence)
    context["certificate"] = _certificate_context(record)
    html = _environment().get_template(f"{kind}.html").render(**context)
    return _html_to_pdf(html, attachments=[
        (CONTENT_FILE, content_bytes(data), "The signed content (canonical JSON)", "Source"),
        (EVIDENCE_FILE, canonical_json(record), "Evidence of the signing (events)", "Supplement"),
    ])


# ---------------------------------------------------------------------------
# Evidence certificate
#
# What is hashed: the *signed content* is the document's data dict as given to the
# renderer, without its ``signature`` entry, serialised as canonical JSON
# (``canonical_json``: UTF-8, keys sorted, separators "," and ":", no ASCII escaping;
# dates as ISO strings). It is what the signer was shown and agreed to, it does not
# depend on WeasyPrint's output, and the exact bytes travel inside the sealed PDF as
# ``CONTENT_FILE``, so anyone can recompute ``content_sha256`` from the PDF alone
# (e.g. ``pdfdetach -save 1`` then ``sha256sum``).

CONTENT_FILE = "document-content.json"
EVIDENCE_FILE = "signing-evidence.json"
EVIDENCE_FORMAT = "returnprog-signing-evidence/1"
# The events the certificate can list, in the order they normally happen.
EVIDENCE_EVENTS = ("link_created", "code_sent", "code_failed", "code_verified", "opened",
                   "consented", "signed")
# Channels with a printed name (others are printed as recorded).
EVIDENCE_CHANNELS = ("link", "tablet", "staff", "email", "sms")
SIGNING_CHANNELS = ("link", "tablet")
CASH_HANDOVER_PLACES = ("office", "departure")
LEGAL_NATURE = ("simple electronic signature (eIDAS, Regulation (EU) No 910/2014, art. 3(10) "
                "and 25(1)); the PDF, with this record, is sealed with the service's advanced "
                "electronic seal (art. 3(26) and 36)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise DocumentDataError(f"the document data holds a value JSON cannot carry: {value!r}")


def canonical_json(value: Any) -> bytes:
    """The canonical JSON of ``value`` (keys sorted, no spaces, UTF-8): stable bytes to
    hash and to attach."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=_json_default).encode("utf-8")


def content_bytes(data: Mapping[str, Any]) -> bytes:
    """The signed content of a document: its data without the signature, as canonical JSON
    (the bytes attached as ``CONTENT_FILE`` and hashed for ``content_sha256``)."""
    if not isinstance(data, Mapping):
        raise DocumentDataError("data must be a dict")
    return canonical_json({k: v for k, v in data.items() if k != "signature"})


def content_sha256(data: Mapping[str, Any]) -> str:
    """Hex SHA-256 of ``content_bytes(data)``: the hash the evidence certificate prints."""
    return hashlib.sha256(content_bytes(data)).hexdigest()


def _recorded(value: Any, max_len: int = 300) -> str | None:
    # What a client sent (a user agent, an address) is printed as recorded, but never
    # with control characters, and never refused: the evidence must not stop a signing.
    if value is None:
        return None
    text = _CONTROL_RE.sub("\ufffd", str(value)).strip()
    return text[:max_len] or None


def _utc(value: Any, key: str) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise DocumentDataError(f"{key} must be an ISO datetime, got {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise DocumentDataError(f"{key} must be a datetime, got {value!r}")
    # The database hands back UTC without a zone (SQLite): read a naive time as UTC.
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).replace(microsecond=0)


def evidence_record(kind: str, data: Mapping[str, Any], language: str,
                    evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence record of one signing: what the certificate page prints and what is
    attached as ``EVIDENCE_FILE``; plain JSON types only.

    ``evidence`` holds ``version`` (int, the document's version), ``signer_name``,
    ``signature_method`` (drawn | typed), ``signing_channel`` (link | tablet),
    ``counsellor`` (name of the counsellor responsible, optional), ``staff_present``
    (tablet: the staff member who took the signature, optional), ``identity_document``
    (optional) and ``events``: a list of ``{"event": one of EVIDENCE_EVENTS, "at":
    datetime (naive = UTC), "ip", "user_agent", "channel", "actor"}`` (the last four
    optional). Events are sorted by time; each carries its UTC and Amsterdam time.
    """
    if not isinstance(evidence, Mapping):
        raise DocumentDataError("evidence must be a dict")
    version = evidence.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DocumentDataError("evidence.version must be a whole number from 1")
    method = evidence.get("signature_method")
    if method not in ("drawn", "typed"):
        raise DocumentDataError("evidence.signature_method must be 'drawn' or 'typed'")
    channel = evidence.get("signing_channel")
    if channel not in SIGNING_CHANNELS:
        raise DocumentDataError(f"evidence.signing_channel must be one of {', '.join(SIGNING_CHANNELS)}")
    events = []
    for i, raw in enumerate(evidence.get("events") or ()):
        if not isinstance(raw, Mapping) or raw.get("event") not in EVIDENCE_EVENTS:
            raise DocumentDataError(f"evidence.events[{i}].event must be one of {', '.join(EVIDENCE_EVENTS)}")
        at = _utc(raw.get("at"), f"evidence.events[{i}].at")
        events.append({
            "event": raw["event"],
            "at_utc": at.isoformat().replace("+00:00", "Z"),
            "at_amsterdam": at.astimezone(_DISPLAY_ZONE).isoformat(),
            "ip": _recorded(raw.get("ip"), 45),
            "user_agent": _recorded(raw.get("user_agent")),
            "channel": _recorded(raw.get("channel"), 20),
            "actor": _recorded(raw.get("actor"), 200),
        })
    # Stable: events of the same second keep the order they were given in.
    events.sort(key=lambda e: e["at_utc"])
    return {
        "format": EVIDENCE_FORMAT,
        "reference": _text(data, "reference", max_len=64),
        "kind": kind,
        "version": version,
        "language": language,
        "content_file": CONTENT_FILE,
        "content_sha256": content_sha256(data),
        "content_definition": "SHA-256 of the attached " + CONTENT_FILE + ": the document "
                              "data without the signature, canonical JSON (UTF-8, keys "
                              "sorted, separators ',' ':')",
        "signer_name": _recorded(evidence.get("signer_name"), 220),
        "signature_method": method,
        "signing_channel": channel,
        "identity_document": _recorded(evidence.get("identity_document"), 60),
        "counsellor": _recorded(evidence.get("counsellor"), 200),
        "staff_present": _recorded(evidence.get("staff_present"), 200),
        "legal_nature": LEGAL_NATURE,
        "events": events,
    }


def format_event_times(event: Mapping[str, Any]) -> tuple[str, str]:
    """An evidence event's time as printed: (Amsterdam, UTC), e.g.
    ``("02-12-2026 04:50:12 CET", "2026-12-02 03:50:12 UTC")``."""
    at = dt.datetime.fromisoformat(event["at_utc"].replace("Z", "+00:00"))
    local = at.astimezone(_DISPLAY_ZONE)
    return (local.strftime("%d-%m-%Y %H:%M:%S ") + (local.tzname() or ""),
            at.strftime("%Y-%m-%d %H:%M:%S UTC"))


def _certificate_context(record: Mapping[str, Any]) -> dict[str, Any]:
    events = []
    for e in record["events"]:
        local, utc = format_event_times(e)
        events.append({**e, "at_amsterdam": local, "at_utc_text": utc,
                       "channel_known": e["channel"] in EVIDENCE_CHANNELS})
    return {**record, "events": events}


def read_evidence(pdf_bytes: bytes) -> dict[str, Any] | None:
    """The evidence record attached to a PDF this service sealed (``EVIDENCE_FILE``), or
    None when it has none (documents sealed before certificates existed). Call it only
    on a file that verified: it parses the file without the verifier's limits."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
        names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    except (KeyError, TypeError, ValueError):
        return None
    for i in range(0, len(names) - 1, 2):
        if str(names[i]) == EVIDENCE_FILE:
            try:
                record = json.loads(names[i + 1]["/EF"]["/F"].data)
            except (KeyError, TypeError, ValueError):
                return None
            return record if isinstance(record, dict) else None
    return None


# ---------------------------------------------------------------------------
# Sealing


@dataclass(frozen=True)
class SealConfig:
    """DTenV's seal: the signer (private key + certificate) and an optional TSA."""

    signer: signers.SimpleSigner = field(repr=False)
    cert_pem: bytes = field(repr=False)
    tsa_url: str | None = None

    @property
    def subject(self) -> str:
        """The seal certificate's subject, for logs and admin pages."""
        return self.signer.signing_cert.subject.human_friendly

    @property
    def fingerprint_sha256(self) -> str:
        """Hex SHA-256 of the seal certificate (DER), to pin it in configuration."""
        return self.signer.signing_cert.sha256.hex()


def load_seal(key_path: str | os.PathLike, cert_path: str | os.PathLike,
              passphrase: str | bytes | None = None, tsa_url: str | None = None) -> SealConfig:
    """Load the production seal from a PEM/DER key and certificate.

    ``passphrase`` decrypts an encrypted key; ``tsa_url`` enables an RFC 3161
    timestamp on every seal. Raises ``SealError`` when the files cannot be read
    or the key does not belong to the certificate.
    """
    from asn1crypto import pem as asn1_pem
    from cryptography.hazmat.primitives import serialization
    from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    try:
        key = load_private_key_from_pemder(str(key_path), passphrase=passphrase)
        cert = load_cert_from_pemder(str(cert_path))
        cert_pem = Path(cert_path).read_bytes()
    except (OSError, ValueError, TypeError) as exc:
        raise SealError(f"cannot load the seal key or certificate: {exc}") from exc
    if not asn1_pem.detect(cert_pem):
        cert_pem = asn1_pem.armor("CERTIFICATE", cert.dump())
    key_public = serialization.load_der_private_key(key.dump(), password=None).public_key()
    key_spki = key_public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if key_spki != cert.public_key.dump():
        raise SealError("the seal key does not belong to the seal certificate")
    signer = signers.SimpleSigner(
        signing_cert=cert, signing_key=key, cert_registry=SimpleCertificateStore()
    )
    return SealConfig(signer=signer, cert_pem=cert_pem, tsa_url=tsa_url or None)


def seal_from_config(config, instance_dir: str | os.PathLike) -> SealConfig:
    """The service's seal as configured (``SEAL_KEY_PATH``, ``SEAL_CERT_PATH``, optional
    passphrase and TSA), else the development seal in ``instance_dir`` (production
    refuses to start without a configured one: :mod:`returnprog.safety`)."""
    if config.get("SEAL_KEY_PATH") and config.get("SEAL_CERT_PATH"):
        return load_seal(config["SEAL_KEY_PATH"], config["SEAL_CERT_PATH"],
                         config.get("SEAL_KEY_PASSPHRASE"), config.get("SEAL_TSA_URL"))
    return ensure_dev_seal(instance_dir)


def ensure_dev_seal(instance_dir: str | os.PathLike) -> SealConfig:
    """Return the development seal in ``instance_dir``, creating it on first use.

    Generates a P-256 key (``seal-key.pem``, mode 0600) and a self-signed
    certificate (``seal-cert.pem``, 0600 too) whose subject says it is a development seal
    and not for production. Safe to call from several processes at once.
    Refuses to overwrite when only one of the two files exists.
    """
    directory = Path(instance_dir)
    if not directory.is_dir():
        private_dir(directory)
    key_path, cert_path = directory / "seal-key.pem", directory / "seal-cert.pem"
    with os.fdopen(open_private(directory / ".seal.lock", os.O_RDWR | os.O_CREAT), "a+") as lock:
        # Two workers starting together must not each generate a different key.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if key_path.exists() != cert_path.exists():
                present = key_path if key_path.exists() else cert_path
                raise SealError(
                    f"only {present.name} exists in {directory}; refusing to generate a new "
                    "seal over it. Restore the missing file or remove both."
                )
            if not key_path.exists():
                _generate_dev_seal(key_path, cert_path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return load_seal(key_path, cert_path)


def _generate_dev_seal(key_path: Path, cert_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, DEV_SEAL_COMMON_NAME),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "returnprog development"),
    ])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=True, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(key_path, key_pem, exclusive=True)
    # The certificate is public, but everything under instance/ is 0600 (one rule to check).
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), exclusive=True)


@lru_cache(maxsize=1)
def _pdfa3_signer_class() -> type:
    # Defined on first seal, not at import: pyHanko loads only where documents are sealed.
    from pyhanko.sign import signers
    from pyhanko.sign.signers import constants as signer_constants

    class _PdfA3Signer(signers.PdfSigner):
        # pyHanko declares the ISO/TS 32002 extension for ECDSA P-256 and with it
        # bumps the catalog to PDF 2.0, which contradicts PDF/A-3 (a PDF 1.7
        # profile). The ESIC extension alone announces a PAdES signature on 1.7.
        def register_extensions(self, pdf_out, *, md_algorithm: str) -> None:
            pdf_out.ensure_output_version(version=(1, 7))
            pdf_out.register_extension(signer_constants.ESIC_EXTENSION_1)

    return _PdfA3Signer


def seal_pdf(pdf_bytes: bytes, seal: SealConfig, *, reason: str, location: str = "DTenV") -> bytes:
    """Seal a rendered PDF with DTenV's organisational seal and return the sealed bytes.

    Adds one invisible PAdES certification signature (no later changes
    permitted) in an incremental update, so the PDF/A-3b content is kept
    byte-for-byte. With ``seal.tsa_url`` set the seal carries an RFC 3161
    timestamp. ``reason`` is recorded in the signature, e.g.
    ``"Deelnameverklaring VRP-2026-000123"``. Raises ``SealError`` on failure.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.timestamps import HTTPTimeStamper

    metadata = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD_NAME,
        reason=reason,
        location=location,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
    )
    timestamper = HTTPTimeStamper(seal.tsa_url, timeout=15) if seal.tsa_url else None
    key = (seal.fingerprint_sha256, seal.tsa_url)

    def sign(reserved: int | None) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes))
        signer = _pdfa3_signer_class()(
            metadata, seal.signer, timestamper=timestamper,
            new_field_spec=SigFieldSpec(sig_field_name=SEAL_FIELD_NAME),
        )
        return signer.sign_pdf(writer, bytes_reserved=reserved).getvalue()

    try:
        reserved = _seal_reservations.get(key)
        try:
            sealed = sign(reserved)
        except SigningError:
            if reserved is None:
                raise
            # A timestamp token larger than the first one: let pyHanko size it afresh.
            _seal_reservations.pop(key, None)
            reserved, sealed = None, sign(None)
        if reserved is None and (space := _reserved_space(sealed)) is not None:
            _seal_reservations[key] = space
        return sealed
    except Exception as exc:
        raise SealError(f"sealing failed: {exc}") from exc


# Space for the signature container, per seal certificate and TSA. pyHanko otherwise
# sizes it on every seal by signing once in a dry run (and, with a TSA, by asking it
# for a dummy timestamp): 40% of a seal's time for the same answer each time. The
# first seal of a process measures it, with pyHanko's margin for a varying token.
_seal_reservations: dict[tuple[str, str | None], int] = {}
_BYTE_RANGE_RE = re.compile(rb"/ByteRange\s*\[\s*0\s+(\d+)\s+(\d+)\s+\d+\s*\]")


def _reserved_space(sealed: bytes) -> int | None:
    # The signature is the gap between the two signed ranges, a <hex string>: the
    # hex digits between the brackets are what pyHanko reserved.
    matches = _BYTE_RANGE_RE.findall(sealed)
    if len(matches) != 1:
        return None
    gap = int(matches[0][1]) - int(matches[0][0]) - 2
    return gap if gap > 0 and gap % 2 == 0 else None


# ---------------------------------------------------------------------------
# Verification

REASON_UNREADABLE = "the file is not a readable PDF"
REASON_NO_SEAL = "the file has no seal"
REASON_SEVERAL_SEALS = "the file carries more than one seal; the service seals each document once"
REASON_DAMAGED = "the seal is damaged and cannot be checked"
REASON_CHANGED = "the file was changed after it was sealed"
REASON_APPENDED = "the file was changed after it was sealed: content was added after the seal"
REASON_BAD_SIGNATURE = "the seal's signature value is not valid: the seal was damaged or forged"
REASON_UNTRUSTED = "the seal was made with a key the service does not trust"
REASON_CERT_INVALID = "the seal certificate is not valid at this time (expired, not yet valid or not usable for sealing)"
REASON_TIMESTAMP = "the seal's timestamp cannot be verified"
REASON_NOT_REGISTERED = "the document is not in the register"


@dataclass
class VerificationResult:
    """Outcome of ``verify_pdf``: valid or not, why not, and the registered document.

    ``reasons`` holds the ``REASON_*`` sentences, empty exactly when ``valid``.
    ``document`` is what ``register_lookup`` returned for ``sha256`` (the hash
    of the whole file). ``sealed_by`` and ``sealed_at`` are what the seal
    claims (subject of its certificate; timestamp time, else the signer's
    clock) and mean something only when ``valid``.
    """

    valid: bool
    reasons: list[str] = field(default_factory=list)
    document: dict | None = None
    sha256: str | None = None
    sealed_by: str | None = None
    sealed_at: dt.datetime | None = None


def _certs_from_pem_list(pem_list: Iterable[bytes | str]) -> list[asn1_x509.Certificate]:
    from asn1crypto import pem as asn1_pem
    from asn1crypto import x509 as asn1_x509

    certs = []
    for item in pem_list or ():
        data = item.encode("ascii") if isinstance(item, str) else bytes(item)
        if asn1_pem.detect(data):
            for _, _, der in asn1_pem.unarmor(data, multiple=True):
                certs.append(asn1_x509.Certificate.load(der))
        else:
            certs.append(asn1_x509.Certificate.load(data))
    return certs


def verify_pdf(pdf_bytes: bytes, seal_cert_pem_list: Iterable[bytes | str],
               register_lookup: Callable[[str], dict | None], *,
               tsa_cert_pem_list: Iterable[bytes | str] = ()) -> VerificationResult:
    """Check that a PDF is exactly a document DTenV sealed and registered.

    Valid only when the file holds exactly one seal, the seal is intact and
    cryptographically valid, it was made with one of the trusted seal
    certificates (``seal_cert_pem_list``; these are the trust anchors), it
    covers the whole file (nothing appended after sealing), any timestamp
    verifies against ``tsa_cert_pem_list``, and the SHA-256 of the whole file is
    known to ``register_lookup`` (which returns the registered document as a
    dict, or None). Never raises on bad input: unreadable or tampered files give
    ``valid=False`` with the reasons. Exceptions from ``register_lookup`` and
    unreadable trust configuration are not swallowed. Keep retired seal
    certificates in ``seal_cert_pem_list`` so documents sealed before a key
    rotation keep verifying.
    """
    return complete_with_register(
        check_seal(pdf_bytes, seal_cert_pem_list, tsa_cert_pem_list=tsa_cert_pem_list),
        register_lookup)


def check_seal(pdf_bytes: bytes, seal_cert_pem_list: Iterable[bytes | str], *,
               tsa_cert_pem_list: Iterable[bytes | str] = ()) -> VerificationResult:
    """The cryptographic half of ``verify_pdf``, without the register: parse the file and
    check its one seal against the trusted certificates. ``valid`` stays False (only the
    register can make a file valid); ``reasons`` lists what is already wrong, and
    ``sha256`` is set once the file at least starts like a PDF. This is the part that may
    cost time and memory on a hostile file, so ``returnprog.verifier`` runs it in a
    bounded child process and completes the answer with ``complete_with_register``.
    A ``MemoryError`` is not read as "damaged": it propagates, so the caller can say the
    file could not be checked.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader

    trusted = _certs_from_pem_list(seal_cert_pem_list)
    tsa_roots = _certs_from_pem_list(tsa_cert_pem_list)
    if not trusted:
        raise ValueError("verify_pdf needs at least one trusted seal certificate")

    if isinstance(pdf_bytes, (bytearray, memoryview)):
        pdf_bytes = bytes(pdf_bytes)
    if not isinstance(pdf_bytes, bytes) or not pdf_bytes.startswith(b"%PDF-"):
        return VerificationResult(valid=False, reasons=[REASON_UNREADABLE])

    result = VerificationResult(valid=False, sha256=hashlib.sha256(pdf_bytes).hexdigest())
    try:
        reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=True)
        # Touch the document structure here so a broken file is reported as
        # unreadable rather than as a damaged seal.
        reader.root.get("/Pages")
    except MemoryError:
        raise
    except Exception:
        result.reasons.append(REASON_UNREADABLE)
        return result

    try:
        seals = reader.embedded_signatures
    except MemoryError:
        raise
    except Exception:
        # The signature dictionary or its CMS blob does not parse.
        log.info("reading the embedded seal raised", exc_info=True)
        seals = None
        result.reasons.append(REASON_DAMAGED)

    if seals is None:
        pass
    elif not seals:
        result.reasons.append(REASON_NO_SEAL)
    elif len(seals) > 1:
        result.reasons.append(REASON_SEVERAL_SEALS)
    else:
        result.reasons.extend(_check_seal(seals[0], trusted, tsa_roots, result))
    return result


def complete_with_register(result: VerificationResult,
                           register_lookup: Callable[[str], dict | None]) -> VerificationResult:
    """Finish a ``check_seal`` answer with the register: look the file's SHA-256 up (unless
    the file was not even readable), attach the registered document or add
    ``REASON_NOT_REGISTERED``, and set ``valid``. Exceptions of the lookup propagate."""
    if result.sha256 is None or REASON_UNREADABLE in result.reasons:
        result.valid = False
        return result
    document = register_lookup(result.sha256)
    if document is None:
        result.reasons.append(REASON_NOT_REGISTERED)
    else:
        result.document = document
    result.valid = not result.reasons
    return result


def _check_seal(seal, trusted: list[asn1_x509.Certificate], tsa_roots: list[asn1_x509.Certificate],
                result: VerificationResult) -> list[str]:
    from pyhanko.sign.validation import (
        KeyUsageConstraints,
        SignatureCoverageLevel,
        validate_pdf_signature,
    )
    from pyhanko_certvalidator import ValidationContext

    if seal.sig_object_type != "/Sig":
        return [REASON_DAMAGED]
    trusted_fingerprints = {cert.sha256 for cert in trusted}
    # The configured seal certificates are the only trust anchors: no system
    # roots and no fetching of revocation data or missing certificates.
    signer_context = ValidationContext(trust_roots=trusted, allow_fetching=False)
    ts_context = ValidationContext(trust_roots=tsa_roots or trusted, allow_fetching=False)
    try:
        status = validate_pdf_signature(
            seal,
            signer_validation_context=signer_context,
            ts_validation_context=ts_context,
            key_usage_settings=KeyUsageConstraints(
                key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
            ),
            # Anything after the signed revision already makes the file
            # invalid (coverage check below), so the diff analysis adds nothing.
            skip_diff=True,
        )
    except MemoryError:
        raise
    except Exception:
        log.info("seal validation raised", exc_info=True)
        return [REASON_DAMAGED]

    reasons = []
    result.sealed_by = status.signing_cert.subject.human_friendly
    result.sealed_at = getattr(status, "signer_reported_dt", None)
    if not status.intact:
        reasons.append(REASON_CHANGED)
    elif not status.valid:
        reasons.append(REASON_BAD_SIGNATURE)
    if status.signing_cert.sha256 not in trusted_fingerprints:
        reasons.append(REASON_UNTRUSTED)
    elif status.intact and status.valid and not status.trusted:
        # pyHanko's "trusted" also folds in intact/valid; only a sound
        # signature by our own certificate can fail here for certificate reasons.
        reasons.append(REASON_CERT_INVALID)
    if status.intact and status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        reasons.append(REASON_APPENDED)
    ts = status.timestamp_validity
    if ts is not None:
        if not (ts.intact and ts.valid and ts.trusted):
            reasons.append(REASON_TIMESTAMP)
        else:
            result.sealed_at = ts.timestamp
    return reasons


# ---------------------------------------------------------------------------
# Access request summary (issue 16, AVG art. 15)

ACCESS_SUMMARY_TEMPLATE = "access_summary.html"


def render_access_summary(context: Mapping[str, Any], language: str) -> bytes:
    """The readable overview of an access request's package as a PDF/A-3b, Dutch and the
    participant's language, through the same restricted fetcher and autoescaping
    templates as the signed documents. ``context`` is plain, already redacted data
    (:func:`returnprog.services.access_requests.summary_context`); not sealed: the package's
    SHA-256 is in the audit chain."""
    if language not in LANGUAGES:
        raise DocumentDataError(f"unknown language {language!r}")
    lang2 = _SECOND_LANGUAGE[language]
    html = _environment().get_template(ACCESS_SUMMARY_TEMPLATE).render(
        **context, lang2=lang2, t1=_translator("nl"), t2=_translator(lang2))
    return _html_to_pdf(html)
