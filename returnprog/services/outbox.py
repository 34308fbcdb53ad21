"""The outbox: storing messages once, delivering them over SMTP, retries, and the
bookkeeping of failed messages. No Flask: the scheduler runs it without requests.

What is due and what it says is decided elsewhere (:mod:`returnprog.services.reminders`
and :mod:`returnprog.reminders`); this module only keeps the promise below.

Guarantees (issue 5, DESIGN §5 "at least once, and never twice for the same reminder"):

- **Never stored twice.** Each message has an idempotency key (case, kind, deadline,
  recipient) that the outbox holds unique; :func:`enqueue` inserts with
  ``ON CONFLICT DO NOTHING`` on both SQLite and PostgreSQL, so racing or repeated sweeps
  cannot duplicate a reminder.
- **At least once.** :func:`deliver_due` claims a batch with a compare-and-set
  (``pending → sending`` with a lease in ``next_attempt_at``), sends, and marks each message
  ``sent`` in its own small transaction. A sender that dies keeps its claims only until the
  next scheduler takes the lock (:func:`release_orphaned_claims`), or at the latest until
  the lease expires; then they are claimed again. Failed attempts back off exponentially; after
  the last one the message is ``failed`` and listed by :func:`failed_messages`.
- **Never twice in the mailbox.** If the process dies in the few milliseconds between the
  SMTP server's "250 OK" and the commit of ``sent``, that one message is sent again — with
  the same ``Message-ID`` (derived from the key), which the local sink and mail clients use
  to recognise the copy. No protocol can close that window; this keeps it to one message
  per crash and makes the copy recognisable.
- **Still meaningful.** At claim time each message is checked against the case as it is
  now: a reminder for a deadline that was extended, a case that left ``departure_agreed``,
  a deadline already passed, or a signing link that was used or revoked is ``cancelled``
  instead of sent.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Callable, Sequence

from sqlalchemy import bindparam, case as sql_case, func, select, update
from sqlmodel import Session

from .. import reminders as plan
from ..db import begin_write, upsert_into
from ..models import Case, Document, OutboxMessage, SchedulerHeartbeat, SigningRequest
from .uow import atomic

log = logging.getLogger("returnprog.outbox")

CHUNK = 500
# The outbox's channels: which sender takes a row (issue 14: webhooks share the outbox).
EMAIL, WEBHOOK = "email", "webhook"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _local_today(now: dt.datetime) -> dt.date:
    return plan._localise(now, plan.DEFAULT_TIMEZONE).date()


def _chunks(items: Sequence, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- storing -----------------------------------------------------------------------------------

def _insert(session: Session):
    """``INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`` for the dialect."""
    return (upsert_into(session, OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(OutboxMessage.__table__.c.id))


def enqueue(session: Session, messages: Sequence[plan.Message | plan.Planned], *,
            now: dt.datetime | None = None) -> int:
    """Add messages to the outbox unless a message with the same idempotency key exists;
    returns how many were new. Does not commit (the caller's transaction decides).
    :class:`~returnprog.reminders.Planned` messages are composed only when new.

    Keys already present are skipped with one indexed lookup; the insert itself is
    ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``, so even a racing writer cannot
    create a duplicate.
    """
    now = now or _utcnow()
    unique = {m.key: m for m in messages}
    inserted = 0
    for keys in _chunks(list(unique)):
        existing = set(session.execute(select(OutboxMessage.idempotency_key).where(
            OutboxMessage.idempotency_key.in_(keys))).scalars())
        rows = [{"idempotency_key": m.key, "case_id": m.case_id, "kind": m.kind,
                 "recipient": m.recipient, "deadline": m.deadline,
                 "signing_request_id": m.signing_request_id,
                 "document_id": getattr(m, "document_id", None),
                 "language": m.language, "subject": m.subject,
                 "body_text": m.body_text, "body_html": m.body_html, "status": "pending",
                 "attempts": 0, "next_attempt_at": now, "created_at": now}
                for k in keys if k not in existing for m in (_built(unique[k]),)]
        if rows:  # executemany: one cached statement, batched by the driver layer
            inserted += len(session.connection().execute(_insert(session), rows).all())
    return inserted


def _built(m) -> plan.Message:
    return m.build() if isinstance(m, plan.Planned) else m


# --- delivery ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to hand messages over (config keys ``SMTP_*`` and ``MAIL_FROM``)."""

    host: str = "127.0.0.1"
    port: int = 8025
    tls: str = "none"  # none | starttls | ssl
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    mail_from: str = "returnprog@dtenv.example"

    @classmethod
    def from_config(cls, config) -> "SmtpSettings":
        """Read the settings from a Flask config (or any mapping)."""
        return cls(host=config.get("SMTP_HOST") or "127.0.0.1",
                   port=int(config.get("SMTP_PORT") or 25),
                   tls=(config.get("SMTP_TLS") or "none").lower(),
                   username=config.get("SMTP_USERNAME") or None,
                   password=config.get("SMTP_PASSWORD") or None,
                   timeout=float(config.get("SMTP_TIMEOUT", 30.0)),
                   mail_from=config.get("MAIL_FROM") or "returnprog@dtenv.example")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and exponential back-off (config keys ``SMTP_MAX_ATTEMPTS``,
    ``SMTP_RETRY_BASE_SECONDS``, ``SMTP_RETRY_MAX_SECONDS``, ``SCHEDULER_LEASE_SECONDS``)."""

    max_attempts: int = 10
    base_seconds: float = 60.0
    max_seconds: float = 3600.0
    lease_seconds: float = 600.0

    @classmethod
    def from_config(cls, config) -> "RetryPolicy":
        return cls(max_attempts=int(config.get("SMTP_MAX_ATTEMPTS", 10)),
                   base_seconds=float(config.get("SMTP_RETRY_BASE_SECONDS", 60.0)),
                   max_seconds=float(config.get("SMTP_RETRY_MAX_SECONDS", 3600.0)),
                   lease_seconds=float(config.get("SCHEDULER_LEASE_SECONDS", 600.0)))

    def backoff(self, attempts: int) -> dt.timedelta:
        """Wait after the ``attempts``-th failed attempt: base × 2^(attempts-1), capped."""
        return dt.timedelta(seconds=min(self.max_seconds,
                                        self.base_seconds * 2 ** max(attempts - 1, 0)))


class TemporaryFailure(Exception):
    """Try again later (connection refused or lost, time-out, 4xx)."""

    def __init__(self, message: str, connection: bool = False):
        super().__init__(message)
        self.connection = connection  # the server itself is unreachable: skip the batch


class PermanentFailure(Exception):
    """The server refused this message for good (5xx): retrying cannot help."""


class SmtpMailer:
    """Hands messages to an SMTP server over one connection per delivery run."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.tls == "ssl":
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, s.password or "")
            return smtp
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"cannot reach SMTP server {s.host}:{s.port}: "
                                   f"{type(exc).__name__}: {exc}", connection=True) from exc

    def send(self, message: EmailMessage) -> None:
        """Send one message, classifying any error as temporary or permanent."""
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            refused = self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                               for code, msg in exc.recipients.values())
            if codes and all(500 <= c < 600 for c in codes):
                raise PermanentFailure(f"recipient refused: {detail}") from exc
            raise TemporaryFailure(f"recipient deferred: {detail}") from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            text = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"message refused: {text}") from exc
            raise TemporaryFailure(f"message deferred: {text}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise TemporaryFailure(f"connection lost: {type(exc).__name__}: {exc}",
                                   connection=True) from exc
        if refused:
            raise TemporaryFailure(f"recipients refused: {refused}")

    def close(self) -> None:
        """Say goodbye to the server (quietly, whatever state the connection is in)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except Exception:
                try:
                    smtp.close()
                except Exception:
                    pass


def build_email(row, settings: SmtpSettings, now: dt.datetime | None = None,
                reveal: Callable[[str], str] | None = None,
                attachment: tuple[bytes, str] | None = None) -> EmailMessage:
    """The e-mail for an outbox row: bilingual subject, text part and HTML alternative, and
    ``attachment`` (PDF bytes and file name) when the row names a signed document.

    ``reveal`` opens the sealed parts of a body just before sending (a signing code is
    kept in the outbox only encrypted, see :mod:`returnprog.services.signing_codes`)."""
    reveal = reveal or (lambda text: text)
    domain = settings.mail_from.rsplit("@", 1)[-1] or "localhost"
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(now or _utcnow())
    msg["Message-ID"] = plan.message_id(row.idempotency_key, domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Returnprog-Kind"] = row.kind
    msg["X-Returnprog-Key"] = row.idempotency_key
    msg.set_content(reveal(row.body_text))
    msg.add_alternative(reveal(row.body_html), subtype="html")
    if attachment is not None:
        msg.add_attachment(attachment[0], maintype="application", subtype="pdf",
                           filename=attachment[1])
    # After set_content, which clears Content-* headers.
    msg["Content-Language"] = "nl" if row.language in ("nl", None) else f"nl, {row.language}"
    return msg


@dataclass
class Claim:
    """A message claimed for sending: the lease is the compare-and-set token."""

    id: int
    key: str
    kind: str
    case_id: int | None
    recipient: str
    language: str
    subject: str
    body_text: str
    body_html: str
    attempts: int
    lease_until: dt.datetime
    document_id: int | None = None  # a signed document to attach

    @property
    def idempotency_key(self) -> str:
        return self.key


@dataclass
class DeliveryReport:
    """What one delivery run did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)
    # When the run last handed a message over, and last met an SMTP error (for the
    # dashboard: "the last attempt failed" is an error later than the last success).
    last_sent_at: dt.datetime | None = None
    last_error_at: dt.datetime | None = None

    def __str__(self) -> str:
        return (f"delivery: {self.claimed} claimed, {self.sent} sent, {self.retried} to retry, "
                f"{self.failed} failed, {self.cancelled} cancelled, {self.released} released")


def lease_due(session: Session, channel: str, now: dt.datetime, *, limit: int,
              lease: dt.timedelta) -> tuple[list[int], dt.datetime]:
    """Lease up to ``limit`` due rows of ``channel`` (``pending``, or ``sending`` whose lease
    ran out after a crash) with one compare-and-set ``UPDATE``, in the caller's write
    transaction: the ids this worker now holds, and until when. Nothing leased: the
    transaction is rolled back and no ids are returned."""
    due = (OutboxMessage.channel == channel, OutboxMessage.status.in_(("pending", "sending")),
           OutboxMessage.next_attempt_at <= now)
    ids = list(session.execute(select(OutboxMessage.id).where(*due)
                               .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                               .limit(limit)).scalars())
    lease_until = now + lease
    if not ids:
        session.rollback()
        return [], lease_until
    claimed = list(session.execute(
        update(OutboxMessage).where(OutboxMessage.id.in_(ids), *due)
        .values(status="sending", next_attempt_at=lease_until)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)).scalars())
    if not claimed:  # another worker leased them first: end the write transaction here
        session.rollback()
    return claimed, lease_until


@atomic
def claim_due(session: Session, now: dt.datetime, *, limit: int, lease: dt.timedelta,
              today: dt.date | None = None) -> tuple[list[Claim], int]:
    """Claim up to ``limit`` messages that are due (``pending``, or ``sending`` with an
    expired lease after a crash) with one compare-and-set ``UPDATE``; cancel those that are
    no longer meaningful. Returns the claims and the number cancelled; commits."""
    begin_write(session)
    # Webhook deliveries share the table but not this sender (services.webhooks has its own).
    claimed, lease_until = lease_due(session, EMAIL, now, limit=limit, lease=lease)
    if not claimed:
        return [], 0
    rows = session.execute(select(
        OutboxMessage.id, OutboxMessage.idempotency_key, OutboxMessage.kind,
        OutboxMessage.case_id, OutboxMessage.recipient, OutboxMessage.language,
        OutboxMessage.subject, OutboxMessage.body_text, OutboxMessage.body_html,
        OutboxMessage.attempts, OutboxMessage.deadline,
        OutboxMessage.signing_request_id, OutboxMessage.document_id)
        .where(OutboxMessage.id.in_(claimed))
        .order_by(OutboxMessage.id)).all()
    stale = _not_meaningful(session, rows, now, today or _local_today(now))
    for reason, stale_ids in _group(stale).items():
        session.execute(update(OutboxMessage).where(
            OutboxMessage.id.in_(stale_ids), OutboxMessage.status == "sending")
            .values(status="cancelled", last_error=f"cancelled at delivery: {reason}")
            .execution_options(synchronize_session=False))
    session.commit()
    claims = [Claim(r.id, r.idempotency_key, r.kind, r.case_id, r.recipient, r.language,
                    r.subject, r.body_text, r.body_html, r.attempts, lease_until,
                    r.document_id)
              for r in rows if r.id not in stale]
    return claims, len(stale)


def _group(stale: dict[int, str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for mid, reason in stale.items():
        out.setdefault(reason, []).append(mid)
    return out


def _not_meaningful(session: Session, rows, now: dt.datetime, today: dt.date) -> dict[int, str]:
    """Claimed messages that should no longer be sent, with the reason."""
    case_ids = {r.case_id for r in rows if r.deadline is not None and r.case_id is not None}
    cases = {}
    for chunk in _chunks(sorted(case_ids)):
        cases.update({c.id: c for c in session.execute(
            select(Case.id, Case.state, Case.departure_deadline).where(Case.id.in_(chunk)))})
    link_ids = {r.signing_request_id for r in rows if r.signing_request_id is not None}
    links = {}
    for chunk in _chunks(sorted(link_ids)):
        links.update({l.id: l for l in session.execute(
            select(SigningRequest.id, SigningRequest.used_at, SigningRequest.revoked_at,
                   SigningRequest.expires_at).where(SigningRequest.id.in_(chunk)))})
    stale = {}
    for r in rows:
        if r.deadline is not None:  # a deadline reminder or overdue alert
            case = cases.get(r.case_id)
            if case is None or case.state != plan.ACTIVE_STATE:
                stale[r.id] = "the case is no longer in departure_agreed"
            elif case.departure_deadline != r.deadline:
                stale[r.id] = "the departure deadline has changed"
            elif r.kind != plan.OVERDUE_ALERT and r.deadline < today:
                stale[r.id] = "the departure deadline has passed"
        elif r.signing_request_id is not None:
            link = links.get(r.signing_request_id)
            if link is None or link.used_at is not None or link.revoked_at is not None:
                stale[r.id] = "the signing link was used or withdrawn"
            elif r.kind == plan.SIGNING_LINK_REMINDER and link.expires_at <= now:
                stale[r.id] = "the signing link has expired"
    return stale


def _finish(session: Session, claim: Claim, **values) -> bool:
    """Compare-and-set on the lease: only the holder of this claim may record its outcome."""
    begin_write(session)
    changed = session.execute(update(OutboxMessage).where(
        OutboxMessage.id == claim.id, OutboxMessage.status == "sending",
        OutboxMessage.next_attempt_at == claim.lease_until).values(**values)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return changed == 1


def _after_failure(session: Session, claim: Claim, error: str, retry: RetryPolicy,
                   now: dt.datetime, permanent: bool, report: DeliveryReport) -> None:
    attempts = claim.attempts + 1
    if permanent or attempts >= retry.max_attempts:
        if _finish(session, claim, status="failed", attempts=attempts, last_error=error[:2000],
                   next_attempt_at=now):
            report.failed += 1
            log.warning("message %s to %s failed for good after %d attempt(s): %s",
                        claim.id, claim.recipient, attempts, error)
    elif _finish(session, claim, status="pending", attempts=attempts, last_error=error[:2000],
                 next_attempt_at=now + retry.backoff(attempts)):
        report.retried += 1


def _release(session: Session, claims: Sequence[Claim], now: dt.datetime,
             report: DeliveryReport) -> None:
    """Give unsent claims back at once (stopping, or the lease is running out)."""
    for claim in claims:
        if _finish(session, claim, status="pending", next_attempt_at=now):
            report.released += 1


def deliver_due(session: Session, mailer, settings: SmtpSettings, retry: RetryPolicy, *,
                batch_size: int = 50, now: Callable[[], dt.datetime] = _utcnow,
                today: dt.date | None = None, stop: threading.Event | None = None,
                max_batches: int | None = None,
                holding: Callable[[], bool] | None = None,
                reveal: Callable[[str], str] | None = None) -> DeliveryReport:
    """Send what is due, batch after batch, until nothing is due, ``stop`` is set,
    ``holding()`` turns false (the scheduler lost its lock: a successor will release and
    resend the rest) or ``max_batches`` ran. Every outcome is committed message by
    message."""
    report = DeliveryReport()
    lease = dt.timedelta(seconds=retry.lease_seconds)
    batches = 0
    if holding is not None:
        stop = _StopWhenLost(stop, holding)
    try:
        while not (stop is not None and stop.is_set()):
            if max_batches is not None and batches >= max_batches:
                break
            claims, cancelled = claim_due(session, now(), limit=batch_size, lease=lease,
                                          today=today)
            report.cancelled += cancelled
            batches += 1
            if not claims:
                if cancelled:
                    continue
                break
            report.claimed += len(claims)
            if not _send_batch(session, mailer, settings, retry, claims, now, stop, report,
                               reveal):
                break
    finally:
        mailer.close()
    return report


class _StopWhenLost:
    """A stop event that is also set when the scheduler no longer holds its lock."""

    def __init__(self, stop: threading.Event | None, holding: Callable[[], bool]):
        self._stop, self._holding = stop, holding

    def is_set(self) -> bool:
        return (self._stop is not None and self._stop.is_set()) or not self._holding()


def _attachment(session: Session, claim: Claim) -> tuple[bytes, str] | None:
    """The signed document a message carries, read now (the outbox row holds only its id)."""
    if claim.document_id is None:
        return None
    row = session.execute(select(Document.pdf, Document.kind, Document.version, Case.reference)
                          .join(Case, Case.id == Document.case_id)
                          .where(Document.id == claim.document_id)).first()
    session.rollback()  # end the read before the outcome is written
    if row is None:
        raise PermanentFailure("the attached document no longer exists")
    return bytes(row.pdf), f"{row.reference}-{row.kind}-v{row.version}.pdf"


def _send_batch(session, mailer, settings, retry, claims, now, stop, report,
                reveal=None) -> bool:
    """Send one claimed batch; False when the server is unreachable (stop for this run)."""
    # Never start a send that could outlast the lease: another sender may take over then.
    margin = dt.timedelta(seconds=min(settings.timeout, retry.lease_seconds / 2))
    for i, claim in enumerate(claims):
        t = now()
        if (stop is not None and stop.is_set()) or t >= claim.lease_until - margin:
            _release(session, claims[i:], t, report)
            return False
        try:
            mailer.send(build_email(claim, settings, t, reveal, _attachment(session, claim)))
        except PermanentFailure as exc:
            _after_failure(session, claim, str(exc), retry, now(), True, report)
            report.errors.append(str(exc))
            report.last_error_at = t
        except TemporaryFailure as exc:
            report.errors.append(str(exc))
            report.last_error_at = t
            if exc.connection:
                # The server is down: every message of the batch shares this attempt.
                t = now()
                for rest in claims[i:]:
                    _after_failure(session, rest, str(exc), retry, t, False, report)
                return False
            _after_failure(session, claim, str(exc), retry, now(), False, report)
        else:
            report.last_sent_at = t
            if _finish(session, claim, status="sent", sent_at=now(), last_error=None):
                report.sent += 1
            else:  # our lease ran out and someone else holds the message now
                log.warning("message %s was sent but its lease had been taken over", claim.id)
                report.sent += 1
    return True


@atomic
def release_orphaned_claims(session: Session, now: dt.datetime) -> int:
    """Hand every claimed (``sending``) message back to the queue, due at once; returns how
    many. Only for a scheduler that has just taken the lock: only the lock holder claims,
    so every claim found then belongs to a predecessor that died or lost the lock — without
    this they would wait out their lease (``SCHEDULER_LEASE_SECONDS``). Attempts are kept;
    a predecessor that still finishes a send cannot record it (its lease compare-and-set
    fails), so a message is at worst sent again under the same Message-ID. Commits."""
    begin_write(session)
    released = session.execute(update(OutboxMessage).where(OutboxMessage.status == "sending")
                               .values(status="pending", next_attempt_at=now)
                               .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return released


def claimed_count(session: Session) -> int:
    """How many messages are claimed (``sending``) right now; reads only."""
    return session.execute(select(func.count()).where(
        OutboxMessage.status == "sending")).scalar_one()


@dataclass(frozen=True)
class DeliveryHealth:
    """How delivery is going, long before messages are marked failed (no addresses)."""

    unsent: int  # pending or being sent, including retries scheduled for later
    due: int  # of those, due now (waiting for the scheduler)
    oldest_due_age: dt.timedelta | None  # how long the longest-waiting due message waits
    last_sent_at: dt.datetime | None  # the scheduler's latest successful hand-over
    last_error: str | None  # its latest SMTP error, addresses removed
    last_error_at: dt.datetime | None

    @property
    def last_attempt_failed(self) -> bool:
        """The latest SMTP attempt failed (an error later than the latest success)."""
        return self.last_error_at is not None and (
            self.last_sent_at is None or self.last_error_at > self.last_sent_at)

    def failing(self, warning_age: dt.timedelta) -> bool:
        """Worth a warning: the last attempt failed, or a due message waits too long."""
        return self.last_attempt_failed or (
            self.oldest_due_age is not None and self.oldest_due_age > warning_age)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def delivery_health(session: Session, now: dt.datetime) -> DeliveryHealth:
    """Unsent and due messages, the age of the oldest due one, and the scheduler's latest
    success and SMTP error (from the heartbeat row). Reads only, on the ``ix_outbox_due``
    index; for the dashboard warning and ``/readyz``."""
    unsent_states = ("pending", "sending")
    # Due as claim_due sees it: pending, or sending with an expired lease. One pass over
    # the unsent rows of the index counts them, the due ones and the oldest due moment:
    # the dashboard's warning costs the same two statements whatever the outbox holds.
    is_due = OutboxMessage.next_attempt_at <= now
    unsent, due, oldest = session.execute(select(
        func.count(), func.count(sql_case((is_due, 1))),
        func.min(sql_case((is_due, OutboxMessage.next_attempt_at))))
        .where(OutboxMessage.channel == EMAIL,
               OutboxMessage.status.in_(unsent_states))).one()
    oldest = _aware(oldest) if due else None
    beat = session.execute(select(SchedulerHeartbeat.last_sent_at, SchedulerHeartbeat.last_error,
                                  SchedulerHeartbeat.last_error_at)).first()
    return DeliveryHealth(unsent=unsent, due=due,
                          oldest_due_age=(now - oldest) if oldest is not None else None,
                          last_sent_at=_aware(beat.last_sent_at) if beat else None,
                          last_error=beat.last_error if beat else None,
                          last_error_at=_aware(beat.last_error_at) if beat else None)


# --- read-outs for pages -----------------------------------------------------------------------

_MESSAGE_COLUMNS = (OutboxMessage.id, OutboxMessage.case_id, OutboxMessage.kind,
                    OutboxMessage.recipient, OutboxMessage.language, OutboxMessage.subject,
                    OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.last_error,
                    OutboxMessage.created_at, OutboxMessage.next_attempt_at,
                    OutboxMessage.sent_at, OutboxMessage.idempotency_key)


def _as_dicts(rows) -> list[dict]:
    return [dict(r._mapping) for r in rows]


def case_messages(session: Session, case_id: int) -> list[dict]:
    """Every outbox message of one case, newest first (for the case page)."""
    return _as_dicts(session.execute(select(*_MESSAGE_COLUMNS)
                                     .where(OutboxMessage.case_id == case_id,
                                            OutboxMessage.channel == EMAIL)
                                     .order_by(OutboxMessage.id.desc())))


def failed_messages(session: Session, *, case_id: int | None = None,
                    limit: int = 200) -> list[dict]:
    """Messages that could not be delivered after the last retry, with the case reference
    and the last error; one case's or all (newest first)."""
    params = {"limit": limit} if case_id is None else {"limit": limit, "case_id": case_id}
    return _as_dicts(session.execute(_failed_statement(case_id is not None), params))


@functools.cache
def _failed_statement(of_one_case: bool):
    """:func:`failed_messages`' statement (``limit`` and, for one case, ``case_id`` as
    parameters), built once: every case page asks."""
    query = (select(*_MESSAGE_COLUMNS, Case.reference)
             .join(Case, Case.id == OutboxMessage.case_id, isouter=True)
             .where(OutboxMessage.status == "failed", OutboxMessage.channel == EMAIL))
    if of_one_case:
        query = query.where(OutboxMessage.case_id == bindparam("case_id"))
    return query.order_by(OutboxMessage.id.desc()).limit(bindparam("limit"))


def failed_counts(session: Session) -> dict[int | None, int]:
    """Number of failed messages per case id (for the dashboard)."""
    return dict(session.execute(select(OutboxMessage.case_id, func.count())
                                .where(OutboxMessage.status == "failed",
                                       OutboxMessage.channel == EMAIL)
                                .group_by(OutboxMessage.case_id)).all())


def outbox_counts(session: Session) -> dict[str, int]:
    """Number of e-mail messages in the outbox per status."""
    return dict(session.execute(select(OutboxMessage.status, func.count())
                                .where(OutboxMessage.channel == EMAIL)
                                .group_by(OutboxMessage.status)).all())


@atomic
def retry_message(session: Session, message_id: int, *, now: dt.datetime | None = None) -> bool:
    """Put a failed message back in the queue (after the mail problem is fixed); commits."""
    begin_write(session)
    changed = session.execute(update(OutboxMessage).where(
        OutboxMessage.id == message_id, OutboxMessage.status == "failed",
        OutboxMessage.channel == EMAIL)
        .values(status="pending", attempts=0, next_attempt_at=now or _utcnow())
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return changed == 1

