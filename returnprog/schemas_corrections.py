"""Marshmallow schema of a correction (:mod:`returnprog.services.corrections`): only the
fields given are changed, so nothing here has a default. Members are added as at intake
(:class:`~returnprog.schemas.MemberSchema`) and removed by participant id; a member's
V-number, BSN and the departure deadline are not correctable here (see the service's
docstring)."""
from __future__ import annotations

from marshmallow import Schema, fields, pre_load, validate

from .schemas import (LANGUAGES, MAX_HOUSEHOLD, MULTILINE, PHONE, PHONE_TYPED, MemberSchema,
                      Name, Strict,
                      _birth_date, _cyrillic, _oblast)
from .messages import M

_BLANK_IS_NONE = ("email", "phone", "given_names_cyrillic", "family_name_cyrillic",
                  "destination_place", "intake_notes")


class _BlankIsNone(Strict):
    @pre_load
    def _blank(self, data, **kwargs):
        if isinstance(data, dict):
            data = {k: (None if k in _BLANK_IS_NONE and isinstance(v, str) and not v.strip()
                        else v) for k, v in data.items()}
        return data


class ParticipantCorrectionSchema(_BlankIsNone):
    """What may be corrected of one participant; ``id`` says who."""

    id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1))
    given_names_latin = Name(required=False)
    family_name_latin = Name(required=False)
    given_names_cyrillic = fields.String(allow_none=True,
                                         validate=[validate.Length(max=100), _cyrillic])
    family_name_cyrillic = fields.String(allow_none=True,
                                         validate=[validate.Length(max=100), _cyrillic])
    date_of_birth = fields.Date(validate=_birth_date)
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    phone = fields.String(allow_none=True, validate=validate.Regexp(
        PHONE, error=M("validate.phone")), metadata={"pattern": PHONE_TYPED})
    language = fields.String(validate=validate.OneOf(LANGUAGES))


class CorrectionSchema(_BlankIsNone):
    """A correction of a case: its notes and destination, and per participant."""

    intake_notes = fields.String(allow_none=True, validate=validate.Length(max=5000),
                                 metadata=MULTILINE)
    destination_oblast = fields.String(validate=_oblast)
    destination_place = fields.String(allow_none=True, validate=validate.Length(max=200))
    participants = fields.List(fields.Nested(ParticipantCorrectionSchema),
                               validate=validate.Length(max=15))
    add_members = fields.List(fields.Nested(MemberSchema), validate=validate.Length(max=MAX_HOUSEHOLD),
                              metadata={"description": "household members to add, as at intake"})
    remove_members = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=2**31 - 1)),
        validate=validate.Length(max=MAX_HOUSEHOLD),
        metadata={"description": "participant ids of members to remove (never the principal)"})


class _ChangeOut(Schema):
    participant_id = fields.Integer(allow_none=True)
    field = fields.String()
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class _DocumentRefOut(Schema):
    document_id = fields.Integer()
    kind = fields.String()
    version = fields.Integer()
    participant_id = fields.Integer(allow_none=True)
    signer_name = fields.String()


class _RemovedOut(Schema):
    participant_id = fields.Integer(allow_none=True)
    relationship = fields.String()
    is_adult = fields.Boolean()


class _AddedOut(_RemovedOut):
    participant_id = fields.Integer(allow_none=True, metadata={"description": "null in a dry run"})
    name = fields.String()


class CorrectionOut(Schema):
    """What a correction did (or, as a dry run, would do)."""

    dry_run = fields.Boolean()
    changes = fields.List(fields.Nested(_ChangeOut))
    reissue = fields.List(fields.Nested(_DocumentRefOut),
                          metadata={"description": "superseded: to be signed again"})
    kept = fields.List(fields.Nested(_DocumentRefOut),
                       metadata={"description": "of steps already taken: left as signed"})
    links_revoked = fields.List(fields.Integer())
    added = fields.List(fields.Nested(_AddedOut))
    removed = fields.List(fields.Nested(_RemovedOut))
    version = fields.Integer(metadata={"description": "the case's version after saving"})
