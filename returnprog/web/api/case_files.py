"""JSON API of case notes and evidence files under /api/v1 (on the ``api`` blueprint):
list and add notes, list and upload evidence files (``multipart/form-data`` with ``kind``
and ``file``), download one. Views parse, call one service and map errors."""
from __future__ import annotations

from flask import jsonify, request

from ... import schemas_case_files as schemas
from ...dumping import dump
from ...messages import M
from ...services import case_files as case_file_service
from ..case_files_ui import attachment
from ..uploads import max_bytes, read_upload
from .cases import bp
from .common import ApiError, api_ctx, json_body, load


@bp.get("/cases/<reference>/notes")
def list_notes(reference: str):
    """A page of the case's notes, newest first, with the intake notes."""
    query = load(schemas.NotesQuerySchema, request.args.to_dict())
    page = case_file_service.read_notes(api_ctx(), reference, before_id=query["before"],
                                        limit=query["limit"])
    return jsonify(dump(schemas.NotesOut, page))


@bp.post("/cases/<reference>/notes")
def add_note(reference: str):
    """Add a note to the case (notes are never edited; a correction is a new note)."""
    data = load(schemas.NoteSchema, json_body())
    note = case_file_service.add_note(api_ctx(), reference, data)
    resp = jsonify(dump(schemas.NoteOut, note))
    resp.status_code = 201
    return resp


@bp.get("/cases/<reference>/evidence")
def list_evidence(reference: str):
    """The case's evidence files (without their content), newest first."""
    items = case_file_service.list_evidence(api_ctx(), reference)
    return jsonify(dump(schemas.EvidenceListOut, {"items": items}))


@bp.post("/cases/<reference>/evidence")
def upload_evidence(reference: str):
    """Upload one evidence file: multipart fields ``kind`` and ``file``."""
    if request.mimetype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "api.send_multipart")
    kind = load(schemas.EvidenceUploadSchema,
                {k: v for k, v in request.form.items() if k == "kind"})["kind"]
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(422, "invalid", "error.invalid_fields",
                       {"file": [M("evidence.choose_file")]})
    ctx = api_ctx()
    try:
        row = case_file_service.upload_evidence(ctx, reference, kind, read_upload(upload),
                                                upload.filename, upload.mimetype,
                                                max_bytes=max_bytes())
    except case_file_service.Invalid as exc:
        if exc.message_code == "evidence.too_large":
            raise ApiError(413, "too_large", exc.message, exc.details) from None
        raise
    resp = jsonify(dump(schemas.EvidenceOut, row))
    resp.status_code = 201
    resp.headers["Location"] = f"/api/v1/cases/{reference}/evidence/{row['id']}"
    return resp


@bp.get("/cases/<reference>/evidence/<int:evidence_id>")
def download_evidence(reference: str, evidence_id: int):
    """One evidence file's content, as an attachment."""
    row = case_file_service.evidence_for_download(api_ctx(), reference, evidence_id)
    return attachment(row, reference)
