"""One database session per request, and the service context built from it."""
from __future__ import annotations

from flask import Flask, current_app, g, request
from sqlmodel import Session

from ..db import make_engine
from ..services import Context


def init_app(app: Flask) -> None:
    """Create the app's engine and close each request's session when the request ends."""
    app.extensions["returnprog.engine"] = make_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def engine():
    """The application's engine."""
    return current_app.extensions["returnprog.engine"]


def policy():
    """The programme policy in force for this app."""
    return current_app.extensions["returnprog.policy"]


def db_session() -> Session:
    """This request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = Session(engine(), expire_on_commit=False)
    return g.db_session


def _close_session(_exc=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def seal():
    """The service's document seal, loaded on first use (not at start-up): the configured
    production key and certificate, or a generated development seal in instance/."""
    from .. import documents

    ext = current_app.extensions
    if "returnprog.seal" not in ext:
        ext["returnprog.seal"] = documents.seal_from_config(current_app.config,
                                                            current_app.instance_path)
    return ext["returnprog.seal"]


def client_ip() -> str | None:
    """The client's address as seen by this process (a proxy in front must set it)."""
    return request.remote_addr


def service_context(actor) -> Context:
    """A service context for ``actor`` acting through this request."""
    ua = request.headers.get("User-Agent", "")[:300]
    return Context(session=db_session(), policy=policy(), actor=actor, ip=client_ip(),
                   user_agent=ua, seal=seal,
                   channel="api" if request.path.startswith("/api/") else "web")
