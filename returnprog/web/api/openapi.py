"""The OpenAPI 3.1 document of the JSON API, generated from the marshmallow schemas that
validate its requests and shape its answers (served at ``/api/v1/openapi.json``).

Kept apart from the views: it needs only the schemas, so the views import it and not the
other way round.

How paths are added (the convention every area follows):

- each area declares its paths in a module ``spec_<area>.py`` with ``add_paths(spec)``,
  called with one line from :func:`build_spec`; a path declares only what is its own: the
  2xx answers, its parameters, its request body (``{"content": {...}}``), an explicit
  ``operationId`` (the Flask view function's name; per-action paths ``action_<action>``)
  and ``tags`` (one area: cases, actions, signing, documents, verification, payments,
  exports, batches, statements, events, queues, tokens, webhooks, notes, records);
- the generic pass (:func:`finish_operation`, run by :meth:`Spec.to_dict` over EVERY
  operation, whoever added it) then adds what all share: the bearer ``security``
  requirement (not on :data:`PUBLIC_OPERATIONS`), ``requestBody.required`` (unless the
  path set it), and the shared error answers with the :class:`~returnprog.schemas.ErrorOut`
  schema for the statuses the service can answer: 400 (malformed JSON) 413 415 422 where a
  body is taken, 422 where query parameters are, 401 403 everywhere protected, 404 where
  the path names an object, 409 on writes, 500 everywhere. A path that answers a status
  for a reason of its own declares it itself (its description wins). 405 is answered (with
  ``Allow``) to methods a path does not have, which are no operations, so it is not listed;
  the API has no rate limits, so there is no 429;
- :func:`openapi_31` turns what apispec writes the 3.0 way into 3.1 (``nullable`` becomes a
  ``"null"`` type, and an ``enum`` of a nullable field takes ``null``).
"""
from __future__ import annotations

import copy
import datetime as dt

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields as ma_fields

from ... import evidence, schemas, schemas_case_files, schemas_queues
from . import (spec_events, spec_finance, spec_payments, spec_records, spec_signing,
               spec_webhooks)

# Operations anyone may call (no bearer token): their operationIds.
PUBLIC_OPERATIONS = {"openapi"}
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
SHARED_ERRORS = {
    "400": "The body is not valid JSON (malformed_json).",
    "401": "No valid bearer token (unauthorized; also expired or revoked).",
    "403": "Your role may not do this (forbidden).",
    "404": "No such object that you may see (not_found).",
    "409": "The case's state, a guard or a version refuses it (conflict); the details list "
           "what is missing.",
    "413": "The request is larger than the service takes (too_large).",
    "415": "The body is not of the documented media type (unsupported_media_type).",
    "422": "Input not valid (invalid); the details name each field (dotted path) and why.",
    "500": "Something failed on the service's side; nothing was saved (internal_error).",
}
WRITES = {"post", "put", "patch", "delete"}
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class Spec(APISpec):
    """An APISpec whose document has the generic pass run over every operation and is
    OpenAPI 3.1 throughout (see the module docstring)."""

    def to_dict(self) -> dict:
        """The finished document."""
        doc = copy.deepcopy(super().to_dict())
        for path, item in doc.get("paths", {}).items():
            for method in METHODS:
                if method in item:
                    finish_operation(path, method, item[method])
        return openapi_31(doc)


def finish_operation(path: str, method: str, op: dict) -> None:
    """Add what every operation shares: security, required body, shared error answers."""
    public = op.get("operationId") in PUBLIC_OPERATIONS
    if not public:
        op.setdefault("security", [{"bearer": []}])
    else:
        op.setdefault("security", [])
    body = op.get("requestBody")
    if body is not None:
        body.setdefault("required", True)
    statuses = ["500"]
    if not public:
        statuses += ["401", "403"]
    if "{" in path:
        statuses.append("404")
    if method in WRITES:
        statuses.append("409")
    if body is not None:
        statuses += ["413", "415", "422"]
        if "application/json" in body.get("content", {}):
            statuses.append("400")
    if any(p.get("in") == "query" for p in op.get("parameters", [])):
        statuses.append("422")
    responses = op.setdefault("responses", {})
    for status in sorted(set(statuses)):
        responses.setdefault(status, {"description": SHARED_ERRORS[status], "content": ERROR})


def openapi_31(node):
    """``node`` with apispec's and hand-written OpenAPI 3.0 nullability made 3.1: a
    ``nullable: true`` becomes ``"null"`` in ``type``; the ``enum`` of a nullable field
    takes ``null`` (else a null value would fail the enum)."""
    if isinstance(node, list):
        return [openapi_31(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_31(v) for k, v in node.items()}
    if out.pop("nullable", False):
        types = out.get("type")
        if types is not None:
            types = [types] if isinstance(types, str) else list(types)
            out["type"] = types + ["null"] * ("null" not in types)
    types = out.get("type")
    if isinstance(types, list) and "null" in types and "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _constraints(self, field, **kwargs) -> dict:
    """What the field's own validators mean in JSON Schema (their ``openapi`` attribute:
    V-number and BSN patterns, the oblast enum, the Cyrillic rule), else the character rule
    of :class:`~returnprog.schemas.Strict` text fields as a pattern (not where a pattern or
    an enum of the field is narrower already)."""
    out: dict = {}
    for validator in field.validators:
        out.update(getattr(validator, "openapi", {}))
    if out or not isinstance(field, ma_fields.String) or "pattern" in field.metadata or any(
            hasattr(v, "regex") or hasattr(v, "choices") for v in field.validators):
        return out
    refused = next((v.refused for v in field.validators if hasattr(v, "refused")), None)
    if refused is None:
        return {}
    # Surrounding white space (even a tab) is trimmed before the rule applies.
    if any(getattr(v, "nonblank", False) for v in field.validators):
        # At least one character that is neither white space nor refused.
        return {"pattern": f"^\\s*[^{refused}]*[^\\s{refused}][^{refused}]*\\s*$"}
    return {"pattern": f"^\\s*[^{refused}]*\\s*$"}


def _future(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def intake_example() -> dict:
    """An intake that opens a case (the request example of ``POST /cases``)."""
    return {"principal": {"given_names_latin": "Olena", "family_name_latin": "Kovalenko",
                          "given_names_cyrillic": "Олена", "family_name_cyrillic": "Коваленко",
                          "date_of_birth": "1985-04-12", "v_number": "1234567890",
                          "email": "olena@example.org", "language": "uk"},
            "household": [{"given_names_latin": "Taras", "family_name_latin": "Kovalenko",
                           "date_of_birth": "2012-09-01", "v_number": "2345678901",
                           "relationship": "child"}],
            "destination_oblast": "UA-30", "destination_place": "Kyiv",
            "intake_notes": "Wants to return before the school year."}


def action_examples() -> dict:
    """A request example per workflow action (deadlines relative to today)."""
    return {"agree_departure": {"departure_deadline": _future(21)},
            "extend_deadline": {"departure_deadline": _future(35),
                                "reason": "The flight was cancelled."},
            "pay_support": {"idempotency_key": "pay-2f6c1d9e"},
            "confirm_departure": {"departed_on": dt.date.today().isoformat(),
                                  "evidence": "boarding",
                                  "evidence_reference": "KL1387"},
            "leave_programme": {"reason": "Decided to stay with family in the Netherlands."},
            "reject": {"reason": "Not eligible: holds a residence permit."},
            "lapse": {"reason": "No contact since the deadline passed."}}


def build_spec() -> APISpec:
    """Describe the API's paths with the schemas that validate them."""
    plugin = MarshmallowPlugin()
    spec = Spec(title="returnprog API", version="1.0.0", openapi_version="3.1.0",
                plugins=[plugin])
    plugin.converter.add_attribute_function(_constraints)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name in ("UserRef", "IntakeSchema", "CaseOut", "CaseListOut", "ErrorOut",
                 "IndConfirmationSchema", "TrailOut", "LooksOut"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas, name))
    errors: dict = {}  # the shared error answers come from the generic pass
    case_ok = {"description": "the case", "content": {"application/json": {"schema": "CaseOut"}}}
    ref = {"name": "reference", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,40}$"},
           "example": "VRP-2026-000001"}
    intake = {"content": {"application/json": {"schema": "Intake",
                                                "example": intake_example()}}}
    spec.path(path="/api/v1/cases", operations={
        "get": {"summary": "List cases", "operationId": "list_cases", "tags": ["cases"],
                "parameters": [{"in": "query", "schema": schemas.CaseQuerySchema}],
                "responses": {"200": {"description": "a page",
                                      "content": {"application/json": {"schema": "CaseListOut"}}}}},
        "post": {"summary": "Open a case", "operationId": "create_case", "tags": ["cases"],
                 "requestBody": intake,
                 "responses": {"201": {**case_ok, "headers": {"Location": {
                     "description": "the case's address", "schema": {"type": "string"}}}}}}})
    spec.path(path="/api/v1/cases/search", operations={
        "post": {"summary": "Search cases (filters in the body, so names and V-numbers stay "
                            "out of addresses and logs)",
                 "operationId": "search_cases", "tags": ["cases"],
                 "requestBody": {"content": {
                     "application/json": {"schema": schemas.CaseQuerySchema,
                                          "example": {"q": "Kovalenko", "state": "intake"}}}},
                 "responses": {"200": {"description": "a page", "content": {
                     "application/json": {"schema": "CaseListOut"}}}}}})
    spec.path(path="/api/v1/cases/{reference}", operations={
        "get": {"summary": "Read a case", "operationId": "get_case", "tags": ["cases"],
                "description": spec_events.CASE_READ_DESCRIPTION,
                "parameters": [ref], "responses": {"200": case_ok}},
        "put": {"summary": "Edit intake (only in intake)", "operationId": "update_case",
                "tags": ["cases"],
                "parameters": [ref, {"name": "If-Match", "in": "header", "required": False,
                                     "description": "the case's version, to refuse a stale edit",
                                     "schema": {"type": "string"}}],
                "requestBody": intake, "responses": {"200": case_ok}}})
    from ...schemas_corrections import CorrectionOut, CorrectionSchema
    spec.components.schema("Correction", schema=CorrectionSchema)
    spec.components.schema("CorrectionOut", schema=CorrectionOut)
    spec.path(path="/api/v1/cases/{reference}/corrections", operations={
        "post": {"summary": "Correct a case (any state before a final one)",
                 "description": "Names, dates of birth and the destination supersede the "
                                "signed documents that state them (listed in `reissue`).",
                 "operationId": "correct_case", "tags": ["cases"],
                 "parameters": [ref, {"name": "If-Match", "in": "header", "required": True,
                                      "schema": {"type": "integer"}},
                                {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                 "requestBody": {"content": {"application/json": {"schema": "Correction"}}},
                 "responses": {"200": {"description": "what was (or would be) done",
                                       "content": {"application/json": {
                                           "schema": "CorrectionOut"}}}}}})
    spec.path(path="/api/v1/cases/{reference}/ind-confirmations", operations={
        "post": {"summary": "Record an IND confirmation", "operationId": "add_ind_confirmation",
                 "tags": ["cases"], "parameters": [ref],
                 "requestBody": {"content": {"application/json": {"schema": "IndConfirmation"}}},
                 "responses": {"201": case_ok}}})
    _action_paths(spec, ref, case_ok)
    spec_payments.add_paths(spec)
    spec_finance.add_paths(spec)
    spec_events.add_paths(spec)
    _queue_paths(spec, errors)
    _token_paths(spec, errors)
    _case_file_paths(spec, errors, ref)
    spec_signing.add_paths(spec)
    spec_webhooks.add_paths(spec)
    spec_records.add_paths(spec)
    spec.path(path="/api/v1/openapi.json", operations={"get": {
        "summary": "This document", "operationId": "openapi", "tags": ["cases"],
        "responses": {"200": {"description": "the OpenAPI 3.1 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}}}})
    return spec


# Several actions share a payload schema; a named subclass per action gives each its own
# component without registering one class twice (made once: apispec and marshmallow know
# classes by name, and a second class of the same name would be renamed).
_ACTION_CLASSES = {action: type(f"Action_{action}", (schema,), {})
                   for action, schema in schemas.ACTION_SCHEMAS.items()}


# Actions that have a better home: still answered, documented as deprecated.
DEPRECATED_ACTIONS = {
    "pay_support": "Use `POST /cases/{reference}/payments/{payment_id}/pay`, which names the "
                   "payment and the version you read; this runs the same transition.",
}


def _action_paths(spec: APISpec, ref: dict, case_ok: dict) -> None:
    """One path per workflow action, each with its own request schema: a generator makes
    one method per action, and no body is valid for two actions at once. The Flask route
    is the one generic ``/actions/<action>``."""
    examples = action_examples()
    for action, schema in schemas.ACTION_SCHEMAS.items():
        summary = ("no input" if schema is schemas.EmptyPayload
                   else (schema.__doc__ or "").strip().splitlines()[0].split(": ", 1)[-1])
        op = {"summary": f"{action}: {summary}", "operationId": f"action_{action}",
              "tags": ["actions"], "parameters": [ref], "responses": {"200": case_ok}}
        if schema is schemas.EmptyPayload:
            # No fields: send no body at all, or the empty object.
            op["requestBody"] = {"required": False, "description": "none, or `{}`",
                                 "content": {"application/json": {"schema": {
                                     "type": "object", "additionalProperties": False,
                                     "maxProperties": 0}, "example": {}}}}
        else:
            name = f"Action_{action}"
            spec.components.schema(name, schema=_ACTION_CLASSES[action])
            op["requestBody"] = {"content": {"application/json": {
                "schema": name, "example": examples[action]}}}
        if action in DEPRECATED_ACTIONS:
            op["deprecated"] = True
            op["description"] = DEPRECATED_ACTIONS[action]
        spec.path(path=f"/api/v1/cases/{{reference}}/actions/{action}",
                  operations={"post": op})


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
                "operationId": "list_notes", "tags": ["notes"],
                "parameters": [ref, {"in": "query", "schema": schemas_case_files.NotesQuerySchema}],
                "responses": {"200": {"description": "a page", **body("NotesOut")}, **errors}},
        "post": {"summary": "Add a note (never edited; a correction is a new note)",
                 "operationId": "add_note", "tags": ["notes"],
                 "parameters": [ref], "requestBody": body("Note"),
                 "responses": {"201": {"description": "the note", **body("NoteOut")},
                               **errors}}})
    spec.path(path="/api/v1/cases/{reference}/evidence", operations={
        "get": {"summary": "The case's evidence files", "parameters": [ref],
                "operationId": "list_evidence", "tags": ["documents"],
                "responses": {"200": {"description": "every file, newest first",
                                      **body("EvidenceListOut")}, **errors}},
        "post": {"summary": "Upload a PDF, JPEG or PNG evidence file (checked by content)",
                 "operationId": "upload_evidence", "tags": ["documents"],
                 "parameters": [ref], "requestBody": {"content": {"multipart/form-data": {
                     "schema": {"type": "object", "required": ["kind", "file"], "properties": {
                         "kind": {"type": "string", "enum": list(evidence.EVIDENCE_KINDS)},
                         "file": {"type": "string", "format": "binary"}}}}}},
                 "responses": {"201": {"description": "the file's entry", **body("EvidenceOut")},
                               **errors, **too_large}}})
    spec.path(path="/api/v1/cases/{reference}/evidence/{evidence_id}", operations={
        "get": {"summary": "Download an evidence file",
                "operationId": "download_evidence", "tags": ["documents"],
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
        "operationId": "queue_counts", "tags": ["queues"],
        "responses": {"200": {"description": "counts by queue", "content": {
            "application/json": {"schema": "QueueCountsOut"}}}, **errors}}})
    spec.path(path="/api/v1/queues/{name}", operations={"get": {
        "summary": "The cases in one of your work queues, each with its next step",
        "operationId": "queue_rows", "tags": ["queues"],
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
                "operationId": "list_tokens", "tags": ["tokens"],
                "parameters": [{"name": "all", "in": "query", "required": False,
                                "schema": {"type": "string",
                                           "enum": ["1", "true", "0", "false"]}}],
                "responses": {"200": {"description": "the tokens, never their values",
                                      "content": {"application/json": {"schema": {
                                          "type": "object", "properties": {
                                              "items": {"type": "array", "items": token}}}}}},
                              **errors}}})
    spec.path(path="/api/v1/tokens/{token_id}", operations={
        "delete": {"summary": "Revoke an API token (your own; an admin's: anyone's)",
                   "operationId": "revoke_token", "tags": ["tokens"],
                   "parameters": [{"name": "token_id", "in": "path", "required": True,
                                   "schema": {"type": "integer"}}],
                   "responses": {"200": {"description": "revoked", "content": {
                       "application/json": {"schema": {"type": "object", "properties": {
                           "id": {"type": "integer"}, "status": {"type": "string"}}}}}},
                       **errors}}})
