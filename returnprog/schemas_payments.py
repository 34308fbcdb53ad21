"""Marshmallow schemas of the payment API: the contract for proposing, deciding,
cancelling, re-entry, listing and exporting travel-support payments.

Unknown fields are rejected, every string has a length limit and every amount is whole
cents (a strict integer: 12.5 or "1250" is refused, never rounded).
"""
from __future__ import annotations

import datetime as dt

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from . import payments
from .export import KINDS
from .schemas import MULTILINE, PaySupportSchema, Strict, UserRef, _not_blank, payment_url
from .messages import M

ID = dict(strict=True, validate=validate.Range(min=1, max=2**31 - 1))


def _reason(required=True):
    return fields.String(required=required, validate=[validate.Length(min=1, max=2000), _not_blank],
                         metadata=MULTILINE)


class ProposePaymentSchema(Strict):
    """A counsellor's proposal: how the travel support is paid. The amount is not input:
    it follows from the tariff and the household."""

    method = fields.String(required=True, validate=validate.OneOf(payments.METHODS))
    # The layout an IBAN is typed in (country, check digits, the account; spaces anywhere
    # after the country) — or blank for cash and card. Country rules and the checksum are
    # checked by the service (schwifty), which a pattern cannot say.
    iban = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64),
                         metadata={"pattern": r"^\s*([A-Za-z]{2} *[0-9]{2}[A-Za-z0-9 ]{10,40})?\s*$",
                                   "example": "NL91 ABNA 0417 1643 00",
                                   "description": "required for a transfer; none for cash or card"})
    account_holder = fields.String(load_default=None, allow_none=True,
                                   validate=validate.Length(max=payments.ACCOUNT_HOLDER_MAX))

    @validates_schema
    def _details_fit_method(self, data, **kwargs):
        method = data.get("method")
        if method in payments.METHODS:
            problems = payments.method_problems(method, data.get("iban"),
                                                data.get("account_holder"))
            if problems:
                raise ValidationError(problems)


class ApprovePaymentSchema(Strict):
    """Approve the proposal you looked at: its id (and optionally its version)."""

    payment_id = fields.Integer(required=True, **ID)
    version = fields.Integer(load_default=None, allow_none=True, **ID)


class ReasonedDecisionSchema(Strict):
    """Reject or cancel, with a reason; naming the payment is optional."""

    reason = _reason()
    payment_id = fields.Integer(load_default=None, allow_none=True, **ID)
    version = fields.Integer(load_default=None, allow_none=True, **ID)


class _Reentry(Strict):
    """What a re-entry records: when the person came back, the cents reclaimed, a note."""

    reentry_on = fields.Date(required=True)
    reclaim_cents = fields.Integer(required=True, strict=True,
                                   validate=validate.Range(min=0, max=payments.MAX_CENTS))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000),
                         metadata=MULTILINE)

    @validates_schema
    def _not_future(self, data, **kwargs):
        if data.get("reentry_on") and data["reentry_on"] > dt.date.today():
            raise ValidationError({"reentry_on": [M('payment.reentry_future')]})


class ReentrySchema(_Reentry):
    """The person came back: when, and how many cents of the support are reclaimed."""

    payment_id = fields.Integer(load_default=None, allow_none=True, **ID)


# --- the payment sub-resource (/cases/{reference}/payments/{payment_id}/…) -----------------
# Each action names the payment in the address and the version it was read at in the body
# (required): a payment changed meanwhile is a 409 with the current version.

def _version():
    return fields.Integer(required=True, metadata={
        "description": "the payment's `version` as you read it; 409 if it changed since"},
        **ID)


class PaymentVersionSchema(Strict):
    """Approve the payment at the version you looked at."""

    version = _version()


class PaymentReasonSchema(Strict):
    """Reject or cancel the payment at the version you looked at, with a reason."""

    version = _version()
    reason = _reason()


class PaymentPaySchema(PaySupportSchema):
    """Pay out the approved payment (the workflow action ``pay_support``) once, under an
    idempotency key: the same key and body again answer the payment without paying
    again; the same key with another request is a 409."""

    version = _version()


class PaymentReentrySchema(_Reentry):
    """The person came back: when, and how many cents of the paid support are reclaimed."""

    version = _version()


class PaymentQuerySchema(Strict):
    """Filters and paging for the payment list."""

    status = fields.String(load_default=None, validate=validate.OneOf(payments.STATUSES))
    method = fields.String(load_default=None, validate=validate.OneOf(payments.METHODS))
    case = fields.String(load_default=None, validate=validate.Length(max=20))
    exported = fields.Boolean(load_default=None, allow_none=True)
    awaiting_correction = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "Only transfers the bank returned that no standing corrected "
                       "payment replaces yet."})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class ExportQuerySchema(Strict):
    """Paging for the export list."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class DownloadQuerySchema(Strict):
    """Which of a batch's files to download."""

    format = fields.String(validate=validate.OneOf(("sepa", "csv")))


class CreateBatchSchema(Strict):
    """Which released transfers to put in a new batch (the form's choice)."""

    scope = fields.String(load_default="sepa", validate=validate.OneOf(("sepa", "outside_sepa")))


class CreateExportSchema(Strict):
    """Which file to make of the transfers not exported yet."""

    kind = fields.String(required=True, validate=validate.OneOf(KINDS))


# --- dumps ----------------------------------------------------------------------------------

class PaymentDetailOut(Schema):
    """One payment as the payment API shows it (the list masks the IBAN)."""

    id = fields.Integer()
    case_reference = fields.String()
    url = fields.Function(lambda p: payment_url(p["case_reference"], p["id"]),
                          metadata={"type": "string",
                                    "description": "this payment's sub-resource"})
    status = fields.String()
    version = fields.Integer(metadata={"description": "what the payment's actions take "
                                       "(`version` in their body)"})
    amount_cents = fields.Integer()
    amount = fields.String(metadata={"description": "decimal text of amount_cents, e.g. 1500.00"})
    currency = fields.String()
    adults = fields.Integer()
    minors = fields.Integer()
    tariff_effective_from = fields.Date()
    breakdown = fields.Dict()
    method = fields.String()
    iban = fields.String(allow_none=True)
    account_holder = fields.String(allow_none=True)
    proposed_by = fields.Nested(UserRef)
    proposed_at = fields.DateTime()
    decided_by = fields.Nested(UserRef, allow_none=True, metadata={
        "description": "who approved or rejected it"})
    decided_at = fields.DateTime(allow_none=True)
    approved_by = fields.Nested(UserRef, allow_none=True)
    decision_reason = fields.String(allow_none=True)
    disbursed_by = fields.Nested(UserRef, allow_none=True)
    disbursed_at = fields.DateTime(allow_none=True)
    export_batch_id = fields.Integer(allow_none=True)
    end_to_end_id = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    booked_at = fields.DateTime(allow_none=True)
    returned_at = fields.DateTime(allow_none=True)
    return_reason = fields.String(allow_none=True, metadata={
        "description": "The bank's ISO 20022 return reason code, e.g. AC04."})
    return_reason_text = fields.String(allow_none=True, metadata={
        "description": "What the return reason means, in Dutch."})
    replaces_id = fields.Integer(allow_none=True, metadata={
        "description": "The returned payment this corrected one replaces."})
    handed_over_place = fields.String(allow_none=True)
    settled_by = fields.Nested(UserRef, allow_none=True, metadata={
        "description": "Who recorded the bank's answer (booked or returned)."})
    status_since = fields.DateTime(allow_none=True, metadata={
        "description": "In lists: when the payment came into its status."})
    age_days = fields.Integer(allow_none=True, metadata={
        "description": "In lists: whole days in its status."})
    receipt_required = fields.Boolean()
    receipt_signed = fields.Boolean(allow_none=True)
    reentry_on = fields.Date(allow_none=True)
    reclaim_cents = fields.Integer(allow_none=True)


class PaymentListOut(Schema):
    """A page of payments."""

    items = fields.List(fields.Nested(PaymentDetailOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class CasePaymentsOut(Schema):
    """Every payment of a case, oldest first (IBANs masked; read one for its details)."""

    items = fields.List(fields.Nested(PaymentDetailOut))


class ExportBatchOut(Schema):
    """A finance export's register entry (the file is downloaded separately)."""

    id = fields.Integer()
    kind = fields.String(metadata={"description": "Deprecated: the batch's scope."})
    scope = fields.String(metadata={"description": "sepa | outside_sepa"})
    status = fields.String(metadata={"description": "open | sent | withdrawn | legacy"})
    created_by = fields.Nested(UserRef)
    created_at = fields.DateTime()
    payment_count = fields.Integer()
    total_cents = fields.Integer()
    sha256 = fields.String(metadata={"description": "Deprecated: see files."})
    files = fields.List(fields.Dict(), metadata={
        "description": "The batch's renderings: format (sepa | csv) and sha256."})
    sent_at = fields.DateTime(allow_none=True)
    sent_by = fields.Nested(UserRef, allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    withdrawn_by = fields.Nested(UserRef, allow_none=True)
    download = fields.String()


class ExportListOut(Schema):
    """A page of finance exports."""

    items = fields.List(fields.Nested(ExportBatchOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
