"""Signing in and out, the idle timeout, the language switch.

Sessions are Flask's signed cookie (HttpOnly, SameSite=Lax, Secure outside development).
At sign-in the old session is dropped and a new one started; the session carries the
user's ``session_epoch``, and sign-out moves the epoch on, so any copy of an earlier cookie
is refused. After ``IDLE_TIMEOUT_SECONDS`` without a request the session ends; pages show
when that will happen and offer a "stay signed in" button (a plain form; a small script
only brings the warning forward two minutes before).

Wrong passwords slow down the next attempt for that account from that address (a delay
that grows with each failure, :class:`returnprog.limiter.SignInThrottle`); there is no
lockout a stranger could trigger, and an unknown e-mail address gets exactly the answer a
wrong password gets. ``next`` is followed only to a path on this site.
"""
from __future__ import annotations

import datetime as dt
import time
import unicodedata
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, g, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from ..i18n import LANGUAGES, format_time
from ..roles import ROLES
from ..services import accounts
from . import ratelimit
from .sessions import service_context
from .ui import FormErrors, public, render_page, roles

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class SignedIn(UserMixin):
    """The signed-in staff member as Flask-Login sees them; ``.user`` is the model."""

    def __init__(self, user):
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    @property
    def is_active(self) -> bool:
        return bool(self.user.active)

    def __getattr__(self, name):
        return getattr(self.user, name)


@login_manager.user_loader
def _load_user(user_id: str):
    if not user_id.isdigit() or len(user_id) > 12:
        return None
    user = accounts.session_user(service_context(None), int(user_id), session.get("epoch"))
    if user is None:
        # A stale cookie (signed out elsewhere, deactivated, password reset): forget it.
        _clear_session()
        return None
    return SignedIn(user)


@login_manager.unauthorized_handler
def _unauthorized():
    flash(_("Sign in to continue."), "info")
    return redirect(url_for("auth.login", next=_here() if request.method == "GET" else None))


def _here() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path


NEXT_MAX = 2000


def _is_local_path(target: str) -> bool:
    """True for a path on this site (``/cases?page=2``). Refused: anything with a scheme
    or host (``https://elsewhere``, ``//elsewhere``), backslashes (which browsers read as
    slashes: ``/\\elsewhere``), control or other invisible characters and white space
    (CR/LF would split the Location header), and the absurdly long."""
    if len(target) > NEXT_MAX or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ch.isspace() or unicodedata.category(ch)[0] in "CZ"
                              for ch in target):
        return False
    try:
        parts = urlsplit(target)
    except ValueError:
        return False
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default: str = "pages.dashboard") -> str:
    """Where to go after sign-in, a language switch or "stay signed in": ``target`` if it
    is a path on this site, else the ``default`` page — never another host, never a 500."""
    if target and _is_local_path(target):
        return target
    return url_for(default)


def _clear_session() -> None:
    """Drop everything in the session but the chosen language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


# --- idle timeout -------------------------------------------------------------------------------

def idle_timeout() -> int:
    return int(current_app.config["IDLE_TIMEOUT_SECONDS"])


@bp.before_app_request
def _check_idle():
    """End a signed-in session that has been idle too long (or is older than the absolute
    maximum); otherwise note this request as activity."""
    if request.endpoint in (None, "static") or request.path.startswith("/api/"):
        return None
    if "_user_id" not in session:
        return None
    now = int(time.time())
    idle = now - int(session.get("seen", 0))
    age = now - int(session.get("since", 0))
    if idle > idle_timeout() or age > int(current_app.config["SESSION_MAX_SECONDS"]):
        logout_user()
        _clear_session()
        flash(_("You were signed out after %(minutes)s minutes without activity. Sign in "
                "again to continue.", minutes=idle_timeout() // 60), "info")
        return redirect(url_for("auth.login",
                                next=_here() if request.method == "GET" else None))
    session["seen"] = now
    g.session_expires_at = now + idle_timeout()
    return None


@bp.app_context_processor
def _session_info():
    expires = g.get("session_expires_at")
    if not expires or not current_user.is_authenticated:
        return {}
    at = dt.datetime.fromtimestamp(expires, dt.timezone.utc)
    return {"session_expires_at": at, "session_expires_hhmm": format_time(at),
            "session_timeout_seconds": idle_timeout(),
            "session_warning_seconds": int(current_app.config["IDLE_WARNING_SECONDS"])}


# --- views ------------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """The sign-in form."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = {"email": request.form.get("email", "")[:254]}
    errors = FormErrors()
    if request.method == "GET":
        return render_template("auth/login.html", form=form, errors=errors)
    email, password = request.form.get("email", "").strip(), request.form.get("password", "")
    if not email:
        errors.add("email", _("Enter your e-mail address."))
    if not password:
        errors.add("password", _("Enter your password."))
    if errors:
        return render_page("auth/login.html", 422, form=form, errors=errors)
    try:
        user = accounts.authenticate(service_context(None), email[:254], password[:200],
                                     throttle=ratelimit.sign_in_throttle())
    except accounts.SignInThrottled as exc:
        errors.add(None, exc.message)
        page, status = render_page("auth/login.html", 429, form=form, errors=errors)
        return page, status, {"Retry-After": str(exc.wait)}
    except accounts.SignInRefused as exc:
        errors.add(None, exc.message)
        return render_page("auth/login.html", 401, form=form, errors=errors)
    _clear_session()  # a new session: nothing from before sign-in carries over
    login_user(SignedIn(user))
    now = int(time.time())
    session.update(epoch=user.session_epoch, seen=now, since=now)
    return redirect(safe_next(request.args.get("next")), 303)


@bp.post("/logout")
@roles(*ROLES)
def logout():
    """Sign out: this and every earlier cookie of this user stops working."""
    accounts.sign_out(service_context(current_user.user), current_user.user.id)
    logout_user()
    _clear_session()
    flash(_("You are signed out."), "success")
    return redirect(url_for("auth.login"), 303)


@bp.post("/session/keepalive")
@roles(*ROLES)
def keepalive():
    """'Stay signed in': the request itself counts as activity."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"expires_in": idle_timeout()})
    flash(_("You stay signed in."), "success")
    return redirect(safe_next(request.form.get("next")), 303)


@bp.post("/language")
@public
def language():
    """Switch the UI language (kept in the session, also across sign-in and sign-out)."""
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next"),
                              "pages.dashboard" if current_user.is_authenticated
                              else "auth.login"), 303)


def init_app(app) -> None:
    """Flask-Login with this module's loader and views, and the sign-in throttle."""
    ratelimit.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    app.register_blueprint(bp)
