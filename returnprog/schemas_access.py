"""Schemas of the access requests (issue 16 item 4): what registering, extending, refusing
and delivering one takes. Identity is recorded as the checked document's type and the last
characters of its number, never the whole number."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .schemas import Strict

ID_DOCUMENT_TYPES = ("passport", "id_card", "residence_document", "driving_licence", "other")
RECEIVED_VIA = ("letter", "email", "desk")
DELIVERY_CHANNELS = ("post", "email", "desk")
EXTENSION_MONTHS = (1, 2)
REASON_MAX = 2000
_ID = dict(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class RegisterAccessRequestSchema(Strict):
    """A request received from a participant, whose identity the records manager checked."""

    reference = fields.String(required=True, validate=validate.Length(min=1, max=20))
    participant_id = fields.Integer(**_ID)
    received_on = fields.Date(required=True)
    received_via = fields.String(required=True, validate=validate.OneOf(RECEIVED_VIA))
    identity_document_type = fields.String(required=True,
                                           validate=validate.OneOf(ID_DOCUMENT_TYPES))
    # The last four characters only: enough to say which document was seen.
    identity_document_last4 = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Za-z0-9]{4}$"))


class VersionedSchema(Strict):
    """A change of a request as it was shown (compare-and-set on ``version``)."""

    version = fields.Integer(**_ID)


class ExtendAccessRequestSchema(VersionedSchema):
    """One extension of the term by one or two months, with the reason the participant is
    told."""

    months = fields.Integer(required=True, validate=validate.OneOf(EXTENSION_MONTHS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=REASON_MAX),
                           metadata={"multiline": True})


class RefuseAccessRequestSchema(VersionedSchema):
    """A refusal (e.g. the identity could not be established), with its reason."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=REASON_MAX),
                           metadata={"multiline": True})


class DeliverAccessRequestSchema(VersionedSchema):
    """How the downloaded package was handed over."""

    channel = fields.String(required=True, validate=validate.OneOf(DELIVERY_CHANNELS))


class StaffLogQuerySchema(Strict):
    """Whose processing log (a staff account's e-mail address), which days, which page."""

    staff = fields.String(required=True, validate=validate.Length(min=3, max=254))
    since = fields.Date()
    until = fields.Date()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class PageOnlySchema(Strict):
    """A page number."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))


class AccessRequestOut(Schema):
    """An access request as the records roles read it."""

    id = fields.Integer()
    status = fields.String(metadata={"description": "open | extended | delivered | refused"})
    version = fields.Integer()
    reference = fields.String(metadata={"description": "the case's reference"})
    participant_id = fields.Integer()
    participant_name = fields.String()
    relationship = fields.String()
    received_on = fields.Date()
    received_via = fields.String()
    due_on = fields.Date()
    original_due_on = fields.Date()
    days_left = fields.Integer()
    overdue = fields.Boolean()
    identity_document_type = fields.String()
    identity_document_last4 = fields.String()
    identity_checked_by = fields.String(allow_none=True)
    identity_checked_at = fields.DateTime()
    registered_by = fields.String(allow_none=True)
    registered_at = fields.DateTime()
    extension_reason = fields.String(allow_none=True)
    extended_by = fields.String(allow_none=True)
    extended_at = fields.DateTime(allow_none=True)
    package_sha256 = fields.String(allow_none=True)
    delivered_sha256 = fields.String(allow_none=True)
    delivery_channel = fields.String(allow_none=True)
    delivered_by = fields.String(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)
    refusal_reason = fields.String(allow_none=True)
    refused_by = fields.String(allow_none=True)
    refused_at = fields.DateTime(allow_none=True)


class AccessRequestListOut(Schema):
    """The access requests, those still to answer first by due date."""

    items = fields.List(fields.Nested(AccessRequestOut))


class ProcessingEntryOut(Schema):
    """One read or change of personal data (processing_log.Entry)."""

    at = fields.DateTime()
    kind = fields.String(metadata={"description": "read | change"})
    who_kind = fields.String(metadata={"description": "staff | participant | system"})
    who = fields.String()
    who_id = fields.Integer(allow_none=True)
    who_role = fields.String(allow_none=True)
    categories = fields.List(fields.String())
    case_id = fields.Integer(allow_none=True)
    case_reference = fields.String(allow_none=True)
    participant_ids = fields.List(fields.Integer(), metadata={
        "description": "the members it is about; empty: the household as a whole"})
    what = fields.String(metadata={"description": "the view read or the audit action"})
    purpose = fields.String()
    result = fields.String(metadata={"description": "success | refused"})
    channel = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    source_id = fields.String(metadata={"description": "access:<id> or audit:<seq>"})


class ProcessingPageOut(Schema):
    """A page of the processing log, newest first."""

    items = fields.List(fields.Nested(ProcessingEntryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    more = fields.Boolean()
