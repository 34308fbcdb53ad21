"""User administration for administrators: list, create, deactivate or reactivate, change
a role, set a new password (which also lifts a lock and ends the user's sessions), and
decide on the privileged requests of other administrators (four eyes between people:
see :mod:`returnprog.services.accounts`)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import schemas
from ..models import AccountRequest
from ..roles import ADMIN
from ..services import NotFound, ServiceError
from ..services import accounts
from ..services import figures as figure_service
from .ui import FormErrors, ctx, errors_from, form_data, load, render_page, roles

bp = Blueprint("admin", __name__, url_prefix="/admin")


def password_schema():
    """The password rule of a new user (the same rule, not a copy of it)."""
    return schemas.PasswordSchema()


def _requested(request: AccountRequest):
    flash(_("Request recorded: %(email)s changes only when another administrator approves "
            "it.", email=request.email), "success")
    return redirect(url_for("admin.requests"), 303)


@bp.get("/users")
@roles(ADMIN)
def users():
    """Every staff user with role, team, status and lock."""
    c = ctx()
    return render_page("admin/users.html", users=accounts.list_users(c),
                       pending=len(accounts.list_requests(c)))


@bp.route("/users/new", methods=["GET", "POST"])
@roles(ADMIN)
def new_user():
    """Create a staff user (the schema of ``flask create-user``, with the personnel number
    required); a privileged role becomes a request for a second administrator."""
    c = ctx()
    errors, status, values = FormErrors(), 200, {"team": "Team Noord"}
    if request.method == "POST":
        values = request.form
        try:
            user = accounts.create_user(c, load(schemas.AdminUserCreateSchema,
                                                form_data(schemas.AdminUserCreateSchema)))
        except (ValidationError, ServiceError) as exc:
            c.session.rollback()
            errors, status = errors_from(exc)
        else:
            if isinstance(user, AccountRequest):
                return _requested(user)
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
            done = accounts.reset_password(c, user_id, data["password"])
        except (ValidationError, ServiceError) as exc:
            if isinstance(exc, NotFound):
                raise
            c.session.rollback()
            errors, status = errors_from(exc)
        else:
            if isinstance(done, AccountRequest):
                return _requested(done)
            flash(_("New password set for %(email)s; their sessions were ended.",
                    email=user.email), "success")
            return redirect(url_for("admin.users"), 303)
    return render_page("admin/password.html", status, user=user, errors=errors)


@bp.route("/users/<int:user_id>/role", methods=["GET", "POST"])
@roles(ADMIN)
def change_role(user_id: int):
    """Ask for another role for an account; a second administrator must approve it."""
    c = ctx()
    user = accounts.get_user(c, user_id)
    errors, status = FormErrors(), 200
    if request.method == "POST":
        try:
            data = load(schemas.RoleChangeSchema, form_data(schemas.RoleChangeSchema))
            done = accounts.request_role_change(c, user_id, data["role"])
        except (ValidationError, ServiceError) as exc:
            if isinstance(exc, NotFound):
                raise
            c.session.rollback()
            errors, status = errors_from(exc, fields_known=("role",))
        else:
            return _requested(done)
    return render_page("admin/role.html", status, user=user, errors=errors,
                       values={"role": request.form.get("role", user.role)},
                       roles=schemas.ROLES)


@bp.get("/requests")
@roles(ADMIN)
def requests():
    """Privileged account changes waiting for a second administrator, and the latest
    decided ones."""
    c = ctx()
    every = accounts.list_requests(c, pending_only=False)
    return render_page("admin/requests.html",
                       pending=[r for r in every if r["status"] == "pending"],
                       decided=[r for r in every if r["status"] != "pending"][:50])


def _decide(request_id: int, approve: bool):
    c = ctx()
    try:
        data = load(schemas.DecisionSchema, form_data(schemas.DecisionSchema))
        done = accounts.decide_request(c, request_id, approve, data.get("reason"))
    except (ValidationError, ServiceError) as exc:
        if isinstance(exc, NotFound):
            raise
        c.session.rollback()
        errors, status = errors_from(exc)
        every = accounts.list_requests(c, pending_only=False)
        return render_page("admin/requests.html", status, errors=errors,
                           pending=[r for r in every if r["status"] == "pending"],
                           decided=[r for r in every if r["status"] != "pending"][:50])
    flash(_("Approved: the change for %(email)s has taken effect.", email=done.email)
          if approve else _("Rejected: nothing changes for %(email)s.", email=done.email),
          "success")
    return redirect(url_for("admin.requests"), 303)


@bp.post("/requests/<int:request_id>/approve")
@roles(ADMIN)
def approve_request(request_id: int):
    """Approve another administrator's request: the change takes effect now."""
    return _decide(request_id, True)


@bp.post("/requests/<int:request_id>/reject")
@roles(ADMIN)
def reject_request(request_id: int):
    """Reject another administrator's request: nothing changes."""
    return _decide(request_id, False)
