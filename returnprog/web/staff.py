"""The staff web UI, wired in one place: languages, sign-in, CSRF, security headers and the
page blueprints (dashboard and cases, payments, work queues, programme figures, user administration, API tokens).

The JSON API keeps its bearer tokens and is exempt from CSRF (it carries no cookies).
"""
from __future__ import annotations

from flask import Flask, request
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

from .. import i18n
from . import (access_requests_ui, admin, api, auth_views, case_files_ui, corrections_ui,
               figures, pages, payments_ui, queues, records_ui, tokens, uploads)

csrf = CSRFProtect()

# Blueprints answering with JSON to bearer tokens: no cookies, so no CSRF.
API_BLUEPRINTS = tuple(blueprint.name for blueprint in api.BLUEPRINTS)
# The staff page blueprints besides sign-in (which ``auth_views.init_app`` registers).
PAGE_BLUEPRINTS = (pages.bp, payments_ui.bp, queues.bp, figures.bp, admin.bp, tokens.bp,
                   case_files_ui.bp, corrections_ui.bp, records_ui.bp, access_requests_ui.bp)
# Blueprints of this UI: they get the strict content-security policy.
UI_BLUEPRINTS = ("auth", "pages", "payments_ui", "queues", "figures", "admin", "tokens",
                 "case_files", "corrections", "records", "access_requests")

SETTINGS = {
    "IDLE_TIMEOUT_SECONDS": 30 * 60,
    "IDLE_WARNING_SECONDS": 2 * 60,
    "SESSION_MAX_SECONDS": 12 * 60 * 60,
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session (idle timeout)
}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def init_app(app: Flask) -> None:
    """Register the staff UI on ``app``."""
    for key, value in SETTINGS.items():
        app.config.setdefault(key, value)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if not app.testing and app.config.get("ENV_NAME") not in ("development", "testing"):
        app.config["SESSION_COOKIE_SECURE"] = True

    i18n.init_app(app)

    @app.before_request
    def _api_is_exempt_from_csrf():
        # Runs before CSRFProtect's own check (registered first); exempting here also
        # covers API blueprints registered after this function ran.
        for name in API_BLUEPRINTS:
            bp = app.blueprints.get(name)
            if bp is not None:
                csrf.exempt(bp)

    # The evidence uploads' size bound answers before CSRF reads a large body.
    uploads.init_app(app)
    csrf.init_app(app)
    app.jinja_env.globals["errs_ids"] = lambda name, errs: [
        f"{name}-error-{i}" for i in range(1, len(errs) + 1)]

    auth_views.init_app(app)
    tokens.init_app(app)
    for blueprint in PAGE_BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.after_request
    def _security_headers(response):
        if request.path.startswith("/api/"):
            return response
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if request.blueprint in UI_BLUEPRINTS or response.status_code >= 400:
            headers.setdefault("Content-Security-Policy", CSP)
            headers.setdefault("X-Frame-Options", "DENY")
            if current_user and current_user.is_authenticated:
                # Pages with personal data are not kept by the browser or a proxy.
                headers["Cache-Control"] = "no-store"
        return response
