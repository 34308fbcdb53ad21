"""The real scheduler process delivers webhooks as it delivers mail: ``flask --app wsgi
scheduler --once`` against a real database POSTs the queued event to a receiver on
127.0.0.1, signed with the secret only the server's SECRET_KEY opens."""
from __future__ import annotations

import subprocess

from sqlmodel import Session
from standardwebhooks.webhooks import Webhook

from returnprog import workflow
from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context
from returnprog.services import cases as case_service
from returnprog.services import webhooks as service

from ..conftest import Staff, drive_to, fake_sign
from .test_reminders_delivery import free_port
from .test_reminders_scheduler import FLASK, ROOT, scheduler_env, sqlite_db  # noqa: F401
from .test_webhooks_delivery import Receiver


def test_the_scheduler_process_delivers_a_signed_webhook(sqlite_db):
    url, engine = sqlite_db
    with Session(engine, expire_on_commit=False) as session:
        staff = Staff(session)

        def ctx_for(user, today=None):
            return Context(session=session, policy=DEFAULT_POLICY, actor=user, ip="127.0.0.1")

        case = drive_to(ctx_for, staff, session, "intake", adults=1, minors=0)
        with Receiver() as receiver:
            _, secret = service.create(ctx_for(staff.counsellor), receiver.url,
                                       ["case.state_changed"], secret_key="test",
                                       allow_loopback=True)
            fake_sign(session, case, workflow.COMMITMENT)
            case_service.perform(ctx_for(staff.counsellor), case.reference,
                                 "confirm_commitment", {})
            env = scheduler_env(url, free_port(), WEBHOOK_ALLOW_LOOPBACK="true")
            done = subprocess.run(FLASK + ["scheduler", "--once"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        assert len(receiver.requests) == 1, done.stdout + done.stderr
        headers, body = receiver.requests[0]
        assert Webhook(secret).verify(body, headers)["data"]["to"] == "committed"
        assert "webhooks:" in done.stdout + done.stderr  # the job reports what it did
