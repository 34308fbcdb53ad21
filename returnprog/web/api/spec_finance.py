"""The finance part of the OpenAPI document (:mod:`.finance`): payment batches and their
files, bank-statement import, the review list and the monthly reconciliation. Shared
error answers are added by :func:`.openapi.finish_operation`."""
from __future__ import annotations

from apispec import APISpec

from ... import schemas_finance

BATCHES, STATEMENTS = ["batches"], ["statements"]
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1}}
_ENTRY_ID = {"name": "entry_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1}}


# An action without fields: no body at all, or the empty object.
_NO_BODY = {"required": False, "description": "none, or `{}`",
            "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "maxProperties": 0},
                "example": {}}}}


def _body(schema) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def add_paths(spec: APISpec) -> None:
    """Add the finance paths and their schemas to ``spec``."""
    for name in ("CreateBatchSchema", "WithdrawBatchSchema", "BatchOut", "BatchListOut",
                 "StatementOut", "StatementListOut", "EntryOut", "EntryListOut",
                 "ResolveEntrySchema", "ReportOut"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas_finance, name))
    batch = {"description": "the batch", **_body("BatchOut")}
    spec.path(path="/api/v1/batches", operations={
        "get": {"operationId": "list_batches", "tags": BATCHES,
                "summary": "List payment batches (finance)",
                "parameters": [{"in": "query", "schema": schemas_finance.BatchQuerySchema}],
                "responses": {"200": {"description": "a page", **_body("BatchListOut")}}},
        "post": {"operationId": "create_batch", "tags": BATCHES,
                 "summary": "Put the released transfers that are in no batch yet into a batch",
                 "description": "Made once in every format: a SEPA pain.001 (validated "
                                "against its XSD) and a CSV of the same payments; accounts "
                                "outside SEPA go into an `outside_sepa` batch (CSV only). "
                                "409 when nothing waits.",
                 "requestBody": _body("CreateBatch"),
                 "responses": {"201": {**batch, "headers": {
                     "Location": {"schema": {"type": "string"}}}}}}})
    spec.path(path="/api/v1/batches/{batch_id}", operations={
        "get": {"operationId": "get_batch", "tags": BATCHES, "summary": "Read one batch",
                "parameters": [_BATCH_ID], "responses": {"200": batch}}})
    spec.path(path="/api/v1/batches/{batch_id}/files/{fmt}", operations={
        "get": {"operationId": "download_batch_file", "tags": BATCHES,
                "summary": "Download a batch's SEPA or CSV file (identical bytes every time)",
                "parameters": [_BATCH_ID, {"name": "fmt", "in": "path", "required": True,
                                           "schema": {"type": "string",
                                                      "enum": ["sepa", "csv"]}}],
                "responses": {"200": {"description": "the file", "content": {
                    "application/xml": {}, "text/csv": {}}}}}})
    spec.path(path="/api/v1/batches/{batch_id}/send", operations={
        "post": {"operationId": "send_batch", "tags": BATCHES,
                 "summary": "Mark a batch as sent to the bank",
                 "description": "Above the policy's `batch_second_release_cents` only a "
                                "finance officer other than the batch's maker (403).",
                 "parameters": [_BATCH_ID],
                 "requestBody": _NO_BODY,
                 "responses": {"200": batch}}})
    spec.path(path="/api/v1/batches/{batch_id}/withdraw", operations={
        "post": {"operationId": "withdraw_batch", "tags": BATCHES,
                 "summary": "Withdraw a batch that was not sent; its payments are freed",
                 "parameters": [_BATCH_ID], "requestBody": _body("WithdrawBatch"),
                 "responses": {"200": batch}}})
    spec.path(path="/api/v1/statements", operations={
        "get": {"operationId": "list_statements", "tags": STATEMENTS,
                "summary": "List imported bank statements",
                "parameters": [{"in": "query", "schema": schemas_finance.PageQuerySchema}],
                "responses": {"200": {"description": "a page", **_body("StatementListOut")}}},
        "post": {"operationId": "import_statement", "tags": STATEMENTS,
                 "summary": "Import a bank statement (camt.053 .02/.08 or MT940)",
                 "description": "Booked entries confirm sent transfers, returns mark them "
                                "returned with the bank's reason; the rest goes to the review "
                                "list. The same statement again changes nothing (200, "
                                "`already_imported`).",
                 "requestBody": {"content": {"multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"], "properties": {
                         "file": {"type": "string", "format": "binary"}}}}}},
                 "responses": {"201": {"description": "imported", **_body("StatementOut")},
                               "200": {"description": "imported before: nothing changed",
                                       **_body("StatementOut")}}}})
    spec.path(path="/api/v1/statement-entries", operations={
        "get": {"operationId": "review_list", "tags": STATEMENTS,
                "summary": "The review list: entries not matched for sure",
                "parameters": [{"in": "query", "schema": schemas_finance.ReviewQuerySchema}],
                "responses": {"200": {"description": "a page", **_body("EntryListOut")}}}})
    spec.path(path="/api/v1/statement-entries/{entry_id}/resolve", operations={
        "post": {"operationId": "resolve_entry", "tags": STATEMENTS,
                 "summary": "Decide a reviewed entry: book, return or dismiss it",
                 "parameters": [_ENTRY_ID], "requestBody": _body("ResolveEntry"),
                 "responses": {"200": {"description": "the decided entry", **_body("EntryOut")}}}})
    spec.path(path="/api/v1/reports/reconciliation", operations={
        "get": {"operationId": "reconciliation_report", "tags": STATEMENTS,
                "summary": "The monthly reconciliation (JSON, or CSV with Accept: text/csv)",
                "parameters": [{"in": "query", "schema": schemas_finance.ReportQuerySchema}],
                "responses": {"200": {"description": "the month's totals and lines",
                                      "content": {"application/json": {"schema": "ReportOut"},
                                                  "text/csv": {}}}}}})
