"""Helpers shared by the signing and verification tests (no tests in here).

Everything goes through the real app: the counsellor's pages with CSRF, the public link
pages, the real renderer and the app's development seal."""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import re
from dataclasses import dataclass

from PIL import Image, ImageDraw
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog.models import AuditEvent, Document, Participant, SigningRequest
from returnprog.services import verification

from ..web_client import csrf_token

ADDRESS = re.compile(r'id="signing-address"[^>]*value="([^"]+)"')


def drawn_png(width: int = 900, height: int = 300) -> str:
    """A drawn signature as the canvas sends it: a transparent PNG with dark strokes."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(40, 220), (200, 60), (380, 240), (600, 80), (860, 200)],
                               fill=(11, 31, 92, 255), width=5)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def blank_png() -> str:
    """A canvas nobody drew on."""
    buf = io.BytesIO()
    Image.new("RGBA", (900, 300), (0, 0, 0, 0)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class Snapshot:
    """What a refused request must not change."""

    documents: int
    audit_events: int
    links: tuple


def snapshot(app) -> Snapshot:
    with Session(app.extensions["returnprog.engine"]) as s:
        docs = s.execute(select(func.count()).select_from(Document)).scalar_one()
        events = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        links = tuple(s.execute(select(SigningRequest.id, SigningRequest.used_at,
                                       SigningRequest.revoked_at, SigningRequest.document_id)
                                .order_by(SigningRequest.id)).all())
    return Snapshot(docs, events, links)


def adults_of(app, reference: str) -> list[Participant]:
    from returnprog.models import Case

    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        case = s.execute(select(Case).where(Case.reference == reference)).scalar_one()
        people = s.execute(select(Participant).where(Participant.case_id == case.id)
                           .order_by(Participant.id)).scalars().all()
    return [p for p in people if p.age_on(dt.date.today()) >= 18]


def set_language(app, participant_id: int, language: str) -> None:
    with Session(app.extensions["returnprog.engine"]) as s:
        person = s.get(Participant, participant_id)
        person.language = language
        s.add(person)
        s.commit()


def create_link(web, reference: str, participant_id: int, kind: str = "commitment",
                **terms) -> str:
    """The counsellor creates a link on the signatures form; returns its path (/s/...)."""
    resp = web.post(f"/cases/{reference}/signing-links",
                    {"participant_id": participant_id, "kind": kind, **terms})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:3000]
    address = html.unescape(ADDRESS.search(resp.get_data(as_text=True)).group(1))
    path = "/s/" + address.split("/s/", 1)[1]
    assert re.fullmatch(r"/s/[A-Za-z0-9_-]{43}", path), path
    return path


def public_form(client, path: str, **data):
    """GET the public page for its CSRF token, then POST ``data`` to ``path``."""
    page = client.get(path)
    token = csrf_token(page.get_data(as_text=True)) if page.status_code == 200 else \
        _any_token(client)
    return client.post(path, data={"csrf_token": token, **data})


def mailed_code(app) -> str:
    """The one-time code of the newest code e-mail in the outbox, read as the participant
    reads it (the outbox keeps the code only sealed)."""
    from returnprog.models import OutboxMessage
    from returnprog.services import signing_codes

    with Session(app.extensions["returnprog.engine"]) as s:
        body = s.execute(select(OutboxMessage.body_text).where(
            OutboxMessage.kind == "signing_code").order_by(OutboxMessage.id.desc())
            .limit(1)).scalar_one()
    return re.search(r"\b(\d{6})\b",
                     signing_codes.revealer(app.config["SECRET_KEY"])(body)).group(1)


def pass_code(app, client, path: str) -> None:
    """Get a link's browser past the one-time code the policy asks for (issue 12 item 1):
    ask for it by e-mail, read it from the outbox as the participant reads their mail, and
    enter it. Nothing happens for a document that needs no code."""
    page = client.get(path).get_data(as_text=True)
    if 'name="channel"' not in page:
        return
    assert client.post(path + "/code", data={"csrf_token": csrf_token(page),
                                             "channel": "email"}).status_code == 303
    enter = client.get(path + "/code").get_data(as_text=True)
    resp = client.post(path + "/code/check", data={"csrf_token": csrf_token(enter),
                                                   "code": mailed_code(app)})
    assert resp.status_code == 303, resp.status_code


def _any_token(client) -> str:
    return csrf_token(client.get("/verify").get_data(as_text=True))


def last_document(app) -> Document:
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        return s.execute(select(Document).order_by(Document.id.desc()).limit(1)).scalar_one()


def trusted(app) -> list[bytes]:
    from returnprog.web.verify import trusted_certs

    with app.app_context():
        return trusted_certs()


def verify_service(app, pdf: bytes):
    with Session(app.extensions["returnprog.engine"], expire_on_commit=False) as s:
        return verification.verify(s, pdf, trusted(app), channel="cli")


def verify_cli(app, tmp_path, pdf: bytes, name: str = "document.pdf"):
    path = tmp_path / name
    path.write_bytes(pdf)
    return app.test_cli_runner().invoke(args=["verify-pdf", str(path)])


def verify_page(app, pdf: bytes, lang: str = "en"):
    client = app.test_client()
    token = csrf_token(client.get(f"/verify?lang={lang}").get_data(as_text=True))
    return client.post("/verify", data={"csrf_token": token, "lang": lang,
                                        "pdf": (io.BytesIO(pdf), "upload.pdf")},
                       content_type="multipart/form-data")


def assert_verifies_everywhere(app, tmp_path, pdf: bytes, *, reference: str, kind: str,
                               version: int, signer: str) -> None:
    """The sealed PDF is valid for the verification service, the CLI and the public page,
    each naming the case document, its version and the signer."""
    answer = verify_service(app, pdf)
    assert answer.valid, answer.reasons
    assert answer.document["reference"] == reference
    assert (answer.document["kind"], answer.document["version"]) == (kind, version)
    assert answer.document["signer_name"] == signer

    result = verify_cli(app, tmp_path, pdf)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"VALID: case {reference}, {kind} version {version}")
    assert f"signed by {signer} at " in result.output

    page = verify_page(app, pdf)
    body = html.unescape(page.get_data(as_text=True))
    assert page.status_code == 200
    assert "Valid: this is an unchanged document issued by DTenV." in body
    assert reference in body and signer in body and f"<dd>{version}</dd>" in body
