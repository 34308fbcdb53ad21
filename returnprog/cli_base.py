"""What the command modules (:mod:`returnprog.cli`, :mod:`returnprog.cli_records`) share:
the decorator that gives a command the whole app, its database session, and the name the
audit trail gives the operator. Light on purpose: ``flask --help`` imports it."""
from __future__ import annotations

import functools

import click
from flask import current_app
from flask.cli import ScriptInfo

# How the audit trail names whoever runs these commands on the server.
OPERATOR = "operator"


def with_app(command):
    """Run ``command`` in the app's context with its web layer built: Flask's
    ``with_appcontext``, and :meth:`returnprog.ReturnprogApp.ensure_web` for an app whose
    web layer waits for first use (``wsgi.py``'s). Every project command that reads the
    database, the policy or the URLs is wrapped in it."""
    @click.pass_context
    def run(ctx, *args, **kwargs):
        if not current_app:
            ctx.with_resource(ctx.ensure_object(ScriptInfo).load_app().app_context())
        current_app.ensure_web()
        return ctx.invoke(command, *args, **kwargs)

    return functools.update_wrapper(run, command)


def session():
    """A session on the app's database for one command; closed, and rolled back if
    uncommitted, at the end."""
    from . import db

    return db.session_scope(current_app.extensions["returnprog.engine"])
