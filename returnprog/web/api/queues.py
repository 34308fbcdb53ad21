"""JSON API of the work queues under /api/v1: the counts of the caller's queues and the
rows of one (the same service as the "My work" pages)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ... import schemas_queues
from ...dumping import dump
from ...services import queues as queue_service
from .common import api_ctx, authenticate

bp = Blueprint("api_queues", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


@bp.get("/queues")
def queue_counts():
    """How many cases wait in each of your queues (none for administrators)."""
    return jsonify(dump(schemas_queues.QueueCountsOut,
        {"queues": queue_service.queue_counts(api_ctx())}))


@bp.get("/queues/<name>")
def queue_rows(name: str):
    """The cases in one of your queues with each one's next step; 404 for a queue that is
    not your role's."""
    rows = queue_service.work_queues(api_ctx(), only=name)[name]
    return jsonify(dump(schemas_queues.QueueOut, {"name": name, "total": len(rows),
                                                   "items": rows}))
