"""Checkpoints of the audit chain kept outside the database.

The chain alone cannot tell a truncated tail or a rewrite that re-hashes every event after
the edit from an honest history: whoever can write the database can also rewrite the head
row. A checkpoint is the chain's head (sequence number and hash) at some moment, signed
with the service's seal key and appended to a file outside the database
(``AUDIT_CHECKPOINT_PATH``, by default ``instance/audit-checkpoints.jsonl``; in production
a path on other storage, shipped off the machine). :func:`returnprog.audit.verify` then
requires the chain to pass through every checkpoint with the same hash: truncating below a
checkpoint or rewriting anything before one is detected. Events after the last checkpoint
are protected by the chain only — the scheduler writes a checkpoint every
``AUDIT_CHECKPOINT_SECONDS`` to keep that window short.

The checkpoint's time rests on the service's own clock; an RFC 3161 timestamp over the
statement would remove that trust and is the next step (not built: no TSA is configured
anywhere yet).

Flask-free: callers pass the session, the key and the certificates.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sqlmodel import Session

from .models import AuditHead

FORMAT = "returnprog.audit-checkpoint/1"
FILE_NAME = "audit-checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the chain of database ``chain`` had ``seq`` events ending in
    ``hash`` at ``at``"."""

    seq: int
    hash: str
    at: str
    cert_sha256: str
    chain: str


@dataclass
class CheckpointFile:
    """What :func:`read` found: the checkpoints whose signature holds, and a sentence for
    each line that does not (a forged or damaged checkpoint is itself a finding)."""

    checkpoints: list[Checkpoint]
    problems: list[str]
    # Checkpoints of other databases sharing the file (a test run, a former database).
    others: int = 0

    @property
    def latest(self) -> Checkpoint | None:
        """The checkpoint covering the most events."""
        return max(self.checkpoints, key=lambda c: c.seq, default=None)


def _statement(seq: int, hash_: str, at: str, cert_sha256: str, chain: str) -> bytes:
    return json.dumps({"format": FORMAT, "seq": seq, "hash": hash_, "at": at,
                       "cert_sha256": cert_sha256, "chain": chain}, sort_keys=True,
                      separators=(",", ":")).encode()


def chain_name(config) -> str:
    """Which database's chain a checkpoint is about: ``AUDIT_CHAIN_NAME``, else the
    database URL without its password. Taken from configuration, not from the data, so
    rewriting the database cannot make its checkpoints look like another database's."""
    if config.get("AUDIT_CHAIN_NAME"):
        return str(config["AUDIT_CHAIN_NAME"])
    from sqlalchemy.engine import make_url

    url = make_url(str(config.get("DATABASE_URL") or ""))
    return url.render_as_string(hide_password=True).replace(":***@", "@")


# ``cryptography`` is imported where checkpoints are signed or read, not with the module:
# every ``flask`` command loads this one (returnprog.cli), few of them anchor.

def _sign(key, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise TypeError("the seal key must be an EC or RSA key")


def _verify(public_key, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding

    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def write(session: Session, path: str | os.PathLike, key, cert_pem: bytes, *,
          now: dt.datetime, chain: str) -> Checkpoint | None:
    """Append a checkpoint of the chain's current head to ``path``, signed with ``key``
    (the seal's private key, a ``cryptography`` key) whose certificate is ``cert_pem``;
    ``chain`` names the database (:func:`chain_name`).

    Returns None (and writes nothing) when the chain is empty or the last checkpoint in the
    file already covers the head.
    """
    head = session.get(AuditHead, 1)
    seq, head_hash = (head.seq, head.hash) if head is not None else (0, "")
    session.rollback()  # read only: do not hold a snapshot while writing the file
    if seq == 0:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(cert_pem)
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    path = Path(path)
    existing = read(path, [cert_pem], chain)
    if existing.latest is not None and existing.latest.seq >= seq:
        return None
    at = now.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    statement = _statement(seq, head_hash, at, fingerprint, chain)
    record = {"format": FORMAT, "seq": seq, "hash": head_hash, "at": at,
              "cert_sha256": fingerprint, "chain": chain,
              "signature": base64.b64encode(_sign(key, statement)).decode()}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = json.dumps(record, sort_keys=True) + "\n"
    # Appended, never rewritten: an earlier checkpoint is never replaced by a later one.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return Checkpoint(seq, head_hash, at, fingerprint, chain)


def read(path: str | os.PathLike, trusted_cert_pems: Iterable[bytes | str],
         chain: str) -> CheckpointFile:
    """The checkpoints of database ``chain`` in ``path`` whose signature verifies with one
    of the trusted seal certificates (current and retired), and a problem sentence for
    every line that does not. A missing file is no checkpoints and no problems (nothing
    was anchored yet)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    trusted = {}
    for pem in trusted_cert_pems:
        cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        trusted[cert.fingerprint(hashes.SHA256()).hex()] = cert.public_key()
    found, problems, others = [], [], 0
    path = Path(path)
    if not path.exists():
        return CheckpointFile(found, problems)
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            seq, hash_, at = int(rec["seq"]), str(rec["hash"]), str(rec["at"])
            fingerprint, signature = str(rec["cert_sha256"]), base64.b64decode(rec["signature"])
            line_chain = str(rec["chain"])
        except (ValueError, KeyError, TypeError):
            problems.append(f"checkpoint line {number} is not a checkpoint")
            continue
        if line_chain != chain:
            others += 1
            continue
        public_key = trusted.get(fingerprint)
        if public_key is None:
            problems.append(f"checkpoint line {number} was signed with a key the service "
                            "does not trust")
            continue
        if rec.get("format") != FORMAT or not _verify(
                public_key, signature, _statement(seq, hash_, at, fingerprint, line_chain)):
            problems.append(f"checkpoint line {number} (event {seq}) has a signature that "
                            "does not verify: it was altered or forged")
            continue
        found.append(Checkpoint(seq, hash_, at, fingerprint, line_chain))
    return CheckpointFile(found, problems, others)


def checkpoint(session: Session, config, instance_path: str, now: dt.datetime,
               seal=None) -> Checkpoint | None:
    """Write a checkpoint of the chain with the service's seal (configured, or the
    development seal in the instance folder) to the configured checkpoint file."""
    if seal is None:
        from .documents import seal_from_config  # loads pyHanko: only when anchoring

        seal = seal_from_config(config, instance_path)
    return write(session, default_path(config, instance_path), seal_key(seal), seal.cert_pem,
                 now=now, chain=chain_name(config))


def default_path(config, instance_path: str) -> Path:
    """Where checkpoints are kept: ``AUDIT_CHECKPOINT_PATH`` or the instance folder."""
    return Path(config.get("AUDIT_CHECKPOINT_PATH") or Path(instance_path) / FILE_NAME)


def seal_key(seal) -> object:
    """The seal's private key as a ``cryptography`` key (``seal`` is a documents.SealConfig)."""
    from cryptography.hazmat.primitives import serialization

    return serialization.load_der_private_key(seal.signer.signing_key.dump(), password=None)
