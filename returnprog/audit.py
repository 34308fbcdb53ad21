"""The audit trail: append-only and hash-chained, written in the same transaction as the
change it records. Editing, deleting or reordering an event breaks the chain, and
:func:`verify` names the first broken link."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Mapping

from sqlalchemy import select, update
from sqlmodel import Session

from .models import AuditEvent, AuditHead, utcnow

# Where a service Context leaves its channel on the session (services.CHANNEL_KEY, the
# same name: writing the chain imports no service code).
CHANNEL_KEY = "returnprog.channel"

GENESIS = "0" * 64
# Version 1 hashed the event without ``ip`` and ``actor_id``, so those two could be edited
# unseen; version 2 hashes every column but the row's surrogate ``id``, which means nothing
# (``seq`` is the event's identity: unique, hashed, and checked for gaps). Events of version 1 are
# still verified with their own formula, but only as a prefix of the chain: once an event of
# version 2 is written, no event after it may claim version 1.
CHAIN_VERSION = 2
# The columns version 2 hashes, in this order (everything but the hash itself).
HASHED = ("chain_version", "seq", "prev_hash", "at", "actor_id", "actor", "case_id",
          "action", "from_state", "to_state", "details", "ip")


def _digest_v1(prev_hash: str, seq: int, at, actor: str, case_id, action: str,
               from_state, to_state, details: str) -> str:
    payload = json.dumps([prev_hash, seq, at.isoformat(timespec="microseconds"), actor,
                          case_id, action, from_state, to_state, details],
                         ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def digest(fields: Mapping) -> str:
    """The hash of one event from its column values (a mapping with every name in
    :data:`HASHED`), by the formula of its ``chain_version``."""
    at = fields["at"]
    if fields["chain_version"] == 1:
        return _digest_v1(fields["prev_hash"], fields["seq"], at, fields["actor"],
                          fields["case_id"], fields["action"], fields["from_state"],
                          fields["to_state"], fields["details"])
    values = [at.isoformat(timespec="microseconds") if name == "at" else fields[name]
              for name in HASHED]
    payload = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def fields_of(event) -> dict:
    """The hashed column values of an event (an AuditEvent or a selected row)."""
    return {name: getattr(event, name) for name in HASHED}


def append(session: Session, *, actor, action: str, case_id: int | None = None,
           from_state: str | None = None, to_state: str | None = None,
           details: dict | None = None, ip: str | None = None) -> AuditEvent:
    """Add one event to the chain inside the caller's transaction (the caller commits).

    ``actor`` is a User or a plain label such as ``"system"`` or ``"participant:12"``.
    Updating the single head row first serialises appends across transactions. An event
    about a case also queues the webhook events it stands for
    (:func:`returnprog.services.webhook_events.on_audit`), in the same transaction. Only
    changes belong here; looks at personal data go to :mod:`returnprog.access_log`, which
    takes no such lock.
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
    stored = dict(details or {})
    # The channel (web, api, cli, job, link) the change came through, when a service
    # Context set it on the session: the processing log's origin besides ``ip`` (issue 16).
    channel = session.info.get(CHANNEL_KEY) if isinstance(session.info, dict) else None
    if isinstance(channel, str) and "channel" not in stored:
        stored["channel"] = channel
    fields = {"chain_version": CHAIN_VERSION, "seq": seq, "prev_hash": prev,
              "at": utcnow(), "actor_id": getattr(actor, "id", None),
              "actor": getattr(actor, "email", None) or str(actor), "case_id": case_id,
              "action": action, "from_state": from_state, "to_state": to_state,
              "details": json.dumps(stored, ensure_ascii=False, sort_keys=True,
                                    default=str),
              "ip": ip}
    event = AuditEvent(**fields, hash=digest(fields))
    session.add(event)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=event.hash))
    if case_id is not None:
        # Webhook events (issue 14): every change passes here, so mapping audit actions to
        # events in one place emits each of them in the change's own transaction and no
        # use case can forget one. Imported on first use: reading or verifying the chain
        # (tools, migrations) loads no service code.
        from .services import webhook_events

        webhook_events.on_audit(session, action=action, case_id=case_id, from_state=from_state,
                          to_state=to_state, details=details or {})
    return event


@dataclass
class ChainReport:
    """Outcome of :func:`verify`: ``ok`` or the first broken link and why."""

    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str | None = None


def verify(session: Session, batch: int = 5000,
           checkpoints: Iterable = ()) -> ChainReport:
    """Walk the whole chain in order and report the first event that does not fit.

    ``checkpoints`` are signed (seq, hash) pairs kept outside the database
    (:mod:`returnprog.anchor`, already checked for their signature): the chain must still
    reach each of them with the same hash, so truncating it below a checkpoint or rewriting
    an event and re-hashing everything after it is detected too.
    """
    anchors = {c.seq: c for c in checkpoints}
    prev, expected_seq, count, last_seq, version = GENESIS, 1, 0, 0, 1
    cols = [getattr(AuditEvent, name) for name in HASHED] + [AuditEvent.hash]
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
            if ev.chain_version < version or ev.chain_version not in (1, CHAIN_VERSION) \
                    or digest(fields_of(ev)) != ev.hash:
                return ChainReport(False, count, ev.seq, f"event {ev.seq} was altered")
            anchor = anchors.get(ev.seq)
            if anchor is not None and anchor.hash != ev.hash:
                return ChainReport(False, count, ev.seq,
                                   f"event {ev.seq} differs from the checkpoint sealed at "
                                   f"{anchor.at}: the chain was rewritten from there on")
            prev, expected_seq, count, last_seq = ev.hash, ev.seq + 1, count + 1, ev.seq
            version = ev.chain_version
    beyond = [c for c in anchors.values() if c.seq > last_seq]
    if beyond:
        latest = max(beyond, key=lambda c: c.seq)
        return ChainReport(False, count, last_seq + 1,
                           f"the chain ends at event {last_seq} but the checkpoint sealed at "
                           f"{latest.at} covers event {latest.seq}: events were removed")
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != last_seq or head.hash != prev):
        return ChainReport(False, count, last_seq + 1,
                           f"the chain ends at event {last_seq} but event {head.seq} was written")
    return ChainReport(True, count)
