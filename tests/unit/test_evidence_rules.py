"""The rules of evidence uploads (returnprog.evidence): the type is what the content is —
real PDFs, PNGs and JPEGs made here pass; anything else, a file claiming another type
than its content, an empty, oversize or unreadable file is refused with its own code; the
uploader's file name is cleaned for display."""
from __future__ import annotations

import io

import pytest

from returnprog import evidence
from returnprog.evidence import JPEG, PDF, PNG, Refused, check_upload, safe_filename

from ..web_client import tiny_pdf

MAX = 1024 * 1024


def image(fmt: str, size=(40, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


def refused(data, name=None, mime=None, max_bytes=MAX) -> str:
    with pytest.raises(Refused) as exc:
        check_upload(data, name, mime, max_bytes)
    return exc.value.code


@pytest.mark.parametrize("data,name,mime,expected", [
    (tiny_pdf(), "ind-brief.pdf", "application/pdf", PDF),
    (image("PNG"), "pass.png", "image/png", PNG),
    (image("JPEG"), "pass.JPG", "image/jpeg", JPEG),
    (image("JPEG"), "photo.jpeg", "application/octet-stream", JPEG),  # no claim: content decides
    (tiny_pdf(), None, None, PDF),
])
def test_real_files_pass_with_the_type_of_their_content(data, name, mime, expected):
    checked = check_upload(data, name, mime, MAX)
    assert checked.content_type == expected
    assert checked.filename.endswith("." + evidence.EXTENSIONS[expected])


def test_a_file_that_is_none_of_the_three_is_refused_by_content_whatever_it_claims():
    assert refused(b"GIF89a" + b"\x00" * 100, "pass.png", "image/png") == "evidence.wrong_type"
    assert refused(b"MZ\x90\x00 windows program", "letter.pdf", "application/pdf") \
        == "evidence.wrong_type"
    assert refused(b"<html><script>alert(1)</script></html>", "x.pdf") == "evidence.wrong_type"


def test_a_pdf_claiming_to_be_a_png_is_refused_by_name_and_by_declared_type():
    pdf = tiny_pdf()
    assert refused(pdf, "boarding.png", None) == "evidence.type_mismatch"
    assert refused(pdf, "boarding", "image/png") == "evidence.type_mismatch"
    assert refused(pdf, "boarding.pdf", "image/png") == "evidence.type_mismatch"


def test_a_png_claiming_to_be_a_pdf_is_refused():
    assert refused(image("PNG"), "ind-letter.pdf", "application/pdf") == "evidence.type_mismatch"
    assert refused(image("JPEG"), "scan.png", "image/png") == "evidence.type_mismatch"


def test_empty_and_oversize_files_are_refused():
    assert refused(b"", "x.pdf") == "evidence.empty"
    with pytest.raises(Refused) as exc:
        check_upload(tiny_pdf() + b"\n" * 3000, "x.pdf", None, 2000)
    assert exc.value.code == "evidence.too_large" and exc.value.params == {"max": 1}


def test_the_right_magic_bytes_are_not_enough_the_file_must_open():
    assert refused(b"%PDF-1.7\n" + b"garbage " * 200, "x.pdf") == "evidence.unreadable"
    assert refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "x.png") == "evidence.unreadable"
    assert refused(b"\xff\xd8\xff\xe0" + b"\x00" * 200, "x.jpg") == "evidence.unreadable"
    truncated = image("PNG")[:-30]
    assert refused(truncated, "x.png") == "evidence.unreadable"


def test_an_image_with_absurdly_many_pixels_is_refused(monkeypatch):
    monkeypatch.setattr(evidence, "MAX_PIXELS", 100)
    assert refused(image("PNG", (20, 20)), "x.png") == "evidence.unreadable"


def test_an_encrypted_pdf_is_refused():
    import pypdf

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=100, height=100)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    assert refused(out.getvalue(), "x.pdf") == "evidence.unreadable"


@pytest.mark.parametrize("raw,expected", [
    ("../../etc/passwd.pdf", "passwd.pdf"),
    ("C:\\Users\\olena\\boarding pass.pdf", "boarding pass.pdf"),
    ('evil"; filename=x.exe\r\n.pdf', "evil__ filename=x.exe.pdf"),
    ("\u202egnp.pdf", "gnp.pdf"),  # right-to-left override dropped
    ("", "evidence.pdf"),
    (None, "evidence.pdf"),
    ("letter.png", "letter.pdf"),  # the extension follows the content
    ("Лист IND.pdf", "Лист IND.pdf"),
])
def test_the_uploaders_file_name_is_cleaned_for_display(raw, expected):
    assert safe_filename(raw, PDF) == expected


def test_a_long_file_name_is_cut():
    name = safe_filename("a" * 500 + ".pdf", PDF)
    assert len(name) <= 100 and name.endswith(".pdf")


def test_hostile_pdfs_from_issue_10_get_an_answer_not_an_exception():
    """Uploads are staff-only and checked in the worker: the files built to overload the
    verifier must still end in an answer (accepted as a file that opens, or refused)."""
    from .. import hostile_pdfs

    for data in (hostile_pdfs.deep_field_chain(), hostile_pdfs.object_stream_bomb(),
                 hostile_pdfs.huge_xref()):
        try:
            checked = check_upload(data, "x.pdf", None, 10 * 1024 * 1024)
        except Refused as exc:
            assert exc.code == "evidence.unreadable"
        else:
            assert checked.content_type == PDF
