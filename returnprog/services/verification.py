"""Use case: is this PDF exactly a document the service sealed and registered?

Anyone may ask (the public verification page, ``flask verify-pdf``). The answer is valid
only when ``documents.verify_pdf`` finds one intact seal by a trusted seal certificate
covering the whole file *and* the file's SHA-256 is in the register (the ``document``
table).

The parsing and the cryptography run in a bounded child process (``returnprog.verifier``:
CPU, memory and wall-clock limits, a machine-wide cap on concurrent checks); the register
lookup by hash runs here, in the caller's process, after the child has answered.

Anonymous checks from the public page (channel ``web``) are counted per day and verdict in
``metric_counter`` (``verify.web.valid`` / ``.invalid`` / ``.unchecked`` / ``.busy``), not
written to the audit trail: anyone may upload, and an audit event per upload let any
visitor grow the chain and queue on its head. Checks by an operator (channel ``cli``) keep
their audit event, without personal data: no names, no file name, no client address —
only the verdict, the reasons, the hash and the registered document's id.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from sqlalchemy import select
from sqlmodel import Session

from .. import audit, documents, verifier
from ..models import Case, Document
from . import metrics
from .uow import atomic, begin_write

# Counter names per verdict of an anonymous check (see ``metrics``).
COUNTER_PREFIX = "verify."
# Channels counted per day and verdict rather than audited: the public page, and the API
# (any token holder may upload, as anyone may on the page).
COUNTED_CHANNELS = ("web", "api")


@dataclass
class Verification:
    """The answer: ``valid``, the reasons why not (``documents.REASON_*`` sentences, empty
    exactly when valid), and what the register says about the file."""

    valid: bool
    reasons: list[str] = field(default_factory=list)
    sha256: str | None = None
    # From the register (when the hash is known): reference, kind, version, language,
    # signer_name, signed_at, signature_method, signing_channel, document_id.
    document: dict | None = None
    sealed_by: str | None = None
    sealed_at: dt.datetime | None = None
    # Set when the check was cut short by a limit (``verifier.STOPPED_*``).
    stopped: str | None = None
    # The evidence record sealed into the file (``documents.read_evidence``: the events of
    # the signing, the content hash), read only from a valid file; None for documents
    # sealed before certificates existed.
    evidence: dict | None = None


def register_lookup(session: Session) -> Callable[[str], dict | None]:
    """A lookup of the register by SHA-256 (hex) for ``documents.verify_pdf``."""

    def lookup(sha256: str) -> dict | None:
        if not isinstance(sha256, str) or len(sha256) != 64:
            return None
        row = session.execute(
            select(Document.id, Document.kind, Document.version, Document.language,
                   Document.signer_name, Document.signed_at, Document.signature_method,
                   Document.signing_channel, Document.case_id, Case.reference)
            .join(Case, Case.id == Document.case_id)
            .where(Document.sha256 == sha256.lower())).one_or_none()
        if row is None:
            return None
        return {"document_id": row.id, "case_id": row.case_id, "reference": row.reference,
                "kind": row.kind, "version": row.version, "language": row.language,
                "signer_name": row.signer_name, "signed_at": row.signed_at,
                "signature_method": row.signature_method,
                "signing_channel": row.signing_channel}

    return lookup


def trusted_cert_pems(seal=None, extra_paths: Iterable[str] = ()) -> list[bytes]:
    """The seal certificates the service trusts: the current seal's (a
    ``documents.SealConfig``) and any retired ones kept so that documents sealed before a
    key rotation keep verifying (``SEAL_TRUSTED_CERT_PATHS`` in the configuration)."""
    pems = [seal.cert_pem] if seal is not None else []
    if isinstance(extra_paths, (str, Path)):
        extra_paths = [extra_paths]
    for path in extra_paths or ():
        pems.append(Path(path).read_bytes())
    if not pems:
        raise ValueError("no trusted seal certificate is configured")
    return pems


@atomic
def verify(session: Session, pdf_bytes: bytes, trusted_cert_pems: Iterable[bytes | str], *,
           channel: str = "web", tsa_cert_pems: Iterable[bytes | str] = (),
           limits: verifier.Limits | None = None,
           slot: verifier.Slot | None = None) -> Verification:
    """Verify ``pdf_bytes`` against the trusted seal certificates and the register.

    The seal is checked in a bounded child process (``limits``; the defaults of
    ``verifier.Limits`` when None); a file that exceeds them is answered ``valid=False``
    with ``verifier.REASON_UNCHECKED``. Channel ``web`` (anonymous) and ``api`` bump a
    daily counter per verdict; channel ``cli`` (an operator) records the check in the audit trail.
    ``slot``: a check slot the caller claimed already (``verifier.claim``); without one,
    ``verifier.Busy`` is raised (after counting it) when every slot of the machine is
    taken. Never raises on bad input: garbage, truncated or tampered files are answered
    ``valid=False`` with the reasons.
    """
    data = bytes(pdf_bytes) if isinstance(pdf_bytes, (bytes, bytearray, memoryview)) else b""
    try:
        checked = verifier.check(data, list(trusted_cert_pems), list(tsa_cert_pems),
                                 limits or verifier.Limits(), slot=slot)
    except verifier.Busy:
        if channel in COUNTED_CHANNELS:
            count_busy(session, channel)
        raise
    # The register is read here, in this process: the child never sees the database.
    # A check cut short says nothing about the file, so the register is not consulted.
    result = (checked.result if checked.stopped else
              documents.complete_with_register(checked.result, register_lookup(session)))
    answer = Verification(valid=result.valid, reasons=list(result.reasons),
                          sha256=result.sha256, document=result.document,
                          sealed_by=result.sealed_by if result.valid else None,
                          sealed_at=result.sealed_at if result.valid else None,
                          stopped=checked.stopped)
    if answer.valid:
        # A valid file is byte for byte one the service sealed and registered, so reading
        # it here, outside the bounded child, parses nothing a stranger made.
        answer.evidence = documents.read_evidence(data)
    if channel in COUNTED_CHANNELS:
        verdict = "valid" if answer.valid else ("unchecked" if answer.stopped else "invalid")
        metrics.bump(session, f"{COUNTER_PREFIX}{channel}.{verdict}")
        return answer
    doc = answer.document or {}
    begin_write(session)
    audit.append(session, actor=f"verification:{channel}", action="verify_document",
                 case_id=doc.get("case_id"),
                 details={"channel": channel, "valid": answer.valid, "reasons": answer.reasons,
                          "sha256": answer.sha256, "document_id": doc.get("document_id"),
                          "size": len(data)})
    session.commit()
    return answer


def count_busy(session: Session, channel: str = "web", *, by: int = 1) -> None:
    """Count ``by`` uploads refused because every check slot was taken (refused before
    the upload was even read, see ``web.verify.EarlyBusy``)."""
    metrics.bump(session, f"{COUNTER_PREFIX}{channel}.busy", by=by)


def describe(answer: Verification) -> list[str]:
    """The answer as plain lines of text (for the command line and logs of the operator)."""
    if answer.valid:
        doc = answer.document or {}
        signed_at = doc.get("signed_at")
        if isinstance(signed_at, dt.datetime):
            if signed_at.tzinfo is None:
                signed_at = signed_at.replace(tzinfo=dt.timezone.utc)
            signed_at = signed_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        how = ", ".join(v for v in (doc.get("signature_method"), doc.get("signing_channel")) if v)
        return [f"VALID: case {doc.get('reference')}, {doc.get('kind')} version {doc.get('version')}",
                f"  signed by {doc.get('signer_name')} at {signed_at}" + (f" ({how})" if how else ""),
                f"  sealed by {answer.sealed_by}",
                f"  sha256 {answer.sha256}"] + describe_evidence(answer.evidence)
    lines = ["INVALID: " + "; ".join(answer.reasons)]
    lines += [f"  - {reason}" for reason in answer.reasons]
    if answer.sha256:
        lines.append(f"  sha256 {answer.sha256}")
    return lines


def describe_evidence(evidence: dict | None) -> list[str]:
    """The evidence record of a valid file as plain lines: the content hash and each event
    of the signing with its UTC and Amsterdam time, address, channel and user agent (the
    same list the certificate page prints)."""
    if not evidence:
        return ["  evidence: none sealed in this file (issued before evidence certificates)"]
    lines = [f"  content sha256 {evidence.get('content_sha256')} ({evidence.get('content_file')})",
             f"  counsellor {evidence.get('counsellor') or '-'}",
             "  events:"]
    for event in evidence.get("events") or ():
        local, utc = documents.format_event_times(event)
        who = f" by {event['actor']}" if event.get("actor") else ""
        lines.append(f"    - {event['event']}{who}: {utc} ({local}), ip {event.get('ip') or '-'}, "
                     f"channel {event.get('channel') or '-'}, "
                     f"user agent {event.get('user_agent') or '-'}")
    return lines
