"""The evidence certificate: the last page of a signed document, sealed with it, and the
same record attached as JSON; the content hash a verifier can recompute from the PDF."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json

import pypdf
import pytest

from returnprog import documents
from returnprog.documents import (CONTENT_FILE, EVIDENCE_FILE, DocumentDataError,
                                  ensure_dev_seal, read_evidence, render_pdf, seal_pdf,
                                  verify_pdf)

from .test_documents import sample_data

UTC = dt.timezone.utc
UA = "Mozilla/5.0 (Linux; Android 14) Chrome/131.0 Mobile"


def evidence(**overrides) -> dict:
    """A link signing: created by the counsellor, code sent and verified, opened, signed."""
    base = {
        "version": 2, "signer_name": "Olena Shevchenko", "signature_method": "drawn",
        "signing_channel": "link", "counsellor": "Johanna de Vries",
        "events": [
            # Out of order on purpose: the record sorts them by time.
            {"event": "signed", "at": dt.datetime(2026, 11, 20, 9, 15, 4, 700000, tzinfo=UTC),
             "ip": "198.51.100.7", "user_agent": UA, "channel": "link"},
            {"event": "link_created", "at": dt.datetime(2026, 11, 18, 14, 2, 0),  # naive = UTC
             "ip": "10.0.0.5", "user_agent": None, "channel": "staff",
             "actor": "Johanna de Vries"},
            {"event": "code_sent", "at": "2026-11-20T09:09:00+00:00", "channel": "email"},
            {"event": "opened", "at": "2026-11-20T10:09:30+01:00", "ip": "198.51.100.7",
             "user_agent": UA + "\x07", "channel": "link"},
        ],
    }
    base.update(overrides)
    return base


def pages(pdf: bytes) -> list[str]:
    return [" ".join(p.extract_text().split()) for p in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def attachments(pdf: bytes) -> dict[str, bytes]:
    return {name: body[0] for name, body in pypdf.PdfReader(io.BytesIO(pdf)).attachments.items()}


@pytest.fixture(scope="module")
def seal(tmp_path_factory):
    return ensure_dev_seal(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="module", params=["uk", "ru"])
def signed(request):
    data = sample_data()
    return data, request.param, render_pdf("departure_agreement", data, request.param, evidence())


def test_the_certificate_is_the_last_page_in_dutch_and_the_signers_language(signed):
    data, lang, pdf = signed
    text = pages(pdf)
    last = text[-1]
    assert len(text) == len(pages(render_pdf("departure_agreement", data, lang))) + 1
    assert "Bewijscertificaat van de ondertekening" in last
    assert {"uk": "Сертифікат підписання", "ru": "Сертификат подписания"}[lang] in last
    assert "Certificaat" not in " ".join(text[:-1]) and "Bewijscertificaat" not in " ".join(text[:-1])
    for sentence in ("gewone elektronische handtekening", "artikel 3, punt 10",
                     {"uk": "простим електронним підписом", "ru": "простой электронной подписью"}[lang]):
        assert sentence in last
    assert "Johanna de Vries" in last and "Olena Shevchenko" in last
    assert "VRP-2026-000123" in last and "departure_agreement" in last


def test_each_event_is_printed_with_both_times_address_and_user_agent(signed):
    _, _, pdf = signed
    last = pages(pdf)[-1]
    # Amsterdam in November is UTC+1 (CET).
    for local, utc in (("20-11-2026 10:15:04 CET", "2026-11-20 09:15:04 UTC"),
                       ("18-11-2026 15:02:00 CET", "2026-11-18 14:02:00 UTC"),
                       ("20-11-2026 10:09:00 CET", "2026-11-20 09:09:00 UTC"),
                       ("20-11-2026 10:09:30 CET", "2026-11-20 09:09:30 UTC")):
        assert local in last and utc in last
    assert "198.51.100.7" in last and "10.0.0.5" in last
    squeezed = last.replace(" ", "")
    assert UA.replace(" ", "") in squeezed
    assert "\x07" not in last
    # In time order: created, code sent, opened, signed.
    order = [last.index(s) for s in ("Ondertekeningslink aangemaakt", "Eenmalige code verstuurd",
                                     "Link voor het eerst geopend", "Ondertekend ")]
    assert order == sorted(order)


def test_the_printed_sha256_is_that_of_the_attached_content(signed):
    data, _, pdf = signed
    files = attachments(pdf)
    content = files[CONTENT_FILE]
    digest = hashlib.sha256(content).hexdigest()
    # The content is the document data without the signature, as canonical JSON.
    expected = {k: v for k, v in data.items() if k != "signature"}
    assert json.loads(content) == expected
    assert content == json.dumps(expected, sort_keys=True, ensure_ascii=False,
                                 separators=(",", ":")).encode("utf-8")
    assert digest in pages(pdf)[-1].replace(" ", "")
    record = json.loads(files[EVIDENCE_FILE])
    assert record["content_sha256"] == digest == documents.content_sha256(data)
    # Another signature over the same content gives the same hash; other content does not.
    assert documents.content_sha256({**data, "signature": None}) == digest
    assert documents.content_sha256({**data, "amount_cents": 1}) != digest


def test_the_attached_record_lists_the_same_events_as_the_page(signed):
    _, _, pdf = signed
    record = json.loads(attachments(pdf)[EVIDENCE_FILE])
    assert [e["event"] for e in record["events"]] == ["link_created", "code_sent", "opened", "signed"]
    signed_event = record["events"][-1]
    assert signed_event == {"event": "signed", "at_utc": "2026-11-20T09:15:04Z",
                            "at_amsterdam": "2026-11-20T10:15:04+01:00", "ip": "198.51.100.7",
                            "user_agent": UA, "channel": "link", "actor": None}
    last = pages(pdf)[-1]
    for e in record["events"]:
        local, utc = documents.format_event_times(e)
        assert local in last and utc in last


def test_the_seal_covers_the_certificate_and_the_record_is_read_back(signed, seal):
    _, _, pdf = signed
    sealed = seal_pdf(pdf, seal, reason="test")
    sha = hashlib.sha256(sealed).hexdigest()
    result = verify_pdf(sealed, [seal.cert_pem], {sha: {"id": 1}}.get)
    assert result.valid, result.reasons
    assert read_evidence(sealed) == json.loads(attachments(pdf)[EVIDENCE_FILE])
    assert read_evidence(seal_pdf(render_pdf("commitment", sample_data(), "uk"), seal,
                                  reason="test")) is None


def test_a_tablet_signing_names_the_staff_member_present_and_the_identity_document():
    ev = evidence(signing_channel="tablet", staff_present="Piet Jansen",
                  identity_document="passport FX123456",
                  events=[{"event": "signed", "at": dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
                           "ip": "10.1.2.3", "user_agent": "TabletBrowser/1", "channel": "tablet"}])
    last = pages(render_pdf("payment_receipt", sample_data(cash_handover="office"), "uk", ev))[-1]
    # Summer time: CEST, UTC+2.
    assert "01-07-2026 14:00:00 CEST" in last and "2026-07-01 12:00:00 UTC" in last
    assert "Piet Jansen" in last and "passport FX123456" in last
    assert "tablet op het kantoor van DTenV" in last and "планшет в офісі DTenV" in last


@pytest.mark.parametrize("change, message", [
    ({"version": 0}, "evidence.version"),
    ({"signature_method": "stamp"}, "evidence.signature_method"),
    ({"signing_channel": "fax"}, "evidence.signing_channel"),
    ({"events": [{"event": "hacked", "at": "2026-01-01T00:00:00Z"}]}, r"events\[0\].event"),
    ({"events": [{"event": "signed", "at": "yesterday"}]}, r"events\[0\].at"),
])
def test_wrong_evidence_is_refused_with_the_key_named(change, message):
    with pytest.raises(DocumentDataError, match=message):
        render_pdf("commitment", sample_data(), "uk", evidence(**change))
