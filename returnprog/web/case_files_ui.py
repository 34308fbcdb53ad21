"""Staff pages of case notes and evidence files (blueprint ``case_files``): all notes of a
case (the case page shows the newest few), adding a note, the evidence files with the
upload form, uploading one and downloading one.

Like every case route: a case the reader may not see is 404 before anything else; a role
that may not handle notes and evidence (finance, on a case it sees for its payment) 403.
Downloads are attachments, never cached or sniffed, named after the case and the file's
id — never after the uploader's file name.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import evidence, schemas_case_files
from ..roles import CASE_ROLES
from ..services import NotFound, ServiceError
from ..services import case_files as case_file_service
from ..services import cases as case_service
from .ui import (FormErrors, actor, ctx, errors_from, form_data, load, plausible_reference,
                 render_page, roles)
from .uploads import max_bytes, read_upload

bp = Blueprint("case_files", __name__)
bp.url_value_preprocessor(plausible_reference)


@bp.app_template_filter("evidence_kind")
def _evidence_kind(kind: str) -> str:
    msgid = evidence.EVIDENCE_KINDS.get(kind)
    return _(msgid) if msgid else str(kind)


@bp.app_template_global("evidence_choices")
def evidence_choices(case_files: dict | None, purpose: str) -> list[tuple[str, str]]:
    """(id, label) of the case's uploaded files a form may attach, for its file picker:
    ``purpose`` is ``ind`` (the IND confirmation) or ``departure``."""
    kinds = evidence.IND_KINDS if purpose == "ind" else evidence.DEPARTURE_KINDS
    files = (case_files or {}).get("files", [])
    return [(str(f["id"]), f"{_evidence_kind(f['kind'])} – {f['filename']} "
             f"({f['uploaded_at']:%d-%m-%Y})") for f in files if f["kind"] in kinds]


def _guard(reference: str):
    """404 for a case the reader may not see, then 403 for a role without case files."""
    c = ctx()
    case_service.load_case(c, reference)
    if not case_file_service.may_see_case_files(actor().role):
        abort(403)
    return c


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 10 else None


def _notes_page(reference: str, status: int = 200, errors: FormErrors | None = None,
                values=None):
    c = _guard(reference)
    page = case_file_service.read_notes(c, reference, before_id=_int_arg("before"))
    return render_page("cases/notes.html", status, reference=reference, page=page,
                       correctable=[(str(n["id"]), str(n["id"])) for n in page["notes"]],
                       errors=errors or FormErrors(), values=values or {},
                       max_chars=evidence.NOTE_MAX_CHARS)


@bp.get("/cases/<reference>/notes")
@roles(*CASE_ROLES)
def notes(reference: str):
    """Every note of the case, newest first, a page at a time, after the intake notes."""
    return _notes_page(reference)


@bp.post("/cases/<reference>/notes")
@roles(*CASE_ROLES)
def add_note(reference: str):
    """Add a note (or a correction of an earlier one); notes are never edited."""
    c = _guard(reference)
    try:
        data = load(schemas_case_files.NoteSchema,
                    form_data(schemas_case_files.NoteSchema, "note-"))
        case_file_service.add_note(c, reference, data)
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc, rename=lambda k: f"note-{k}")
        return _notes_page(reference, status, errors, request.form)
    flash(_("Note added."), "success")
    return redirect(url_for("pages.case_page", reference=reference) + "#notes-title", 303)


def _evidence_page(reference: str, status: int = 200, errors: FormErrors | None = None,
                   values=None):
    c = _guard(reference)
    files = case_file_service.list_evidence(c, reference)
    return render_page("cases/evidence.html", status, reference=reference, files=files,
                       kind_choices=[(k, _evidence_kind(k)) for k in evidence.EVIDENCE_KINDS],
                       errors=errors or FormErrors(),
                       values=values or {}, mb=max(1, max_bytes() // (1024 * 1024)))


@bp.get("/cases/<reference>/evidence")
@roles(*CASE_ROLES)
def evidence_list(reference: str):
    """The case's evidence files and the form to upload one."""
    return _evidence_page(reference)


def store_upload(c, reference: str, field: str, kind: str) -> int | None:
    """Store the file sent in form field ``field`` as evidence of ``kind`` and return its
    id; None when no file was chosen. Refusals raise (Invalid, on field ``file``)."""
    upload = request.files.get(field)
    if upload is None or not upload.filename:
        return None
    data = read_upload(upload)
    row = case_file_service.upload_evidence(c, reference, kind, data, upload.filename,
                                            upload.mimetype, max_bytes=max_bytes())
    return row["id"]


@bp.post("/cases/<reference>/evidence")
@roles(*CASE_ROLES)
def upload_evidence(reference: str):
    """Upload one evidence file (PDF, JPEG or PNG, checked by its content)."""
    c = _guard(reference)
    try:
        kind = load(schemas_case_files.EvidenceUploadSchema,
                    form_data(schemas_case_files.EvidenceUploadSchema, "evidence-"))["kind"]
        if store_upload(c, reference, "evidence-file", kind) is None:
            errors = FormErrors()
            errors.add("evidence-file", _("Choose the file to upload."))
            return _evidence_page(reference, 422, errors, request.form)
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc, rename=lambda k: f"evidence-{k}")
        if getattr(exc, "message_code", None) == "evidence.too_large":
            status = 413
        return _evidence_page(reference, status, errors, request.form)
    flash(_("Evidence file uploaded."), "success")
    return redirect(url_for("case_files.evidence_list", reference=reference), 303)


@bp.get("/cases/<reference>/evidence/<int:evidence_id>")
@roles(*CASE_ROLES)
def download_evidence(reference: str, evidence_id: int):
    """One evidence file, as an attachment, never cached, never sniffed."""
    c = _guard(reference)
    row = case_file_service.evidence_for_download(c, reference, evidence_id)
    return attachment(row, reference)


def attachment(row, reference: str) -> Response:
    """The response carrying an evidence file: its checked type, a name made of the case
    reference and the file's id (never the uploader's name), no caching, no sniffing."""
    response = Response(row.content, mimetype=row.content_type)
    name = f"{reference}-evidence-{row.id}.{evidence.EXTENSIONS.get(row.content_type, 'bin')}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


__all__ = ["bp", "attachment", "store_upload"]
