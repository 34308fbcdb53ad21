"""The public verification page under hostile uploads (issue 10, item 3): each file of the
hostile corpus gets a verdict page (never a 500), a file stopped by a limit is answered
"could not be checked" in the reader's language, a normal sealed document stays valid,
a full machine gets a 503 with Retry-After, and anonymous checks are counted per verdict
(shown by ``flask metrics``) instead of audited. ``flask verify-pdf`` takes the same
bounded path."""
from __future__ import annotations

import fcntl
import html
import io
import os
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from returnprog.models import AuditEvent, MetricCounter

from ..hostile_pdfs import CORPUS
from ..web_client import csrf_token
from .test_verify import signed  # noqa: F401  (fixture)

UNCHECKED = {
    "en": "the file could not be checked: checking it needs more time or memory",
    "nl": "het bestand kon niet worden gecontroleerd",
    "uk": "файл не вдалося перевірити: перевірка потребує більше часу",
    "ru": "файл не удалось проверить: проверка требует больше времени",
}
BUSY = {
    "en": "Many documents are being checked right now. Please try again in a minute.",
    "nl": "Er worden op dit moment veel documenten gecontroleerd.",
    "uk": "Зараз перевіряється багато документів.",
    "ru": "Сейчас проверяется много документов.",
}


def _counts(app) -> dict[str, int]:
    with Session(app.extensions["returnprog.engine"]) as s:
        rows = s.execute(select(MetricCounter.name, func.sum(MetricCounter.count))
                         .group_by(MetricCounter.name)).all()
    return {name: int(total) for name, total in rows}


def _audit_events(app) -> int:
    with Session(app.extensions["returnprog.engine"]) as s:
        return s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def _uploader(app, lang: str):
    client = app.test_client()
    form = client.get(f"/verify?lang={lang}").get_data(as_text=True)
    token = csrf_token(form)

    def upload(data: bytes):
        # The form's action carries the language, so that even an answer given before the
        # body is read (busy) speaks it.
        assert f'action="/verify?lang={lang}"' in form
        return client.post(f"/verify?lang={lang}", data={"csrf_token": token, "lang": lang,
                                            "pdf": (io.BytesIO(data), "x.pdf")},
                           content_type="multipart/form-data")
    return upload


def test_hostile_uploads_get_a_verdict_and_a_stopped_check_says_so_in_each_language(
        app, signed):  # noqa: F811
    # 130 MB of address space: enough for a normal sealed document, not for the chain or
    # the huge xref (memory use does not depend on the machine's speed, CPU time would).
    app.config.update(VERIFY_RATE_LIMIT=1000, VERIFY_MEMORY_MB=130)
    events = _audit_events(app)
    stopped = 0
    for lang in ("en", "nl", "uk", "ru"):
        upload = _uploader(app, lang)
        for name, build in CORPUS.items():
            response = upload(build())
            assert response.status_code == 200, (name, lang)
            body = html.unescape(response.get_data(as_text=True))
            assert 'class="verdict invalid"' in body, (name, lang)
            if name in ("deep field chain", "huge xref"):
                assert UNCHECKED[lang] in body, lang
                stopped += 1
        response = upload(signed.pdf)
        assert response.status_code == 200
        assert 'class="verdict valid"' in response.get_data(as_text=True), lang
    counts = _counts(app)
    assert counts["verify.web.valid"] == 4
    assert counts["verify.web.unchecked"] == stopped == 8
    assert counts["verify.web.unchecked"] + counts["verify.web.invalid"] == 4 * len(CORPUS)
    assert _audit_events(app) == events  # anonymous uploads write no audit event


def test_a_full_machine_answers_503_with_retry_after_and_counts_it(app, signed):  # noqa: F811
    app.config.update(VERIFY_RATE_LIMIT=1000, VERIFY_MAX_CONCURRENT=1)
    slots = Path(app.instance_path) / "verify-slots"
    slots.mkdir(parents=True, exist_ok=True)
    fd = os.open(slots / "verify-slot-0.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another worker is checking
        for lang, text in BUSY.items():
            response = _uploader(app, lang)(signed.pdf)
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "60"
            assert text in response.get_data(as_text=True), lang
            assert f'<html lang="{lang}">' in response.get_data(as_text=True)
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            assert "Set-Cookie" not in response.headers
            assert "Connection" not in response.headers  # a small upload was read first
        # Larger than anything the service issues: answered unread, connection closed.
        big = _uploader(app, "en")(CORPUS["deep field chain"]())
        assert big.status_code == 503 and big.headers["Connection"] == "close"
        assert BUSY["en"] in big.get_data(as_text=True)
    finally:
        os.close(fd)
    response = _uploader(app, "en")(signed.pdf)
    assert response.status_code == 200
    assert 'class="verdict valid"' in response.get_data(as_text=True)
    assert _counts(app) == {"verify.web.busy": 5, "verify.web.valid": 1}

    result = app.test_cli_runner().invoke(args=["metrics", "--prefix", "verify."])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[1:] == ["verify.web.busy", "5"] for line in lines[:2]), lines
    assert lines[-2].split() == ["verify.web.busy", "5"]
    assert lines[-1].split() == ["verify.web.valid", "1"]


def test_the_command_line_check_is_bounded_too(app, signed, tmp_path):  # noqa: F811
    app.config.update(VERIFY_MEMORY_MB=130)
    path = tmp_path / "chain.pdf"
    path.write_bytes(CORPUS["deep field chain"]())
    result = app.test_cli_runner().invoke(args=["verify-pdf", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("INVALID: the file could not be checked"), result.output

    slots = Path(app.instance_path) / "verify-slots"
    slots.mkdir(parents=True, exist_ok=True)
    fd = os.open(slots / "verify-slot-0.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        path.write_bytes(signed.pdf)
        result = app.test_cli_runner().invoke(args=["verify-pdf", str(path)])
        assert result.exit_code == 2 and "BUSY" in result.output
    finally:
        os.close(fd)
