"""returnprog: case handling for the Dutch voluntary-return programme for displaced
persons from Ukraine. ``create_app`` reads like the table of contents of the service."""
from __future__ import annotations

import functools
import gc
import secrets
import threading
from pathlib import Path

from flask import Flask
from werkzeug.routing import Map

from . import safety
from .config import Defaults, env_overrides, instance_path


def _collector_paused(build):
    """Run ``build`` with the cyclic garbage collector paused. Building the web layer
    imports the views, the services and the models (SQLAlchemy, SQLModel, marshmallow):
    objects that live as long as the process. The collector would walk them some 270
    times on the way and find nothing to free; paused, it walks them once, at its first
    collection afterwards, which also frees whatever cycles creation left behind."""
    @functools.wraps(build)
    def paused(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return build(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()

    return paused


class _RuleMap(Map):
    """The URL map of a :class:`ReturnprogApp`: listing its rules (``flask routes``)
    builds the web layer first, so a deferred app does not list an empty map."""

    on_read = None  # set by the app

    def iter_rules(self, endpoint=None):
        if self.on_read is not None:
            self.on_read()
        return super().iter_rules(endpoint)


class ReturnprogApp(Flask):
    """The service's Flask app. Its web layer — the database engine, the blueprints of
    the pages and the API, error pages, headers, sign-in — is built by :meth:`ensure_web`,
    at once by :func:`create_app` or, for an app created with ``defer_web=True``, on first
    use: the first request (or request context), a project command that runs, ``flask
    shell`` or ``flask routes``. Listing the commands (``flask --help``) is not a use, so
    it starts without importing the database layer and the views (issue 11, item 4).
    Configuration, the production safety check, the policy and the commands are there
    from creation either way."""

    url_map_class = _RuleMap

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._web_build = None
        self._web_ready = False
        self._web_failed: BaseException | None = None
        self._web_lock = threading.RLock()
        self.url_map.on_read = self.ensure_web

    def ensure_web(self) -> None:
        """Build the web layer if it is not built yet; once per app, thread-safe."""
        if self._web_ready:
            return
        with self._web_lock:
            if self._web_failed is not None:
                # Half a web layer is no web layer: every later use fails the same way.
                raise RuntimeError("the web layer could not be built") from self._web_failed
            build, self._web_build = self._web_build, None
            if build is None:  # built, or being built by this thread (re-entry)
                return
            try:
                build(self)
            except BaseException as exc:
                self._web_failed = exc
                raise
            self._web_ready = True

    def __call__(self, environ, start_response):
        # Before Flask reads self.wsgi_app: building wraps it in middleware (busy
        # verifications) that must see the very first request too.
        self.ensure_web()
        return super().__call__(environ, start_response)

    def request_context(self, environ):
        self.ensure_web()
        return super().request_context(environ)

    def make_shell_context(self):
        self.ensure_web()
        return super().make_shell_context()


def create_app(config: dict | None = None, *, defer_web: bool = False) -> ReturnprogApp:
    """Build the web application: configuration, policy, commands and the web layer
    (database, blueprints).

    ``defer_web=True`` leaves the web layer to its first use (see
    :class:`ReturnprogApp`); ``wsgi.py`` does so under the ``flask`` command, so that
    ``flask --help`` starts quickly. Raises
    :class:`returnprog.safety.UnsafeSettings` when a production configuration keeps a
    development default. No side effects beyond reading configuration: the database is not
    created or migrated here (``flask init-db`` and ``make run`` do that).
    """
    app = ReturnprogApp(__name__, instance_path=instance_path(),
                        instance_relative_config=True,
                        template_folder=str(Path(__file__).resolve().parent.parent / "forms"))
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(env_overrides())
    app.config.update(config or {})
    safety.check(app.config)  # production refuses development defaults, naming each one
    _secret_key(app)

    from . import cli
    from .config import default_sqlite_url
    from .policy import load_policy
    from .web import proxies

    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = default_sqlite_url(app.instance_path)
    app.extensions["returnprog.policy"] = load_policy(app.config.get("POLICY"))
    proxies.init_app(app)  # X-Forwarded-For/-Proto only from TRUSTED_PROXIES
    cli.init_app(app)  # the commands build the web layer when they run (cli.with_app)
    app._web_build = _build_web
    if not defer_web:
        app.ensure_web()
    return app


@_collector_paused
def _build_web(app: ReturnprogApp) -> None:
    """The web layer: database engine and sessions, error pages, headers, the API, the
    staff pages, health checks, signing and verification pages."""
    from .web import api, errors, headers, sessions

    sessions.init_app(app)  # the database engine; sign-in sessions
    errors.init_app(app)
    headers.init_app(app)  # no-store + nosniff on the API, HSTS in production
    api.init_app(app)  # JSON API: cases, payments, OpenAPI document
    from .web import staff
    staff.init_app(app)  # staff pages: sign-in, CSRF (API exempt), languages, page blueprints
    from .web import health
    health.init_app(app)  # /healthz and /readyz for load balancers
    from .web import signing_link, signing_tablet, verify
    for pages in (signing_tablet, signing_link, verify):
        pages.init_app(app)  # counsellors' tablet and links; public /s/<token>; /verify


def _secret_key(app: Flask) -> None:
    """Use the configured key, else the one ``flask init-db`` keeps in instance/, else a
    per-process random key (sessions then just do not survive a restart)."""
    if app.config.get("SECRET_KEY"):
        return
    key_file = Path(app.instance_path) / "secret_key"
    app.config["SECRET_KEY"] = (key_file.read_text().strip() if key_file.exists()
                                else secrets.token_hex(32))
