"""User administration for administrators: list, create, deactivate or reactivate, and set
a new password (which also lifts a lock and ends the user's sessions)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import schemas
from ..roles import ADMIN
from ..services import NotFound, ServiceError
from ..services import accounts
from ..services import figures as figure_service
from .ui import FormErrors, ctx, errors_from, form_data, load, render_page, roles

bp = Blueprint("admin", __name__, url_prefix="/admin")


def password_schema():
    """Only the password rule of a new user (the same rule, not a copy of it)."""
    return schemas.UserCreateSchema(only=("password",))


@bp.get("/users")
@roles(ADMIN)
def users():
    """Every staff user with role, team, status and lock."""
    return render_page("admin/users.html", users=accounts.list_users(ctx()))


@bp.route("/users/new", methods=["GET", "POST"])
@roles(ADMIN)
def new_user():
    """Create a staff user (the same schema as ``flask create-user``)."""
    c = ctx()
    errors, status, values = FormErrors(), 200, {"team": "Team Noord"}
    if request.method == "POST":
        values = request.form
        try:
            user = accounts.create_user(c, load(schemas.UserCreateSchema,
                                                form_data(schemas.UserCreateSchema)))
        except (ValidationError, ServiceError) as exc:
            c.session.rollback()
            errors, status = errors_from(exc)
        else:
            flash(_("User %(email)s created.", email=user.email), "success")
            return redirect(url_for("admin.users"), 303)
    return render_page("admin/user_new.html", status, errors=errors, values=values,
                       teams=figure_service.teams(c), roles=schemas.ROLES)


def _set_active(user_id: int, active: bool):
    try:
        user = accounts.set_active(ctx(), user_id, active)
    except ServiceError as exc:
        if isinstance(exc, NotFound):
            raise
        ctx().session.rollback()
        errors, status = errors_from(exc)
        return render_page("admin/users.html", status, users=accounts.list_users(ctx()),
                           errors=errors)
    flash(_("%(email)s can sign in again.", email=user.email) if active else
          _("%(email)s is deactivated and signed out.", email=user.email), "success")
    return redirect(url_for("admin.users"), 303)


@bp.post("/users/<int:user_id>/deactivate")
@roles(ADMIN)
def deactivate(user_id: int):
    """Deactivate a user: they are signed out at once and cannot sign in."""
    return _set_active(user_id, False)


@bp.post("/users/<int:user_id>/activate")
@roles(ADMIN)
def activate(user_id: int):
    """Let a deactivated user sign in again."""
    return _set_active(user_id, True)


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@roles(ADMIN)
def reset_password(user_id: int):
    """Set a new password for a user (tell it to them in person or by phone)."""
    c = ctx()
    user = accounts.get_user(c, user_id)
    errors, status = FormErrors(), 200
    if request.method == "POST":
        try:
            schema = password_schema()
            data = load(schema, form_data(schema))
            accounts.reset_password(c, user_id, data["password"])
        except (ValidationError, ServiceError) as exc:
            if isinstance(exc, NotFound):
                raise
            c.session.rollback()
            errors, status = errors_from(exc)
        else:
            flash(_("New password set for %(email)s; their sessions were ended.",
                    email=user.email), "success")
            return redirect(url_for("admin.users"), 303)
    return render_page("admin/password.html", status, user=user, errors=errors)
