"""What the run log may hold: no recipients' addresses from the mail sink, no demo
passwords from ``seed-demo`` (only ``instance/demo-credentials.txt`` holds those, and the
log says where it is)."""
from __future__ import annotations

import logging
import re
import socket
import smtplib

import pytest

from returnprog import mailsink, seed

from .test_file_modes import instance_app  # noqa: F401 - fixture

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def test_the_mail_sink_logs_a_count_not_the_recipients(tmp_path, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = mailsink.start(tmp_path / "mail", "127.0.0.1", port)
    try:
        with caplog.at_level(logging.DEBUG):
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.sendmail("returnprog@dtenv.example",
                              ["olena.kovalenko@example.org", "andrii@example.org"],
                              b"Subject: reminder\r\nMessage-ID: <log-1@dtenv.example>\r\n"
                              b"To: olena.kovalenko@example.org\r\n\r\nbody\r\n")
    finally:
        controller.stop()
    stored = [r.getMessage() for r in caplog.records if r.name == "returnprog.mailsink"]
    assert any(re.search(r"stored \S+\.eml for 2 recipient\(s\)", m) for m in stored), stored
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "olena.kovalenko" not in everything and "andrii@" not in everything
    # the message itself is kept in full for the demo user to read
    (eml,) = (tmp_path / "mail").glob("*.eml")
    assert b"olena.kovalenko@example.org" in eml.read_bytes()


def test_seed_demo_prints_where_the_passwords_are_not_the_passwords(instance_app,  # noqa: F811
                                                                   monkeypatch):
    app = instance_app
    monkeypatch.setattr(seed, "PLAN", [])  # the users are what matters here
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    credentials = app.instance_path + "/demo-credentials.txt"
    lines = open(credentials).read().splitlines()
    passwords = [line.split()[-1] for line in lines]
    assert len(passwords) == len(seed.STAFF) and all(len(p) >= 16 for p in passwords)
    for password in passwords:
        assert password not in result.output
    assert not EMAIL.search(result.output)  # nor the accounts' addresses
    assert credentials in result.output
