"""Payment batches (issue 15 item 2): released bank transfers made once into a batch, in
every format at once — the SEPA pain.001 for the bank and the CSV for a spreadsheet, two
renderings of the same payments — downloadable again at any time with identical bytes
(their hashes are in the audit). A batch is sent (handed to the bank: its payments become
``sent``) or, while not yet sent, withdrawn (its payments are freed for the next batch).

Four eyes on release: a batch whose total is above the policy's
``batch_second_release_cents`` is sent only by a finance officer other than its maker
(another account and another person).

Every change takes the write lock first, changes rows by compare-and-set on their status
(the steps of :mod:`payment_flow`), writes one audit event and commits — or raises a
ServiceError having changed nothing.
"""
from __future__ import annotations

import hashlib

from sqlalchemy import func, select, update

from .. import audit, export, payment_flow, payments
from ..messages import M
from ..models import Case, ExportBatch, Payment, User
from ..roles import FINANCE
from . import Conflict, Context, Forbidden, Invalid, NotFound
from .lookups import person_of, user_ref
from .uow import atomic, begin_write, commit

SCOPES = ("sepa", "outside_sepa")
FORMATS = ("sepa", "csv")
OPEN, SENT, WITHDRAWN, LEGACY = "open", "sent", "withdrawn", "legacy"
REASON_MAX = 500

__all__ = ["FORMATS", "SCOPES", "apply_bank_outcome", "batch_data", "create_batch",
           "download_file", "file_hash", "file_of", "list_batches", "read_batch", "record_bank_outcome",
           "send_batch", "withdraw_batch"]


def _require_finance(ctx: Context, what: str) -> None:
    if ctx.actor.role != FINANCE:
        raise Forbidden(what, [{"code": "role", "message": M(what)}])


def _load(ctx: Context, batch_id: int, *, lock: bool = False) -> ExportBatch:
    query = select(ExportBatch).where(ExportBatch.id == batch_id)
    if lock:
        query = query.with_for_update()
    batch = ctx.session.execute(query.execution_options(populate_existing=True)) \
        .scalar_one_or_none()
    if batch is None:
        raise NotFound("payment.no_export", id=batch_id)
    return batch


@atomic
def create_batch(ctx: Context, scope: str | None = None,
                 debtor: export.Debtor | None = None) -> ExportBatch:
    """A finance officer puts every released bank transfer that is in no batch yet into a
    new batch: ``sepa`` (accounts in the SEPA zone: pain.001 and CSV) or ``outside_sepa``
    (other accounts, e.g. Ukrainian ones: CSV only, for a manual foreign transfer); without
    a scope, ``sepa`` while SEPA-zone transfers wait, else ``outside_sepa``. Each payment
    is in at most one open or sent batch."""
    begin_write(ctx.session)
    _require_finance(ctx, "payment.finance_only:export")
    if scope is not None and scope not in SCOPES:
        raise Invalid("payment.export_kind",
                      {"scope": [M("signing.kind_one_of", kinds=", ".join(SCOPES))]})
    debtor = debtor or export.EXAMPLE_DEBTOR
    # Lock the candidates in id order (PostgreSQL): a racing batch waits, then finds them
    # taken. populate_existing: the rows as they are now, not as an earlier read saw them.
    rows = ctx.session.execute(
        select(Payment, Case.reference).join(Case, Case.id == Payment.case_id).where(
            Payment.method == payment_flow.TRANSFER,
            Payment.status.in_(payment_flow.sources("schedule")),
            Payment.export_batch_id.is_(None)).order_by(Payment.id)
        .with_for_update(of=Payment).execution_options(populate_existing=True)).all()
    lines = [export.Line.of(p, ref) for p, ref in rows]
    in_sepa = [line for line in lines if payments.is_sepa_iban(line.iban)]
    if scope is None:
        scope = "sepa" if in_sepa or not lines else "outside_sepa"
    chosen = in_sepa if scope == "sepa" else [line for line in lines if line not in in_sepa]
    if not chosen:
        others = len(lines) - len(chosen)
        details = ([{"code": "outside_sepa" if scope == "sepa" else "in_sepa",
                     "message": M("batch.other_scope_waiting", num=others,
                                  scope="outside_sepa" if scope == "sepa" else "sepa")}]
                   if others else [])
        raise Conflict("payment.export_nothing",
                       [{"code": "nothing_to_export",
                         "message": M("payment.export_all_taken")}] + details)
    batch = ExportBatch(kind=scope, status=OPEN, created_by=ctx.actor.id, created_at=ctx.now(),
                        payment_count=len(chosen),
                        total_cents=sum(line.amount_cents for line in chosen),
                        content=b"", sha256="")
    ctx.session.add(batch)
    ctx.session.flush()
    try:
        sepa = (export.sepa_pain001(chosen, debtor, msg_id=f"RETURNPROG-{batch.id}",
                                    execution_date=ctx.today(), created_at=ctx.now())
                if scope == "sepa" else b"")
    except export.ExportError as exc:
        raise Conflict("payment.export_failed", exc.problems) from exc
    csv = export.csv_export(chosen)
    batch.content, batch.sha256 = sepa, hashlib.sha256(sepa).hexdigest() if sepa else ""
    batch.csv_content, batch.csv_sha256 = csv, hashlib.sha256(csv).hexdigest()
    ids = [line.payment_id for line in chosen]
    for line in chosen:
        taken = ctx.session.execute(
            update(Payment).where(Payment.id == line.payment_id,
                                  Payment.export_batch_id.is_(None),
                                  Payment.status.in_(payment_flow.sources("schedule")))
            .values(export_batch_id=batch.id, status=payment_flow.STEPS["schedule"].target,
                    end_to_end_id=line.end_to_end_id, version=Payment.version + 1)
            .execution_options(synchronize_session=False)).rowcount
        if taken != 1:
            raise Conflict("payment.export_race", [{"code": "export_race",
                                                    "message": M("payment.nothing_exported")}])
    audit.append(ctx.session, actor=ctx.actor, action="create_batch",
                 details={"batch_id": batch.id, "scope": scope, "payment_count": len(ids),
                          "total_cents": batch.total_cents, "sepa_sha256": batch.sha256 or None,
                          "csv_sha256": batch.csv_sha256, "payment_ids": ids,
                          "case_references": [line.case_reference for line in chosen]},
                 ip=ctx.ip)
    commit(ctx)
    return batch


def _open_batch(ctx: Context, batch_id: int) -> ExportBatch:
    """The batch, locked, if it is still open (else a Conflict)."""
    batch = _load(ctx, batch_id, lock=True)
    if batch.status != OPEN:
        raise Conflict("batch.not_open", [{"code": "batch_not_open", "message":
                                           M("batch.status_is", status=batch.status)}])
    return batch


def _close(ctx: Context, batch: ExportBatch, step_name: str, batch_values: dict,
           payment_values: dict, details: dict) -> ExportBatch:
    """Take the payment step ``step_name`` for every payment of the open ``batch`` and
    give the batch ``batch_values``, both by compare-and-set; one audit event; commit."""
    step = payment_flow.STEPS[step_name]
    moved = ctx.session.execute(
        update(Payment).where(Payment.export_batch_id == batch.id,
                              Payment.status.in_(step.sources))
        .values(status=step.target, version=Payment.version + 1, **payment_values)
        .execution_options(synchronize_session=False)).rowcount
    changed = ctx.session.execute(
        update(ExportBatch).where(ExportBatch.id == batch.id, ExportBatch.status == OPEN)
        .values(**batch_values).execution_options(synchronize_session=False)).rowcount
    if changed != 1 or moved != batch.payment_count:
        raise Conflict("batch.changed_first", [{"code": "stale_version",
                                                "message": M("batch.changed_first")}])
    audit.append(ctx.session, actor=ctx.actor, action=f"{step_name}_batch",
                 details={"batch_id": batch.id, "payment_count": moved,
                          "total_cents": batch.total_cents, **details}, ip=ctx.ip)
    commit(ctx)
    return _load(ctx, batch.id)


@atomic
def send_batch(ctx: Context, batch_id: int) -> ExportBatch:
    """A finance officer marks an open batch as handed to the bank: its payments become
    ``sent``. Above the policy's threshold the sender must not be the batch's maker."""
    begin_write(ctx.session)
    _require_finance(ctx, "payment.finance_only:export")
    batch = _open_batch(ctx, batch_id)
    if batch.total_cents > ctx.policy.batch_second_release_cents:
        persons = person_of(ctx, batch.created_by)
        same_person = ctx.actor.person is not None and \
            ctx.actor.person == persons.get(batch.created_by)
        if ctx.actor.id == batch.created_by or same_person:
            raise Forbidden("batch.second_release", [{
                "code": "batch_four_eyes", "message": M(
                    "batch.second_release:detail", total=batch.total_cents,
                    limit=ctx.policy.batch_second_release_cents)}])
    now = ctx.now()
    return _close(ctx, batch, "send", {"status": SENT, "sent_by": ctx.actor.id, "sent_at": now},
                  {"sent_at": now}, {})


@atomic
def withdraw_batch(ctx: Context, batch_id: int, reason: str = "") -> ExportBatch:
    """A finance officer withdraws a batch that was not sent: its payments are freed
    (released again, in no batch) for the next batch; its files stay for the record."""
    begin_write(ctx.session)
    _require_finance(ctx, "payment.finance_only:export")
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("error.invalid_fields", {"reason": [M("field.required")]})
    if len(reason) > REASON_MAX:
        raise Invalid("error.invalid_fields", {"reason": [M("validate.length_max", max=REASON_MAX)]})
    batch = _open_batch(ctx, batch_id)
    return _close(ctx, batch, "withdraw", {"status": WITHDRAWN, "withdrawn_by": ctx.actor.id,
                                           "withdrawn_at": ctx.now()},
                  {"export_batch_id": None}, {"reason": reason})


def file_hash(batch, fmt: str) -> str | None:
    """The SHA-256 of the batch's rendering in ``fmt``, or None when it has none (no SEPA
    file for accounts outside SEPA; a legacy export has only its own kind). ``batch``: an
    ExportBatch or a row of its columns."""
    if batch.status == LEGACY:
        return batch.sha256 if batch.kind == fmt else None
    return (batch.sha256 if fmt == "sepa" else batch.csv_sha256) or None


def file_of(batch: ExportBatch, fmt: str) -> tuple[bytes, str] | None:
    """The batch's rendering in ``fmt`` and its hash, or None when it has none."""
    sha256 = file_hash(batch, fmt)
    if sha256 is None:
        return None
    sepa_bytes = batch.status == LEGACY or fmt == "sepa"
    return (batch.content if sepa_bytes else batch.csv_content), sha256


@atomic
def download_file(ctx: Context, batch_id: int,
                  fmt: str | None = None) -> tuple[ExportBatch, bytes, str]:
    """A batch's file in ``fmt`` (``sepa`` or ``csv``; by default its SEPA file if it has
    one, else its CSV) for a finance officer, with the format given: the bytes
    stored when the batch was made. The download is audited with the file's hash (the
    file holds names and bank details, and finance must account for every file that left
    the service)."""
    begin_write(ctx.session)
    _require_finance(ctx, "payment.finance_only:download")
    if fmt is not None and fmt not in FORMATS:
        raise Invalid("payment.export_kind",
                      {"format": [M("signing.kind_one_of", kinds=", ".join(FORMATS))]})
    batch = _load(ctx, batch_id)
    if fmt is None:
        fmt = next(f for f in FORMATS if file_of(batch, f) is not None)
    found = file_of(batch, fmt)
    if found is None:
        raise NotFound("batch.no_such_file", id=batch_id, format=fmt)
    content, sha256 = found
    audit.append(ctx.session, actor=ctx.actor, action="download_export",
                 details={"batch_id": batch.id, "format": fmt, "sha256": sha256}, ip=ctx.ip)
    commit(ctx)
    return batch, content, fmt


def batch_data(batch, users: dict | None = None) -> dict:
    """A batch's register entry (``batch``: an ExportBatch or a row of its columns), its
    people named ``{"id", "name"}`` (``users`` by id; missing ones by id only)."""
    users = users or {}

    def who(user_id):
        return None if user_id is None else users.get(user_id) or user_ref(user_id)
    status = batch.status
    files = [{"format": fmt, "sha256": file_hash(batch, fmt)} for fmt in FORMATS
             if file_hash(batch, fmt) is not None]
    return {"id": batch.id, "scope": batch.kind, "status": status,
            "created_at": batch.created_at, "created_by": who(batch.created_by),
            "payment_count": batch.payment_count, "total_cents": batch.total_cents,
            "total": payments.format_cents(batch.total_cents),
            "sent_at": batch.sent_at, "sent_by": who(batch.sent_by),
            "withdrawn_at": batch.withdrawn_at, "withdrawn_by": who(batch.withdrawn_by),
            "files": files,
            # Kept for clients of the single-file exports (deprecated).
            "kind": batch.kind, "sha256": batch.sha256 or batch.csv_sha256}


_COLUMNS = (ExportBatch.id, ExportBatch.kind, ExportBatch.status, ExportBatch.created_by,
            ExportBatch.created_at, ExportBatch.payment_count, ExportBatch.total_cents,
            ExportBatch.sha256, ExportBatch.csv_sha256, ExportBatch.sent_by,
            ExportBatch.sent_at, ExportBatch.withdrawn_by, ExportBatch.withdrawn_at)


def _names(ctx: Context, rows) -> dict:
    ids = {uid for r in rows for uid in (r.created_by, r.sent_by, r.withdrawn_by) if uid}
    if not ids:
        return {}
    return {uid: user_ref(uid, name, email) for uid, name, email in ctx.session.execute(
        select(User.id, User.name, User.email).where(User.id.in_(ids))).all()}


@atomic
def list_batches(ctx: Context, filters: dict) -> dict:
    """One page of the batches, newest first, without their files: two statements."""
    _require_finance(ctx, "payment.finance_only:see")
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    query = select(*_COLUMNS)
    count = select(func.count()).select_from(ExportBatch)
    if filters.get("status"):
        query = query.where(ExportBatch.status == filters["status"])
        count = count.where(ExportBatch.status == filters["status"])
    total = ctx.session.execute(count).scalar_one()
    rows = ctx.session.execute(query.order_by(ExportBatch.id.desc()).limit(per_page)
                               .offset((page - 1) * per_page)).all()
    users = _names(ctx, rows)
    result = {"page": page, "per_page": per_page, "total": total,
              "items": [batch_data(r, users) for r in rows]}
    ctx.session.commit()  # read only: ends the snapshot
    return result


@atomic
def read_batch(ctx: Context, batch_id: int) -> dict:
    """One batch with its payments (case, amount, end-to-end id, status; IBANs masked)."""
    _require_finance(ctx, "payment.finance_only:see")
    row = ctx.session.execute(select(*_COLUMNS).where(ExportBatch.id == batch_id)).one_or_none()
    if row is None:
        raise NotFound("payment.no_export", id=batch_id)
    lines = ctx.session.execute(
        select(Payment.id, Case.reference, Payment.amount_cents, Payment.end_to_end_id,
               Payment.status, Payment.iban, Payment.account_holder)
        .join(Case, Case.id == Payment.case_id)
        .where(Payment.export_batch_id == batch_id).order_by(Payment.id)).all()
    data = batch_data(row, _names(ctx, [row]))
    data["payments"] = [{"id": p.id, "case_reference": p.reference,
                         "amount_cents": p.amount_cents,
                         "amount": payments.format_cents(p.amount_cents),
                         "end_to_end_id": p.end_to_end_id, "status": p.status,
                         "iban": payments.mask_iban(p.iban), "account_holder": p.account_holder}
                        for p in lines]
    ctx.session.commit()  # read only: ends the snapshot
    return data


# --- the bank's answer ------------------------------------------------------------------------

OUTCOME_STEPS = {"booked": "book", "returned": "return"}


def apply_bank_outcome(ctx: Context, payment: Payment, outcome: str, *,
                       return_reason: str | None = None, source: dict | None = None) -> None:
    """Inside the caller's transaction: the bank booked (``booked``) or returned
    (``returned``, with its ISO reason code) a sent transfer — by compare-and-set on the
    payment's status, so an answer is applied once — with one audit event on the case
    (``source``: where the answer came from, e.g. the statement entry)."""
    step = payment_flow.STEPS[OUTCOME_STEPS[outcome]]
    now = ctx.now()
    values = ({"booked_at": now} if outcome == "booked"
              else {"returned_at": now, "return_reason": return_reason})
    values["settled_by"] = ctx.actor.id
    changed = ctx.session.execute(
        update(Payment).where(Payment.id == payment.id, Payment.version == payment.version,
                              Payment.status.in_(step.sources))
        .values(status=step.target, version=payment.version + 1, **values)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict("payment.stale", [{"code": "stale_version",
                                          "message": M("payment.changed_first")}])
    audit.append(ctx.session, actor=ctx.actor, action=f"{step.name}_payment",
                 case_id=payment.case_id,
                 details={"payment_id": payment.id, "amount_cents": payment.amount_cents,
                          "end_to_end_id": payment.end_to_end_id,
                          **({"return_reason": return_reason} if return_reason else {}),
                          **(source or {})}, ip=ctx.ip)


@atomic
def record_bank_outcome(ctx: Context, payment_id: int, outcome: str, *,
                        return_reason: str | None = None, note: str = "") -> Payment:
    """A finance officer records by hand what the bank did with a sent transfer (for an
    answer that came outside an imported statement): ``booked``, or ``returned`` with the
    bank's reason code; the note says where the answer came from."""
    begin_write(ctx.session)
    _require_finance(ctx, "payment.finance_only:export")
    if outcome not in OUTCOME_STEPS:
        raise Invalid("error.invalid_fields", {"outcome": [M("signing.kind_one_of",
                                                             kinds=", ".join(OUTCOME_STEPS))]})
    if outcome == "returned" and not (return_reason or "").strip():
        raise Invalid("error.invalid_fields", {"return_reason": [M("field.required")]})
    payment = ctx.session.execute(select(Payment).where(Payment.id == payment_id)
                                  .with_for_update()
                                  .execution_options(populate_existing=True)).scalar_one_or_none()
    if payment is None or payment.method != payment_flow.TRANSFER:
        raise NotFound("batch.no_such_transfer", id=payment_id)
    if not payment_flow.can(OUTCOME_STEPS[outcome], payment.status, payment.method):
        raise Conflict("payment.stale", [{"code": "wrong_status", "message":
                                          M("batch.status_is", status=payment.status)}])
    apply_bank_outcome(ctx, payment, outcome,
                       return_reason=(return_reason or "").strip().upper() or None,
                       source={"source": "by_hand", **({"note": note} if note else {})})
    commit(ctx)
    ctx.session.refresh(payment)
    return payment
