"""WSGI entry point: ``gunicorn --config python:returnprog.gunicorn_conf wsgi:app`` or
``flask --app wsgi ...``."""
from returnprog import create_app
from returnprog.safety import UnsafeSettings

try:
    app = create_app()
except UnsafeSettings as exc:
    # One line per problem on stderr and a non-zero exit, not a traceback.
    raise SystemExit(str(exc)) from None
