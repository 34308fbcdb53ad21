"""The JSON API under /api/v1, answering bearer tokens with JSON only.

- :mod:`.common` — what every API view shares: bearer-token sign-in, reading the JSON
  body, loading it with a marshmallow schema, request-level errors;
- :mod:`.cases` — cases, IND confirmations, workflow actions (blueprint ``api``, which also
  serves the public ``/openapi.json``);
- :mod:`.case_files` — case notes and evidence files (on blueprint ``api``);
- :mod:`.payments` — travel-support payments and finance exports (blueprint
  ``api_payments``);
- :mod:`.finance` — payment batches and their files, bank-statement import, the review
  list, the monthly reconciliation (blueprint ``api_finance``);
- :mod:`.queues` — the caller's work queues: counts and rows (blueprint ``api_queues``);
- :mod:`.tokens` — the caller's bearer tokens: list, revoke (blueprint ``api_tokens``);
- :mod:`.signing` — signing links, tablet sessions, documents and verifications
  (blueprint ``api_signing``);
- :mod:`.webhooks` — webhook subscriptions, their delivery log, redelivery (blueprint
  ``api_webhooks``);
- :mod:`.records` — access requests and the processing log, read only (blueprint
  ``api_records``);
- :mod:`.openapi` — the OpenAPI document, generated from the same schemas.
"""
from __future__ import annotations

from flask import Flask

from . import cases, finance, payments, queues, records, signing, tokens, webhooks
from . import case_files  # noqa: F401  (notes and evidence routes on the cases blueprint)
from .common import PUBLIC_ENDPOINTS, CaseReferenceConverter
from .openapi import build_spec

# Every blueprint of the API: registered together, all exempt from CSRF (no cookies).
BLUEPRINTS = (cases.bp, payments.bp, finance.bp, queues.bp, tokens.bp, signing.bp,
              webhooks.bp, records.bp)


def init_app(app: Flask) -> None:
    """Register the API's blueprints on ``app``."""
    app.url_map.converters["case_ref"] = CaseReferenceConverter
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)


__all__ = ["BLUEPRINTS", "PUBLIC_ENDPOINTS", "build_spec", "init_app"]
