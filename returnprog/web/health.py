"""``/healthz`` and ``/readyz`` for a load balancer or a process supervisor (issue 10).

- ``/healthz`` — liveness: this process answers. Touches nothing else (no database), so a
  database outage never gets healthy web workers restarted. Always 200.
- ``/readyz`` — readiness: the database answers, its schema is at the code's migration
  head, the scheduler's heartbeat is recent and the outbox backlog is within bounds
  (:func:`returnprog.services.health.readiness`). 200 when every check passes, else 503;
  the body names each check with ``ok``/``failing`` and a short reason (counts, ages,
  revision ids — no personal data).

Both are public (no sign-in), GET only (so no CSRF), read-only and never cached.
Thresholds: ``READY_HEARTBEAT_MAX_AGE_SECONDS`` (120), ``READY_OUTBOX_MAX_DUE`` (1000),
``READY_OUTBOX_MAX_DUE_AGE_SECONDS`` (900).
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, current_app, jsonify

from ..services import health as service
from .sessions import engine

bp = Blueprint("health", __name__)


def _answer(body: dict, status: int):
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers."""
    return _answer({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz():
    """Readiness: 200 when every check passes, 503 with the failing ones otherwise."""
    checks = service.readiness(engine(), dt.datetime.now(dt.timezone.utc),
                               service.Thresholds.from_config(current_app.config))
    ready = all(c.ok for c in checks)
    return _answer({"status": "ready" if ready else "not ready",
                    "checks": {c.name: {"status": "ok" if c.ok else "failing",
                                        "reason": c.reason} for c in checks}},
                   200 if ready else 503)


def init_app(app: Flask) -> None:
    """Register ``/healthz`` and ``/readyz``."""
    app.register_blueprint(bp)
