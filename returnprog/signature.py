"""What counts as a signature the service accepts: the one check, and the one size limit.

A signing request used to be checked three times (web page, signing service, PDF renderer)
against three size limits (400,000 characters, 1 MB, 2 MB). Now ``check`` runs once per
signing, in the signing service; the web layer only compares the submitted field with
``MAX_SIGNATURE_IMAGE`` before anything else, and the renderer accepts the ``CheckedPng``
that ``check`` returns without decoding it again (it still checks a plain string itself,
for callers that render documents directly).

Flask-free and light (Pillow only), so the web layer and the services can both import it.
"""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

from .characters import control_character

# The drawn signature travels as a ``data:image/png;base64,...`` URI; this many characters
# is far above what the signature pad sends (a 900x300 canvas is some 30,000) and bounds
# the work of decoding it.
MAX_SIGNATURE_IMAGE = 400_000
MAX_PIXELS = 4_000_000
MAX_TYPED_NAME = 200
PNG_PREFIX = "data:image/png;base64,"

# Problem codes, by field; the pages turn them into sentences in the signer's language.
CONSENT, DRAWN, TOO_LARGE, TYPED, TYPED_LONG, TYPED_CHARS, TYPED_MISMATCH = (
    "consent", "drawn", "too_large", "typed", "typed_long", "typed_chars", "typed_mismatch")


class CheckedPng(str):
    """A PNG data URI that passed ``read_png`` (rebuilt from its decoded bytes)."""


class SignatureImageError(ValueError):
    """A drawn signature that is not one; ``code`` is ``DRAWN`` or ``TOO_LARGE``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def too_large(uri: str | None) -> bool:
    """Whether a submitted drawing exceeds the limit (the web layer's request size check)."""
    return uri is not None and len(uri) > MAX_SIGNATURE_IMAGE


def read_png(uri: object, *, require_stroke: bool = True) -> CheckedPng:
    """The drawing as a ``CheckedPng``: a PNG data URI within the limit, decodable, not too
    many pixels and (unless ``require_stroke`` is false) with at least one visible stroke
    on white paper. Raises ``SignatureImageError`` otherwise."""
    from PIL import Image  # Pillow loads where a drawing is checked, not with the app

    if not isinstance(uri, str) or not uri.startswith(PNG_PREFIX):
        raise SignatureImageError(DRAWN, "the signature must be a data:image/png;base64 URI")
    if too_large(uri):
        raise SignatureImageError(TOO_LARGE, f"the signature image is larger than "
                                             f"{MAX_SIGNATURE_IMAGE} characters")
    try:
        raw = base64.b64decode(uri[len(PNG_PREFIX):], validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != "PNG" or image.width * image.height > MAX_PIXELS:
                raise SignatureImageError(DRAWN, "the signature is not a PNG of a usable size")
            drawing = image.convert("RGBA")
    except SignatureImageError:
        raise
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        raise SignatureImageError(DRAWN, "the signature is not a readable PNG image") from None
    if require_stroke:
        # Laid on white paper, is anything clearly darker than the paper?
        paper = Image.new("RGBA", drawing.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(paper, drawing).convert("L")
        if flat.point(lambda v: 255 if v < 200 else 0).getbbox() is None:
            raise SignatureImageError(DRAWN, "nothing was drawn")
    return CheckedPng(PNG_PREFIX + base64.b64encode(raw).decode("ascii"))


@dataclass(frozen=True)
class Signature:
    """A checked signature: how it was given, the typed name or the checked drawing."""

    method: str
    typed_name: str | None
    image: CheckedPng | None


def problems(method: str | None, typed_name: str | None, image_data_uri: str | None,
             consent: bool, registered: tuple[str, ...] = ()) -> tuple[Signature | None,
                                                                    dict[str, str]]:
    """Check a signature once: the ``Signature`` when it is acceptable, else ``None`` and
    every problem as field -> problem code (``consent``, ``signature``, ``typed_name``).
    A missing ``method`` is taken from what was given (a drawing, else a typed name).
    A typed name must be one of the ``registered`` forms of the signer's name
    (:mod:`returnprog.names`); without them only its characters are checked."""
    from . import names
    errors: dict[str, str] = {}
    if not consent:
        errors["consent"] = CONSENT
    drawing = (image_data_uri or "").strip()
    typed = (typed_name or "").strip()
    if method not in ("drawn", "typed"):
        method = "drawn" if drawing else "typed"
    image = None
    if method == "drawn":
        try:
            image = read_png(drawing)
        except SignatureImageError as exc:
            errors["signature"] = exc.code
    elif not typed:
        errors["typed_name"] = TYPED
    elif len(typed) > MAX_TYPED_NAME:
        errors["typed_name"] = TYPED_LONG
    elif control_character(typed) is not None or not names.letters_only(typed):
        errors["typed_name"] = TYPED_CHARS
    elif registered and not names.matches(typed, registered):
        errors["typed_name"] = TYPED_MISMATCH
    if errors:
        return None, errors
    # The name as typed, white space tidied: what the document prints as the signature.
    return Signature(method, " ".join(typed.split()) if method == "typed" else None, image), {}
