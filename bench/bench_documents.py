"""How long documents take: render + seal per kind against a bare WeasyPrint render,
and the first document in a fresh process against later ones.

Run from the project root:  .venv/bin/python bench/bench_documents.py [--repeat N]

"Bare" is WeasyPrint writing the very same HTML with the same restricted fetcher
(it needs it for the packaged fonts) but with WeasyPrint's defaults otherwise: a
new font configuration per call, no PDF/A, no seal. The ratio is what the
module's choices cost (or save) on top of WeasyPrint itself.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402

from returnprog import documents  # noqa: E402


def sample_data() -> dict:
    """A two-person household with a drawn signature, valid for every kind."""
    image = Image.new("RGBA", (300, 80), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(10, 60), (80, 10), (150, 70), (290, 20)], fill=(0, 0, 90, 255), width=4)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    person = {
        "given_names_latin": "Olena", "family_name_latin": "Shevchenko",
        "given_names_cyrillic": "Олена", "family_name_cyrillic": "Шевченко",
        "date_of_birth": "1985-03-14", "is_adult": True,
    }
    child = dict(person, given_names_latin="Andrii", given_names_cyrillic="Андрій",
                 date_of_birth="2014-07-02", is_adult=False)
    return {
        "reference": "VRP-2026-000123", "issued_at": "2026-11-20",
        "participants": [person, child], "signer": person, "counsellor": "J. de Vries",
        "signature": {
            "method": "drawn",
            "image_png_data_uri": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
            "signed_at": "2026-11-20T10:15:00+01:00", "signer_name": "Olena Shevchenko",
        },
        "departure_deadline": "2027-01-31", "previous_deadline": "2027-01-10",
        "reason": "Flight cancelled by the airline.", "destination_oblast": "UA-46",
        "destination_place": "Lviv", "amount_cents": 123450, "method": "cash",
        "breakdown": [{"category": "adult", "count": 1, "unit_cents": 82300},
                      {"category": "minor", "count": 1, "unit_cents": 41150}],
    }


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_kinds(repeat: int, seal) -> None:
    from weasyprint import HTML

    data = sample_data()
    print(f"median of {repeat} runs, language uk, seconds")
    print(f"{'kind':<24}{'bare WP':>9}{'render':>9}{'seal':>8}{'r+seal':>9}{'ratio':>7}{'verify':>8}")
    for kind in documents.KINDS:
        html = documents.render_html(kind, data, "uk")
        documents.render_pdf(kind, data, "uk")  # warm this thread's caches

        def bare():
            HTML(string=html, url_fetcher=documents.RestrictedURLFetcher()).write_pdf()

        pdf = documents.render_pdf(kind, data, "uk")
        sealed = documents.seal_pdf(pdf, seal, reason=kind)
        bare_t = statistics.median(timed(bare) for _ in range(repeat))
        render_t = statistics.median(timed(lambda: documents.render_pdf(kind, data, "uk")) for _ in range(repeat))
        seal_t = statistics.median(timed(lambda: documents.seal_pdf(pdf, seal, reason=kind)) for _ in range(repeat))
        both_t = statistics.median(
            timed(lambda: documents.seal_pdf(documents.render_pdf(kind, data, "uk"), seal, reason=kind))
            for _ in range(repeat)
        )
        verify_t = statistics.median(
            timed(lambda: documents.verify_pdf(sealed, [seal.cert_pem], lambda h: {})) for _ in range(repeat)
        )
        print(f"{kind:<24}{bare_t:9.3f}{render_t:9.3f}{seal_t:8.3f}{both_t:9.3f}"
              f"{both_t / bare_t:7.2f}{verify_t:8.3f}")


COLD_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/bench")
from returnprog import documents
from bench_documents import sample_data
t1 = time.perf_counter()
seal = documents.ensure_dev_seal(sys.argv[2])
data = sample_data()
t2 = time.perf_counter()
documents.seal_pdf(documents.render_pdf("departure_agreement", data, "uk"), seal, reason="x")
t3 = time.perf_counter()
documents.seal_pdf(documents.render_pdf("departure_agreement", data, "uk"), seal, reason="x")
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t3 - t2, "second": t4 - t3}))
"""


def bench_cold(runs: int, instance_dir: str) -> None:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT, str(ROOT), instance_dir],
            check=True, capture_output=True, text=True,
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    med = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(f"\nfresh process, departure_agreement (uk), median of {runs} processes, seconds")
    print(f"  import returnprog.documents      {med['import']:.3f}")
    print(f"  first render+seal (cold)         {med['first']:.3f}")
    print(f"  second render+seal (warm)        {med['second']:.3f}")
    print(f"  cold / warm                      {med['first'] / med['second']:.2f}")


def main() -> None:
    """Print the benchmark tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--processes", type=int, default=3, help="fresh processes for the cold start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="returnprog-bench-") as instance_dir:
        seal = documents.ensure_dev_seal(instance_dir)
        bench_kinds(args.repeat, seal)
        bench_cold(args.processes, instance_dir)


if __name__ == "__main__":
    main()
