"""The OpenAPI 3 document of the JSON API, generated from the marshmallow schemas that
validate its requests and shape its answers (served at ``/api/v1/openapi.json``).

Kept apart from the views: it needs only the schemas, so the views import it and not the
other way round.
"""
from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from ... import evidence, schemas, schemas_case_files, schemas_queues
from . import spec_events, spec_payments, spec_signing, spec_webhooks


def build_spec() -> APISpec:
    """Describe the API's paths with the schemas that validate them."""
    spec = APISpec(title="returnprog API", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name in ("UserRef", "IntakeSchema", "CaseOut", "CaseListOut", "ErrorOut",
                 "IndConfirmationSchema", "TrailOut", "LooksOut"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas, name))
    for action, schema in schemas.ACTION_SCHEMAS.items():
        # Several actions share a payload schema; a named subclass per action gives each
        # its own component without registering one class twice.
        spec.components.schema(f"Action_{action}", schema=type(f"Action_{action}", (schema,), {}))
    err = {"content": {"application/json": {"schema": "ErrorOut"}}}
    errors = {str(s): {"description": d, **err} for s, d in (
        (401, "missing or bad token"), (403, "role may not"), (404, "no such case you may see"),
        (409, "state or guard conflict; details list what is missing"),
        (422, "per-field validation errors"))}
    case_ok = {"description": "the case", "content": {"application/json": {"schema": "CaseOut"}}}
    ref = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
    spec.path(path="/api/v1/cases", operations={
        "get": {"summary": "List cases", "parameters": [{"in": "query", "schema": schemas.CaseQuerySchema}],
                "responses": {"200": {"description": "a page",
                                      "content": {"application/json": {"schema": "CaseListOut"}}},
                              **errors}},
        "post": {"summary": "Open a case", "requestBody": {
            "content": {"application/json": {"schema": "Intake"}}},
            "responses": {"201": case_ok, **errors}}})
    spec.path(path="/api/v1/cases/search", operations={
        "post": {"summary": "Search cases (filters in the body, so names and V-numbers stay "
                            "out of addresses and logs)",
                 "requestBody": {"required": True, "content": {
                     "application/json": {"schema": schemas.CaseQuerySchema}}},
                 "responses": {"200": {"description": "a page", "content": {
                     "application/json": {"schema": "CaseListOut"}}}, **errors}}})
    spec.path(path="/api/v1/cases/{reference}", operations={
        "get": {"summary": "Read a case", "description": spec_events.CASE_READ_DESCRIPTION,
                "parameters": [ref], "responses": {"200": case_ok, **errors}},
        "put": {"summary": "Edit intake (only in intake)", "parameters": [ref],
                "requestBody": {"content": {"application/json": {"schema": "Intake"}}},
                "responses": {"200": case_ok, **errors}}})
    from ...schemas_corrections import CorrectionOut, CorrectionSchema
    spec.components.schema("Correction", schema=CorrectionSchema)
    spec.components.schema("CorrectionOut", schema=CorrectionOut)
    spec.path(path="/api/v1/cases/{reference}/corrections", operations={
        "post": {"summary": "Correct a case (any state before a final one)",
                 "description": "Names, dates of birth and the destination supersede the "
                                "signed documents that state them (listed in `reissue`).",
                 "parameters": [ref, {"name": "If-Match", "in": "header", "required": True,
                                      "schema": {"type": "integer"}},
                                {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                 "requestBody": {"content": {"application/json": {"schema": "Correction"}}},
                 "responses": {"200": {"description": "what was (or would be) done",
                                       "content": {"application/json": {
                                           "schema": "CorrectionOut"}}}, **errors}}})
    spec.path(path="/api/v1/cases/{reference}/ind-confirmations", operations={
        "post": {"summary": "Record an IND confirmation", "parameters": [ref],
                 "requestBody": {"content": {"application/json": {"schema": "IndConfirmation"}}},
                 "responses": {"201": case_ok, **errors}}})
    spec.path(path="/api/v1/cases/{reference}/actions/{action}", operations={
        "post": {"summary": "Perform a workflow action",
                 "parameters": [ref, {"name": "action", "in": "path", "required": True,
                                      "schema": {"type": "string",
                                                 "enum": sorted(schemas.ACTION_SCHEMAS)}}],
                 "requestBody": {"content": {"application/json": {"schema": {
                     "oneOf": [{"$ref": f"#/components/schemas/Action_{a}"}
                               for a in schemas.ACTION_SCHEMAS]}}}},
                 "responses": {"200": case_ok, **errors}}})
    spec_payments.add_paths(spec)
    spec_events.add_paths(spec)
    _queue_paths(spec, errors)
    _token_paths(spec, errors)
    _case_file_paths(spec, errors, ref)
    spec_signing.add_paths(spec)
    spec_webhooks.add_paths(spec)
    return spec


def _case_file_paths(spec: APISpec, errors: dict, ref: dict) -> None:
    """Case notes and evidence files (:mod:`.case_files`)."""
    for name in ("NoteSchema", "NoteOut", "NotesOut", "EvidenceOut", "EvidenceListOut"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas_case_files, name))

    def body(schema):
        return {"content": {"application/json": {"schema": schema}}}

    too_large = {"413": {"description": "the file is larger than EVIDENCE_MAX_BYTES",
                         **body("ErrorOut")}}
    spec.path(path="/api/v1/cases/{reference}/notes", operations={
        "get": {"summary": "A page of the case's notes, newest first",
                "parameters": [ref, {"in": "query", "schema": schemas_case_files.NotesQuerySchema}],
                "responses": {"200": {"description": "a page", **body("NotesOut")}, **errors}},
        "post": {"summary": "Add a note (never edited; a correction is a new note)",
                 "parameters": [ref], "requestBody": body("Note"),
                 "responses": {"201": {"description": "the note", **body("NoteOut")},
                               **errors}}})
    spec.path(path="/api/v1/cases/{reference}/evidence", operations={
        "get": {"summary": "The case's evidence files", "parameters": [ref],
                "responses": {"200": {"description": "every file, newest first",
                                      **body("EvidenceListOut")}, **errors}},
        "post": {"summary": "Upload a PDF, JPEG or PNG evidence file (checked by content)",
                 "parameters": [ref], "requestBody": {"content": {"multipart/form-data": {
                     "schema": {"type": "object", "required": ["kind", "file"], "properties": {
                         "kind": {"type": "string", "enum": list(evidence.EVIDENCE_KINDS)},
                         "file": {"type": "string", "format": "binary"}}}}}},
                 "responses": {"201": {"description": "the file's entry", **body("EvidenceOut")},
                               **errors, **too_large}}})
    spec.path(path="/api/v1/cases/{reference}/evidence/{evidence_id}", operations={
        "get": {"summary": "Download an evidence file",
                "parameters": [ref, {"name": "evidence_id", "in": "path", "required": True,
                                     "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "the file, as an attachment", "content": {
                    "application/pdf": {}, "image/jpeg": {}, "image/png": {}}}, **errors}}})


def _queue_paths(spec: APISpec, errors: dict) -> None:
    """The caller's work queues (:mod:`.queues`): counts, and the rows of one."""
    for name in ("QueueCountsOut", "QueueOut"):
        spec.components.schema(name, schema=getattr(schemas_queues, name))
    spec.path(path="/api/v1/queues", operations={"get": {
        "summary": "How many cases wait in each of your work queues",
        "responses": {"200": {"description": "counts by queue", "content": {
            "application/json": {"schema": "QueueCountsOut"}}}, **errors}}})
    spec.path(path="/api/v1/queues/{name}", operations={"get": {
        "summary": "The cases in one of your work queues, each with its next step",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": list(schemas_queues.QUEUE_NAMES)}}],
        "responses": {"200": {"description": "the queue", "content": {
            "application/json": {"schema": "QueueOut"}}}, **errors}}})


def _token_paths(spec: APISpec, errors: dict) -> None:
    """The caller's own bearer tokens (:mod:`.tokens`): list and revoke."""
    stamp = {"type": "string", "format": "date-time", "nullable": True}
    token = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "user_id": {"type": "integer"},
        "user": {"$ref": "#/components/schemas/UserRef"},
        "created_at": stamp, "expires_at": stamp, "last_used_at": stamp, "revoked_at": stamp,
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]}}}
    spec.path(path="/api/v1/tokens", operations={
        "get": {"summary": "List your API tokens (an admin's all=1: everyone's)",
                "parameters": [{"name": "all", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["1", "true"]}}],
                "responses": {"200": {"description": "the tokens, never their values",
                                      "content": {"application/json": {"schema": {
                                          "type": "object", "properties": {
                                              "items": {"type": "array", "items": token}}}}}},
                              **errors}}})
    spec.path(path="/api/v1/tokens/{token_id}", operations={
        "delete": {"summary": "Revoke an API token (your own; an admin's: anyone's)",
                   "parameters": [{"name": "token_id", "in": "path", "required": True,
                                   "schema": {"type": "integer"}}],
                   "responses": {"200": {"description": "revoked", "content": {
                       "application/json": {"schema": {"type": "object", "properties": {
                           "id": {"type": "integer"}, "status": {"type": "string"}}}}}},
                       **errors}}})
