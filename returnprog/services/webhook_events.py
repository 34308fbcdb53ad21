"""Emitting webhook events: one outbox row (channel ``webhook``) per subscriber, inserted in
the caller's session so that an event exists exactly when the change it reports is
committed (a transactional outbox). Apart from :mod:`.webhooks` because
:func:`returnprog.audit.append` calls :func:`on_audit` for every audit event, and this
module must not depend on the audit module in turn.

Who gets a delivery: subscriptions not deleted, of an active user who may read the case
(:func:`~returnprog.services.lookups.visible_cases`, the team rules of every read), that
chose the event type.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Sequence

from sqlalchemy import insert, select, update
from sqlmodel import Session

from .. import webhooks as core
from ..db import begin_write
from ..models import Case, OutboxMessage, SigningRequest, User, WebhookSubscription
from .lookups import visible_cases
from .outbox import WEBHOOK, _utcnow
from .uow import atomic


# --- emission ----------------------------------------------------------------------------------

def _subscribers(session: Session, event_types: set[str]) -> list[tuple[int, User, set]]:
    rows = session.execute(select(WebhookSubscription.id, WebhookSubscription.events, User)
                           .join(User, User.id == WebhookSubscription.user_id)
                           .where(WebhookSubscription.deleted_at.is_(None),
                                  User.active.is_(True))).all()
    out = []
    for sub_id, events, user in rows:
        wanted = set(json.loads(events)) & event_types
        if wanted:
            out.append((sub_id, user, wanted))
    return out


def emit_many(session: Session, case_id: int, events: Sequence[tuple[str, dict]], *,
              now: dt.datetime | None = None) -> int:
    """Queue ``events`` (type, data) about case ``case_id`` for every subscriber who chose
    the type and may read the case, in the caller's transaction (not committed here).
    Returns the number of deliveries queued."""
    if not events:
        return 0
    subscribers = _subscribers(session, {t for t, _ in events})
    if not subscribers:
        return 0
    reference = session.execute(select(Case.reference).where(Case.id == case_id)).scalar()
    if reference is None:
        return 0
    now = now or _utcnow()
    readers = {}
    rows = []
    stamped = [(t, core.new_event_id(), data) for t, data in events]
    for sub_id, user, wanted in subscribers:
        if user.id not in readers:
            readers[user.id] = session.execute(visible_cases(user).where(Case.id == case_id)
                                               .with_only_columns(Case.id)).first() is not None
        if not readers[user.id]:
            continue
        for event_type, event_id, data in stamped:
            if event_type not in wanted:
                continue
            rows.append({"channel": WEBHOOK, "webhook_subscription_id": sub_id,
                         "idempotency_key": core.new_message_id(), "case_id": case_id,
                         "kind": "webhook", "recipient": f"webhook:{sub_id}",
                         "language": "en", "subject": event_type,
                         "body_text": core.payload(event_type, event_id, now, reference, data),
                         "body_html": "", "status": "pending", "attempts": 0,
                         "next_attempt_at": now, "created_at": now})
    if rows:
        session.execute(insert(OutboxMessage), rows)
    return len(rows)


def emit(session: Session, event_type: str, case_id: int, data: dict, *,
         now: dt.datetime | None = None) -> int:
    """Queue one event in the caller's transaction — for changes without an audit event
    of their own mapping, e.g. the bank-statement import: ``emit(session, event_type,
    case.id, {"payment_id": p.id})`` with the type ``payment.booked`` or
    ``payment.returned``."""
    if event_type not in core.CATALOGUE:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    return emit_many(session, case_id, [(event_type, data)], now=now)


def on_audit(session: Session, *, action: str, case_id: int | None, from_state: str | None,
             to_state: str | None, details: dict) -> int:
    """The hook :func:`returnprog.audit.append` calls: the events an audited change stands
    for, queued in the same transaction. Unmapped actions cost nothing."""
    if case_id is None:
        return 0
    events = core.events_for_audit(action, from_state, to_state, details)
    return emit_many(session, case_id, events) if events else 0


@atomic
def sweep_expired_links(session: Session, now: dt.datetime, limit: int = 500) -> int:
    """Emit ``signing_link.expired`` once for each link whose expiry passed unused and not
    withdrawn, marking it (``expiry_emitted_at``) in the same transaction; commits. Looks
    first without the write lock: most runs find nothing."""
    due = (SigningRequest.used_at.is_(None), SigningRequest.revoked_at.is_(None),
           SigningRequest.expires_at <= now, SigningRequest.expiry_emitted_at.is_(None))
    found = session.execute(select(SigningRequest.id).where(*due).limit(1)).first()
    session.rollback()
    if found is None:
        return 0
    begin_write(session)
    links = session.execute(select(SigningRequest.id, SigningRequest.case_id,
                                   SigningRequest.kind, SigningRequest.participant_id)
                            .where(*due)
                            .order_by(SigningRequest.expires_at).limit(limit)).all()
    if not _subscribers(session, {"signing_link.expired"}):
        # Nobody listens: mark them all at once (a later subscriber gets no old events).
        done = session.execute(update(SigningRequest).where(
            SigningRequest.id.in_([link.id for link in links]),
            SigningRequest.expiry_emitted_at.is_(None)).values(expiry_emitted_at=now)).rowcount
        session.commit()
        return done
    done = 0
    for link in links:
        marked = session.execute(update(SigningRequest).where(
            SigningRequest.id == link.id, SigningRequest.expiry_emitted_at.is_(None))
            .values(expiry_emitted_at=now)).rowcount
        if marked == 1:
            emit(session, "signing_link.expired", link.case_id,
                 {"signing_request_id": link.id, "kind": link.kind,
                  "participant_id": link.participant_id}, now=now)
            done += 1
    session.commit()
    return done
