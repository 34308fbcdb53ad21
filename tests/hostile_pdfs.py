"""Hostile PDFs for the bounded verification, generated on the fly (no committed binaries).

Each builder returns the bytes of a file that parses as a PDF header-wise but is built to
make a naive checker spend seconds of CPU or gigabytes of memory:

* ``deep_field_chain`` — an AcroForm whose fields nest 50,000 deep through ``/Kids``
  (the file of the issue: about 4.6 MB, seconds of parsing).
* ``object_stream_bomb`` — an object stream (``/ObjStm``) that inflates from a few MB to
  gigabytes, holding a deeply nested array; the catalogue lives inside it, so any reader
  must decompress it.
* ``huge_xref`` — a classic cross-reference table with hundreds of thousands of entries.
"""
from __future__ import annotations

import zlib


def _assemble(objects: list[bytes], *, root: int = 1, extra_xref: bytes = b"") -> bytes:
    """A classic PDF from object bodies numbered 1..n with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += extra_xref
    out += (b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, root, xref_at))
    return bytes(out)


def _inflating(head: bytes, block: bytes, repeat: int) -> bytes:
    """A zlib stream of ``head`` followed by ``block`` ``repeat`` times, built in well under
    a second: after a full flush the deflate output of the same block is the same bytes,
    so one compressed block is repeated and only the checksum is computed over all."""
    comp = zlib.compressobj(9)
    start = comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)
    packed = comp.compress(block) + comp.flush(zlib.Z_FULL_FLUSH)
    checksum = zlib.adler32(head)
    for _ in range(repeat):
        checksum = zlib.adler32(block, checksum)
    # An empty final block closes the deflate data; the zlib trailer is the Adler-32.
    return start + packed * repeat + b"\x03\x00" + checksum.to_bytes(4, "big")


def _page_tree() -> list[bytes]:
    return [b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"]


def deep_field_chain(depth: int = 50_000) -> bytes:
    """An AcroForm whose single top field has a chain of ``depth`` nested kids."""
    first = 4
    objects = [b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [%d 0 R] >> >>" % first,
               *_page_tree()]
    for i in range(depth):
        number = first + i
        kids = b" /Kids [%d 0 R]" % (number + 1) if i < depth - 1 else b" /FT /Sig"
        parent = b" /Parent %d 0 R" % (number - 1) if i else b""
        objects.append(b"<< /T (f%d)%s%s >>" % (i, parent, kids))
    return _assemble(objects)


def object_stream_bomb(streams: int = 60, inflated_mb: int = 60,
                       nesting: int = 100_000) -> bytes:
    """A document whose signature fields each sit in their own object stream (``/ObjStm``)
    inflating to ``inflated_mb`` MB (just under pyHanko's 64 MB cap per stream), so that
    listing the fields inflates ``streams`` × that; the catalogue carries an array nested
    ``nesting`` deep."""
    nested = b"[" * nesting + b"]" * nesting
    first_field = 3
    fields = b" ".join(b"%d 0 R" % (first_field + i) for i in range(streams))
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    plain: dict[int, int] = {}
    plain[1] = len(out)
    out += (b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [" + fields
            + b"] >> /Nested " + nested + b" >>\nendobj\n")
    plain[2] = len(out)
    out += b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    in_stream = {}
    number = first_field + streams
    for i in range(streams):
        field = first_field + i
        header = b"%d 0 " % field
        stream = _inflating(header + b"<< /T (f%d) /FT /Sig >>" % i,
                            b" " * (1024 * 1024), inflated_mb)
        plain[number] = len(out)
        in_stream[field] = number
        out += (b"%d 0 obj\n<< /Type /ObjStm /N 1 /First %d /Filter /FlateDecode /Length %d"
                b" >>\nstream\n" % (number, len(header), len(stream))
                + stream + b"\nendstream\nendobj\n")
        number += 1
    xref_number = number
    xref_at = len(out)
    plain[xref_number] = xref_at
    rows = [b"\x00" + bytes(4) + b"\xff\xff"]
    for n in range(1, xref_number + 1):
        if n in in_stream:
            rows.append(b"\x02" + in_stream[n].to_bytes(4, "big") + b"\x00\x00")
        else:
            rows.append(b"\x01" + plain[n].to_bytes(4, "big") + b"\x00\x00")
    table = b"".join(rows)
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\n"
            b"stream\n" % (xref_number, xref_number + 1, len(table))
            + table + b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def huge_xref(entries: int = 240_000) -> bytes:
    """A tiny document behind a cross-reference table of ``entries`` rows (all but the
    real three pointing at the same free slot)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", *_page_tree()]
    pdf = _assemble(objects)
    head, _, _ = pdf.partition(b"xref\n")
    xref_at = len(head)
    rows = [b"0000000000 65535 f \n"]
    for line in pdf[len(head):].split(b"\n")[3:6]:
        rows.append(line + b"\n")
    rows += [b"0000000000 00001 f \n"] * entries
    table = b"xref\n0 %d\n" % len(rows) + b"".join(rows)
    return (head + table + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(rows), xref_at))


CORPUS = {"deep field chain": deep_field_chain, "object stream bomb": object_stream_bomb,
          "huge xref": huge_xref}
