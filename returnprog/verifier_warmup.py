"""Imported only by the fork server of ``returnprog.verifier``: check one freshly sealed
blank PDF there, so that every check process forked from it starts with pyHanko's,
asn1crypto's and the crypto backend's lazy state already built (measured: the first check
in a cold child takes ~55–70 ms, later ones ~20–30 ms). Best effort: a failure here only
costs the children that time."""
from __future__ import annotations

import io
import logging
import tempfile


def warm() -> None:
    """Seal a blank page with a throwaway development seal and check it once."""
    import pypdf

    from . import documents

    with tempfile.TemporaryDirectory(prefix="returnprog-verify-warm-") as folder:
        seal = documents.ensure_dev_seal(folder)
        writer = pypdf.PdfWriter()
        writer.add_blank_page(595, 842)
        buf = io.BytesIO()
        writer.write(buf)
        sealed = documents.seal_pdf(buf.getvalue(), seal, reason="warm-up")
        documents.check_seal(sealed, [seal.cert_pem])


try:
    warm()
except Exception:  # noqa: BLE001 - warming is an optimisation, never a failure
    logging.getLogger(__name__).warning("warming the verification fork server failed",
                                        exc_info=True)
