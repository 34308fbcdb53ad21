"""Marshmallow schemas of case notes and evidence files: the contract of the notes and
evidence routes of the API and the staff pages. A note's text is multi-line (line ends
normalised, control characters refused like every text field, :mod:`returnprog.characters`)
and at most :data:`returnprog.evidence.NOTE_MAX_CHARS` characters."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from . import evidence
from .messages import M
from .schemas import MULTILINE, Strict, _not_blank

ID = dict(strict=True, validate=validate.Range(min=1, max=2**31 - 1))


class NoteSchema(Strict):
    """A new note; ``corrects_id`` names an earlier note of the case it corrects."""

    body = fields.String(required=True, metadata=MULTILINE, validate=[
        validate.Length(min=1, max=evidence.NOTE_MAX_CHARS,
                        error=M("note.too_long", max=evidence.NOTE_MAX_CHARS)),
        _not_blank])
    corrects_id = fields.Integer(load_default=None, allow_none=True, **ID)


class EvidenceUploadSchema(Strict):
    """The fields of an upload besides the file itself."""

    kind = fields.String(required=True, validate=validate.OneOf(tuple(evidence.EVIDENCE_KINDS)))


class NotesQuerySchema(Schema):
    """Paging of a case's notes."""

    before = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class NoteOut(Schema):
    """One note: who wrote it when, and which earlier note it corrects."""

    id = fields.Integer()
    author = fields.String()
    created_at = fields.DateTime()
    body = fields.String()
    corrects_id = fields.Integer(allow_none=True)


class NotesOut(Schema):
    """A page of a case's notes, newest first; ``intake_notes`` are the notes entered at
    intake (the first note of the case)."""

    intake_notes = fields.String(allow_none=True)
    notes = fields.List(fields.Nested(NoteOut))
    next_before_id = fields.Integer(allow_none=True)


class EvidenceOut(Schema):
    """One evidence file's entry (the content is a separate download)."""

    id = fields.Integer()
    kind = fields.String()
    content_type = fields.String()
    filename = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_at = fields.DateTime()
    uploaded_by = fields.String()
    proves_departure = fields.Boolean()


class EvidenceListOut(Schema):
    """Every evidence file of a case, newest first."""

    items = fields.List(fields.Nested(EvidenceOut))
