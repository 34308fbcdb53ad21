"""Reconciliation from the bank's statement (issue 15 item 3).

A finance officer imports the bank's daily statement (camt.053 or MT940, parsed and
validated by :mod:`returnprog.statements`). Each entry is matched to a transfer by its
end-to-end id, then checked on amount and account: a booked debit confirms a sent
transfer (``booked``), a credit carrying a return reason marks a sent or booked transfer
``returned`` with the bank's reason; anything unmatched, ambiguous or contradicting goes to
the review list for a person to decide — never guessed. Entries that are not booked yet
(pending, information) are kept as ``ignored``.

One statement is one transaction. The bank's statement id is unique, so importing the
same statement twice (or fifty times at once) applies each entry once: a later import finds
the statement and changes nothing.
"""
from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import audit, payment_flow, payments
from ..messages import M
from ..policy import TIMEZONE
from ..models import BankStatement, Case, Payment, StatementEntry, User
from ..roles import FINANCE
from . import Conflict, Context, Forbidden, Invalid, NotFound
from .batches import apply_bank_outcome
from .lookups import user_ref
from .uow import atomic, begin_write, commit

# Why an entry waits for a person (codes; the pages and the API explain them).
REVIEW_REASONS = ("unknown", "no_reference", "amount_mismatch", "account_mismatch",
                  "already_booked", "already_returned", "batch_not_sent", "not_a_transfer",
                  "duplicate_entry", "return_without_reason", "currency")
RESOLUTIONS = ("book", "return", "dismiss")
NOTE_MAX = 500

__all__ = ["RESOLUTIONS", "REVIEW_REASONS", "import_statement", "list_statements",
           "match_entry", "monthly_report", "report_csv", "resolve_entry", "review_list"]


def _require_finance(ctx: Context) -> None:
    if ctx.actor.role != FINANCE:
        raise Forbidden("statement.finance_only",
                        [{"code": "role", "message": M("statement.finance_only")}])


def match_entry(entry, payment: Payment | None) -> tuple[str, str | None]:
    """What an entry does to the transfer its end-to-end id names: ``(outcome, review
    reason)`` with outcome ``booked``, ``returned``, ``review`` or ``ignored``. Pure: the
    decision table of reconciliation, tested on its own."""
    if entry.status != "booked":
        return "ignored", None
    if entry.duplicate:
        return "review", "duplicate_entry"
    if not entry.end_to_end_id:
        return "review", "no_reference"
    if payment is None:
        return "review", "unknown"
    if payment.method != payment_flow.TRANSFER:
        return "review", "not_a_transfer"
    if entry.currency != payment.currency:
        return "review", "currency"
    if entry.amount_cents != payment.amount_cents:
        return "review", "amount_mismatch"
    if entry.counterparty_iban and payment.iban and \
            entry.counterparty_iban.replace(" ", "").upper() != payment.iban:
        return "review", "account_mismatch"
    if entry.direction == "debit":
        if payment.status == "booked":
            return "review", "already_booked"
        if payment.status == "scheduled":
            return "review", "batch_not_sent"
        if payment_flow.can("book", payment.status, payment.method):
            return "booked", None
        return "review", "already_returned" if payment.status == "returned" else "unknown"
    # A credit about one of our transfers is the money coming back.
    if not entry.return_reason:
        return "review", "return_without_reason"
    if payment.status == "returned":
        return "review", "already_returned"
    if payment_flow.can("return", payment.status, payment.method):
        return "returned", None
    return "review", "batch_not_sent" if payment.status == "scheduled" else "unknown"


def _parse(data: bytes, max_bytes: int):
    from ..statements import StatementError, parse_statement

    try:
        return parse_statement(data, max_bytes=max_bytes)
    except StatementError as exc:
        code = "statement." + exc.code.removeprefix("statement_")
        raise Invalid("statement.refused", {"file": [M(code, **_safe(exc.params))]}) from exc


def _safe(params: dict | None) -> dict:
    # Only the numbers the messages use; never content from the refused file.
    return {k: v for k, v in (params or {}).items()
            if k in ("line", "max_bytes", "position") and isinstance(v, int)}


def _summary(ctx: Context, row: BankStatement, *, already: bool) -> dict:
    counts = dict(ctx.session.execute(
        select(StatementEntry.outcome, func.count()).where(
            StatementEntry.statement_row_id == row.id)
        .group_by(StatementEntry.outcome)).all())
    return {"id": row.id, "statement_id": row.statement_id, "format": row.format,
            "account_iban": payments.mask_iban(row.account_iban), "sha256": row.sha256,
            "entry_count": row.entry_count, "imported_at": row.imported_at,
            "already_imported": already,
            "outcomes": {o: counts.get(o, 0) for o in ("booked", "returned", "review",
                                                       "ignored")}}


@atomic
def import_statement(ctx: Context, data: bytes, *, max_bytes: int = 5_000_000) -> dict:
    """A finance officer imports the bank's statement: every booked entry is matched and
    applied or put on the review list, in one transaction. A statement imported before
    changes nothing (``already_imported``). Returns the import's summary."""
    _require_finance(ctx)
    statement = _parse(data, max_bytes)
    begin_write(ctx.session)
    existing = ctx.session.execute(select(BankStatement).where(
        BankStatement.statement_id == statement.statement_id)).scalar_one_or_none()
    if existing is not None:
        result = _summary(ctx, existing, already=True)
        ctx.session.commit()  # nothing was written
        return result
    row = BankStatement(statement_id=statement.statement_id, format=statement.format,
                        account_iban=statement.account_iban,
                        sha256=hashlib.sha256(data).hexdigest(),
                        entry_count=len(statement.entries), imported_by=ctx.actor.id,
                        imported_at=ctx.now())
    ctx.session.add(row)
    try:
        ctx.session.flush()
    except IntegrityError:
        # A racing import of the same statement won: answer as it did, change nothing.
        ctx.session.rollback()
        return _already(ctx, statement.statement_id)
    by_e2e = _payments_by_e2e(ctx, {e.end_to_end_id for e in statement.entries
                                    if e.end_to_end_id})
    seen_refs: dict[str, int] = {}
    for entry in statement.entries:
        payment = by_e2e.get(entry.end_to_end_id) if entry.end_to_end_id else None
        outcome, reason = match_entry(entry, payment)
        if outcome in ("booked", "returned"):
            apply_bank_outcome(ctx, payment, outcome, return_reason=entry.return_reason,
                               source={"source": "statement", "statement": row.statement_id,
                                       "entry": entry.reference})
            ctx.session.refresh(payment)
        reference = entry.reference
        if reference in seen_refs:  # the same reference twice in one file: keep both
            seen_refs[reference] += 1
            reference = f"{reference}#{seen_refs[reference]}"
        else:
            seen_refs[reference] = 1
        ctx.session.add(StatementEntry(
            statement_row_id=row.id, reference=reference[:80], booked_on=entry.booked_on,
            direction=entry.direction, status=entry.status, amount_cents=entry.amount_cents,
            currency=entry.currency, end_to_end_id=entry.end_to_end_id,
            counterparty_iban=entry.counterparty_iban,
            counterparty_name=(entry.counterparty_name or "")[:140] or None,
            return_reason=entry.return_reason, outcome=outcome, review_reason=reason,
            payment_id=payment.id if payment is not None else None))
    ctx.session.flush()
    result = _summary(ctx, row, already=False)
    audit.append(ctx.session, actor=ctx.actor, action="import_statement",
                 details={"statement_row_id": row.id, "statement_id": row.statement_id,
                          "format": row.format, "sha256": row.sha256,
                          "entry_count": row.entry_count, "outcomes": result["outcomes"]},
                 ip=ctx.ip)
    try:
        commit(ctx)
    except Conflict:
        ctx.session.rollback()
        return _already(ctx, statement.statement_id)
    return result


def _already(ctx: Context, statement_id: str) -> dict:
    begin_write(ctx.session)
    existing = ctx.session.execute(select(BankStatement).where(
        BankStatement.statement_id == statement_id)).scalar_one_or_none()
    if existing is None:  # the other import failed after all: let the caller retry
        raise Conflict("statement.busy", [{"code": "busy", "message": M("statement.busy")}])
    result = _summary(ctx, existing, already=True)
    ctx.session.commit()
    return result


def _payments_by_e2e(ctx: Context, ids: set[str]) -> dict[str, Payment]:
    """The transfers these end-to-end ids name, locked (PostgreSQL) and read as they are
    now; an id given to more than one payment is left out (ambiguous: review)."""
    if not ids:
        return {}
    rows = ctx.session.execute(select(Payment).where(Payment.end_to_end_id.in_(ids))
                               .order_by(Payment.id).with_for_update()
                               .execution_options(populate_existing=True)).scalars().all()
    found: dict[str, list[Payment]] = {}
    for p in rows:
        found.setdefault(p.end_to_end_id, []).append(p)
    return {e2e: ps[0] for e2e, ps in found.items() if len(ps) == 1}


def _entry_data(e: StatementEntry, reference: str | None, statement_id: str,
                resolver: dict | None) -> dict:
    return {"id": e.id, "statement_id": statement_id, "reference": e.reference,
            "booked_on": e.booked_on, "direction": e.direction, "status": e.status,
            "amount_cents": e.amount_cents, "amount": payments.format_cents(e.amount_cents),
            "currency": e.currency, "end_to_end_id": e.end_to_end_id,
            "counterparty_iban": payments.mask_iban(e.counterparty_iban),
            "counterparty_name": e.counterparty_name, "return_reason": e.return_reason,
            "outcome": e.outcome, "review_reason": e.review_reason,
            "payment_id": e.payment_id, "case_reference": reference,
            "resolved_by": resolver, "resolved_at": e.resolved_at, "resolution": e.resolution}


@atomic
def review_list(ctx: Context, filters: dict) -> dict:
    """The entries waiting for a person (``open``, the default) or already decided
    (``resolved``), oldest first, a page at a time."""
    _require_finance(ctx)
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    resolved = filters.get("state") == "resolved"
    where = (StatementEntry.review_reason.is_not(None),
             StatementEntry.resolved_at.is_not(None) if resolved
             else StatementEntry.resolved_at.is_(None))
    total = ctx.session.execute(select(func.count()).select_from(StatementEntry)
                                .where(*where)).scalar_one()
    rows = ctx.session.execute(
        select(StatementEntry, Case.reference, BankStatement.statement_id, User.name, User.email)
        .join(BankStatement, BankStatement.id == StatementEntry.statement_row_id)
        .outerjoin(Payment, Payment.id == StatementEntry.payment_id)
        .outerjoin(Case, Case.id == Payment.case_id)
        .outerjoin(User, User.id == StatementEntry.resolved_by)
        .where(*where).order_by(StatementEntry.id).limit(per_page)
        .offset((page - 1) * per_page)).all()
    items = [_entry_data(e, ref, sid, user_ref(e.resolved_by, name, email)
                         if e.resolved_by else None) for e, ref, sid, name, email in rows]
    ctx.session.commit()  # read only: ends the snapshot
    return {"page": page, "per_page": per_page, "total": total, "items": items}


@atomic
def resolve_entry(ctx: Context, entry_id: int, resolution: str, note: str,
                  payment_id: int | None = None) -> dict:
    """A finance officer decides a reviewed entry: ``book`` or ``return`` it against the
    transfer ``payment_id`` (which must then match on amount, and be in a status that
    step allows), or ``dismiss`` it (not ours, or settled otherwise). The note says why;
    a decided entry is not decided again."""
    begin_write(ctx.session)
    _require_finance(ctx)
    problems = {}
    if resolution not in RESOLUTIONS:
        problems["resolution"] = [M("signing.kind_one_of", kinds=", ".join(RESOLUTIONS))]
    note = (note or "").strip()
    if not note:
        problems["note"] = [M("field.required")]
    elif len(note) > NOTE_MAX:
        problems["note"] = [M("validate.length_max", max=NOTE_MAX)]
    if resolution in ("book", "return") and payment_id is None:
        problems["payment_id"] = [M("field.required")]
    if problems:
        raise Invalid("error.invalid_fields", problems)
    entry = ctx.session.execute(select(StatementEntry).where(StatementEntry.id == entry_id)
                                .with_for_update()
                                .execution_options(populate_existing=True)).scalar_one_or_none()
    if entry is None or entry.review_reason is None:
        raise NotFound("statement.no_entry", id=entry_id)
    if entry.resolved_at is not None:
        raise Conflict("statement.entry_resolved",
                       [{"code": "already_resolved", "message": M("statement.entry_resolved")}])
    if resolution != "dismiss":
        payment = ctx.session.execute(select(Payment).where(Payment.id == payment_id)
                                      .with_for_update()
                                      .execution_options(populate_existing=True)) \
            .scalar_one_or_none()
        step = "book" if resolution == "book" else "return"
        if payment is None or payment.method != payment_flow.TRANSFER:
            raise Invalid("error.invalid_fields",
                          {"payment_id": [M("batch.no_such_transfer", id=payment_id)]})
        if payment.amount_cents != entry.amount_cents:
            raise Invalid("error.invalid_fields",
                          {"payment_id": [M("statement.amount_differs")]})
        if not payment_flow.can(step, payment.status, payment.method):
            raise Conflict("payment.stale", [{"code": "wrong_status", "field": "payment_id",
                                              "message": M("batch.status_is",
                                                           status=payment.status)}])
        apply_bank_outcome(ctx, payment, "booked" if step == "book" else "returned",
                           return_reason=entry.return_reason,
                           source={"source": "review", "entry_id": entry.id, "note": note})
        entry.payment_id = payment.id
        entry.outcome = "booked" if step == "book" else "returned"
    else:
        entry.outcome = "review"
    entry.resolved_by, entry.resolved_at, entry.resolution = ctx.actor.id, ctx.now(), \
        f"{resolution}: {note}"
    audit.append(ctx.session, actor=ctx.actor, action="resolve_statement_entry",
                 details={"entry_id": entry.id, "resolution": resolution,
                          "payment_id": entry.payment_id, "note": note}, ip=ctx.ip)
    commit(ctx)
    result = _entry_data(entry, None, "", user_ref(ctx.actor.id, ctx.actor.name,
                                                    ctx.actor.email))
    ctx.session.commit()
    return result


@atomic
def list_statements(ctx: Context, filters: dict) -> dict:
    """The imported statements, newest first, with their outcomes."""
    _require_finance(ctx)
    page, per_page = filters.get("page", 1), filters.get("per_page", 25)
    total = ctx.session.execute(select(func.count()).select_from(BankStatement)).scalar_one()
    rows = ctx.session.execute(select(BankStatement).order_by(BankStatement.id.desc())
                               .limit(per_page).offset((page - 1) * per_page)).scalars().all()
    counts: dict[int, dict] = {}
    if rows:
        for sid, outcome, n in ctx.session.execute(
                select(StatementEntry.statement_row_id, StatementEntry.outcome, func.count())
                .where(StatementEntry.statement_row_id.in_([r.id for r in rows]))
                .group_by(StatementEntry.statement_row_id, StatementEntry.outcome)).all():
            counts.setdefault(sid, {})[outcome] = n
    items = [{"id": r.id, "statement_id": r.statement_id, "format": r.format,
              "account_iban": payments.mask_iban(r.account_iban), "sha256": r.sha256,
              "entry_count": r.entry_count, "imported_at": r.imported_at,
              "outcomes": {o: counts.get(r.id, {}).get(o, 0)
                           for o in ("booked", "returned", "review", "ignored")}}
             for r in rows]
    ctx.session.commit()
    return {"page": page, "per_page": per_page, "total": total, "items": items}


# --- the monthly reconciliation ------------------------------------------------------------

REPORT_COLUMNS = ("payment_id", "case_reference", "method", "amount_cents", "released_on",
                  "status", "booked_on", "returned_on", "return_reason", "batch_id")


def _month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(year, month, 1, tzinfo=TIMEZONE)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=TIMEZONE)
    return start.astimezone(dt.timezone.utc), end.astimezone(dt.timezone.utc)


def _local_day(value: dt.datetime | None) -> dt.date | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(TIMEZONE).date()


@atomic
def monthly_report(ctx: Context, year: int, month: int) -> dict:
    """The month's reconciliation (Amsterdam calendar month), for finance and the
    ministry: what was proposed in the month, and of the money released in the month
    what the bank booked, returned, or still owes an answer on — as of now — plus what
    was handed over in cash or by card. ``paid = booked + returned + outstanding +
    handed_over`` holds by construction; the lines are the payments behind the totals."""
    _require_finance(ctx)
    if not (2000 <= year <= 2999 and 1 <= month <= 12):
        raise Invalid("error.invalid_fields", {"month": [M("report.month_format")]})
    start, end = _month_bounds(year, month)
    proposed = ctx.session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .where(Payment.proposed_at >= start, Payment.proposed_at < end)).one()
    rows = ctx.session.execute(
        select(Payment, Case.reference).join(Case, Case.id == Payment.case_id)
        .where(Payment.disbursed_at >= start, Payment.disbursed_at < end)
        .order_by(Payment.id)).all()
    totals = {k: {"count": 0, "cents": 0} for k in
              ("paid", "booked", "returned", "outstanding", "handed_over")}
    lines = []
    for p, reference in rows:
        if p.method != payment_flow.TRANSFER:
            bucket = "handed_over"
        elif p.status == "booked":
            bucket = "booked"
        elif p.status == "returned":
            bucket = "returned"
        else:
            bucket = "outstanding"
        for key in ("paid", bucket):
            totals[key]["count"] += 1
            totals[key]["cents"] += p.amount_cents
        lines.append({"payment_id": p.id, "case_reference": reference, "method": p.method,
                      "amount_cents": p.amount_cents, "released_on": _local_day(p.disbursed_at),
                      "status": p.status, "bucket": bucket,
                      "booked_on": _local_day(p.booked_at),
                      "returned_on": _local_day(p.returned_at),
                      "return_reason": p.return_reason, "batch_id": p.export_batch_id})
    ctx.session.commit()  # read only: ends the snapshot
    return {"month": f"{year:04d}-{month:02d}",
            "proposed": {"count": proposed[0], "cents": int(proposed[1])},
            **totals, "lines": lines}


def report_csv(report: dict) -> bytes:
    """The monthly report as CSV (UTF-8 with BOM, every cell quoted and escaped against
    formula injection): one line per released payment, then the totals."""
    import csv
    import io

    from ..export import escape_cell

    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    for line in report["lines"]:
        writer.writerow([escape_cell("" if line[c] is None else line[c]) for c in REPORT_COLUMNS])
    writer.writerow([])
    writer.writerow(["total", "count", "amount_cents"])
    for key in ("proposed", "paid", "booked", "returned", "outstanding", "handed_over"):
        writer.writerow([key, report[key]["count"], report[key]["cents"]])
    return out.getvalue().encode("utf-8-sig")
