"""The local mail sink: one .eml file per message, a re-sent copy stored once, and the
helpers an admin page uses to list and read the files."""
import datetime as dt
import smtplib
from types import SimpleNamespace

import pytest

from returnprog import mailsink
from returnprog import reminders as plan
from returnprog.services import outbox

from ..integration.test_reminders_delivery import free_port


def row(n: int, lang: str = "uk"):
    """An outbox-like row holding a 7-day reminder for participant ``n``."""
    deadline = dt.date(2027, 1, 11)
    msg = plan.deadline_reminder(
        plan.CaseInfo(n, f"VRP-2027-{n:06d}", deadline, "Anna", "anna@dtenv.example", 2),
        7, deadline - dt.timedelta(days=7),
        plan.Recipient(f"p{n}@example.org", lang, "participant", "Olena", "Олена"))
    return SimpleNamespace(idempotency_key=msg.key, recipient=msg.recipient, subject=msg.subject,
                           body_text=msg.body_text, body_html=msg.body_html, kind=msg.kind,
                           language=msg.language)


@pytest.fixture
def sink(tmp_path):
    port = free_port()
    controller = mailsink.start(tmp_path / "mail", "127.0.0.1", port)
    yield SimpleNamespace(port=port, dir=tmp_path / "mail", handler=controller.handler)
    controller.stop()


def send(port, *rows):
    settings = outbox.SmtpSettings(port=port)
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
        for r in rows:
            smtp.send_message(outbox.build_email(r, settings))


def test_each_message_becomes_one_eml_file_that_reads_back(sink):
    send(sink.port, row(1, "uk"), row(2, "ru"))
    files = sorted(p.name for p in sink.dir.iterdir())
    assert len(files) == 2 and all(mailsink.NAME_PATTERN.match(n) for n in files)
    listed = mailsink.list_messages(sink.dir)
    assert [e.name for e in listed] == sorted(files, reverse=True)  # newest first
    entry = next(e for e in listed if e.to == "p1@example.org")
    assert entry.kind == "deadline_reminder_7d" and entry.language == "nl, uk"
    assert "Нагадування" in entry.subject and entry.mail_from == "returnprog@dtenv.example"
    msg = mailsink.read_message(sink.dir, entry.name)
    assert msg["X-Sink-Rcpt-To"] == "p1@example.org"
    assert msg["X-Sink-Mail-From"] == "returnprog@dtenv.example"
    assert "Залишилося 7 днів" in msg.get_body(("plain",)).get_content()
    assert msg.get_body(("html",)).get_content().startswith("<!DOCTYPE html>")


def test_a_copy_with_the_same_message_id_is_stored_once(sink, tmp_path):
    send(sink.port, row(1))
    send(sink.port, row(1))  # re-sent after a crash of the sender
    assert len(list(sink.dir.glob("*.eml"))) == 1
    assert (sink.handler.stored, sink.handler.duplicates) == (1, 1)
    # A restarted sink still knows what it stored.
    again = mailsink.SinkHandler(sink.dir)
    assert len(again.seen) == 1


def test_reading_refuses_anything_but_the_sinks_own_file_names(sink):
    send(sink.port, row(1))
    for bad in ("../secret_key", "x.eml", "", "/etc/passwd"):
        with pytest.raises(FileNotFoundError):
            mailsink.read_message(sink.dir, bad)
    assert mailsink.list_messages(sink.dir / "missing") == []
