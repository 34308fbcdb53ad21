"""Warm web workers: the first participant's signature should not pay for the process's
first document.

The app itself loads neither WeasyPrint nor pyHanko (commands such as ``flask --help``
start without them). A web server that forks workers does the opposite, through
``returnprog/gunicorn_conf.py``:

* the master, which has preloaded the app, imports the rendering and sealing libraries
  once (:func:`preload`), so every worker shares them instead of importing its own copy;
* each worker, once forked, renders and seals one throw-away document (:func:`warm`):
  WeasyPrint's font configuration and caches, the packaged fonts, the Jinja templates
  and texts of every language, and the seal key are then ready before it takes its first
  request. Nothing is rendered in the master: WeasyPrint's font configuration is per
  process (it deletes its font folder when it goes) and must not be inherited.

The document is made from invented data, is neither stored nor logged, and nothing is
written to the database.
"""
from __future__ import annotations

import base64
import io
import logging
import time

from flask import Flask

log = logging.getLogger(__name__)

WARM_KIND = "departure_agreement"  # the fullest layout: tables, amounts, a signature
WARM_LANGUAGE = "uk"  # Cyrillic and Latin: both halves of the packaged fonts


def preload() -> None:
    """Import WeasyPrint, pyHanko and Pillow now, without rendering anything: for a server
    master about to fork workers, so they share the loaded modules."""
    from .. import documents

    documents.preload_libraries()


def warm(app: Flask) -> float:
    """Render, seal and verify one invented document in this process, with the app's
    seal; return the seconds it took. Never raises: a worker that cannot warm up still
    serves, and the problem then shows where it always did, at the first signing."""
    from .. import documents
    from . import sessions

    started = time.perf_counter()
    try:
        with app.app_context():
            seal = sessions.seal()  # the key is loaded (or the development seal made) now
        documents.warm_templates()
        pdf = documents.render_pdf(WARM_KIND, warm_data(), WARM_LANGUAGE)
        sealed = documents.seal_pdf(pdf, seal, reason="warm-up")
        documents.verify_pdf(sealed, [seal.cert_pem], lambda _sha: None)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("worker warm-up failed (%s); documents render cold", type(exc).__name__)
    return time.perf_counter() - started


def warm_data() -> dict:
    """A complete, invented data dict for ``WARM_KIND``, with a drawn signature."""
    person = {
        "given_names_latin": "Warm", "family_name_latin": "Up",
        "given_names_cyrillic": "Прогрів", "family_name_cyrillic": "Тест",
        "date_of_birth": "1980-01-01", "is_adult": True,
    }
    child = dict(person, given_names_latin="Child", date_of_birth="2015-01-01", is_adult=False)
    return {
        "reference": "WARM-UP", "issued_at": "2026-01-01",
        "participants": [person, child], "signer": person, "counsellor": "Warm-up",
        "signature": {"method": "drawn", "image_png_data_uri": _drawing(),
                      "signed_at": "2026-01-01T10:00:00+01:00", "signer_name": "Warm Up"},
        "departure_deadline": "2026-02-01", "destination_oblast": "UA-46",
        "destination_place": "Lviv", "amount_cents": 123450,
        "breakdown": [{"category": "adult", "count": 1, "unit_cents": 82300},
                      {"category": "minor", "count": 1, "unit_cents": 41150}],
    }


def _drawing() -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (300, 80), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(10, 60), (80, 10), (150, 70), (290, 20)],
                               fill=(0, 0, 90, 255), width=4)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
