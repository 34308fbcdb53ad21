"""Marshmallow schemas: the contract for every input (forms and API share them) and the
plain-data dumps that documents and responses are made from.

Unknown fields are rejected (marshmallow's default RAISE), every string has a length
limit and every number a range, so huge or odd input gets a per-field error, never a 500.
"""
from __future__ import annotations

import datetime as dt
import re

from marshmallow import (EXCLUDE, RAISE, Schema, ValidationError, fields, post_dump, pre_load,
                         validate, validates_schema)

from . import identifiers, passwords, search
from .characters import (MULTI_LINE_REFUSED_TYPED, SINGLE_LINE_REFUSED, control_character,
                         normalise_newlines)
from .workflow import DEPARTURE_EVIDENCE, ROLES
from .messages import M, install_marshmallow_messages

# Marshmallow's own messages (required, not a valid date, ...) by code, for every schema.
install_marshmallow_messages()

LANGUAGES = ("uk", "en", "nl", "ru")
RELATIONSHIPS = ("spouse", "partner", "child", "parent", "sibling", "grandparent",
                 "grandchild", "other")
PAYMENT_METHODS = ("transfer", "cash", "card")
MAX_HOUSEHOLD = 15


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError(M('validate.blank'))


_not_blank.nonblank = True  # the OpenAPI document's pattern asks for one visible character


def _v_number(value: str) -> None:
    if not identifiers.is_valid_v_number(value):
        raise ValidationError(M('validate.v_number'))


def _bsn(value: str) -> None:
    if not identifiers.is_valid_bsn(value):
        raise ValidationError(M('validate.bsn'))


def _oblast(value: str) -> None:
    if not identifiers.is_valid_oblast(value):
        raise ValidationError(M('validate.oblast'))


# What a validator means in JSON Schema terms, read by the OpenAPI document
# (returnprog.web.api.openapi) wherever the validator is used.
_v_number.openapi = {"pattern": identifiers.V_NUMBER_TYPED}
_bsn.openapi = {"pattern": identifiers.BSN_TYPED}
_oblast.openapi = {"enum": sorted(identifiers.OBLASTS)}


def _birth_date(value: dt.date) -> None:
    if value > dt.date.today():
        raise ValidationError(M('validate.birth_future'))
    if value < dt.date(1900, 1, 1):
        raise ValidationError(M('validate.birth_1900'))


# The OpenAPI pattern of :func:`_cyrillic` (and of the character rule): empty, or with a
# Cyrillic letter.
CYRILLIC_TYPED = (f"^\\s*(?:[^{SINGLE_LINE_REFUSED}]*[\\u0400-\\u04ff][^{SINGLE_LINE_REFUSED}]*)?"
                  "\\s*$")
# The phone rule as typed: surrounding white space is trimmed and an empty one is none.
PHONE = r"^\+?[0-9 ()-]{6,30}$"
PHONE_TYPED = r"^\s*(?:\+?[0-9()-][0-9 ()-]{4,28}[0-9()-])?\s*$"


def _cyrillic(value: str) -> None:
    if value and not any("\u0400" <= ch <= "\u04ff" for ch in value):
        raise ValidationError(M('validate.cyrillic'))


_cyrillic.openapi = {"pattern": CYRILLIC_TYPED}


# No database column can hold lone UTF-16 surrogates (not encodable as UTF-8); NUL, which
# PostgreSQL text cannot hold either, is a control character (returnprog.characters).
# Refused per field instead of failing at the INSERT.
_UNSTORABLE = re.compile("[\ud800-\udfff]")

# Field metadata marking text that may span lines (notes, reasons): it keeps \n and \t.
MULTILINE = {"multiline": True}


def _no_control_characters(multiline: bool):
    def check(value) -> None:
        if isinstance(value, str) and control_character(value, multiline=multiline) is not None:
            raise ValidationError(M("validate.control_character"))
    # Read by the OpenAPI document, which states the rule as the field's pattern.
    check.refused = MULTI_LINE_REFUSED_TYPED if multiline else SINGLE_LINE_REFUSED
    return check


def _multiline(field) -> bool:
    return bool(field is not None and field.metadata.get("multiline"))


class Strict(Schema):
    """Base: reject unknown fields, trim surrounding white space from strings and refuse
    control characters in every text field (the rule of :mod:`returnprog.characters`,
    which the PDF renderer applies too). Fields with :data:`MULTILINE` metadata may hold
    line feeds and tabs; their line ends are normalised to ``\n`` first. Fields marked
    ``metadata={"as_typed": True}`` (passwords) are taken exactly as typed."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name, field_obj):
        # A validator, not a pre_load refusal: the error joins the others of the same load,
        # nested fields included, each beside its own field.
        if isinstance(field_obj, fields.String):
            field_obj.validators = [*field_obj.validators,
                                    _no_control_characters(_multiline(field_obj))]

    @pre_load
    def _strip(self, data, **kwargs):
        if not isinstance(data, dict):
            return data
        unstorable = {k: [M("validate.unstorable")]
                      for k, v in data.items() if isinstance(v, str) and _UNSTORABLE.search(v)}
        if unstorable:
            raise ValidationError(unstorable)
        as_typed = {name for name, f in self.fields.items() if f.metadata.get("as_typed")}
        return {k: ((normalise_newlines(v) if _multiline(self.fields.get(k)) else v).strip()
                    if isinstance(v, str) and k not in as_typed else v)
                for k, v in data.items()}


def Name(required=True, **kw):
    """A person's name part."""
    return fields.String(required=required, validate=[validate.Length(min=1, max=100), _not_blank]
                         if required else validate.Length(max=100), **kw)


class ParticipantSchema(Strict):
    """One person of the household as entered at intake."""

    given_names_latin = Name()
    family_name_latin = Name()
    given_names_cyrillic = fields.String(load_default=None, allow_none=True,
                                         validate=[validate.Length(max=100), _cyrillic])
    family_name_cyrillic = fields.String(load_default=None, allow_none=True,
                                         validate=[validate.Length(max=100), _cyrillic])
    date_of_birth = fields.Date(required=True, validate=_birth_date, metadata={
        "description": "Not in the future and not before 1900-01-01."})
    # No field example: generators would give every person of a household the same one.
    v_number = fields.String(required=True, validate=_v_number, metadata={
        "description": "The IND's V-number: ten digits; spaces and dots are dropped."})
    bsn = fields.String(load_default=None, allow_none=True, validate=_bsn, metadata={
        "example": "111222333",
        "description": "Burgerservicenummer: nine digits passing the eleven-test (which the "
                       "service checks: 422 validate.bsn); empty means none."})
    travel_document_number = fields.String(load_default=None, allow_none=True,
                                           validate=validate.Length(max=30))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    phone = fields.String(load_default=None, allow_none=True,
                          validate=validate.Regexp(PHONE, error=M("validate.phone")),
                          metadata={"pattern": PHONE_TYPED})
    language = fields.String(load_default="uk", validate=validate.OneOf(LANGUAGES))
    asylum_application_pending = fields.Boolean(load_default=True)

    @pre_load
    def _normalise(self, data, **kwargs):
        if isinstance(data, dict):
            data = dict(data)
            for key in ("v_number", "bsn"):
                if isinstance(data.get(key), str):
                    data[key] = identifiers.normalise_v_number(data[key]) or None
            for key in ("bsn", "email", "phone", "travel_document_number",
                        "given_names_cyrillic", "family_name_cyrillic"):
                if data.get(key) == "":
                    data[key] = None
        return data


class MemberSchema(ParticipantSchema):
    """A household member: a participant with their relationship to the principal."""

    relationship = fields.String(required=True, validate=validate.OneOf(RELATIONSHIPS))


class IntakeSchema(Strict):
    """Opening a case, or editing its intake while it is in ``intake``."""

    principal = fields.Nested(ParticipantSchema, required=True)
    household = fields.List(fields.Nested(MemberSchema), load_default=list,
                            validate=validate.Length(max=MAX_HOUSEHOLD))
    destination_oblast = fields.String(load_default=None, allow_none=True, validate=_oblast,
                                       metadata={"description": "ISO 3166-2:UA code of the "
                                                                "oblast (region) of return."})
    destination_place = fields.String(load_default=None, allow_none=True,
                                      validate=validate.Length(max=200))
    intake_notes = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Length(max=5000), metadata=MULTILINE)

    @validates_schema
    def _distinct_people(self, data, **kwargs):
        seen = {}
        people = [data.get("principal")] + list(data.get("household") or [])
        for index, person in enumerate(people):
            if not person:
                continue
            v = person.get("v_number")
            if v in seen:
                where = "principal" if index == 0 else f"household.{index - 1}"
                raise ValidationError(
                    {"household": {str(index - 1): {"v_number": [
                        M("validate.v_number_twice", where=where)]}}})
            seen[v] = index



class EmptyPayload(Strict):
    """Actions that take no input."""


_FUTURE_DEADLINE = {"description": "Must be in the future, within the policy's limit after "
                                   "today (else 409 deadline_past / deadline_too_far)."}


class AgreeDepartureSchema(Strict):
    """``agree_departure``: the departure deadline every adult signed for."""

    departure_deadline = fields.Date(required=True, metadata=_FUTURE_DEADLINE)


class ExtendDeadlineSchema(Strict):
    """``extend_deadline``: a later deadline, with the reason for it."""

    departure_deadline = fields.Date(required=True, metadata={
        "description": "Later than the current deadline and in the future (else 409)."})
    reason = fields.String(required=True, validate=[validate.Length(min=1, max=2000), _not_blank],
                           metadata=MULTILINE)


class ReasonSchema(Strict):
    """``leave_programme``, ``reject``, ``lapse``: a reason is required."""

    reason = fields.String(required=True, validate=[validate.Length(min=1, max=2000), _not_blank],
                           metadata=MULTILINE)


class ConfirmDepartureSchema(Strict):
    """``confirm_departure``: when, and the evidence seen."""

    departed_on = fields.Date(required=True, metadata={
        "description": "Not in the future, not before the departure was agreed (else 409)."})
    evidence = fields.String(required=True, validate=validate.OneOf(DEPARTURE_EVIDENCE))
    evidence_reference = fields.String(load_default=None, allow_none=True,
                                       validate=validate.Length(max=100))
    # An uploaded evidence file of the case the departure relies on (absent: none).
    evidence_file_id = fields.Integer(strict=True, allow_none=True,
                                      validate=validate.Range(min=1, max=2**31 - 1))


class PaySupportSchema(Strict):
    """``pay_support``: disburse the approved payment, once, under an idempotency key."""

    idempotency_key = fields.String(required=True,
                                    validate=validate.Regexp(r"^[A-Za-z0-9._:-]{8,100}$",
                                                             error=M("validate.idempotency_key")))
    # Cash and card: where the money was handed over (who and when are the payer and the
    # moment of payout); a bank transfer has no hand-over.
    handed_over_place = fields.String(validate=validate.Length(max=200), metadata={
        "description": "Cash or card only: where the support was handed over."})


ACTION_SCHEMAS: dict[str, type[Schema]] = {
    "confirm_commitment": EmptyPayload,
    "record_withdrawal": EmptyPayload,
    "agree_departure": AgreeDepartureSchema,
    "extend_deadline": ExtendDeadlineSchema,
    "pay_support": PaySupportSchema,
    "confirm_departure": ConfirmDepartureSchema,
    "leave_programme": ReasonSchema,
    "reject": ReasonSchema,
    "lapse": ReasonSchema,
}


class IndConfirmationSchema(Strict):
    """The IND's confirmation that one participant's asylum application was withdrawn."""

    participant_id = fields.Integer(required=True, strict=True,
                                    validate=validate.Range(min=1, max=2**31 - 1))
    ind_reference = fields.String(required=True,
                                  validate=[validate.Length(min=3, max=40),
                                            validate.Regexp(r"^[A-Za-z0-9./ -]+$",
                                                            error=M("validate.reference_chars"))])
    confirmed_on = fields.Date(required=True, metadata={"description": "Not in the future."})
    # The IND's letter, uploaded as an evidence file of the case (absent: none).
    evidence_file_id = fields.Integer(strict=True, allow_none=True,
                                      validate=validate.Range(min=1, max=2**31 - 1))

    @validates_schema
    def _not_future(self, data, **kwargs):
        if data.get("confirmed_on") and data["confirmed_on"] > dt.date.today():
            raise ValidationError({"confirmed_on": [M('validate.ind_future')]})


def _searchable(value: str) -> None:
    if value.strip() and not search.searchable(value):
        raise ValidationError(M("validate.search_short"))


_EMAIL = fields.Email()


def _user_id_or_email(value: str) -> None:
    """A user id (1 … 2³¹−1), or the deprecated e-mail address form."""
    if value.isascii() and value.isdigit():
        if not 1 <= int(value) <= 2**31 - 1:
            raise ValidationError(M("validate.user_id"))
        return
    try:
        _EMAIL.deserialize(value)
    except ValidationError:
        raise ValidationError(M("validate.user_id")) from None


# Up to nine digits stay below 2³¹; the e-mail form is then checked as marshmallow's
# e-mail field does (stricter than a pattern can say).
_user_id_or_email.openapi = {"pattern": r"^\s*([1-9][0-9]{0,8}|[^@\s]+@[^@\s]+\.[^@\s]+)\s*$"}


class CaseQuerySchema(Strict):
    """Filters and paging for the case list."""

    class Meta:
        unknown = RAISE

    state = fields.String(load_default=None, validate=validate.OneOf(
        ["intake", "committed", "asylum_withdrawn", "departure_agreed", "support_paid",
         "departed", "left_programme", "rejected", "lapsed"]))
    counsellor = fields.String(load_default=None, validate=[validate.Length(max=254),
                                                             _user_id_or_email], metadata={
        "description": "The counsellor's user id (the `id` of a case's `counsellor`). "
                       "An e-mail address is still accepted but deprecated: it puts a "
                       "personal identifier in the address."})
    deadline_from = fields.Date(load_default=None)
    deadline_to = fields.Date(load_default=None)
    q = fields.String(load_default=None, validate=[validate.Length(max=100), _searchable],
                      metadata={"description": "Words to find (reference, names in either "
                                "script, V-number, full BSN); every word must match. In a "
                                "GET they end up in the address: prefer POST /cases/search."})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))
    sort = fields.String(load_default=None, validate=validate.OneOf(
        ["relevance", "reference", "state", "deadline"]), metadata={
        "description": "relevance (the default when searching; best match first), "
                       "reference (the default otherwise; newest first), state (in the "
                       "programme's order) or deadline (cases without one last)"})
    order = fields.String(load_default=None, validate=validate.OneOf(["asc", "desc"]),
                          metadata={"description": "asc or desc; the sort's natural "
                                    "direction when left out"})

    @validates_schema
    def _deadline_range(self, data, **kwargs):
        # A reversed range would silently find nothing; say so instead.
        start, end = data.get("deadline_from"), data.get("deadline_to")
        if start and end and start > end:
            raise ValidationError({"deadline_to": [M("validate.deadline_range")]})


# Letters, digits and hyphens: an HR number such as ``P-004512``, never a name or address.
PERSON_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$")


def Password(**kw):
    """A new staff password: taken exactly as typed (never trimmed), judged by the policy
    of :mod:`returnprog.passwords` (its length here; the rest with the user's context)."""
    return fields.String(required=True, load_only=True, metadata={"as_typed": True},
                         validate=validate.Length(min=passwords.MIN_LENGTH,
                                                  max=passwords.MAX_LENGTH,
                                                  error=M("validate.password_length")), **kw)


class UserCreateSchema(Strict):
    """A new staff user (admin pages and the ``create-user`` command). ``person`` is the
    staff member's personnel number (the admin pages require it; the operator's command
    may leave it out, making the account a person of its own)."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(load_default="", validate=validate.Length(max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    team = fields.String(load_default="Team Noord", validate=validate.Length(min=1, max=120))
    person = fields.String(load_default=None, validate=validate.Regexp(
        PERSON_NUMBER, error=M("validate.person_number")))
    password = Password()

    # Also when another field is wrong: every problem shows at once.
    @validates_schema(skip_on_field_errors=False)
    def _password_policy(self, data, **kwargs):
        if "password" in data:
            _password_in_context(data["password"], data.get("email"), data.get("name"))


class AdminUserCreateSchema(UserCreateSchema):
    """A new staff user made in the admin pages: the personnel number is required there."""

    person = fields.String(required=True, validate=validate.Regexp(
        PERSON_NUMBER, error=M("validate.person_number")),
        error_messages={"required": M("account.person_required")})


class RoleChangeSchema(Strict):
    """The new role asked for an existing account."""

    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class DecisionSchema(Strict):
    """An administrator's decision on another's request: an optional reason."""

    reason = fields.String(load_default=None, validate=validate.Length(max=500))


class PasswordSchema(Strict):
    """A new password for an existing user; the service judges it with the user's context
    (:func:`check_password_policy`)."""

    password = Password()


def _password_in_context(password: str, email: str | None, name: str | None) -> None:
    found = passwords.problems(password, email=email, name=name)
    if found:
        raise ValidationError({"password": found})


def check_password_policy(password: str, *, email: str, name: str = "") -> None:
    """Raise a per-field ValidationError (``password``) when the policy refuses
    ``password`` for the user with ``email`` and ``name``."""
    _password_in_context(password, email, name)


# --- dumps ----------------------------------------------------------------------------

class ParticipantOut(Schema):
    """A participant as the API shows it."""

    id = fields.Integer()
    is_principal = fields.Boolean()
    relationship = fields.String()
    given_names_latin = fields.String()
    family_name_latin = fields.String()
    given_names_cyrillic = fields.String(allow_none=True)
    family_name_cyrillic = fields.String(allow_none=True)
    # null where the reader's role does not see people's identifiers (finance; see
    # services.role_views), like bsn, travel document, e-mail and phone.
    date_of_birth = fields.Date(allow_none=True)
    is_adult = fields.Boolean()
    v_number = fields.String(allow_none=True)
    bsn = fields.String(allow_none=True)
    travel_document_number = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    language = fields.String()
    asylum_application_pending = fields.Boolean()
    ind_confirmation = fields.Dict(allow_none=True)


class DocumentOut(Schema):
    """A signed document's register entry (the PDF itself is a separate download)."""

    id = fields.Integer()
    kind = fields.String()
    version = fields.Integer()
    participant_id = fields.Integer(allow_none=True)
    signer_name = fields.String()
    signature_method = fields.String()
    signed_at = fields.DateTime()
    sha256 = fields.String()
    terms = fields.Dict()
    # Set when a correction superseded it: the corrected version must be signed.
    superseded_at = fields.DateTime(allow_none=True)
    # Where the API serves its PDF (set by the case that lists it, :class:`CaseOut`).
    download = fields.String(dump_only=True)


def document_download(reference: str, document_id: int) -> str:
    """The API address of a case document's PDF (``GET`` it with a bearer token)."""
    return f"/api/v1/cases/{reference}/documents/{document_id}"


class UserRef(Schema):
    """A staff member, as every API answer names one: the account's id and display name
    (the name, or the e-mail address when the account has no name). What acted without a
    staff account (scheduled jobs, the operator's commands, a participant on a signing
    link) has ``id`` null and a ``name`` such as ``"system"``, ``"operator"`` or
    ``"participant:12"``."""

    id = fields.Integer(allow_none=True, metadata={"description": "the user id; null "
                                                  "for the system and participants"})
    name = fields.String()


def _user(**kw):
    return fields.Nested(UserRef, **kw)


class AuditOut(Schema):
    """One audit event as shown in a case's trail."""

    seq = fields.Integer()
    at = fields.DateTime()
    actor = _user()
    action = fields.String()
    from_state = fields.String(allow_none=True)
    to_state = fields.String(allow_none=True)
    details = fields.Dict()


class TrailOut(Schema):
    """One page of a case's audit trail, newest first; ask again with
    ``before_seq=next_before_seq`` for older events (null on the oldest page)."""

    events = fields.List(fields.Nested(AuditOut))
    next_before_seq = fields.Integer(allow_none=True)


class TrailQuerySchema(Schema):
    """Paging of a case's trail or access log."""

    before = fields.Integer(load_default=None, validate=validate.Range(min=1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class LookOut(Schema):
    """One entry of a case's access log: who looked at what, when and through which
    channel (one entry per reader, view and interval)."""

    id = fields.Integer()
    at = fields.DateTime()
    actor = _user()
    view = fields.String()
    subject = fields.String()
    channel = fields.String()


class LooksOut(Schema):
    """One page of a case's access log, newest first."""

    looks = fields.List(fields.Nested(LookOut))
    next_before_id = fields.Integer(allow_none=True)


API_PREFIX = "/api/v1"


def payment_url(reference: str, payment_id: int) -> str:
    """The address of one payment of a case in the API (its sub-resource)."""
    return f"{API_PREFIX}/cases/{reference}/payments/{payment_id}"


class PaymentOut(Schema):
    """The case's payments: each with the ``version`` its actions take and the ``url``
    of its sub-resource (``/cases/{reference}/payments/{id}``)."""

    id = fields.Integer()
    status = fields.String()
    version = fields.Integer()
    url = fields.Function(lambda p: payment_url(p["case_reference"], p["id"]),
                          metadata={"type": "string", "description": "the payment's "
                                    "sub-resource: /api/v1/cases/{reference}/payments/{id}"})
    amount_cents = fields.Integer()
    currency = fields.String()
    method = fields.String()
    breakdown = fields.Dict()
    proposed_by = _user()
    proposed_at = fields.DateTime()
    approved_by = _user(allow_none=True)
    disbursed_by = _user(allow_none=True)
    disbursed_at = fields.DateTime(allow_none=True)


class CaseSummaryOut(Schema):
    """A row of the case list."""

    reference = fields.String()
    state = fields.String()
    version = fields.Integer()
    counsellor = _user()
    counsellor_name = fields.String(metadata={
        "description": "Deprecated: the same as `counsellor.name`.", "deprecated": True})
    principal_name = fields.String()
    household_size = fields.Integer()
    departure_deadline = fields.Date(allow_none=True)
    destination_oblast = fields.String(allow_none=True)
    updated_at = fields.DateTime()


class CaseOut(CaseSummaryOut):
    """A whole case: participants, documents, payments and the actions allowed now. The
    audit trail is paged apart (``/cases/{reference}/events``), so a read stays small."""

    destination_place = fields.String(allow_none=True)
    intake_notes = fields.String(allow_none=True)
    departed_on = fields.Date(allow_none=True)
    departure_evidence = fields.String(allow_none=True)
    closing_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    team = fields.String()
    allowed_actions = fields.List(fields.String())
    participants = fields.List(fields.Nested(ParticipantOut))
    documents = fields.List(fields.Nested(DocumentOut))
    payments = fields.List(fields.Nested(PaymentOut))

    @post_dump
    def _document_downloads(self, data, **kwargs):
        for doc in data.get("documents") or ():
            doc["download"] = document_download(data["reference"], doc["id"])
        return data


class CaseListOut(Schema):
    """A page of the case list."""

    items = fields.List(fields.Nested(CaseSummaryOut))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()
    sort = fields.String()
    order = fields.String()


class ErrorDetailOut(Schema):
    """One problem of an error answer: a refusal's or a field's code and message, the field
    it is about (a dotted path such as ``household.0.v_number``; absent when it is about
    the request as a whole) and the message's parameters where they help a program."""

    code = fields.String(required=True, metadata={"example": "validate.v_number"})
    message = fields.String(required=True)
    field = fields.String(metadata={"example": "household.0.v_number"})
    params = fields.Dict()


class ErrorBodyOut(Schema):
    """The ``error`` of an error answer: a stable code, an English message, the details."""

    code = fields.String(required=True, metadata={"example": "invalid"})
    message = fields.String(required=True)
    details = fields.List(fields.Nested(ErrorDetailOut), required=True)


class ErrorOut(Schema):
    """``{"error": {"code", "message", "details": [...]}}`` — every API error looks like
    this; ``details`` is always a list (empty when there is nothing to add)."""

    error = fields.Nested(ErrorBodyOut, required=True)
