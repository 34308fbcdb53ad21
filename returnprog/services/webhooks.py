"""Use cases of webhooks: subscriptions per API client, emitting events into the outbox in
the caller's transaction, the scheduler's delivery over HTTP, the delivery log and
redelivery. No Flask (the views pass the settings they need).

**Subscriptions** belong to the API token's user. The signing secret is shown once, at
creation; the database holds it only encrypted (Fernet under a key derived with HKDF from
the server's SECRET_KEY), so a copy of the database alone cannot forge deliveries. A user
sees and manages their own subscriptions; an administrator sees and deletes everyone's.

**Emission** (transactional outbox, :mod:`.webhook_events`): :func:`emit` inserts one outbox row (channel
``webhook``) per subscriber in the session of the change, so an event exists exactly when
the change is committed. :func:`on_audit` is called by :func:`returnprog.audit.append` for
every audit event and maps it through :data:`returnprog.webhooks.AUDIT_EVENTS`; code that
records no audit event (the link-expiry sweep, the bank-statement import of issue 15) calls
:func:`emit` itself. Only subscriptions whose owner may read the case
(:func:`~returnprog.services.lookups.visible_cases`: team rules) and that chose the event
type get a delivery.

**Delivery** (:func:`deliver_due`) follows the e-mail outbox: claims with a lease by
compare-and-set, the same :class:`~returnprog.services.outbox.RetryPolicy` back-off, then
``failed``. One HTTP POST per attempt, short timeout, redirects not followed; 2xx is
delivered, anything else is retried. Each attempt is one ``webhook_attempt`` row. The URL is
checked again before each attempt (its name may resolve elsewhere by then).
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from sqlalchemy import insert, select, update
from sqlmodel import Session

from .. import audit
from .. import webhooks as core
from ..db import begin_write
from ..messages import M
from ..models import OutboxMessage, User, WebhookAttempt, WebhookSubscription
from ..roles import ADMIN
from . import Conflict, Context, Forbidden, Invalid, NotFound
from .lookups import user_ref
from .outbox import WEBHOOK, DeliveryReport, RetryPolicy, _StopWhenLost, _utcnow, lease_due
from .uow import atomic, commit
from .webhook_events import emit, emit_many, on_audit, sweep_expired_links

__all__ = ["create", "delete", "deliveries", "deliver_due", "emit", "emit_many",
           "get_subscription", "list_subscriptions", "on_audit", "redeliver",
           "sweep_expired_links"]

log = logging.getLogger("returnprog.webhooks")

URL_MAX = 2000
ERROR_MAX = 200
DELIVERIES_LIMIT = 100


# --- the secret at rest -------------------------------------------------------------------------

def _fernet(secret_key):
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if not secret_key:
        raise RuntimeError("SECRET_KEY is required to keep webhook secrets")
    raw = secret_key.encode() if isinstance(secret_key, str) else bytes(secret_key)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"returnprog webhook secrets").derive(raw)
    return Fernet(base64.urlsafe_b64encode(key))


def seal_secret(secret_key, secret: str) -> str:
    """The stored form of a subscription's signing secret."""
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def open_secret(secret_key, sealed: str) -> str:
    """The signing secret back from its stored form (raises if SECRET_KEY changed)."""
    return _fernet(secret_key).decrypt(sealed.encode()).decode()


# --- subscriptions -----------------------------------------------------------------------------

def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _is_admin(ctx: Context) -> bool:
    return ctx.actor is not None and ctx.actor.role == ADMIN


def subscription_data(sub: WebhookSubscription, owner: str | None = None,
                      owner_email: str | None = None) -> dict:
    """What the API shows of a subscription (never the secret); its owner named as every
    answer names a user (``lookups.user_ref``)."""
    return {"id": sub.id, "url": sub.url, "events": json.loads(sub.events),
            "user": user_ref(sub.user_id, owner, owner_email),
            "created_at": _aware(sub.created_at)}


def _check_events(events) -> list[str]:
    if not isinstance(events, list) or not events:
        raise Invalid("error.invalid_fields", {"events": [M("webhook.events_required")]})
    unknown = [e for e in events if e not in core.CATALOGUE]
    if unknown:
        raise Invalid("error.invalid_fields", {"events": [M(
            "webhook.unknown_event", types=", ".join(core.EVENT_TYPES))]})
    return list(dict.fromkeys(events))


def check_url(url, allow_loopback: bool) -> str:
    """``url`` if webhooks may go there, else a 422 on the field ``url`` saying why."""
    if not isinstance(url, str) or not url.strip() or len(url) > URL_MAX:
        raise Invalid("error.invalid_fields", {"url": [M("webhook.url_invalid")]})
    try:
        core.check_url(url.strip(), allow_loopback=allow_loopback)
    except core.UrlRefused as exc:
        raise Invalid("error.invalid_fields", {"url": [M(exc.code)]}) from None
    return url.strip()


@atomic
def create(ctx: Context, url, events, *, secret_key, allow_loopback: bool = False
           ) -> tuple[dict, str]:
    """A new subscription of the caller to ``events`` at ``url``; returns it and the clear
    secret — the only time anyone sees it."""
    if ctx.actor is None:
        raise Forbidden("webhook.not_yours")
    events = _check_events(events)
    url = check_url(url, allow_loopback)
    secret = core.new_secret()
    begin_write(ctx.session)
    sub = WebhookSubscription(user_id=ctx.actor.id, url=url, events=json.dumps(events),
                              secret_encrypted=seal_secret(secret_key, secret),
                              created_at=ctx.now())
    ctx.session.add(sub)
    ctx.session.flush()
    audit.append(ctx.session, actor=ctx.actor, action="create_webhook",
                 details={"subscription_id": sub.id, "events": events}, ip=ctx.ip)
    data = subscription_data(sub, ctx.actor.name, ctx.actor.email)
    commit(ctx)
    return data, secret


def _owned(ctx: Context, subscription_id: int) -> tuple[WebhookSubscription, str, str]:
    if ctx.actor is None:
        raise Forbidden("webhook.not_yours")
    query = (select(WebhookSubscription, User.name, User.email)
             .join(User, User.id == WebhookSubscription.user_id)
             .where(WebhookSubscription.id == subscription_id,
                    WebhookSubscription.deleted_at.is_(None)))
    if not _is_admin(ctx):
        query = query.where(WebhookSubscription.user_id == ctx.actor.id)
    row = ctx.session.execute(query).first() if 0 < subscription_id < 2**31 else None
    if row is None:
        raise NotFound("webhook.not_found", id=subscription_id)
    return row[0], row[1], row[2]


def list_subscriptions(ctx: Context) -> list[dict]:
    """The caller's subscriptions (an administrator's: everyone's), newest first."""
    if ctx.actor is None:
        raise Forbidden("webhook.not_yours")
    query = (select(WebhookSubscription, User.name, User.email)
             .join(User, User.id == WebhookSubscription.user_id)
             .where(WebhookSubscription.deleted_at.is_(None)))
    if not _is_admin(ctx):
        query = query.where(WebhookSubscription.user_id == ctx.actor.id)
    rows = ctx.session.execute(query.order_by(WebhookSubscription.id.desc())).all()
    return [subscription_data(sub, name, email) for sub, name, email in rows]


def get_subscription(ctx: Context, subscription_id: int) -> dict:
    """One subscription of the caller's (an administrator: anyone's)."""
    return subscription_data(*_owned(ctx, subscription_id))


@atomic
def delete(ctx: Context, subscription_id: int) -> dict:
    """End a subscription: nothing more is sent to it (what was queued is cancelled); its
    delivery log stays in the database."""
    begin_write(ctx.session)
    sub, name, email = _owned(ctx, subscription_id)
    now = ctx.now()
    ctx.session.execute(update(WebhookSubscription).where(WebhookSubscription.id == sub.id)
                        .values(deleted_at=now))
    ctx.session.execute(update(OutboxMessage).where(
        OutboxMessage.webhook_subscription_id == sub.id, OutboxMessage.status == "pending")
        .values(status="cancelled", last_error="the subscription was deleted")
        .execution_options(synchronize_session=False))
    audit.append(ctx.session, actor=ctx.actor, action="delete_webhook",
                 details={"subscription_id": sub.id}, ip=ctx.ip)
    data = subscription_data(sub, name, email)
    commit(ctx)
    return data


def _delivery(row, attempts: list[dict]) -> dict:
    return {"id": row.id, "webhook_id": row.idempotency_key, "event": row.subject,
            "status": "delivered" if row.status == "sent" else row.status,
            "created_at": _aware(row.created_at), "delivered_at": _aware(row.sent_at),
            "next_attempt_at": (_aware(row.next_attempt_at)
                                if row.status in ("pending", "sending") else None),
            "attempt_count": len(attempts), "attempts": attempts}


def deliveries(ctx: Context, subscription_id: int, limit: int = DELIVERIES_LIMIT) -> list[dict]:
    """The delivery log of a subscription, newest first: each delivery's event, status,
    next attempt and its attempts (time, HTTP status or error, duration)."""
    sub, *_ = _owned(ctx, subscription_id)
    rows = ctx.session.execute(select(
        OutboxMessage.id, OutboxMessage.idempotency_key, OutboxMessage.subject,
        OutboxMessage.status, OutboxMessage.created_at, OutboxMessage.sent_at,
        OutboxMessage.next_attempt_at)
        .where(OutboxMessage.webhook_subscription_id == sub.id)
        .order_by(OutboxMessage.id.desc()).limit(limit)).all()
    attempts: dict[int, list[dict]] = {r.id: [] for r in rows}
    if rows:
        for a in ctx.session.execute(select(WebhookAttempt).where(
                WebhookAttempt.message_id.in_(list(attempts))).order_by(WebhookAttempt.id)
                ).scalars():
            attempts[a.message_id].append({"at": _aware(a.at), "http_status": a.http_status,
                                           "error": a.error, "duration_ms": a.duration_ms})
    return [_delivery(r, attempts[r.id]) for r in rows]


@atomic
def redeliver(ctx: Context, subscription_id: int, delivery_id: int) -> dict:
    """Send a delivery again, under the same ``webhook-id`` (the receiver can tell the
    copy), with a fresh count of attempts; not while it is still queued."""
    begin_write(ctx.session)
    sub, *_ = _owned(ctx, subscription_id)
    row = ctx.session.execute(select(OutboxMessage.id, OutboxMessage.status).where(
        OutboxMessage.id == delivery_id,
        OutboxMessage.webhook_subscription_id == sub.id)).first() \
        if 0 < delivery_id < 2**31 else None
    if row is None:
        raise NotFound("webhook.no_delivery", id=delivery_id)
    changed = ctx.session.execute(update(OutboxMessage).where(
        OutboxMessage.id == row.id, OutboxMessage.status.in_(("sent", "failed", "cancelled")))
        .values(status="pending", attempts=0, next_attempt_at=ctx.now(), last_error=None)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict("webhook.delivery_queued")
    audit.append(ctx.session, actor=ctx.actor, action="redeliver_webhook",
                 details={"subscription_id": sub.id, "delivery_id": row.id}, ip=ctx.ip)
    commit(ctx)
    return next(d for d in deliveries(ctx, sub.id) if d["id"] == row.id)


# --- delivery ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookSettings:
    """Delivery settings (config keys ``WEBHOOK_TIMEOUT``, ``WEBHOOK_ALLOW_LOOPBACK``)."""

    timeout: float = 10.0
    allow_loopback: bool = False

    @classmethod
    def from_config(cls, config) -> "WebhookSettings":
        """Read the settings from a Flask config (or any mapping)."""
        return cls(timeout=float(config.get("WEBHOOK_TIMEOUT") or 10.0),
                   allow_loopback=bool(config.get("WEBHOOK_ALLOW_LOOPBACK")))


@dataclass
class WebhookClaim:
    """A delivery claimed for sending: the lease is the compare-and-set token."""

    id: int
    message_id: str
    body: str
    attempts: int
    lease_until: dt.datetime
    url: str
    sealed_secret: str


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt gave: a status, or an error text; and how long it took."""

    status: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class HttpSender:
    """POSTs a signed body with httpx: no redirects followed, a short timeout, the
    response body read only for a short excerpt of an error."""

    def __init__(self, timeout: float = 10.0):
        import httpx

        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False)

    def post(self, url: str, body: str, headers: dict[str, str]) -> Outcome:
        """One attempt; never raises for network trouble (it is the outcome)."""
        import httpx

        started = time.monotonic()
        try:
            with self._client.stream("POST", url, content=body.encode(), headers=headers) as r:
                status = r.status_code
                excerpt = b""
                if not 200 <= status < 300:
                    for chunk in r.iter_bytes():
                        excerpt += chunk
                        if len(excerpt) >= ERROR_MAX:
                            break
            error = None if 200 <= status < 300 else (
                f"HTTP {status}: {excerpt[:ERROR_MAX].decode(errors='replace')}".strip())
            return Outcome(status, error, _ms(started))
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX], _ms(started))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


@atomic
def claim_due(session: Session, now: dt.datetime, *, limit: int, lease: dt.timedelta
              ) -> tuple[list[WebhookClaim], int]:
    """Claim up to ``limit`` due webhook deliveries (``pending``, or ``sending`` with an
    expired lease) by compare-and-set; cancel those whose subscription was deleted.
    Returns the claims and the number cancelled; commits."""
    begin_write(session)
    claimed, lease_until = lease_due(session, WEBHOOK, now, limit=limit, lease=lease)
    if not claimed:
        return [], 0
    rows = session.execute(select(
        OutboxMessage.id, OutboxMessage.idempotency_key, OutboxMessage.body_text,
        OutboxMessage.attempts, WebhookSubscription.url, WebhookSubscription.secret_encrypted,
        WebhookSubscription.deleted_at)
        .join(WebhookSubscription, WebhookSubscription.id == OutboxMessage.webhook_subscription_id)
        .where(OutboxMessage.id.in_(claimed)).order_by(OutboxMessage.id)).all()
    gone = [r.id for r in rows if r.deleted_at is not None]
    if gone:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(gone))
                        .values(status="cancelled", last_error="the subscription was deleted",
                                next_attempt_at=now)
                        .execution_options(synchronize_session=False))
    session.commit()
    return [WebhookClaim(r.id, r.idempotency_key, r.body_text, r.attempts, lease_until, r.url,
                         r.secret_encrypted) for r in rows if r.deleted_at is None], len(gone)


def _record(session: Session, claim: WebhookClaim, at: dt.datetime, outcome: Outcome,
            retry: RetryPolicy, now: dt.datetime, report: DeliveryReport,
            permanent: bool = False) -> None:
    """The attempt's log row and the delivery's new status, in one transaction; the status
    only while this claim's lease holds (compare-and-set)."""
    begin_write(session)
    session.execute(insert(WebhookAttempt).values(
        message_id=claim.id, at=at, duration_ms=outcome.duration_ms,
        http_status=outcome.status, error=(outcome.error or None) and outcome.error[:ERROR_MAX]))
    attempts = claim.attempts + 1
    if outcome.delivered:
        values, counter = dict(status="sent", sent_at=now, attempts=attempts,
                               last_error=None), "sent"
    elif permanent or attempts >= retry.max_attempts:
        values, counter = dict(status="failed", attempts=attempts, last_error=outcome.error,
                               next_attempt_at=now), "failed"
    else:
        values, counter = dict(status="pending", attempts=attempts, last_error=outcome.error,
                               next_attempt_at=now + retry.backoff(attempts)), "retried"
    changed = session.execute(update(OutboxMessage).where(
        OutboxMessage.id == claim.id, OutboxMessage.status == "sending",
        OutboxMessage.next_attempt_at == claim.lease_until).values(**values)
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if changed == 1 or outcome.delivered:
        setattr(report, counter, getattr(report, counter) + 1)
    if outcome.error:
        report.errors.append(f"webhook {claim.id}: {outcome.error}")
        report.last_error_at = at
    else:
        report.last_sent_at = at


def _release(session: Session, claims: Sequence[WebhookClaim], now: dt.datetime,
             report: DeliveryReport) -> None:
    for claim in claims:
        begin_write(session)
        changed = session.execute(update(OutboxMessage).where(
            OutboxMessage.id == claim.id, OutboxMessage.status == "sending",
            OutboxMessage.next_attempt_at == claim.lease_until)
            .values(status="pending", next_attempt_at=now)
            .execution_options(synchronize_session=False)).rowcount
        session.commit()
        report.released += changed


def deliver_due(session: Session, sender, retry: RetryPolicy, settings: WebhookSettings, *,
                secret_key, batch_size: int = 50, now: Callable[[], dt.datetime] = _utcnow,
                stop: threading.Event | None = None, max_batches: int | None = None,
                holding: Callable[[], bool] | None = None,
                check_url: Callable[[str], None] | None = None) -> DeliveryReport:
    """Send the due webhook deliveries, batch after batch, until nothing is due, ``stop``
    is set, ``holding()`` turns false or ``max_batches`` ran; every outcome committed
    delivery by delivery. ``sender.post(url, body, headers)`` returns an :class:`Outcome`."""
    report = DeliveryReport()
    lease = dt.timedelta(seconds=retry.lease_seconds)
    check = check_url or (lambda url: core.check_url(url,
                                                     allow_loopback=settings.allow_loopback))
    if holding is not None:
        stop = _StopWhenLost(stop, holding)
    margin = dt.timedelta(seconds=min(settings.timeout, retry.lease_seconds / 2))
    batches = 0
    try:
        while not (stop is not None and stop.is_set()):
            if max_batches is not None and batches >= max_batches:
                break
            claims, cancelled = claim_due(session, now(), limit=batch_size, lease=lease)
            report.cancelled += cancelled
            batches += 1
            if not claims:
                if cancelled:
                    continue
                break
            report.claimed += len(claims)
            for i, claim in enumerate(claims):
                t = now()
                if (stop is not None and stop.is_set()) or t >= claim.lease_until - margin:
                    _release(session, claims[i:], t, report)
                    return report
                _attempt(session, sender, claim, retry, secret_key, check, now, report)
    finally:
        close = getattr(sender, "close", None)
        if close is not None:
            close()
    return report


def _attempt(session, sender, claim: WebhookClaim, retry, secret_key, check, now, report):
    at = now()
    try:
        check(claim.url)
    except core.UrlRefused as exc:
        _record(session, claim, at, Outcome(None, f"refused: {exc.code}", 0), retry, now(),
                report, permanent=True)
        return
    try:
        secret = open_secret(secret_key, claim.sealed_secret)
    except Exception:
        _record(session, claim, at, Outcome(None, "the secret cannot be opened (SECRET_KEY "
                                            "changed?)", 0), retry, now(), report)
        return
    headers = core.headers(secret, claim.message_id, int(at.timestamp()), claim.body)
    outcome = sender.post(claim.url, claim.body, headers)
    _record(session, claim, at, outcome, retry, now(), report)
