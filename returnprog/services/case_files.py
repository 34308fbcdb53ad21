"""Use cases of case notes and evidence files: add a note, read the notes, upload
evidence, list it, download one file, and check a file a form attaches.

Who: counsellors and supervisors of the case's team read and write both
(:data:`~returnprog.roles.CASE_FILE_ROLES`). Finance officers see a case for its payment
and need neither the notes nor the evidence; administrators see no case at all. A case
the reader may not see is NotFound before any role check (like every case route).

What the audit chain holds: that a note was added (its id, length and SHA-256, and the
note it corrects) and that a file was uploaded (its id, kind, type, size and SHA-256) — not
the note's text nor the file's name. The chain cannot be edited or erased, and a note's
text may hold personal data that must be erasable with the case; the digest in the chain
still shows that the stored text was never changed. Looks (reading notes beyond the case
page, downloading a file) go to the access log.
"""
from __future__ import annotations

import functools
import hashlib

from sqlalchemy import (Boolean, Integer, String, Text, bindparam, cast, func, literal, null,
                        select, union_all)

from .. import audit, evidence
from ..models import CaseNote, EvidenceFile, User
from ..roles import CASE_FILE_ROLES
from . import Context, Forbidden, Invalid, NotFound
from .access import record_look
from .lookups import load_case
from .uow import atomic, begin_write, commit, flush_or_conflict
from ..messages import M

NOTES_PAGE = 50


def may_see_case_files(role: str) -> bool:
    """Whether ``role`` reads and writes notes and evidence files of its cases."""
    return role in CASE_FILE_ROLES


def _check_role(ctx: Context, code: str) -> None:
    if not may_see_case_files(ctx.actor.role):
        raise Forbidden(code)


def _note_data(note: CaseNote, author: str | None) -> dict:
    return {"id": note.id, "author": author or "", "created_at": note.created_at,
            "body": note.body, "corrects_id": note.corrects_id}


@atomic
def add_note(ctx: Context, reference: str, data: dict) -> dict:
    """Add a note (validated :class:`~returnprog.schemas.NoteSchema` data) to a case. A
    correction names the note of the same case it corrects; the old note stays as it was."""
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    _check_role(ctx, "note.role")
    corrects = data.get("corrects_id")
    if corrects is not None:
        found = ctx.session.execute(select(CaseNote.id).where(
            CaseNote.id == corrects, CaseNote.case_id == case.id)).scalar_one_or_none()
        if found is None:
            raise Invalid("error.invalid_fields",
                          {"corrects_id": [M("note.unknown_note", id=corrects)]})
    body = data["body"]
    note = CaseNote(case_id=case.id, author_id=ctx.actor.id, created_at=ctx.now(),
                    body=body, corrects_id=corrects)
    ctx.session.add(note)
    flush_or_conflict(ctx)
    details = {"note_id": note.id, "length": len(body),
               "sha256": hashlib.sha256(body.encode()).hexdigest()}
    if corrects is not None:
        details["corrects"] = corrects
    audit.append(ctx.session, actor=ctx.actor, action="add_case_note", case_id=case.id,
                 details=details, ip=ctx.ip)
    commit(ctx)
    return _note_data(note, ctx.actor.name or ctx.actor.email)


def notes_page_of(ctx: Context, case, *, before_id: int | None = None,
                  limit: int = NOTES_PAGE) -> dict:
    """One page of ``case``'s notes, newest first, read in the current transaction (one
    statement): ``notes`` and ``next_before_id`` for the older page (None on the last)."""
    limit = max(1, min(int(limit), 200))
    query = (select(CaseNote, func.coalesce(User.name, User.email))
             .outerjoin(User, User.id == CaseNote.author_id).where(CaseNote.case_id == case.id))
    if before_id is not None:
        query = query.where(CaseNote.id < before_id)
    rows = ctx.session.execute(query.order_by(CaseNote.id.desc()).limit(limit + 1)).all()
    notes = [_note_data(n, a) for n, a in rows[:limit]]
    return {"notes": notes, "next_before_id": notes[-1]["id"] if len(rows) > limit else None}


@atomic
def read_notes(ctx: Context, reference: str, *, before_id: int | None = None,
               limit: int = NOTES_PAGE, log_view: bool = True) -> dict:
    """A page of the case's notes, newest first (the intake notes are the case's own
    field, shown apart). Reading them is recorded in the access log."""
    case = load_case(ctx, reference)
    _check_role(ctx, "note.role")
    page = notes_page_of(ctx, case, before_id=before_id, limit=limit)
    page["intake_notes"] = case.intake_notes
    page["opened_at"] = case.created_at
    if log_view:
        record_look(ctx, case.id, "notes")
    else:
        ctx.session.commit()
    return page


# The evidence columns lists show: never the content itself.
FILE_COLUMNS = (EvidenceFile.id, EvidenceFile.kind, EvidenceFile.content_type,
                EvidenceFile.filename, EvidenceFile.size, EvidenceFile.sha256,
                EvidenceFile.uploaded_at, EvidenceFile.proves_departure)


def _file_data(row, uploader: str | None) -> dict:
    return {"id": row.id, "kind": row.kind, "content_type": row.content_type,
            "filename": row.filename, "size": row.size, "sha256": row.sha256,
            "uploaded_at": row.uploaded_at, "uploaded_by": uploader or "",
            "proves_departure": bool(row.proves_departure)}


@functools.lru_cache(maxsize=8)
def _case_files_statement(notes: int, files: int):
    """The UNION ALL of :func:`case_files_of` for a case given as the ``case_id``
    parameter, built once per pair of limits: building it and deriving its cache key took
    more time than running it (0.6 ms of a case page at 150,000 cases)."""
    who = func.coalesce(User.name, User.email)

    def none(type_, name):  # a typed NULL: PostgreSQL matches the branches' column types
        return cast(null(), type_).label(name)
    note_q = (select(literal("note").label("what"), CaseNote.id, CaseNote.created_at.label("at"),
                     who.label("who"), CaseNote.body, CaseNote.corrects_id,
                     none(String, "kind"), none(String, "content_type"),
                     none(String, "filename"), none(Integer, "size"), none(String, "sha256"),
                     none(Boolean, "proves_departure"))
              .outerjoin(User, User.id == CaseNote.author_id)
              .where(CaseNote.case_id == bindparam("case_id")).order_by(CaseNote.id.desc())
              .limit(notes + 1))
    file_q = (select(literal("file").label("what"), EvidenceFile.id,
                     EvidenceFile.uploaded_at.label("at"), who.label("who"),
                     none(Text, "body"), none(Integer, "corrects_id"), EvidenceFile.kind,
                     EvidenceFile.content_type, EvidenceFile.filename, EvidenceFile.size,
                     EvidenceFile.sha256, EvidenceFile.proves_departure)
              .outerjoin(User, User.id == EvidenceFile.uploaded_by)
              .where(EvidenceFile.case_id == bindparam("case_id")).order_by(EvidenceFile.id.desc())
              .limit(files + 1))
    # Each branch is limited on its own: wrapped as subqueries so both dialects accept it.
    both = union_all(select(note_q.subquery()), select(file_q.subquery()))
    return both


def case_files_of(ctx: Context, case, *, notes: int = evidence.NOTES_ON_PAGE,
                  files: int = evidence.FILES_ON_PAGE) -> dict:
    """For the case page, in ONE statement (a UNION ALL): the newest ``notes`` notes and
    the newest ``files`` evidence files (without their content), each list with a flag
    saying whether older ones exist. Empty for a reader who may not see them."""
    if not may_see_case_files(ctx.actor.role):
        return {"notes": [], "more_notes": False, "files": [], "more_files": False}
    rows = ctx.session.execute(_case_files_statement(notes, files),
                               {"case_id": case.id}).all()
    note_rows = sorted((r for r in rows if r.what == "note"), key=lambda r: -r.id)
    file_rows = sorted((r for r in rows if r.what == "file"), key=lambda r: -r.id)
    return {
        "notes": [{"id": r.id, "author": r.who or "", "created_at": r.at, "body": r.body,
                   "corrects_id": r.corrects_id} for r in note_rows[:notes]],
        "more_notes": len(note_rows) > notes,
        "files": [{"id": r.id, "kind": r.kind, "content_type": r.content_type,
                   "filename": r.filename, "size": r.size, "sha256": r.sha256,
                   "uploaded_at": r.at, "uploaded_by": r.who or "",
                   "proves_departure": bool(r.proves_departure)} for r in file_rows[:files]],
        "more_files": len(file_rows) > files,
    }


def _store_file(ctx: Context, case, kind: str, data: bytes, filename: str | None,
                mimetype: str | None, max_bytes: int) -> EvidenceFile:
    """Check and add one upload in the caller's transaction, with its audit event."""
    if kind not in evidence.EVIDENCE_KINDS:
        raise Invalid("error.invalid_fields", {"kind": [M("evidence.unknown_kind")]})
    try:
        checked = evidence.check_upload(data, filename, mimetype, max_bytes)
    except evidence.Refused as refused:
        raise Invalid(refused.code, {"file": [M(refused.code, **refused.params)]},
                      **refused.params) from None
    digest = hashlib.sha256(data).hexdigest()
    row = EvidenceFile(case_id=case.id, kind=kind, content_type=checked.content_type,
                       filename=checked.filename, size=len(data), sha256=digest,
                       content=data, uploaded_by=ctx.actor.id, uploaded_at=ctx.now())
    ctx.session.add(row)
    flush_or_conflict(ctx)
    audit.append(ctx.session, actor=ctx.actor, action="upload_evidence", case_id=case.id,
                 details={"evidence_id": row.id, "evidence_kind": kind,
                          "content_type": checked.content_type, "size": len(data),
                          "sha256": digest}, ip=ctx.ip)
    return row


@atomic
def upload_evidence(ctx: Context, reference: str, kind: str, data: bytes,
                    filename: str | None, mimetype: str | None, *,
                    max_bytes: int = evidence.DEFAULT_MAX_BYTES) -> dict:
    """Store an uploaded evidence file on a case after checking it by content
    (:func:`returnprog.evidence.check_upload`); the upload is an audit event."""
    begin_write(ctx.session)
    case = load_case(ctx, reference)
    _check_role(ctx, "evidence.role")
    row = _store_file(ctx, case, kind, data, filename, mimetype, max_bytes)
    commit(ctx)
    return _file_data(row, ctx.actor.name or ctx.actor.email)


@atomic
def list_evidence(ctx: Context, reference: str) -> list[dict]:
    """Every evidence file of a case (without content), newest first."""
    case = load_case(ctx, reference)
    _check_role(ctx, "evidence.role")
    rows = ctx.session.execute(
        select(*FILE_COLUMNS, func.coalesce(User.name, User.email))
        .outerjoin(User, User.id == EvidenceFile.uploaded_by)
        .where(EvidenceFile.case_id == case.id).order_by(EvidenceFile.id.desc())).all()
    ctx.session.commit()  # read only: a list of file names and hashes is no personal look
    return [_file_data(r, r[-1]) for r in rows]


@atomic
def evidence_for_download(ctx: Context, reference: str, evidence_id: int) -> EvidenceFile:
    """One evidence file of a case the reader may see, content included; the download is
    recorded in the access log (it is a look at personal data), not in the chain."""
    case = load_case(ctx, reference)
    _check_role(ctx, "evidence.role")
    row = ctx.session.execute(select(EvidenceFile).where(
        EvidenceFile.id == evidence_id, EvidenceFile.case_id == case.id)).scalar_one_or_none()
    if row is None:
        raise NotFound("evidence.not_found", id=evidence_id, ref=reference)
    record_look(ctx, case.id, "evidence", subject=str(row.id))
    return row


def attachable(ctx: Context, case_id: int, evidence_id: int, kinds: tuple[str, ...],
               field: str) -> EvidenceFile:
    """The evidence file ``evidence_id`` of case ``case_id`` if a form may attach it
    (one of ``kinds``), read in the caller's transaction; else Invalid on ``field``."""
    row = ctx.session.execute(select(EvidenceFile).where(
        EvidenceFile.id == evidence_id, EvidenceFile.case_id == case_id)).scalar_one_or_none()
    if row is None:
        raise Invalid("error.invalid_fields", {field: [M("evidence.not_on_case", id=evidence_id)]})
    if row.kind not in kinds:
        raise Invalid("error.invalid_fields", {field: [M("evidence.wrong_kind")]})
    return row
