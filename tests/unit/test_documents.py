"""Documents: bilingual rendering, the locked-down renderer, sealing and verification.

No Flask, no database. Slow steps (key generation, rendering) happen once per
module through fixtures.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import io
import json
import os
import re
import secrets
import socketserver
import stat
import threading
from pathlib import Path

import pypdf
import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from returnprog import documents
from returnprog.documents import (
    KINDS,
    LANGUAGES,
    DocumentDataError,
    RestrictedURLFetcher,
    SealError,
    ensure_dev_seal,
    format_date,
    format_eur,
    load_seal,
    render_html,
    render_pdf,
    seal_pdf,
    verify_pdf,
)

TEXTS_DIR = documents.TEMPLATE_DIR / "texts"
SECOND = {"nl": "en", "uk": "uk", "en": "en", "ru": "ru"}


def texts(language: str) -> dict[str, str]:
    """The document sentences as rendered: the content file plus the glossary names."""
    from returnprog.documents import _texts
    return dict(_texts(language))


def signature_png() -> str:
    image = Image.new("RGBA", (300, 80), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(10, 60), (80, 10), (150, 70), (290, 20)], fill=(0, 0, 90, 255), width=4)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def sample_data(**overrides) -> dict:
    """One household, all keys any kind needs; kinds ignore what they do not use."""
    data = {
        "reference": "VRP-2026-000123",
        "issued_at": "2026-11-20",
        "participants": [
            {
                "given_names_latin": "Olena", "family_name_latin": "Shevchenko",
                "given_names_cyrillic": "Олена", "family_name_cyrillic": "Шевченко",
                "date_of_birth": "1985-03-14", "is_adult": True, "v_number": "1234567890",
            },
            {
                "given_names_latin": "Andrii", "family_name_latin": "Shevchenko",
                "given_names_cyrillic": "Андрій", "family_name_cyrillic": "Шевченко",
                "date_of_birth": "2014-07-02", "is_adult": False,
            },
        ],
        "signer": {
            "given_names_latin": "Olena", "family_name_latin": "Shevchenko",
            "given_names_cyrillic": "Олена", "family_name_cyrillic": "Шевченко",
            "date_of_birth": "1985-03-14", "v_number": "1234567890",
        },
        "counsellor": "J. de Vries",
        "signature": {
            "method": "drawn", "image_png_data_uri": signature_png(),
            "signed_at": "2026-11-20T10:15:00+01:00", "signer_name": "Olena Shevchenko",
            "identity_document": "passport FX123456",
        },
        "departure_deadline": "2027-01-31",
        "previous_deadline": "2027-01-10",
        "reason": "The airline cancelled the flight; the next available flight is later.",
        "destination_oblast": "UA-46",
        "destination_place": "Lviv",
        "amount_cents": 123450,
        "breakdown": [
            {"category": "adult", "count": 1, "unit_cents": 82300},
            {"category": "minor", "count": 1, "unit_cents": 41150},
        ],
        "method": "cash",
    }
    data.update(overrides)
    return data


def page_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def decoded_streams(pdf: bytes) -> list[bytes]:
    """Every stream in the file, decompressed, so nothing hides behind Flate."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    out = []
    for num in range(1, int(reader.trailer["/Size"])):
        try:
            obj = reader.get_object(num)
        except Exception:
            continue
        if isinstance(obj, pypdf.generic.StreamObject):
            try:
                out.append(obj.get_data())
            except Exception:
                out.append(obj._data)
    return out


def xmp_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode("utf-8")


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def seal(tmp_path_factory):
    return ensure_dev_seal(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="module")
def foreign_seal(tmp_path_factory):
    return ensure_dev_seal(tmp_path_factory.mktemp("elsewhere"))


@pytest.fixture(scope="module")
def rendered():
    return {(kind, lang): render_pdf(kind, sample_data(), lang) for kind in KINDS for lang in LANGUAGES}


@pytest.fixture(scope="module")
def sealed(rendered, seal):
    return seal_pdf(rendered[("commitment", "uk")], seal, reason="Deelnameverklaring VRP-2026-000123")


@pytest.fixture(scope="module")
def register(sealed):
    entries = {hashlib.sha256(sealed).hexdigest(): {
        "reference": "VRP-2026-000123", "kind": "commitment", "version": 1,
        "signer": "Olena Shevchenko", "signed_at": "2026-11-20T10:15:00+01:00",
    }}
    return entries.get


def register_everything(sha256_hex):
    """A register that knows every hash, so a tamper test sees only the seal's verdict."""
    return {"reference": "VRP-2026-000123", "kind": "commitment"}


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        self.server.hits.append(self.path)
        body = b"\x89PNG\r\n\x1a\n" if "img" in self.path else b"body { color: red }"
        self.send_response(200)
        self.send_header("Content-Type", "image/png" if "img" in self.path else "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    """A local HTTP server that records every request it receives."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _CountingHandler)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def canary(tmp_path):
    token = "CANARY-" + secrets.token_hex(16)
    path = tmp_path / "canary.txt"
    path.write_text(token)
    return path, token


# ---------------------------------------------------------------------------
# formatting


def test_amounts_are_formatted_the_dutch_way():
    assert format_eur(123450) == "€ 1.234,50"
    assert format_eur(0) == "€ 0,00"
    assert format_eur(5) == "€ 0,05"
    assert format_eur(100_000_000) == "€ 1.000.000,00"
    assert format_eur(-2550) == "€ -25,50"
    with pytest.raises(DocumentDataError):
        format_eur(12.5)
    with pytest.raises(DocumentDataError):
        format_eur(True)


def test_dates_are_formatted_day_month_year():
    assert format_date("2027-01-31") == "31-01-2027"
    assert format_date(dt.date(2027, 3, 4)) == "04-03-2027"
    assert format_date("2027-03-04T23:59:00+01:00") == "04-03-2027"


# ---------------------------------------------------------------------------
# rendering


def test_every_language_has_the_same_text_keys():
    keys = {lang: set(texts(lang)) for lang in LANGUAGES}
    assert all(k == keys["nl"] for k in keys.values()), {
        lang: sorted(keys["nl"] ^ k) for lang, k in keys.items()
    }
    oblasts = json.loads((TEXTS_DIR / "oblasts.json").read_text(encoding="utf-8"))
    assert len(oblasts) == 27
    assert all(set(names) == set(LANGUAGES) for names in oblasts.values())


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_document_renders_bilingual_in_every_language(rendered, kind, language):
    text = page_text(rendered[(kind, language)])
    nl, other = texts("nl"), texts(SECOND[language])

    assert "VRP-2026-000123" in text
    assert nl[f"title_{kind}"] in text
    assert other[f"title_{kind}"] in text
    assert "Шевченко Олена" in text and "SHEVCHENKO, Olena" in text
    assert "14-03-1985" in text
    assert "€ 1.234,50" in text
    assert nl["cond_irreversible"] in text and other["cond_irreversible"] in text
    assert nl["cond_reclaim"] in text and other["cond_reclaim"] in text
    assert nl["legal_statement"] in text and other["legal_statement"] in text
    assert "Pagina 1 van" in text
    assert f"{other['page']} 1 {other['page_of']}" in text
    if language in ("uk", "ru"):
        assert re.search("[А-Яа-яІіЇїЄєҐґЁё]{4}", other[f"title_{kind}"])
    assert "31-01-2027" in text


def test_conditions_state_the_deadline_reception_and_amount(rendered):
    text = page_text(rendered[("departure_agreement", "ru")])
    assert "uiterlijk op 31-01-2027" in text
    assert "не позднее 31-01-2027" in text
    assert "U houdt opvang tot en met de afgesproken vertrekdatum (31-01-2027)" in text
    assert "van € 1.234,50 voor het hele huishouden" in text
    assert "€ 823,00" in text and "€ 411,50" in text
    assert "Lviv, oblast Lviv / Львовская область (UA-46)" in text


def test_commitment_without_deadline_or_amount_speaks_in_general_terms():
    data = sample_data()
    del data["departure_deadline"], data["amount_cents"]
    text = " ".join(render_html("commitment", data, "en").split())
    assert texts("nl")["cond_deadline_pending"] in text
    assert texts("en")["cond_support_pending"] in text


def test_addendum_shows_previous_and_new_deadline_and_reason(rendered):
    text = page_text(rendered[("addendum", "uk")])
    assert "10-01-2027" in text and "31-01-2027" in text
    assert "The airline cancelled the flight" in text


def test_payment_receipt_names_the_method(rendered):
    # Without a known hand-over place the receipt claims none (it used to say "at the
    # airport" for every cash payment, also those handed over at the office).
    text = page_text(rendered[("payment_receipt", "en")])
    assert "Wijze van betaling / Method of payment contant in cash" in text
    assert "luchthaven" not in text and "airport" not in text


@pytest.mark.parametrize("handover, nl, en", [
    ("office", "contant, overhandigd op het kantoor van DTenV",
     "in cash, handed over at the DTenV office"),
    ("departure", "contant, overhandigd op de plaats van vertrek (luchthaven of grensovergang)",
     "in cash, handed over at the point of departure (airport or border crossing)"),
])
def test_payment_receipt_states_where_the_cash_was_handed_over(handover, nl, en):
    text = page_text(render_pdf("payment_receipt", sample_data(cash_handover=handover), "en"))
    assert nl in text and en in text
    assert ("luchthaven" in text) == (handover == "departure")


def test_payment_receipt_refuses_an_unknown_hand_over_place():
    with pytest.raises(DocumentDataError, match="cash_handover"):
        render_pdf("payment_receipt", sample_data(cash_handover="bank"), "en")


def test_drawn_signature_is_embedded_with_signer_time_and_method(rendered):
    pdf = rendered[("withdrawal_declaration", "uk")]
    text = page_text(pdf)
    assert "Olena Shevchenko" in text
    assert "20-11-2026 10:15 CET" in text
    assert "met de hand getekend op een scherm" in text
    assert "намальовано від руки на екрані" in text
    assert "passport FX123456" in text
    assert "V-nummer / V-номер 1234567890" in text
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    images = [img for page in reader.pages for img in page.images]
    assert images, "the drawn signature should be an image in the PDF"


def test_typed_signature_shows_the_typed_name():
    data = sample_data(signature={
        "method": "typed", "typed_name": "Olena Shevchenko",
        "signed_at": "2026-11-20T09:15:00Z", "signer_name": "Olena Shevchenko",
    })
    text = page_text(render_pdf("commitment", data, "ru"))
    assert "naam getypt" in text and "имя введено с клавиатуры" in text
    assert "20-11-2026 10:15 CET" in text


def test_unsigned_document_shows_an_empty_signature_line():
    data = sample_data()
    del data["signature"]
    html = render_html("commitment", data, "uk")
    assert texts("nl")["not_signed"] in html and texts("uk")["not_signed"] in html


def test_fonts_are_embedded_and_the_file_claims_pdfa_3b(rendered):
    pdf = rendered[("commitment", "ru")]
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    fonts = {}
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            target = descendants[0].get_object() if descendants else font
            descriptor = target["/FontDescriptor"].get_object()
            fonts[str(font["/BaseFont"])] = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
    assert fonts and all(fonts.values()), fonts
    # Named after the @font-face family: the packaged files, not a system fallback.
    assert all("ReturnprogSans" in name for name in fonts), fonts
    xmp = xmp_of(pdf)
    assert re.search(r'pdfaid:part(="|>)3', xmp) and re.search(r'pdfaid:conformance(="|>)B', xmp)
    assert "/OutputIntents" in reader.trailer["/Root"]
    assert pdf.startswith(b"%PDF-1.7")


@pytest.mark.parametrize("change, message", [
    ({"departure_deadline": None}, "departure_deadline"),
    ({"breakdown": [{"category": "adult", "count": 2, "unit_cents": 100}]}, "adds up to"),
    ({"destination_oblast": "UA-99"}, "destination_oblast"),
    ({"amount_cents": 12.5}, "amount_cents"),
    ({"participants": []}, "participants"),
    ({"reference": "   "}, "reference"),
    ({"signature": {"method": "drawn", "image_png_data_uri": "data:image/png;base64,AAAA",
                    "signed_at": "2026-11-20T10:15:00+01:00", "signer_name": "x"}}, "PNG"),
    ({"signature": {"method": "typed", "typed_name": "x", "signed_at": "2026-11-20T10:15:00",
                    "signer_name": "x"}}, "UTC offset"),
    ({"signature": {"method": "stamped", "signed_at": "2026-11-20T10:15:00Z", "signer_name": "x"}}, "method"),
])
def test_wrong_data_is_refused_with_the_key_named(change, message):
    data = sample_data(**change)
    with pytest.raises(DocumentDataError, match=message):
        render_html("departure_agreement", data, "uk")


def test_withdrawal_declaration_is_one_per_adult():
    people = sample_data()["participants"]
    spouse = dict(people[0], given_names_latin="Petro", given_names_cyrillic="Петро")
    with pytest.raises(DocumentDataError, match="one declaration per adult"):
        render_html("withdrawal_declaration", sample_data(participants=[*people, spouse]), "uk")
    with pytest.raises(DocumentDataError, match="one declaration per adult"):
        render_html("withdrawal_declaration", sample_data(participants=[spouse, people[1]]), "uk")


def test_unknown_kind_or_language_is_refused():
    with pytest.raises(DocumentDataError, match="kind"):
        render_html("invoice", sample_data(), "uk")
    with pytest.raises(DocumentDataError, match="language"):
        render_html("commitment", sample_data(), "de")


# ---------------------------------------------------------------------------
# the locked-down renderer


def attack_payloads(canary_path: Path, port: int) -> list[str]:
    url = f"file://{canary_path}"
    return [
        f'<img src="{url}">',
        f'<a rel="attachment" href="{url}">x</a>',
        f"<style>@import url({url});</style>",
        f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{url}"/>'
        f'<use href="http://127.0.0.1:{port}/svg#x"/></svg>',
        f'<img src="http://127.0.0.1:{port}/img">',
        f'<link rel="stylesheet" href="http://127.0.0.1:{port}/css">',
        '"><script>alert(1)</script>',
        "{{ 7*7 }}{% include 'base.html' %}",
    ]


def assert_nothing_leaked(pdf: bytes, token: str):
    assert token.encode() not in pdf
    assert all(token.encode() not in stream for stream in decoded_streams(pdf))
    assert token not in page_text(pdf)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert not reader.attachments
    assert "/EmbeddedFiles" not in reader.trailer["/Root"].get("/Names", {})
    for marker in (b"/JavaScript", b"/JS", b"/OpenAction", b"/Launch"):
        assert all(marker not in stream for stream in decoded_streams(pdf))
        assert marker not in pdf


def test_participant_supplied_markup_is_printed_not_obeyed(canary, local_server):
    canary_path, token = canary
    payloads = attack_payloads(canary_path, local_server.server_address[1])
    for i, payload in enumerate(payloads):
        people = sample_data()["participants"]
        people[0] = dict(people[0], given_names_latin=payload, family_name_cyrillic=payload)
        signer = dict(sample_data()["signer"], given_names_latin=payload, family_name_cyrillic=payload)
        data = sample_data(
            participants=people, signer=signer, destination_place=payload, counsellor=payload,
            reason="\n".join(payloads), payment_reference=payload[:64], iban=payload[:42],
            signature={"method": "typed", "typed_name": payload, "signer_name": payload,
                       "identity_document": payload, "signed_at": "2026-11-20T10:15:00+01:00"},
        )
        kind = KINDS[i % len(KINDS)] if i % 2 else "departure_agreement"
        html = render_html(kind, data, LANGUAGES[i % len(LANGUAGES)])
        assert "<script" not in html and "<svg" not in html and 'src="file:' not in html
        pdf = render_pdf(kind, data, LANGUAGES[i % len(LANGUAGES)])
        assert_nothing_leaked(pdf, token)
        if i == 0:
            assert '<img src="file://' in page_text(pdf), "the payload should be shown as text"
    assert local_server.hits == []


def raw_attack_html(canary_path: Path, port: int) -> str:
    url = f"file://{canary_path}"
    base = f"http://127.0.0.1:{port}"
    return f"""<!DOCTYPE html><html><head>
<base href="file://{canary_path.parent}/">
<link rel="stylesheet" href="{base}/css">
<link rel="stylesheet" href="{url}">
<link rel="attachment" href="{url}">
<style>
@import url({base}/import.css);
@import url({url});
@font-face {{ font-family: X; src: url({base}/font.ttf), url({url}), local(DejaVu Sans); }}
body {{ background-image: url({base}/img-bg); font-family: X; }}
</style></head><body>
<p>attack corpus</p>
<img src="{url}"><img src="{base}/img"><img src="canary.txt"><img src="/etc/hostname">
<img src="asset:../../../../{canary_path}"><img src="asset:fonts/../../{canary_path.name}">
<img src="asset:%2e%2e/%2e%2e/{canary_path.name}"><img src="ASSET:/etc/passwd">
<a rel="attachment" href="{url}">file attachment</a>
<a rel="attachment" href="{base}/attach">http attachment</a>
<a rel="attachment" href="canary.txt">relative attachment</a>
<object data="{url}"></object><embed src="{base}/embed"><iframe src="{url}"></iframe>
<input type="image" src="{base}/img-input"><video poster="{base}/img-poster"></video>
<div style="background: url({url})">x</div>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="50" height="50">
  <image href="{url}" width="10" height="10"/><image xlink:href="{base}/img-svg" width="10" height="10"/>
  <use href="{base}/svg#x"/><style>@import url({base}/svg.css);</style>
</svg>
<img src="data:image/svg+xml;base64,{base64.b64encode(f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{url}"/></svg>'.encode()).decode()}">
<img src="data:text/html;base64,{base64.b64encode(b'<b>x</b>').decode()}">
</body></html>"""


def test_restricted_fetcher_stops_raw_html_attacks(canary, local_server):
    """Defence in depth: even HTML that bypassed autoescape fetches and embeds nothing."""
    canary_path, token = canary
    fetcher = RestrictedURLFetcher()
    pdf = documents._html_to_pdf(raw_attack_html(canary_path, local_server.server_address[1]), fetcher)
    assert_nothing_leaked(pdf, token)
    assert local_server.hits == []
    refused = " ".join(fetcher.refused)
    assert "file://" in refused and "http://127.0.0.1" in refused and "asset:" in refused


def test_control_the_default_fetcher_would_have_leaked(canary, local_server):
    """Shows the corpus is a real test: WeasyPrint's default fetcher falls for it."""
    import weasyprint

    canary_path, token = canary
    port = local_server.server_address[1]
    html = (f'<a rel="attachment" href="file://{canary_path}">a</a>'
            f'<img src="http://127.0.0.1:{port}/img">')
    pdf = weasyprint.HTML(string=html).write_pdf()
    assert any(token.encode() in stream for stream in decoded_streams(pdf))
    assert local_server.hits


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "http://127.0.0.1:9/",
    "https://example.org/font.ttf",
    "ftp://example.org/x.css",
    "document.css",
    "/etc/passwd",
    "asset:../README.md",
    "asset:fonts/../../returnprog/documents.py",
    "asset:fonts/../document.css",
    "asset:/etc/passwd",
    "asset://etc/passwd",
    "asset:fonts%2F..%2F..%2Fx.css",
    "asset:fonts\\..\\document.css",
    "asset:document.css?x=1",
    "asset:texts/nl.json",
    "asset:fonts/LICENSE",
    "asset:base.html",
    "asset:missing.css",
    "data:text/html;base64,PGI+eDwvYj4=",
    "data:image/svg+xml;base64,PHN2Zy8+",
    "data:image/png,not-base64",
    "data:image/png;base64,***",
    "javascript:alert(1)",
])
def test_fetcher_refuses_everything_but_packaged_assets_and_data_images(url):
    fetcher = RestrictedURLFetcher()
    with pytest.raises(ValueError):
        fetcher.fetch(url)
    assert fetcher.refused


def test_fetcher_serves_packaged_assets_and_data_images():
    fetcher = RestrictedURLFetcher()
    css = fetcher.fetch("asset:document.css")
    assert css.content_type == "text/css" and b"@font-face" in css.read()
    font = fetcher.fetch("asset:fonts/DejaVuSans.ttf")
    assert font.read()[:4] == b"\x00\x01\x00\x00"
    png = fetcher.fetch(signature_png())
    assert png.content_type == "image/png" and png.read().startswith(b"\x89PNG")
    assert fetcher.refused == []


def test_fetcher_does_not_follow_symlinks_out_of_the_asset_folder(tmp_path, canary):
    canary_path, _ = canary
    root = tmp_path / "assets"
    root.mkdir()
    os.symlink(canary_path, root / "escape.css")
    with pytest.raises(ValueError):
        RestrictedURLFetcher(root).fetch("asset:escape.css")


# ---------------------------------------------------------------------------
# sealing


def test_dev_seal_is_created_once_with_a_private_key_file(tmp_path):
    first = ensure_dev_seal(tmp_path)
    key_mode = stat.S_IMODE((tmp_path / "seal-key.pem").stat().st_mode)
    assert key_mode == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "seal-cert.pem").read_bytes())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert "DEVELOPMENT" in cn and "not for production" in cn
    assert cert.public_key().curve.name == "secp256r1"
    assert ensure_dev_seal(tmp_path).fingerprint_sha256 == first.fingerprint_sha256


def test_dev_seal_created_concurrently_is_one_seal(tmp_path):
    results = []
    threads = [threading.Thread(target=lambda: results.append(ensure_dev_seal(tmp_path).fingerprint_sha256))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len(set(results)) == 1


def test_dev_seal_refuses_to_replace_half_a_key_pair(tmp_path):
    ensure_dev_seal(tmp_path)
    (tmp_path / "seal-cert.pem").unlink()
    with pytest.raises(SealError, match="seal-key.pem"):
        ensure_dev_seal(tmp_path)


def test_load_seal_checks_key_against_certificate_and_passphrase(tmp_path, seal, foreign_seal):
    with pytest.raises(SealError, match="does not belong"):
        load_seal(_key_path_of(foreign_seal, tmp_path), _cert_path_of(seal, tmp_path))
    with pytest.raises(SealError):
        load_seal(tmp_path / "nope.pem", tmp_path / "nope-cert.pem")

    key = serialization.load_der_private_key(seal.signer.signing_key.dump(), password=None)
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"correct horse"),
    ))
    cert_path = _cert_path_of(seal, tmp_path)
    assert load_seal(encrypted, cert_path, passphrase="correct horse").fingerprint_sha256 == seal.fingerprint_sha256
    with pytest.raises(SealError):
        load_seal(encrypted, cert_path, passphrase="wrong")


def _key_path_of(seal_config, tmp_path) -> Path:
    key = serialization.load_der_private_key(seal_config.signer.signing_key.dump(), password=None)
    path = tmp_path / f"key-{seal_config.fingerprint_sha256[:8]}.pem"
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return path


def _cert_path_of(seal_config, tmp_path) -> Path:
    path = tmp_path / f"cert-{seal_config.fingerprint_sha256[:8]}.pem"
    path.write_bytes(seal_config.cert_pem)
    return path


def test_seal_keeps_the_file_pdfa_3(sealed, rendered):
    original = rendered[("commitment", "uk")]
    assert sealed.startswith(original), "the seal must be an incremental update"
    reader = pypdf.PdfReader(io.BytesIO(sealed))
    root = reader.trailer["/Root"]
    assert str(root.get("/Version", "/1.7")) == "/1.7"
    assert "/ISO_" not in root.get("/Extensions", {})
    xmp = xmp_of(sealed)
    assert re.search(r'pdfaid:part(="|>)3', xmp) and re.search(r'pdfaid:conformance(="|>)B', xmp)
    producer = re.search(r'pdf:Producer(?:="|>)([^"<]+)', xmp)[1]
    assert reader.trailer["/Info"]["/Producer"] == producer
    field = root["/AcroForm"]["/Fields"][0].get_object()
    assert field["/FT"] == "/Sig" and field["/F"] & 4, "invisible widget must carry the print flag"


def test_sealed_document_verifies(sealed, seal, register):
    result = verify_pdf(sealed, [seal.cert_pem], register)
    assert result.valid, result.reasons
    assert result.reasons == []
    assert result.document["reference"] == "VRP-2026-000123"
    assert "DEVELOPMENT" in result.sealed_by
    assert result.sha256 == hashlib.sha256(sealed).hexdigest()


# ---------------------------------------------------------------------------
# the tamper corpus


def _signed_range_end(pdf: bytes) -> int:
    return int(re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)", pdf)[2])


def flip_byte_in_signed_range(sealed: bytes, **_) -> bytes:
    offset = sealed.index(b"stream", sealed.index(b"/Length")) + 40
    assert offset < _signed_range_end(sealed)
    return sealed[:offset] + bytes([sealed[offset] ^ 0x01]) + sealed[offset + 1:]


def append_update_changing_a_page(sealed: bytes, **_) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(sealed))
    overlay = writer.add_object(generic.StreamObject(stream_data=b"0 0 1 rg 50 50 200 100 re f"))
    writer.add_stream_to_page(0, overlay)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def truncate(sealed: bytes, **_) -> bytes:
    return sealed[: len(sealed) // 2]


def strip_the_seal(sealed: bytes, **_) -> bytes:
    reader = pypdf.PdfReader(io.BytesIO(sealed))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    for page in writer.pages:
        if "/Annots" in page:
            kept = [a for a in page["/Annots"] if a.get_object().get("/FT") != "/Sig"]
            page[pypdf.generic.NameObject("/Annots")] = pypdf.generic.ArrayObject(kept)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def seal_with_a_foreign_key(sealed: bytes, *, rendered, foreign_seal, **_) -> bytes:
    return seal_pdf(rendered[("commitment", "uk")], foreign_seal, reason="forged")


@pytest.mark.parametrize("tamper, reason", [
    (flip_byte_in_signed_range, documents.REASON_CHANGED),
    (append_update_changing_a_page, documents.REASON_APPENDED),
    (truncate, documents.REASON_UNREADABLE),
    (strip_the_seal, documents.REASON_NO_SEAL),
    (seal_with_a_foreign_key, documents.REASON_UNTRUSTED),
])
def test_tampered_files_are_refused_with_the_specific_reason(tamper, reason, sealed, seal, rendered, foreign_seal):
    tampered = tamper(sealed, rendered=rendered, foreign_seal=foreign_seal)
    assert tampered != sealed
    # Every hash is "registered" here so the verdict rests on the seal alone.
    result = verify_pdf(tampered, [seal.cert_pem], register_everything)
    assert not result.valid
    assert result.reasons == [reason]


def test_tampered_file_is_also_not_in_the_register(sealed, seal, register):
    result = verify_pdf(append_update_changing_a_page(sealed), [seal.cert_pem], register)
    assert result.reasons == [documents.REASON_APPENDED, documents.REASON_NOT_REGISTERED]


def test_damaged_seal_bytes_are_refused(sealed, seal):
    start = _signed_range_end(sealed) + 1  # first hex digit of /Contents
    damaged = sealed[:start + 20] + (b"0" if sealed[start + 20:start + 21] != b"0" else b"1") + sealed[start + 21:]
    result = verify_pdf(damaged, [seal.cert_pem], register_everything)
    assert not result.valid
    assert result.reasons and set(result.reasons) <= {
        documents.REASON_DAMAGED, documents.REASON_BAD_SIGNATURE, documents.REASON_CHANGED}


def test_valid_seal_but_unregistered_document_is_refused(rendered, seal, register):
    other = seal_pdf(rendered[("addendum", "nl")], seal, reason="Aanvulling VRP-2026-000123")
    result = verify_pdf(other, [seal.cert_pem], register)
    assert not result.valid
    assert result.reasons == [documents.REASON_NOT_REGISTERED]
    assert result.document is None


def test_foreign_seal_is_accepted_only_when_its_certificate_is_trusted(rendered, seal, foreign_seal):
    forged = seal_pdf(rendered[("commitment", "uk")], foreign_seal, reason="x")
    both = verify_pdf(forged, [seal.cert_pem, foreign_seal.cert_pem.decode()], register_everything)
    assert both.valid, both.reasons


@pytest.mark.parametrize("garbage", [
    b"", b"hello", b"%PDF-1.7\n%%EOF", b"%PDF-1.7\n" + os.urandom(2000), None, "a string", 42,
])
def test_garbage_never_raises(garbage, seal):
    result = verify_pdf(garbage, [seal.cert_pem], register_everything)
    assert not result.valid
    assert result.reasons == [documents.REASON_UNREADABLE]


def test_unsealed_render_is_refused_as_having_no_seal(rendered, seal):
    result = verify_pdf(rendered[("commitment", "nl")], [seal.cert_pem], register_everything)
    assert result.reasons == [documents.REASON_NO_SEAL]


# ---------------------------------------------------------------------------
# RFC 3161 timestamp through a local TSA


def _tsa_material():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "returnprog test TSA")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    return (asn1_x509.Certificate.load(cert_der), asn1_keys.PrivateKeyInfo.load(key_der),
            cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def local_tsa():
    from pyhanko.sign.timestamps import DummyTimeStamper

    tsa_cert, tsa_key, tsa_pem = _tsa_material()
    stamper = DummyTimeStamper(tsa_cert=tsa_cert, tsa_key=tsa_key)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.server.requests_seen += 1
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            body = stamper.request_tsa_response(request).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.requests_seen = 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", tsa_pem, server
    server.shutdown()
    server.server_close()


def test_seal_with_timestamp_verifies_against_the_trusted_tsa(tmp_path, rendered, seal, local_tsa):
    tsa_url, tsa_pem, _ = local_tsa
    stamped_seal = load_seal(_key_path_of(seal, tmp_path), _cert_path_of(seal, tmp_path), tsa_url=tsa_url)
    stamped = seal_pdf(rendered[("payment_receipt", "uk")], stamped_seal, reason="Ontvangstbewijs")

    result = verify_pdf(stamped, [seal.cert_pem], register_everything, tsa_cert_pem_list=[tsa_pem])
    assert result.valid, result.reasons
    assert abs(result.sealed_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)

    untrusted = verify_pdf(stamped, [seal.cert_pem], register_everything)
    assert untrusted.reasons == [documents.REASON_TIMESTAMP]


# The glossary names (returnprog/glossary.py and its catalogue entries), as a reader sees
# them in the PDF: the same words as the staff UI, the signing pages and the e-mails.
GLOSSARY_NAMES = {
    "nl": {"service": "Dienst Terugkeer en Vertrek (DTenV)",
           "commitment": "Deelnameverklaring", "departure_agreement": "Vertrekovereenkomst",
           "addendum": "Addendum bij de vertrekovereenkomst"},
    "uk": {"service": "Служба повернення та виїзду (DTenV)",
           "commitment": "Декларація про участь", "departure_agreement": "Угода про виїзд",
           "addendum": "Додаток до угоди про виїзд"},
    "ru": {"service": "Служба возвращения и выезда (DTenV)",
           "commitment": "Декларация об участии", "departure_agreement": "Соглашение о выезде",
           "addendum": "Дополнение к соглашению о выезде"},
    "en": {"service": "Repatriation and Departure Service (DTenV)",
           "commitment": "Commitment to take part", "departure_agreement": "Departure agreement",
           "addendum": "Addendum to the departure agreement"},
}


@pytest.mark.parametrize("language", ["uk", "ru", "en"])
@pytest.mark.parametrize("kind", ["commitment", "departure_agreement", "addendum"])
def test_pdfs_name_the_service_and_the_document_from_the_glossary(rendered, kind, language):
    text = " ".join(page_text(rendered[(kind, language)]).split())
    for lang in ("nl", language):  # both languages of the bilingual document
        names = GLOSSARY_NAMES[lang]
        assert names["service"] in text, (lang, names["service"])
        assert names[kind] in text, (lang, names[kind])
    assert "Служба репатріації" not in text and "Vertrekafspraak" not in text


# --- Sealing cost (issue 11): the signature's space is sized once per seal, not per document


def test_after_the_first_seal_each_seal_asks_the_tsa_once(tmp_path, rendered, seal, local_tsa):
    tsa_url, tsa_pem, server = local_tsa
    stamped_seal = load_seal(_key_path_of(seal, tmp_path), _cert_path_of(seal, tmp_path), tsa_url=tsa_url)
    seal_pdf(rendered[("commitment", "uk")], stamped_seal, reason="first")
    before = server.requests_seen
    stamped = [seal_pdf(rendered[("commitment", "uk")], stamped_seal, reason=f"again {i}")
               for i in range(2)]
    # pyHanko alone asks for a dummy timestamp to size every signature, then the real one.
    assert server.requests_seen - before == 2
    for pdf in stamped:
        assert verify_pdf(pdf, [seal.cert_pem], register_everything,
                          tsa_cert_pem_list=[tsa_pem]).valid


def test_a_remembered_reservation_that_is_too_small_is_sized_afresh(rendered, seal):
    seal_pdf(rendered[("commitment", "nl")], seal, reason="first")
    key = (seal.fingerprint_sha256, None)
    right = documents._seal_reservations[key]
    documents._seal_reservations[key] = 64  # far too little for any CMS signature
    try:
        sealed_again = seal_pdf(rendered[("commitment", "nl")], seal, reason="retry")
    finally:
        remembered = documents._seal_reservations.get(key)
        documents._seal_reservations[key] = right
    assert verify_pdf(sealed_again, [seal.cert_pem], register_everything).valid
    # Sized afresh: pyHanko's own estimate again, which moves by a few bytes with the
    # length of the DER-encoded ECDSA signature of its dry run.
    assert remembered is not None and abs(remembered - right) < 64


def test_the_fetcher_has_no_way_to_open_urls_itself():
    # Not WeasyPrint's URLFetcher (a urllib opener with file, HTTP and FTP handlers): the
    # refusals above are the whole of what it can do.
    fetcher = RestrictedURLFetcher()
    assert not hasattr(fetcher, "open") and not hasattr(fetcher, "handlers")
    with pytest.raises(ValueError):
        fetcher("file:///etc/passwd")
