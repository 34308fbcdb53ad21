"""Schemas of the finance API (issue 15): payment batches, bank statements, the review
list and the monthly reconciliation — what the requests take and the answers give."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .schemas import Strict, UserRef

_PAGE = dict(load_default=1, validate=validate.Range(min=1, max=1_000_000))
_PER_PAGE = dict(load_default=25, validate=validate.Range(min=1, max=100))


class NoFieldsSchema(Strict):
    """An action without fields (an empty body, or ``{}``)."""


class BatchQuerySchema(Strict):
    """Paging and status filter of the batch list."""

    status = fields.String(validate=validate.OneOf(("open", "sent", "withdrawn", "legacy")))
    page = fields.Integer(**_PAGE)
    per_page = fields.Integer(**_PER_PAGE)


class CreateBatchSchema(Strict):
    """Which released transfers go into the new batch (by default: those in the SEPA zone
    while any wait, else those outside it)."""

    scope = fields.String(validate=validate.OneOf(("sepa", "outside_sepa")))


class WithdrawBatchSchema(Strict):
    """Why a batch that was not sent is withdrawn."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class BatchFileOut(Schema):
    """One rendering of a batch."""

    format = fields.String(metadata={"description": "sepa | csv"})
    sha256 = fields.String()
    download = fields.String()


class BatchPaymentOut(Schema):
    """A payment in a batch (IBAN masked)."""

    id = fields.Integer()
    case_reference = fields.String()
    amount_cents = fields.Integer()
    amount = fields.String()
    end_to_end_id = fields.String(allow_none=True)
    status = fields.String()
    iban = fields.String(allow_none=True)
    account_holder = fields.String(allow_none=True)


class BatchOut(Schema):
    """A payment batch: its status, people, totals and files."""

    id = fields.Integer()
    scope = fields.String(metadata={"description": "sepa | outside_sepa (legacy: sepa | csv)"})
    status = fields.String(metadata={"description": "open | sent | withdrawn | legacy"})
    created_at = fields.DateTime()
    created_by = fields.Nested(UserRef)
    payment_count = fields.Integer()
    total_cents = fields.Integer()
    total = fields.String()
    sent_at = fields.DateTime(allow_none=True)
    sent_by = fields.Nested(UserRef, allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_by = fields.Nested(UserRef, allow_none=True)
    files = fields.List(fields.Nested(BatchFileOut))
    payments = fields.List(fields.Nested(BatchPaymentOut), metadata={
        "description": "Only when one batch is read."})


class BatchListOut(Schema):
    """A page of batches."""

    items = fields.List(fields.Nested(BatchOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class OutcomesOut(Schema):
    """How many entries of a statement did what."""

    booked = fields.Integer()
    returned = fields.Integer()
    review = fields.Integer()
    ignored = fields.Integer()


class StatementOut(Schema):
    """An imported bank statement."""

    id = fields.Integer()
    statement_id = fields.String()
    format = fields.String()
    account_iban = fields.String(allow_none=True)
    sha256 = fields.String()
    entry_count = fields.Integer()
    imported_at = fields.DateTime()
    already_imported = fields.Boolean(metadata={
        "description": "True when this statement was imported before: nothing changed."})
    outcomes = fields.Nested(OutcomesOut)


class StatementListOut(Schema):
    """A page of imported statements."""

    items = fields.List(fields.Nested(StatementOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class PageQuerySchema(Strict):
    """Paging."""

    page = fields.Integer(**_PAGE)
    per_page = fields.Integer(**_PER_PAGE)


class ReviewQuerySchema(PageQuerySchema):
    """The review list: entries still open (default) or already decided."""

    state = fields.String(load_default="open", validate=validate.OneOf(("open", "resolved")))


class EntryOut(Schema):
    """A statement entry on the review list."""

    id = fields.Integer()
    statement_id = fields.String()
    reference = fields.String()
    booked_on = fields.Date()
    direction = fields.String()
    status = fields.String()
    amount_cents = fields.Integer()
    amount = fields.String()
    currency = fields.String()
    end_to_end_id = fields.String(allow_none=True)
    counterparty_iban = fields.String(allow_none=True)
    counterparty_name = fields.String(allow_none=True)
    return_reason = fields.String(allow_none=True)
    outcome = fields.String()
    review_reason = fields.String(allow_none=True)
    payment_id = fields.Integer(allow_none=True)
    case_reference = fields.String(allow_none=True)
    resolved_by = fields.Nested(UserRef, allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    resolution = fields.String(allow_none=True)


class EntryListOut(Schema):
    """A page of the review list."""

    items = fields.List(fields.Nested(EntryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class ResolveEntrySchema(Strict):
    """A decision on a reviewed entry."""

    resolution = fields.String(required=True,
                               validate=validate.OneOf(("book", "return", "dismiss")))
    note = fields.String(required=True, validate=validate.Length(min=1, max=500))
    payment_id = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=2**31 - 1),
                                metadata={"description": "Required to book or return."})


class ReportQuerySchema(Strict):
    """Which month (YYYY-MM; default: this month)."""

    month = fields.String(validate=validate.Regexp(r"^2\d{3}-(0[1-9]|1[0-2])$"))


class TotalOut(Schema):
    """A count and its amount."""

    count = fields.Integer()
    cents = fields.Integer()


class ReportLineOut(Schema):
    """A payment released in the month."""

    payment_id = fields.Integer()
    case_reference = fields.String()
    method = fields.String()
    amount_cents = fields.Integer()
    released_on = fields.Date(allow_none=True)
    status = fields.String()
    bucket = fields.String(metadata={"description": "booked | returned | outstanding | "
                                                    "handed_over"})
    booked_on = fields.Date(allow_none=True)
    returned_on = fields.Date(allow_none=True)
    return_reason = fields.String(allow_none=True)
    batch_id = fields.Integer(allow_none=True)


class ReportOut(Schema):
    """The monthly reconciliation: paid = booked + returned + outstanding + handed_over."""

    month = fields.String()
    proposed = fields.Nested(TotalOut)
    paid = fields.Nested(TotalOut)
    booked = fields.Nested(TotalOut)
    returned = fields.Nested(TotalOut)
    outstanding = fields.Nested(TotalOut)
    handed_over = fields.Nested(TotalOut)
    lines = fields.List(fields.Nested(ReportLineOut))
