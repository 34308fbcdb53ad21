"""WSGI entry point: ``gunicorn --config python:returnprog.gunicorn_conf wsgi:app`` or
``flask --app wsgi ...``. The app's web layer is built on first use (gunicorn's master
builds it before forking), so ``flask --help`` lists the commands without loading the
database layer and the views."""
from returnprog import create_app
from returnprog.safety import UnsafeSettings

try:
    app = create_app(defer_web=True)
except UnsafeSettings as exc:
    # One line per problem on stderr and a non-zero exit, not a traceback.
    raise SystemExit(str(exc)) from None
