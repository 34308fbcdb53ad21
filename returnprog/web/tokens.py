"""The staff page "API tokens" (blueprint ``tokens``, under the account menu): issue a
token for the JSON API (its value shown once), see your tokens with their last use, revoke
them. Administrators also see and revoke every other user's tokens here.

Signing out does not revoke API tokens (see :mod:`returnprog.services.tokens`).
"""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _

from ..roles import ADMIN, ROLES
from ..services import ServiceError
from ..services import tokens as token_service
from .ui import FormErrors, ctx, errors_from, render_page, roles

bp = Blueprint("tokens", __name__, url_prefix="/account")

SETTINGS = {
    # Days an API token is valid from issue; then it is refused with "expired".
    "API_TOKEN_DAYS": 30,
}


def _page(status: int = 200, errors: FormErrors | None = None, values=None, new_token=None):
    c = ctx()
    mine = token_service.list_tokens(c)
    others = ([t for t in token_service.list_tokens(c, everyone=True)
               if t["user_id"] != c.actor.id] if c.actor.role == ADMIN else None)
    return render_page("account/tokens.html", status, tokens=mine, others=others,
                       errors=errors or FormErrors(), values=values or {},
                       new_token=new_token, days=int(current_app.config["API_TOKEN_DAYS"]))


@bp.get("/tokens")
@roles(*ROLES)
def token_list():
    """Your API tokens (and, for administrators, everyone's)."""
    return _page()


@bp.post("/tokens")
@roles(*ROLES)
def issue_token():
    """Issue a token for yourself; the page shows its value this once."""
    c = ctx()
    try:
        token = token_service.issue(c, request.form.get("name", ""),
                                    int(current_app.config["API_TOKEN_DAYS"]))
    except ServiceError as exc:
        c.session.rollback()
        errors, status = errors_from(exc)
        return _page(status, errors, request.form)
    return _page(201, new_token=token)


@bp.post("/tokens/<int:token_id>/revoke")
@roles(*ROLES)
def revoke_token(token_id: int):
    """Revoke a token (yours; an administrator's: anyone's)."""
    token_service.revoke(ctx(), token_id)
    flash(_("The API token is revoked: it no longer works."), "success")
    return redirect(url_for("tokens.token_list"), 303)


def init_app(app: Flask) -> None:
    """The token settings (the blueprint is registered with the other staff pages)."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
