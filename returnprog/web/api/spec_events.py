"""The audit-trail and access-log part of the OpenAPI document (:mod:`.cases`):
``/cases/{reference}/events`` (the trail, paged apart from the case read), its deprecated
alias ``/trail``, and ``/access-log``; and the words that say how reads are logged.
"""
from __future__ import annotations

from apispec import APISpec

from ... import access_log, schemas

_MINUTES = access_log.INTERVAL_SECONDS // 60

# How reads are recorded: the same sentence on every operation that reads a case.
VIEW_LOGGING = (
    "Reading is not a change: it adds nothing to the audit trail (`/events`). It is "
    f"recorded in the case's access log (`/access-log`) once per reader, case and view per "
    f"{_MINUTES}-minute interval (a poller reading every few seconds adds one entry per "
    f"{_MINUTES} minutes, not one per request): the log answers who looked at a case and "
    "when, to the quarter of an hour, without growing with every request. A session-based "
    "rule would not fit an API whose callers hold tokens, not sessions.")

CASE_READ_DESCRIPTION = (
    "Participants, state, allowed actions, documents and payments (each payment with its "
    "`version` and `url`). The audit trail is not embedded: page it at "
    "`/cases/{reference}/events`. " + VIEW_LOGGING)

_ERR = {"content": {"application/json": {"schema": "ErrorOut"}}}
_ERRORS = {str(s): {"description": d, **_ERR} for s, d in (
    (401, "missing or bad token"), (403, "role may not"), (404, "no such case you may see"),
    (422, "per-field validation errors (the paging parameters)"))}
_REF = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGING = {"in": "query", "schema": schemas.TrailQuerySchema}


def add_paths(spec: APISpec) -> None:
    """Add the trail (events), its deprecated alias and the access log to ``spec``."""
    def page(schema: str) -> dict:
        return {"200": {"description": "a page, newest first", "content": {
            "application/json": {"schema": schema}}}, **_ERRORS}

    events = {
        "tags": ["events"], "summary": "A page of the case's audit trail (its changes)",
        "description": "Newest first; ask again with `before=next_before_seq` for older "
                       "events (null on the oldest page). Each event's `actor` is "
                       "`{id, name}`; what acted without a staff account (scheduled "
                       "jobs, the operator, a participant on a signing link) has `id` "
                       "null and a `name` such as `system`. " + VIEW_LOGGING,
        "parameters": [_REF, _PAGING], "responses": page("TrailOut")}
    spec.path(path="/api/v1/cases/{reference}/events",
              operations={"get": {"operationId": "get_events", **events}})
    spec.path(path="/api/v1/cases/{reference}/trail", operations={"get": {
        **events, "operationId": "get_trail", "deprecated": True,
        "description": "Deprecated alias of `/cases/{reference}/events` (same answer)."}})
    spec.path(path="/api/v1/cases/{reference}/access-log", operations={"get": {
        "operationId": "get_access_log", "tags": ["events"],
        "summary": "A page of who looked at the case",
        "description": "Newest first; `before=next_before_id` pages on. One entry per "
                       f"reader, case and view (case, trail, payment, document …) per "
                       f"{_MINUTES}-minute interval; `actor` is `{{id, name}}`. "
                       + VIEW_LOGGING,
        "parameters": [_REF, _PAGING], "responses": page("LooksOut")}})
