"""An app made with ``create_app(defer_web=True)`` — ``wsgi.py``'s, the one gunicorn and
the ``flask`` command load — builds its web layer on first use (issue 11, item 4:
``flask --help`` without the database layer). These tests hold it to answering exactly
like an app built at once: the very first request passes through every middleware and
hook, commands and ``flask routes`` see the whole app, and a web layer that cannot be
built fails every use, not only the first. SQLite file databases, the real CLI group."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import FlaskGroup

from returnprog import create_app
from returnprog.web import verify
from returnprog import verifier

PATHS = ("/healthz", "/login", "/api/v1/cases", "/no-such-page", "/verify")


@pytest.fixture(autouse=True)
def _flask_flag_restored(monkeypatch):
    # Flask's command group sets FLASK_RUN_FROM_CLI in the process it runs in; keep it
    # from leaking into later tests (wsgi.py reads it).
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "")


@pytest.fixture
def config(tmp_path):
    return {"TESTING": True, "SECRET_KEY": "test-secret",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deferred.sqlite'}",
            "VERIFY_MAX_CONCURRENT": 1}


def _made(config, tmp_path, **kwargs):
    app = create_app(config, **kwargs)
    app.instance_path = str(tmp_path / "instance")
    return app


def _answer(app, path):
    response = app.test_client().get(path)
    return response.status_code, sorted(response.headers.keys()), response.mimetype


def test_a_deferred_app_has_no_web_layer_until_first_use(config, tmp_path):
    app = _made(config, tmp_path, defer_web=True)
    assert "returnprog.engine" not in app.extensions
    assert "returnprog.policy" in app.extensions  # the policy and config are there at once
    assert not app.blueprints
    app.test_client().get("/healthz")
    assert "returnprog.engine" in app.extensions
    assert {"api", "pages", "health", "verify"} <= set(app.blueprints)


@pytest.mark.parametrize("path", PATHS)
def test_the_first_request_of_a_deferred_app_is_answered_like_an_eager_apps(
        config, tmp_path, path):
    eager = _made(config, tmp_path)
    deferred = _made(config, tmp_path, defer_web=True)
    # The deferred app's first request is this one: status, headers (security headers
    # come from after-request hooks) and the kind of answer (JSON for the API).
    assert _answer(deferred, path) == _answer(eager, path)


def test_the_first_request_passes_through_middleware_that_building_adds(config, tmp_path):
    # The busy-verification guard wraps wsgi_app while the web layer is built: a deferred
    # app must build before Flask reads wsgi_app, or its first upload would skip the guard.
    app = _made(config, tmp_path, defer_web=True)
    eager = _made(config, tmp_path)  # same instance folder, so the same slots
    slot = verifier.claim(verify.limits(eager.config, eager.instance_path))  # the only one
    assert slot is not None
    try:
        response = app.test_client().post("/verify", data={"file": (b"%PDF-1.7", "a.pdf")})
    finally:
        slot.release()
    assert response.status_code == 503


def test_a_request_context_builds_the_web_layer(config, tmp_path):
    app = _made(config, tmp_path, defer_web=True)
    from flask import url_for

    with app.test_request_context():
        assert url_for("health.healthz") == "/healthz"


def _flask(app, *args):
    """The ``flask`` command line (Flask's own group) over ``app``."""
    group = FlaskGroup(create_app=lambda: app)
    return CliRunner().invoke(group, list(args), catch_exceptions=False)


def test_listing_the_commands_does_not_build_the_web_layer(config, tmp_path):
    app = _made(config, tmp_path, defer_web=True)
    result = _flask(app, "--help")
    assert result.exit_code == 0
    assert "queue-cache" in result.output and "records" in result.output
    assert "returnprog.engine" not in app.extensions


def test_a_command_builds_the_web_layer_before_it_runs(config, tmp_path):
    app = _made(config, tmp_path, defer_web=True)
    assert _flask(app, "init-db").exit_code == 0
    result = _flask(app, "records", "dry-run")
    assert result.exit_code == 0, result.output
    assert "returnprog.engine" in app.extensions


def test_flask_routes_lists_the_whole_app(config, tmp_path):
    app = _made(config, tmp_path, defer_web=True)
    result = _flask(app, "routes")
    assert result.exit_code == 0
    assert "/api/v1/cases" in result.output and "/healthz" in result.output


def test_the_web_layer_is_built_once_when_first_requests_race(config, tmp_path):
    app = _made(config, tmp_path, defer_web=True)
    start = threading.Barrier(6)
    answers, failures = [], []

    def first_request():
        start.wait()
        try:
            answers.append(app.test_client().get("/healthz").status_code)
        except Exception as exc:  # a second build would register blueprints twice
            failures.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and answers == [200] * 6


def test_a_web_layer_that_cannot_be_built_fails_every_use(config, tmp_path):
    app = _made({**config, "DATABASE_URL": "nosuchdriver://nowhere/none"}, tmp_path,
                defer_web=True)
    with pytest.raises(Exception) as first:
        app.test_client().get("/healthz")
    with pytest.raises(RuntimeError, match="could not be built") as second:
        app.test_client().get("/healthz")
    assert second.value.__cause__ is first.value  # the later uses name the first failure


WSGI_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import wsgi
print(json.dumps({"built": wsgi.app._web_ready,
                  "database_layer": "sqlalchemy" in sys.modules}))
"""


@pytest.mark.parametrize("under_flask, built", [("", True), ("true", False)])
def test_wsgi_builds_at_import_except_under_the_flask_command(tmp_path, under_flask, built):
    # gunicorn (and gunicorn --check-config) import wsgi.py: a web layer that cannot be
    # built must stop them there, before the server says it is ready. The flask command
    # (which sets FLASK_RUN_FROM_CLI) lists its commands without it.
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", WSGI_PROBE, str(root)], capture_output=True, text=True,
        timeout=300, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "RETURNPROG_INSTANCE_PATH": str(tmp_path),
             "FLASK_RUN_FROM_CLI": under_flask})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"built": built,
                                                          "database_layer": built}
