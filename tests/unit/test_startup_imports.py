"""Creating the app loads no renderer, sealer or image library (issue 11): ``flask --help``
and every command that does not render start without WeasyPrint and pyHanko, which load
where documents are rendered, sealed or verified. Each check runs in a fresh interpreter,
so nothing another test imported can hide or fake the answer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_the_flask_command_lists_its_commands_without_them(tmp_path):
    probe = ("import runpy, sys; sys.argv = ['flask', '--app', 'wsgi', '--help']\n"
             "try:\n    runpy.run_module('flask', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=300, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "RETURNPROG_INSTANCE_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "scheduler" in result.stdout  # the app's own commands were listed
    assert lines[-1] == "[]"
