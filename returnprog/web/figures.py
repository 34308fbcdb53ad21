"""Programme figures for management: cases per state, departures per month, support paid,
destinations by oblast (server-rendered SVG charts, no scripts), and the same as CSV."""
from __future__ import annotations

import csv
import io

from flask import Blueprint, Response

from ..identifiers import OBLASTS
from ..roles import FIGURE_ROLES
from ..services import figures as figure_service
from .ui import ctx, render_page, roles

bp = Blueprint("figures", __name__)


@bp.get("/figures")
@roles(*FIGURE_ROLES)
def programme():
    """The figures page."""
    return render_page("figures.html", figures=figure_service.programme_figures(ctx()),
                       oblast_names=OBLASTS)


def _cell(value) -> str:
    """Spreadsheet-safe text: a cell starting with = + - @ is not read as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@bp.get("/figures.csv")
@roles(*FIGURE_ROLES)
def programme_csv():
    """The figures as one CSV table: figure, key, value, note (amounts in whole cents)."""
    data = figure_service.programme_figures(ctx())
    rows = [["figure", "key", "value", "note"]]
    rows += [["cases_per_state", r["state"], r["count"], ""] for r in data["cases_per_state"]]
    rows += [["departures_per_month", r["month"], r["count"], ""]
             for r in data["departures_per_month"]]
    rows += [["support_paid_cents_per_month", r["month"], r["amount_cents"],
              f"{r['count']} payments"] for r in data["support_per_month"]]
    rows.append(["support_paid_cents_total", "all", data["support_paid"]["amount_cents"],
                 f"{data['support_paid']['count']} payments"])
    rows += [["cases_per_oblast", r["oblast"], r["cases"],
              f"{r['departed']} departed; {OBLASTS.get(r['oblast'], '')}"]
             for r in data["destinations"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([[_cell(c) for c in row] for row in rows])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="programme-figures.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
