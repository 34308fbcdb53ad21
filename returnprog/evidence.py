"""Evidence files and case notes: the rules, without Flask or a database.

What an uploaded file is, is decided by its CONTENT, never by the name or the type the
browser sent: the first bytes must be those of a PDF, a PNG or a JPEG, and the file must
open as one (a PDF with pypdf, an image with Pillow, each imported only when a file is
checked). A file whose content is one type but which claims another (a PDF named
``letter.png`` or sent as ``image/png``) is refused rather than relabelled: the person
uploading it is told, and nothing ambiguous is stored.

The uploader's file name is never trusted: :func:`safe_filename` keeps a short, printable,
path-free name for display; URLs use the row's id only.
"""
from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass

from .characters import control_character
from .glossary import N_

# The kinds of evidence, in the order the forms offer them, with their staff-UI labels
# (msgids; Dutch in the nl catalogue).
EVIDENCE_KINDS: dict[str, str] = {
    "ind_letter": N_("IND letter"),
    "boarding_pass": N_("Boarding pass"),
    "border_crossing": N_("Proof of border crossing"),
    "brp_deregistration": N_("Proof of BRP deregistration"),
    "other": N_("Other evidence"),
}
# The kinds a form may attach: the IND confirmation takes the IND's letter; the departure
# any proof of having left.
IND_KINDS = ("ind_letter", "other")
DEPARTURE_KINDS = ("boarding_pass", "border_crossing", "brp_deregistration", "other")

PDF, PNG, JPEG = "application/pdf", "image/png", "image/jpeg"
CONTENT_TYPES = (PDF, PNG, JPEG)
EXTENSIONS = {PDF: "pdf", PNG: "png", JPEG: "jpg"}
_CLAIMS = {".pdf": PDF, ".png": PNG, ".jpg": JPEG, ".jpeg": JPEG, ".jpe": JPEG}

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# Besides the file, a multipart upload carries the form's other fields and the part
# headers: the request may be this much larger than the file.
MULTIPART_SLACK = 64 * 1024
# The most pixels an image may have: Pillow's own bomb limit is ~179 megapixels; a photo
# of a letter or a boarding pass needs far fewer, and a decompression bomb is refused early.
MAX_PIXELS = 60_000_000

NOTE_MAX_CHARS = 5000
NOTES_ON_PAGE = 5
FILES_ON_PAGE = 20


class Refused(ValueError):
    """An upload that is not acceptable: ``code`` is a message code of
    :data:`returnprog.messages.MESSAGES`, ``params`` its parameters."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


@dataclass(frozen=True)
class Checked:
    """An upload that passed: its real content type and a safe display name."""

    content_type: str
    filename: str


def sniff(data: bytes) -> str | None:
    """The content type the first bytes of ``data`` show (PDF, PNG, JPEG), else None."""
    head = data[:1024]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    # PDF readers accept the header within the first KB; the project's own check does too.
    if b"%PDF-" in head:
        return PDF
    return None


def claimed_type(filename: str | None, mimetype: str | None) -> set[str]:
    """The content types the upload claims by its name's extension and its declared type
    (empty when it claims none we know, e.g. ``application/octet-stream``)."""
    claims = set()
    ext = ("." + filename.rsplit(".", 1)[-1].lower()) if filename and "." in filename else ""
    if ext in _CLAIMS:
        claims.add(_CLAIMS[ext])
    mime = (mimetype or "").split(";")[0].strip().lower()
    if mime in ("image/jpg", "image/pjpeg"):
        mime = JPEG
    if mime in CONTENT_TYPES:
        claims.add(mime)
    return claims


def _opens(data: bytes, content_type: str) -> bool:
    try:
        if content_type == PDF:
            import pypdf  # noqa: PLC0415 - heavy, only when a PDF is checked

            reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                return False
            return len(reader.pages) >= 1
        from PIL import Image  # noqa: PLC0415 - heavy, only when an image is checked

        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                return False
            expected = "PNG" if content_type == PNG else "JPEG"
            if image.format != expected:
                return False
            image.verify()
        return True
    except Exception:  # noqa: BLE001 - any failure to parse means "not a readable file"
        return False


def check_upload(data: bytes, filename: str | None, mimetype: str | None,
                 max_bytes: int) -> Checked:
    """Accept ``data`` as evidence or raise :class:`Refused` saying why: empty, too
    large, not a PDF/PNG/JPEG by content, claiming another type than its content, or
    not opening as what it is."""
    if not data:
        raise Refused("evidence.empty")
    if len(data) > max_bytes:
        raise Refused("evidence.too_large", max=max(1, max_bytes // (1024 * 1024)))
    actual = sniff(data)
    if actual is None:
        raise Refused("evidence.wrong_type")
    claims = claimed_type(filename, mimetype)
    if claims and claims != {actual}:
        raise Refused("evidence.type_mismatch", kinds=EXTENSIONS[actual].upper())
    if not _opens(data, actual):
        raise Refused("evidence.unreadable", kinds=EXTENSIONS[actual].upper())
    return Checked(actual, safe_filename(filename, actual))


def safe_filename(filename: str | None, content_type: str) -> str:
    """A display name from the uploader's file name: no directories, no control or
    format characters, no quotes or path separators, at most 100 characters, and the
    extension of what the content really is."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if control_character(ch) is None
                   and unicodedata.category(ch) not in ("Cf", "Cs", "Co", "Zl", "Zp"))
    name = re.sub(r'["<>:|?*;%]', "_", name).strip(" .")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = stem[:90].strip(" .") or "evidence"
    return f"{stem}.{EXTENSIONS[content_type]}"
