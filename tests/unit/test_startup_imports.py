"""Creating the app loads no renderer, sealer or image library (issue 11): ``flask --help``
and every command that does not render start without WeasyPrint and pyHanko, which load
where documents are rendered, sealed or verified. Listing the commands neither loads the
rate limits' library (the web makes its store on first use) nor opens the database, nor
imports the database layer and the views at all (wsgi.py's app builds them on first use). Each
check runs in a fresh interpreter, so nothing another test imported can hide or fake the
answer."""
from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Libraries the app must not load at creation (top-level package names).
HEAVY = ("weasyprint", "pyhanko", "pyhanko_certvalidator", "asn1crypto", "cryptography",
         "PIL", "fontTools", "pydyf", "lxml", "sepaxml", "xmlschema", "schwifty")

PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from returnprog import create_app
app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
if sys.argv[2] == "render":
    from returnprog.web import warmup
    from returnprog import documents
    documents.render_pdf(warmup.WARM_KIND, warmup.warm_data(), warmup.WARM_LANGUAGE)
heavy = json.loads(sys.argv[3])
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


def loaded_after(tmp_path, step: str) -> list[str]:
    """The heavy libraries in ``sys.modules`` of a fresh interpreter after creating the app
    (``step="create"``) or after creating it and rendering one document (``"render"``)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), step, json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "RETURNPROG_INSTANCE_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_creating_the_app_imports_no_renderer_sealer_or_image_library(tmp_path):
    assert loaded_after(tmp_path, "create") == []


def test_rendering_a_document_does_load_the_renderer(tmp_path):
    # The probe sees a library once it is loaded: rendering is where WeasyPrint comes in.
    assert {"weasyprint", "PIL"} <= set(loaded_after(tmp_path, "render"))


# Loaded by the web on first use (gunicorn's master loads it before forking), not by
# creating the app: the rate limits' `limits` library.
ON_FIRST_USE = ("limits",)

# What wsgi.py's app builds on first use, and listing the commands is not (issue 11, item
# 4: `flask --help` within 1.5x of `import flask`; bench/bench_startup.py measures it):
# the database layer, the schemas, the views' extensions and the scheduler.
WEB_LAYER = ("sqlalchemy", "sqlmodel", "alembic", "psycopg", "marshmallow", "flask_login",
             "flask_wtf", "flask_babel", "apscheduler", "jsonschema")


def run_flask(tmp_path, args: list[str], watched, **env) -> tuple[str, list[str]]:
    """``flask --app wsgi ARGS`` in a fresh interpreter: its output, and which of the
    ``watched`` libraries the process had loaded by the end."""
    probe = (f"import json, runpy, sys; sys.argv = ['flask', '--app', 'wsgi', *{args!r}]\n"
             "try:\n    runpy.run_module('flask', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}}"
             f" & set({list(watched)!r}))))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300, cwd=ROOT, env={"PATH": "/usr/bin:/bin",
                                                        "RETURNPROG_INSTANCE_PATH": str(tmp_path),
                                                        **env})
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads(result.stdout.strip().splitlines()[-1])


def flask_help(tmp_path, **env) -> tuple[str, list[str]]:
    """``flask --app wsgi --help``: its output, and which of the heavy, on-first-use and
    web-layer libraries it had loaded."""
    output, loaded = run_flask(tmp_path, ["--help"], HEAVY + ON_FIRST_USE + WEB_LAYER, **env)
    assert "scheduler" in output  # the app's own commands were listed
    return output, loaded


def test_the_flask_command_lists_its_commands_without_them(tmp_path):
    _, loaded = flask_help(tmp_path)
    assert loaded == []


def test_a_command_that_runs_does_build_the_web_layer(tmp_path):
    # The other side of the test above: the probe sees the database layer once a command
    # runs (`records rules` reads the policy through the whole app).
    output, loaded = run_flask(tmp_path, ["records", "rules"], WEB_LAYER)
    assert "departed" in output  # the rules were printed
    assert {"sqlalchemy", "flask_login"} <= set(loaded)


def test_listing_the_commands_opens_no_database(tmp_path):
    # SQLite: no database file appears in the instance folder.
    flask_help(tmp_path)
    assert not list(tmp_path.glob("*.sqlite*"))
    # PostgreSQL on a port nobody listens on: a connection attempt would fail the app's
    # creation, and the flask command would then list none of the app's commands.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    flask_help(tmp_path, RETURNPROG_DATABASE_URL=f"postgresql+psycopg://x:y@127.0.0.1:{port}/none")


def test_creating_the_app_leaves_the_garbage_collector_as_it_found_it():
    # create_app pauses the collector while it imports the web layer (see _collector_paused).
    from returnprog import create_app
    from returnprog.safety import UnsafeSettings

    config = {"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": "sqlite://"}
    assert gc.isenabled()
    create_app(config)
    assert gc.isenabled()
    with pytest.raises(UnsafeSettings):
        create_app({**config, "ENV_NAME": "production"})
    assert gc.isenabled()
    gc.disable()
    try:
        create_app(config)
        assert not gc.isenabled()
    finally:
        gc.enable()
