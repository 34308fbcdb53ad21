"""The baseline of ``bench/bench_web.py``: a bare Flask app with one JSON route, served by
the same gunicorn command line as the service (``gunicorn ... bare_app:app``). What a
request costs before returnprog does anything: HTTP parsing, gunicorn's sync worker,
Flask routing and a small JSON response."""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare():
    """A small JSON object, about the size of an error response."""
    return jsonify({"status": "ok", "service": "bare", "items": [1, 2, 3]})
