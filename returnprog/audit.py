"""The audit trail: append-only and hash-chained, written in the same transaction as the
change it records. Editing, deleting or reordering an event breaks the chain, and
:func:`verify` names the first broken link."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlmodel import Session

from .models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64


def _digest(prev_hash: str, seq: int, at, actor: str, case_id, action: str,
            from_state, to_state, details: str) -> str:
    payload = json.dumps([prev_hash, seq, at.isoformat(timespec="microseconds"), actor,
                          case_id, action, from_state, to_state, details],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def append(session: Session, *, actor, action: str, case_id: int | None = None,
           from_state: str | None = None, to_state: str | None = None,
           details: dict | None = None, ip: str | None = None) -> AuditEvent:
    """Add one event to the chain inside the caller's transaction (the caller commits).

    ``actor`` is a User or a plain label such as ``"system"`` or ``"participant:12"``.
    Updating the single head row first serialises appends across transactions.
    """
    row = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.hash)).one_or_none()
    if row is None:
        session.add(AuditHead(id=1, seq=1, hash=GENESIS))
        session.flush()
        seq, prev = 1, GENESIS
    else:
        seq, prev = row
    actor_id = getattr(actor, "id", None)
    actor_label = getattr(actor, "email", None) or str(actor)
    details_json = json.dumps(details or {}, ensure_ascii=False, sort_keys=True, default=str)
    at = utcnow()
    digest = _digest(prev, seq, at, actor_label, case_id, action, from_state, to_state,
                     details_json)
    event = AuditEvent(seq=seq, at=at, actor_id=actor_id, actor=actor_label, case_id=case_id,
                       action=action, from_state=from_state, to_state=to_state,
                       details=details_json, ip=ip, prev_hash=prev, hash=digest)
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=digest))
    return event


@dataclass
class ChainReport:
    """Outcome of :func:`verify`: ``ok`` or the first broken link and why."""

    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str | None = None


def verify(session: Session, batch: int = 5000) -> ChainReport:
    """Walk the whole chain in order and report the first event that does not fit."""
    prev, expected_seq, count, last_seq = GENESIS, 1, 0, 0
    cols = (AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash, AuditEvent.at,
            AuditEvent.actor, AuditEvent.case_id, AuditEvent.action, AuditEvent.from_state,
            AuditEvent.to_state, AuditEvent.details)
    while True:
        # Plain rows in batches: the chain of a busy year does not fit in an ORM identity map.
        rows = session.execute(select(*cols).where(AuditEvent.seq > last_seq)
                               .order_by(AuditEvent.seq).limit(batch)).all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return ChainReport(False, count, expected_seq,
                                   f"event {expected_seq} is missing (next is {ev.seq})")
            if ev.prev_hash != prev:
                return ChainReport(False, count, ev.seq,
                                   f"event {ev.seq} does not follow event {ev.seq - 1}")
            digest = _digest(ev.prev_hash, ev.seq, ev.at, ev.actor, ev.case_id, ev.action,
                             ev.from_state, ev.to_state, ev.details)
            if digest != ev.hash:
                return ChainReport(False, count, ev.seq, f"event {ev.seq} was altered")
            prev, expected_seq, count, last_seq = ev.hash, ev.seq + 1, count + 1, ev.seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev):
        return ChainReport(False, count, last_seq + 1,
                           f"the chain ends at event {last_seq} but event {head.seq} was written")
    return ChainReport(True, count)
