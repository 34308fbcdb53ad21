"""WSGI entry point: ``gunicorn --config python:returnprog.gunicorn_conf wsgi:app`` or
``flask --app wsgi ...``.

Under the ``flask`` command (which sets ``FLASK_RUN_FROM_CLI``) the app's web layer is
built on first use, so ``flask --help`` lists the commands without loading the database
layer and the views, and a command builds it when it runs. Everywhere else — gunicorn,
``gunicorn --check-config`` — it is built here, so a web layer that cannot be built stops
the server before it reports ready."""
import os

from returnprog import create_app
from returnprog.safety import UnsafeSettings

try:
    app = create_app(defer_web=os.environ.get("FLASK_RUN_FROM_CLI") == "true")
except UnsafeSettings as exc:
    # One line per problem on stderr and a non-zero exit, not a traceback.
    raise SystemExit(str(exc)) from None
