"""returnprog: case handling for the Dutch voluntary-return programme for displaced
persons from Ukraine. ``create_app`` reads like the table of contents of the service."""
from __future__ import annotations

import functools
import gc
import secrets
from pathlib import Path

from flask import Flask

from . import safety
from .config import Defaults, env_overrides, instance_path


def _collector_paused(build):
    """Run ``build`` with the cyclic garbage collector paused. Creating the app imports the
    web layer, the services and the models (SQLAlchemy, SQLModel, marshmallow): objects
    that live as long as the process. The collector would walk them some 270 times on the
    way and find nothing to free; paused, it walks them once, at its first collection
    afterwards, which also frees whatever cycles creation left behind (measured: ~0.17 s
    of collections in ``flask --help`` down to ~0.07 s)."""
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


@_collector_paused
def create_app(config: dict | None = None) -> Flask:
    """Build the web application: configuration, database, policy, blueprints, commands.

    Raises :class:`returnprog.safety.UnsafeSettings` when a production configuration
    keeps a development default. No side effects beyond reading configuration: the
    database is not created or migrated here (``flask init-db`` and ``make run`` do that).
    """
    app = Flask(__name__, instance_path=instance_path(), instance_relative_config=True,
                template_folder=str(Path(__file__).resolve().parent.parent / "forms"))
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(env_overrides())
    app.config.update(config or {})
    safety.check(app.config)  # production refuses development defaults, naming each one
    _secret_key(app)

    from . import db as dbmod
    from .policy import load_policy
    from .web import api, errors, headers, proxies, sessions

    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = dbmod.default_sqlite_url(app.instance_path)
    app.extensions["returnprog.policy"] = load_policy(app.config.get("POLICY"))
    proxies.init_app(app)  # X-Forwarded-For/-Proto only from TRUSTED_PROXIES
    sessions.init_app(app)
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

    from . import cli
    cli.init_app(app)
    return app


def _secret_key(app: Flask) -> None:
    """Use the configured key, else the one ``flask init-db`` keeps in instance/, else a
    per-process random key (sessions then just do not survive a restart)."""
    if app.config.get("SECRET_KEY"):
        return
    key_file = Path(app.instance_path) / "secret_key"
    app.config["SECRET_KEY"] = (key_file.read_text().strip() if key_file.exists()
                                else secrets.token_hex(32))
