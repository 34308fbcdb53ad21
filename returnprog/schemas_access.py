"""Schemas of the access requests (issue 16 item 4): what registering, extending, refusing
and delivering one takes. Identity is recorded as the checked document's type and the last
characters of its number, never the whole number."""
from __future__ import annotations

from marshmallow import fields, validate

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
