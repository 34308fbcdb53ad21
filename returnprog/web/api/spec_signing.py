"""The OpenAPI paths of signing links, tablet sessions, documents and verifications
(:mod:`.signing`), added to the document by :func:`add_paths`."""
from __future__ import annotations

from apispec import APISpec

from ... import schemas_signing

SCHEMAS = ("SigningRequestSchema", "TabletSessionSchema", "SigningLinkOut",
           "SigningLinkCreatedOut", "SigningLinksOut", "DocumentEntryOut", "DocumentListOut",
           "VerificationOut")


def _json(schema: str) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"description": description, **_json("ErrorOut")}


def add_paths(spec: APISpec) -> None:
    """Add the paths and components of :mod:`.signing` to ``spec``."""
    for name in SCHEMAS:
        spec.components.schema(name.replace("Schema", ""), schema=getattr(schemas_signing, name))
    ref = {"name": "reference", "in": "path", "required": True, "schema": {"type": "string"}}
    link_id = {"name": "link_id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1}}
    doc_id = {"name": "document_id", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 1}}
    no_store = {"Cache-Control": {"description": "no-store: the address is given only once",
                                  "schema": {"type": "string"}}}
    created = {"description": "the new link with its `url`, the only time it is given",
               "headers": no_store, **_json("SigningLinkCreatedOut")}
    common = {"401": _error("missing or bad token"), "404": _error("no such case you may see")}
    counsellor = {**common, "403": _error("only a counsellor of the case's team")}
    writes = {**counsellor, "409": _error("the case's state does not allow it, or the link is "
                                          "used, declined or withdrawn"),
              "422": _error("per-field validation errors")}

    spec.path(path="/api/v1/cases/{reference}/signing-links", operations={
        "get": {"operationId": "list_signing_links", "tags": ["signing"],
                "summary": "The case's signing links and tablet sessions (never their address)",
                "parameters": [ref],
                "responses": {"200": {"description": "newest first", **_json("SigningLinksOut")},
                              **counsellor}},
        "post": {"operationId": "create_signing_link", "tags": ["signing"],
                 "summary": "Create a personal signing link for one adult and one document",
                 "description": "The answer carries the link's address (`url`) for the "
                                "integrator to deliver; only its hash is stored, so it is never "
                                "returned again (resend issues a fresh one).",
                 "parameters": [ref],
                 "requestBody": {"required": True, **_json("SigningRequest")},
                 "responses": {"201": created, **writes}}})
    spec.path(path="/api/v1/cases/{reference}/signing-links/{link_id}/resend", operations={
        "post": {"operationId": "resend_signing_link", "tags": ["signing"],
                 "summary": "Resend a link: a fresh one for the same adult, document and terms "
                            "replaces it (the old one is withdrawn in the same transaction)",
                 "parameters": [ref, link_id],
                 "responses": {"201": created, **writes}}})
    spec.path(path="/api/v1/cases/{reference}/signing-links/{link_id}", operations={
        "delete": {"operationId": "revoke_signing_link", "tags": ["signing"],
                   "summary": "Withdraw a signing link or tablet session not used yet",
                   "parameters": [ref, link_id],
                   "responses": {"200": {"description": "the withdrawn link",
                                         **_json("SigningLinkOut")}, **writes}}})
    spec.path(path="/api/v1/cases/{reference}/tablet-sessions", operations={
        "post": {"operationId": "create_tablet_session", "tags": ["signing"],
                 "summary": "Open a tablet session: a short-lived single-use address to open on "
                            "the office tablet, where the adult signs in person",
                 "description": "The counsellor states the identity document checked; the "
                                "signature is recorded as on the office tablet (channel "
                                "`tablet`, verification `id_document`, no one-time code). "
                                "Valid for the policy's `tablet_session_minutes`.",
                 "parameters": [ref],
                 "requestBody": {"required": True, **_json("TabletSession")},
                 "responses": {"201": created, **writes}}})
    spec.path(path="/api/v1/cases/{reference}/documents", operations={
        "get": {"operationId": "list_documents", "tags": ["documents"],
                "summary": "The case's signed documents with kind, version, signer, status, "
                           "SHA-256 and download address",
                "parameters": [ref],
                "responses": {"200": {"description": "oldest first", **_json("DocumentListOut")},
                              **common}}})
    spec.path(path="/api/v1/cases/{reference}/documents/{document_id}", operations={
        "get": {"operationId": "download_document", "tags": ["documents"],
                "summary": "Download a signed PDF (an attachment, never cached; recorded in the "
                           "access log)",
                "parameters": [ref, doc_id],
                "responses": {"200": {"description": "the sealed PDF; ETag is its SHA-256",
                                      "headers": {"ETag": {"schema": {"type": "string"}}},
                                      "content": {"application/pdf": {"schema": {
                                          "type": "string", "format": "binary"}}}},
                              **common, "403": _error("finance officers may not download")}}})
    spec.path(path="/api/v1/verifications", operations={
        "post": {"operationId": "verify_pdf", "tags": ["verification"],
                 "summary": "Verify a PDF: the verdict of /verify as JSON",
                 "description": "Upload the file as multipart/form-data in the field `file`. "
                                "Same size limit (VERIFY_MAX_BYTES), rate limit and busy guard "
                                "as /verify; a hostile file is answered `valid: false`.",
                 "requestBody": {"required": True, "content": {"multipart/form-data": {
                     "schema": {"type": "object", "required": ["file"], "properties": {
                         "file": {"type": "string", "format": "binary"}}}}}},
                 "responses": {
                     "200": {"description": "the verdict", **_json("VerificationOut")},
                     "401": _error("missing or bad token"),
                     "413": _error("the file is larger than VERIFY_MAX_BYTES"),
                     "415": _error("not multipart/form-data"),
                     "422": _error("no file, or an empty one"),
                     "429": _error("too many verifications from this address (Retry-After)"),
                     "503": _error("every check slot is in use (Retry-After)")}}})
