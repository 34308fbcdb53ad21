"""The embedded-default mail server: a local SMTP sink that keeps every message as a file.

``flask --app wsgi mail-sink`` (kept running by ``make run``: ``scripts/supervisord.conf``)
listens on ``SMTP_HOST:SMTP_PORT`` (default 127.0.0.1:8025, where the scheduler delivers by
default) and never relays anything: a demo user reads the reminders sent.

File format (what an admin page reads)
---------------------------------------
Directory: ``MAIL_SINK_DIR``, default ``instance/mail/``. One file per message::

    <received UTC, %Y%m%dT%H%M%S%fZ>-<16 hex>.eml      e.g. 20260512T081500123456Z-3fa2c1d09b7e4410.eml

- The name sorts chronologically. The 16 hex digits are the start of the SHA-256 of the
  message's ``Message-ID`` (of its bytes if it has none). Names match :data:`NAME_PATTERN`.
- The content is the message exactly as received (RFC 5322, CRLF line ends, MIME with a
  ``text/plain`` part and a ``text/html`` alternative, UTF-8), preceded by four trace headers
  the sink adds: ``X-Sink-Received`` (ISO 8601 UTC), ``X-Sink-Peer`` (client address),
  ``X-Sink-Mail-From`` and ``X-Sink-Rcpt-To`` (SMTP envelope, comma-separated).
- Folder 0700, files 0600 (whatever the umask); the log names files and recipient counts,
  never addresses.
  ``email.message_from_binary_file(f, policy=email.policy.default)`` reads it.
- Reminder messages carry ``X-Returnprog-Kind`` (e.g. ``deadline_reminder_7d``,
  ``overdue_alert``, ``signing_link_reminder``, ``signing_link_expired``),
  ``X-Returnprog-Key`` (the outbox idempotency key ``<case id>|<kind>|<deadline>|<recipient>``)
  and ``Content-Language``.
- Files appear atomically (written under a ``.tmp`` name, then renamed); ``*.tmp`` files are
  not messages. A message whose Message-ID was already stored (a reminder re-sent after a
  crash of the sender) is acknowledged but not stored again.

:func:`list_messages` and :func:`read_message` do this parsing for a page.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import logging
import os
import re
import signal
import threading
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path

import click
from flask import current_app

from .files import open_private, private_dir

log = logging.getLogger("returnprog.mailsink")

NAME_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{16}\.eml$")


def sink_dir(app) -> Path:
    """The sink's directory for ``app``: ``MAIL_SINK_DIR`` or ``instance/mail``."""
    return Path(app.config.get("MAIL_SINK_DIR") or Path(app.instance_path) / "mail")


def _digest(raw: bytes) -> str:
    headers = BytesHeaderParser().parsebytes(raw)
    ident = (headers.get("Message-ID") or "").strip()
    return hashlib.sha256(ident.encode() if ident else raw).hexdigest()[:16]


class SinkHandler:
    """aiosmtpd handler: store each message once as an ``.eml`` file."""

    def __init__(self, directory: Path):
        self.directory = private_dir(directory)  # the mail holds personal data: 0700
        self.seen = {p.name[-20:-4] for p in self.directory.glob("*.eml")}
        self.stored = 0
        self.duplicates = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        return self.store(raw, peer=session.peer, mail_from=envelope.mail_from,
                          rcpt_tos=envelope.rcpt_tos)

    def store(self, raw: bytes, *, peer=None, mail_from: str = "", rcpt_tos=()) -> str:
        """Write one message; returns the SMTP reply."""
        digest = _digest(raw)
        with self._lock:
            if digest in self.seen:
                self.duplicates += 1
                log.info("duplicate of an already stored message (%s); not stored again", digest)
                return "250 OK (already stored)"
            now = dt.datetime.now(dt.timezone.utc)
            name = f"{now:%Y%m%dT%H%M%S%f}Z-{digest}.eml"
            peer_text = peer[0] if isinstance(peer, (tuple, list)) and peer else str(peer or "")
            trace = (f"X-Sink-Received: {now.isoformat(timespec='microseconds')}\r\n"
                     f"X-Sink-Peer: {peer_text}\r\n"
                     f"X-Sink-Mail-From: {mail_from or ''}\r\n"
                     f"X-Sink-Rcpt-To: {', '.join(rcpt_tos)}\r\n").encode()
            tmp = self.directory / f".{name}.tmp"
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as f:
                f.write(trace + raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.directory / name)
            self.seen.add(digest)
            self.stored += 1
        # Recipients' addresses are personal data: the log names the file and a count only.
        log.info("stored %s for %d recipient(s)", name, len(rcpt_tos))
        return "250 Message accepted for delivery"


def start(directory: Path, host: str = "127.0.0.1", port: int = 8025):
    """Start the sink in a background thread; returns the aiosmtpd Controller (``.stop()``)."""
    from aiosmtpd.controller import Controller

    # aiosmtpd logs every SMTP command, recipients' addresses included: warnings only.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(SinkHandler(directory), hostname=host, port=port)
    controller.start()
    return controller


@dataclass(frozen=True)
class SinkEntry:
    """One stored message, as a list page shows it."""

    name: str
    received_at: str
    mail_from: str
    to: str
    subject: str
    kind: str
    language: str
    message_id: str
    size: int


def list_messages(directory: Path, limit: int = 200) -> list[SinkEntry]:
    """The newest ``limit`` stored messages, newest first (headers only)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    names = sorted((n for n in os.listdir(directory) if NAME_PATTERN.match(n)), reverse=True)
    out = []
    for name in names[:limit]:
        path = directory / name
        with open(path, "rb") as f:
            h = email.parser.BytesParser(policy=email.policy.default).parse(f, headersonly=True)
        out.append(SinkEntry(name=name, received_at=str(h.get("X-Sink-Received", "")),
                             mail_from=str(h.get("From", "")), to=str(h.get("To", "")),
                             subject=str(h.get("Subject", "")),
                             kind=str(h.get("X-Returnprog-Kind", "")),
                             language=str(h.get("Content-Language", "")),
                             message_id=str(h.get("Message-ID", "")),
                             size=path.stat().st_size))
    return out


def read_message(directory: Path, name: str) -> email.message.EmailMessage:
    """One stored message, parsed; only names of the sink's own pattern are accepted (no
    path tricks). Raises FileNotFoundError for anything else."""
    if not NAME_PATTERN.match(name or ""):
        raise FileNotFoundError(name)
    with open(Path(directory) / name, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


@click.command("mail-sink")
@click.option("--host", default=None, help="address to listen on (default: SMTP_HOST)")
@click.option("--port", default=None, type=int, help="port to listen on (default: SMTP_PORT)")
@click.option("--dir", "directory", default=None, help="where to store messages")
def mail_sink_command(host, port, directory):
    """Run the local SMTP sink: every message is stored as a file under instance/mail/."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s mail-sink[%(process)d] %(levelname)s %(message)s")
    cfg = current_app.config
    host = host or cfg.get("SMTP_HOST") or "127.0.0.1"
    port = port or int(cfg.get("SMTP_PORT") or 8025)
    target = Path(directory) if directory else sink_dir(current_app)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("SMTP_HOST is %s: the sink only listens locally; binding 127.0.0.1", host)
        host = "127.0.0.1"
    controller = start(target, host, port)
    log.info("mail sink on %s:%d writing to %s", host, port, target)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    controller.stop()
    log.info("mail sink stopped")
