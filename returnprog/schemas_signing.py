"""Marshmallow schemas of signing and documents in the API (issue 14 item 1): signing
links and tablet sessions (requests and answers), the document register and the verdict
of a verification. The OpenAPI document (``web/api/spec_signing.py``) is generated from
them."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from . import documents, workflow
from .schemas import MULTILINE, Strict, UserRef

LINK_STATUSES = ("open", "used", "expired", "revoked", "declined")
LINK_CHANNELS = ("link", "tablet")
DOCUMENT_STATUSES = ("current", "superseded")
# The identity documents a counsellor checks at the tablet (as the office tablet lists them).
ID_TYPES = ("passport", "id_card", "residence", "other")
ID_NUMBER = r"^[A-Za-z0-9][A-Za-z0-9 ./-]{0,29}$"
_ID = 2**31 - 1


class TermsSchema(Strict):
    """The terms a document is signed with: the departure deadline of an agreement or an
    addendum, and an addendum's reason (a standard code and/or the counsellor's words)."""

    departure_deadline = fields.Date(load_default=None, allow_none=True)
    reason_code = fields.String(load_default=None, allow_none=True,
                                validate=validate.OneOf(documents.ADDENDUM_REASONS))
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000), metadata=MULTILINE)


class SigningRequestSchema(Strict):
    """Who signs which document, on what terms."""

    participant_id = fields.Integer(required=True, strict=True,
                                    validate=validate.Range(min=1, max=_ID))
    kind = fields.String(required=True, validate=validate.OneOf(workflow.SIGNABLE_KINDS))
    terms = fields.Nested(TermsSchema, load_default=dict)


class IdentityDocumentSchema(Strict):
    """The identity document the counsellor checked in person."""

    type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    number = fields.String(required=True, validate=validate.Regexp(ID_NUMBER))


class TabletSessionSchema(SigningRequestSchema):
    """A tablet session: the signing request plus the identity document the counsellor
    checked, with the participant in front of them."""

    identity_document = fields.Nested(IdentityDocumentSchema, required=True)




class SigningLinkOut(Schema):
    """A signing link or tablet session as its case lists it: never its address."""

    id = fields.Integer()
    participant_id = fields.Integer()
    kind = fields.String(validate=validate.OneOf(workflow.SIGNABLE_KINDS))
    channel = fields.String(validate=validate.OneOf(LINK_CHANNELS))
    status = fields.String(validate=validate.OneOf(LINK_STATUSES))
    terms = fields.Dict()
    created_at = fields.DateTime()
    expires_at = fields.DateTime()
    opened_at = fields.DateTime(allow_none=True)
    used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    declined_at = fields.DateTime(allow_none=True)
    decline_code = fields.String(allow_none=True)
    document_id = fields.Integer(allow_none=True)
    created_by = fields.Nested(UserRef)


class SigningLinkCreatedOut(SigningLinkOut):
    """A new signing link or tablet session with its address: the only time it is given."""

    url = fields.String(metadata={"description": "the address to deliver (or open on the "
                                                 "tablet); never returned again"})


class SigningLinksOut(Schema):
    """The signing links and tablet sessions of a case, newest first."""

    items = fields.List(fields.Nested(SigningLinkOut))


class DocumentEntryOut(Schema):
    """A signed document in the case's register, with its download address."""

    id = fields.Integer()
    kind = fields.String()
    version = fields.Integer()
    participant_id = fields.Integer(allow_none=True)
    signer_name = fields.String()
    signature_method = fields.String(allow_none=True)
    signing_channel = fields.String(allow_none=True)
    signed_at = fields.DateTime()
    status = fields.String(validate=validate.OneOf(DOCUMENT_STATUSES))
    superseded_at = fields.DateTime(allow_none=True)
    sha256 = fields.String()
    download = fields.String(metadata={"description": "GET it for the PDF"})


class DocumentListOut(Schema):
    """The signed documents of a case, oldest first."""

    items = fields.List(fields.Nested(DocumentEntryOut))


class VerifiedDocumentOut(Schema):
    """The register's entry for a verified file's hash."""

    document_id = fields.Integer()
    reference = fields.String()
    kind = fields.String()
    version = fields.Integer()
    language = fields.String(allow_none=True)
    signer_name = fields.String()
    signed_at = fields.DateTime()
    signature_method = fields.String(allow_none=True)
    signing_channel = fields.String(allow_none=True)


class EvidenceEventOut(Schema):
    """One event of the signing, as the evidence certificate sealed into the file lists it."""

    event = fields.String()
    at_utc = fields.String()
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    channel = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)


class EvidenceRecordOut(Schema):
    """The evidence record sealed into a valid file."""

    content_sha256 = fields.String(allow_none=True)
    counsellor = fields.String(allow_none=True)
    events = fields.List(fields.Nested(EvidenceEventOut))


class VerificationOut(Schema):
    """The verdict on an uploaded PDF, as the public /verify page gives it."""

    valid = fields.Boolean()
    reasons = fields.List(fields.String(), metadata={
        "description": "why the file is not valid (empty exactly when valid)"})
    sha256 = fields.String(allow_none=True)
    registered = fields.Boolean(metadata={"description": "the file's hash is in the register"})
    document = fields.Nested(VerifiedDocumentOut, allow_none=True)
    sealed_by = fields.String(allow_none=True)
    sealed_at = fields.DateTime(allow_none=True)
    stopped = fields.String(allow_none=True, metadata={
        "description": "set when the check was cut short by a limit"})
    evidence = fields.Nested(EvidenceRecordOut, allow_none=True)
