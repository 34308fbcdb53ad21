"""JSON API for the caller's own bearer tokens, under /api/v1: list them, revoke one.

New tokens are issued on the staff page "API tokens" or with ``flask api-token`` (a token
does not mint further tokens). Administrators may list everyone's (``?all=1``) and revoke
any.
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ...services import tokens as token_service
from ...messages import M
from ...services import Invalid
from .common import api_ctx, authenticate

# ``?all=``: everyone's tokens (1, true) or only the caller's (0, false, left out).
ALL_VALUES = ("1", "true", "0", "false")

bp = Blueprint("api_tokens", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)


def _out(row: dict) -> dict:
    return {key: (value.isoformat() if hasattr(value, "isoformat") else value)
            for key, value in row.items() if key != "user_email"}


@bp.get("/tokens")
def list_tokens():
    """The caller's tokens (an admin's ``?all=1``: everyone's); never their values."""
    flag = request.args.get("all", "0")
    if flag not in ALL_VALUES:
        raise Invalid("error.invalid_fields",
                      {"all": [M("validate.one_of", choices=", ".join(ALL_VALUES))]})
    everyone = flag in ("1", "true")
    return jsonify({"items": [_out(t) for t in token_service.list_tokens(api_ctx(), everyone)]})


@bp.delete("/tokens/<int:token_id>")
def revoke_token(token_id: int):
    """Revoke one token (the caller's own; an admin's: anyone's)."""
    return jsonify(token_service.revoke(api_ctx(), token_id))
