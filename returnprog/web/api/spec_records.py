"""The records part of the OpenAPI document (:mod:`.records`): access requests and the
processing log (issue 16). Shared error answers are added by
:func:`.openapi.finish_operation`."""
from __future__ import annotations

from apispec import APISpec

from ... import schemas_access

RECORDS = ["records"]
_ID = {"name": "access_request_id", "in": "path", "required": True,
       "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


def _body(schema) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def add_paths(spec: APISpec) -> None:
    """Add the records paths and their schemas to ``spec``."""
    for name in ("AccessRequestOut", "AccessRequestListOut", "ProcessingEntryOut",
                 "ProcessingPageOut"):
        spec.components.schema(name, schema=getattr(schemas_access, name))
    spec.components.schema("StaffProcessingPageOut", {
        "allOf": [{"$ref": "#/components/schemas/ProcessingPageOut"}, {
            "type": "object", "properties": {"user": {
                "type": "object", "properties": {
                    "id": {"type": "integer"}, "name": {"type": "string"},
                    "email": {"type": "string"}, "role": {"type": "string"}}}}}]})
    spec.path(path="/api/v1/access-requests", operations={
        "get": {"operationId": "list_access_requests", "tags": RECORDS,
                "summary": "List access requests (records roles)",
                "responses": {"200": {"description": "the requests",
                                      **_body("AccessRequestListOut")}}}})
    spec.path(path="/api/v1/access-requests/{access_request_id}", operations={
        "get": {"operationId": "get_access_request", "tags": RECORDS,
                "summary": "Read one access request", "parameters": [_ID],
                "responses": {"200": {"description": "the request",
                                      **_body("AccessRequestOut")}}}})
    spec.path(path="/api/v1/access-requests/{access_request_id}/processing-log", operations={
        "get": {"operationId": "get_participant_processing_log", "tags": RECORDS,
                "summary": "The processing of the requesting participant's data",
                "description": "Reads and changes of their case about them or the household "
                               "as a whole, newest first; the read is itself logged.",
                "parameters": [_ID, {"in": "query", "schema": schemas_access.PageOnlySchema}],
                "responses": {"200": {"description": "a page",
                                      **_body("ProcessingPageOut")}}}})
    spec.path(path="/api/v1/processing-log", operations={
        "get": {"operationId": "get_staff_processing_log", "tags": RECORDS,
                "summary": "What one staff account read and changed (records roles)",
                "parameters": [{"in": "query", "schema": schemas_access.StaffLogQuerySchema}],
                "responses": {"200": {"description": "a page",
                                      **_body("StaffProcessingPageOut")}}}})
