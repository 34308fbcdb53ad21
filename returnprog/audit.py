"""The audit trail: append-only and hash-chained, written in the same transaction as the
change it records. Editing, deleting or reordering an event breaks the chain, and
:func:`verify` names the first broken link.

Erasure without breaking the chain (issue 16): since version 3 an event's personal part —
its ``details`` and ``ip`` — is not hashed into the chain itself. The chain hashes
``personal_digest``, the SHA-256 of a random per-event salt and that part, and verification
recomputes it while the part is there. Destroying a case (:mod:`returnprog.services.records`)
erases details, ip and salt together: the chain still verifies, the digest reveals nothing
(without the salt a guessed name or V-number cannot be confirmed against it), and the event
is reported as destroyed, not broken. Events written before version 3 hash their details
directly; when one of them is erased, the destruction's own event (version 3, in the chain)
records a digest of everything of it that remains, so verification still checks that
remainder and the link.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
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
# (``seq`` is the event's identity: unique, hashed, and checked for gaps); version 3 hashes
# the personal part through its salted digest (above). Older events are still verified with
# their own formula, but only as a prefix of the chain: no event may claim an older version
# than the one before it.
CHAIN_VERSION = 3
VERSIONS = (1, 2, 3)
# The columns version 2 hashes, in this order (everything but the hash itself).
HASHED_V2 = ("chain_version", "seq", "prev_hash", "at", "actor_id", "actor", "case_id",
             "action", "from_state", "to_state", "details", "ip")
# Version 3: the personal part (details, ip) only through its digest.
HASHED = ("chain_version", "seq", "prev_hash", "at", "actor_id", "actor", "case_id",
          "action", "from_state", "to_state", "personal_digest")
# Every column :func:`fields_of` reads: what either formula and the erasure checks need.
COLUMNS = tuple(dict.fromkeys(HASHED_V2 + HASHED + ("personal_salt", "erased_at",
                                                    "erased_by_list", "hash")))
# The action of the event a case's destruction writes (its details carry the remainder
# digests of erased events older than version 3).
DESTROY_ACTION = "destroy_case"


def personal_digest(salt: str | None, details: str, ip: str | None) -> str:
    """The digest of an event's personal part, as version 3 hashes it into the chain."""
    payload = json.dumps([salt, details, ip], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def remainder_digest(fields: Mapping) -> str:
    """The digest of what remains of an erased event older than version 3: every hashed
    column but its personal part, and its hash (so its link is pinned too)."""
    values = [fields["at"].isoformat(timespec="microseconds") if name == "at" else fields[name]
              for name in HASHED_V2 if name not in ("details", "ip")] + [fields["hash"]]
    payload = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


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
    names = HASHED_V2 if fields["chain_version"] == 2 else HASHED
    values = [at.isoformat(timespec="microseconds") if name == "at" else fields[name]
              for name in names]
    payload = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def fields_of(event) -> dict:
    """The column values of an event that verification reads (an AuditEvent or a selected
    row): what either formula hashes, the salt, the erasure marks and the hash."""
    return {name: getattr(event, name) for name in COLUMNS}


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
              "ip": ip, "personal_salt": secrets.token_hex(16)}
    fields["personal_digest"] = personal_digest(fields["personal_salt"], fields["details"], ip)
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
    """Outcome of :func:`verify`: ``ok`` or the first broken link and why; ``destroyed``
    counts the events whose personal details a destruction erased (checked as far as
    what remains of them allows), ``destruction_lists`` names those destructions."""

    ok: bool
    events: int
    broken_seq: int | None = None
    reason: str | None = None
    destroyed: int = 0
    destruction_lists: list = field(default_factory=list)


def _remainders(session: Session) -> dict[int, str]:
    """seq → remainder digest of every erased pre-version-3 event, as the destructions'
    own events recorded them (those events are checked in the walk like any other)."""
    out: dict[int, str] = {}
    rows = session.execute(select(AuditEvent.details)
                           .where(AuditEvent.action == DESTROY_ACTION)).scalars()
    for details in rows:
        try:
            erased = json.loads(details).get("erased_legacy", {})
        except (ValueError, AttributeError):
            continue
        out.update({int(seq): str(d) for seq, d in erased.items()})
    return out


def _altered(ev, remainders: dict[int, str]) -> bool:
    """Whether an event's stored values no longer give its hash (by its version's formula,
    and for an erased event by what remains of it)."""
    fields = fields_of(ev)
    if ev.erased_at is not None:
        if ev.chain_version >= 3:
            return digest(fields) != ev.hash
        # An erased old event: its hash cannot be recomputed without its details, so what
        # remains must match what the destruction recorded of it.
        return remainders.get(ev.seq) != remainder_digest(fields)
    if digest(fields) != ev.hash:
        return True
    return ev.chain_version >= 3 and ev.personal_digest != personal_digest(
        ev.personal_salt, ev.details, ev.ip)


def verify(session: Session, batch: int = 5000,
           checkpoints: Iterable = ()) -> ChainReport:
    """Walk the whole chain in order and report the first event that does not fit.

    ``checkpoints`` are signed (seq, hash) pairs kept outside the database
    (:mod:`returnprog.anchor`, already checked for their signature): the chain must still
    reach each of them with the same hash, so truncating it below a checkpoint or rewriting
    an event and re-hashing everything after it is detected too. Events a destruction
    erased are reported as destroyed, not as broken links.
    """
    anchors = {c.seq: c for c in checkpoints}
    remainders = _remainders(session)
    prev, expected_seq, count, last_seq, version = GENESIS, 1, 0, 0, 1
    destroyed, lists = 0, set()
    cols = [getattr(AuditEvent, name) for name in COLUMNS]
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
            if ev.chain_version < version or ev.chain_version not in VERSIONS \
                    or _altered(ev, remainders):
                return ChainReport(False, count, ev.seq, f"event {ev.seq} was altered")
            anchor = anchors.get(ev.seq)
            if anchor is not None and anchor.hash != ev.hash:
                return ChainReport(False, count, ev.seq,
                                   f"event {ev.seq} differs from the checkpoint sealed at "
                                   f"{anchor.at}: the chain was rewritten from there on")
            if ev.erased_at is not None:
                destroyed += 1
                lists.add(ev.erased_by_list)
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
    return ChainReport(True, count, destroyed=destroyed,
                       destruction_lists=sorted(x for x in lists if x is not None))
