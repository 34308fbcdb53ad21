"""The payment and export part of the OpenAPI document (:mod:`.payments`).

A case's payments are a sub-resource, ``/cases/{reference}/payments[/{payment_id}]``,
with one path per action; each action takes the payment's ``version`` in its JSON body
(required) and answers the payment. The older ``/cases/{reference}/payment[/…]`` paths
are listed as ``deprecated``. Error answers (401/403/404/409/422 …) are added to every
operation by :func:`.openapi.build_spec`'s shared pass where it has one; the ones listed
here say what they mean for payments.
"""
from __future__ import annotations

from apispec import APISpec

from ... import schemas_payments

PAYMENTS, EXPORTS = ["payments"], ["exports"]

_ERR = {"content": {"application/json": {"schema": "ErrorOut"}}}
_ERRORS = {str(s): {"description": d, **_ERR} for s, d in (
    (401, "missing or bad token"), (403, "role may not, or four eyes"),
    (404, "no such case you may see, or no such payment of it"),
    (409, "state or payment conflict; a stale `version` says the current one"),
    (422, "per-field validation errors"))}
_REF = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
_PAYMENT_ID = {"name": "payment_id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1}}
_DEPRECATED = ("Deprecated: acts on the case's current payment; use the payment "
               "sub-resource `{}` instead.")


def _body(schema) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def add_paths(spec: APISpec) -> None:
    """Add the payment and export paths and their schemas to ``spec``."""
    for name in ("ProposePaymentSchema", "ApprovePaymentSchema", "ReasonedDecisionSchema",
                 "ReentrySchema", "CreateExportSchema", "PaymentDetailOut", "PaymentListOut",
                 "CasePaymentsOut", "ExportBatchOut", "ExportListOut", "PaymentVersionSchema",
                 "PaymentReasonSchema", "PaymentPaySchema", "PaymentReentrySchema"):
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas_payments, name))
    ok = {"description": "the payment", **_body("PaymentDetailOut")}
    created = {"description": "the proposed payment; Location is its address",
               "headers": {"Location": {"schema": {"type": "string"}}},
               **_body("PaymentDetailOut")}
    item = "/api/v1/cases/{reference}/payments/{payment_id}"

    spec.path(path="/api/v1/cases/{reference}/payments", operations={
        "get": {"operationId": "list_case_payments", "tags": PAYMENTS,
                "summary": "The case's payments, oldest first",
                "description": "Each with its `version` (what its actions take), status, "
                               "method, amounts and who proposed, decided and disbursed it "
                               "as `{id, name}`; IBANs masked (read one payment for them).",
                "parameters": [_REF],
                "responses": {"200": {"description": "every payment of the case",
                                      **_body("CasePaymentsOut")}, **_ERRORS}},
        "post": {"operationId": "propose_case_payment", "tags": PAYMENTS,
                 "summary": "Propose travel support (counsellor)",
                 "description": "The amount follows from the tariff and the household. "
                                "409 while the case has a live payment or is not at "
                                "departure_agreed.",
                 "parameters": [_REF], "requestBody": _body("ProposePayment"),
                 "responses": {"201": created, **_ERRORS}}})
    spec.path(path=item, operations={
        "get": {"operationId": "read_case_payment", "tags": PAYMENTS,
                "summary": "One payment of the case, with its bank details",
                "description": "Looking at the bank details is recorded in the case's "
                               "access log (once per reader, case and payment per 15 "
                               "minutes).",
                "parameters": [_REF, _PAYMENT_ID], "responses": {"200": ok, **_ERRORS}}})
    for action, view, schema, summary, description in (
            ("approve", "approve_case_payment", "PaymentVersion",
             "Approve (a supervisor who did not propose it)",
             "Four eyes: not by the proposer, nor by another account of the same person."),
            ("reject", "reject_case_payment", "PaymentReason",
             "Reject with a reason (a supervisor who did not propose it)",
             "A new proposal may be made afterwards."),
            ("cancel", "cancel_case_payment", "PaymentReason",
             "Cancel a proposed or approved payment, with a reason",
             "Only before the money has gone out: not once disbursed or in a bank export."),
            ("pay", "pay_case_payment", "PaymentPay", "Pay out the approved payment (finance)",
             ("The workflow action `pay_support` (the case moves to support_paid), under "
              "the body's `idempotency_key`: the same key and body again answer the payment "
              "without paying twice (even if its version moved on); the same key with "
              "another request is a 409. The same transition as "
              "`POST /cases/{reference}/actions/pay_support`, which answers the case.")),
            ("reentry", "record_case_payment_reentry", "PaymentReentry",
             "Record a re-entry and the amount reclaimed, after departure",
             "For the disbursed payment of a departed case; once.")):
        spec.path(path=f"{item}/{action}", operations={"post": {
            "operationId": view, "tags": PAYMENTS, "summary": summary,
            "description": description + " Takes the payment's `version` (as read) in the "
                                         "body; 409 `stale_version` if it changed since.",
            "parameters": [_REF, _PAYMENT_ID], "requestBody": _body(schema),
            "responses": {"200": ok, **_ERRORS}}})

    # The older routes on "the case's current payment": deprecated aliases.
    spec.path(path="/api/v1/cases/{reference}/payment", operations={
        "get": {"operationId": "get_payment", "tags": PAYMENTS, "deprecated": True,
                "summary": "Read the case's current payment",
                "description": _DEPRECATED.format("GET " + item), "parameters": [_REF],
                "responses": {"200": ok, **_ERRORS}},
        "post": {"operationId": "propose_payment", "tags": PAYMENTS, "deprecated": True,
                 "summary": "Propose travel support",
                 "description": _DEPRECATED.format("POST /api/v1/cases/{reference}/payments"),
                 "parameters": [_REF], "requestBody": _body("ProposePayment"),
                 "responses": {"201": created, **_ERRORS}}})
    for action, view, schema, summary in (
            ("approve", "approve_payment", "ApprovePayment",
             "Approve (supervisor, not the proposer)"),
            ("reject", "reject_payment", "ReasonedDecision",
             "Reject with a reason (supervisor, not the proposer)"),
            ("cancel", "cancel_payment", "ReasonedDecision", "Cancel before disbursement"),
            ("reentry", "record_reentry", "Reentry",
             "Record a re-entry and reclaim after departure")):
        spec.path(path=f"/api/v1/cases/{{reference}}/payment/{action}", operations={"post": {
            "operationId": view, "tags": PAYMENTS, "deprecated": True, "summary": summary,
            "description": _DEPRECATED.format(f"POST {item}/{action}"),
            "parameters": [_REF], "requestBody": _body(schema),
            "responses": {"200": ok, **_ERRORS}}})

    spec.path(path="/api/v1/payments", operations={
        "get": {"operationId": "list_payments", "tags": PAYMENTS,
                "summary": "List payments on the cases you may see",
                "parameters": [{"in": "query", "schema": schemas_payments.PaymentQuerySchema}],
                "responses": {"200": {"description": "a page", **_body("PaymentListOut")},
                              **_ERRORS}}})
    spec.path(path="/api/v1/exports", operations={
        "get": {"operationId": "list_exports", "tags": EXPORTS, "deprecated": True,
                "summary": "List payment batches (deprecated: use /batches)",
                "parameters": [{"in": "query", "schema": schemas_payments.ExportQuerySchema}],
                "responses": {"200": {"description": "a page", **_body("ExportListOut")},
                              **_ERRORS}},
        "post": {"operationId": "create_export", "tags": EXPORTS, "deprecated": True,
                 "summary": "Make a batch of the released transfers; `kind` picks the file "
                            "its `download` gives (deprecated: use /batches)",
                 "requestBody": _body("CreateExport"),
                 "responses": {"201": {"description": "the batch", **_body("ExportBatchOut")},
                               **_ERRORS}}})
    spec.path(path="/api/v1/exports/{batch_id}", operations={
        "get": {"operationId": "download_export", "tags": EXPORTS, "deprecated": True,
                "summary": "Download a batch's file (deprecated: use /batches/{id}/files)",
                "parameters": [{"name": "batch_id", "in": "path", "required": True,
                                "schema": {"type": "integer"}},
                               {"name": "format", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["sepa", "csv"]}}],
                "responses": {"200": {"description": "the file", "content": {
                    "application/xml": {}, "text/csv": {}}}, **_ERRORS}}})
