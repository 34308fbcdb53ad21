"""The operator's commands: create-user (password from standard input), api-token (the
token on the last line, and it works against the API) and audit-verify."""
from __future__ import annotations

from sqlalchemy import func, select, update
from sqlmodel import Session

from returnprog import auth
from returnprog.models import ApiToken, AuditEvent, User

PASSWORD = "a long enough passphrase"


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def users(app) -> dict[str, User]:
    with Session(app.extensions["returnprog.engine"]) as s:
        return {u.email: u for u in s.execute(select(User)).scalars()}


def test_create_user_reads_the_password_from_standard_input(app):
    result = run(app, "create-user", "Nina@DTenV.example", "--role", "supervisor",
                 "--name", "Nina de Vries", "--team", "Team Oost", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "created nina@dtenv.example (supervisor)" in result.output.lower()
    assert PASSWORD not in result.output
    user = users(app)["nina@dtenv.example"]
    assert user.role == "supervisor" and user.name == "Nina de Vries" and user.active
    assert auth.check_password(user, PASSWORD)
    assert not auth.check_password(user, PASSWORD + "\n")
    assert PASSWORD not in user.password_hash
    with Session(app.extensions["returnprog.engine"]) as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "create_user")).scalar_one()
        assert "nina@dtenv.example" in event.details and PASSWORD not in event.details


def test_create_user_refuses_a_short_password(app):
    for password in ("short", "", "elevenchars"):
        result = run(app, "create-user", "kim@dtenv.example", "--role", "counsellor",
                     input=password + "\n")
        assert result.exit_code != 0, result.output
        assert "password" in result.output and "12" in result.output
        assert "Traceback" not in result.output
    assert "kim@dtenv.example" not in users(app)
    # Nothing on standard input at all is refused the same way.
    result = run(app, "create-user", "kim@dtenv.example", "--role", "counsellor", input="")
    assert result.exit_code != 0
    assert "kim@dtenv.example" not in users(app)


def test_create_user_refuses_an_unknown_role(app):
    for role in ("director", "ADMIN", ""):
        result = run(app, "create-user", "kim@dtenv.example", "--role", role, input=PASSWORD + "\n")
        assert result.exit_code == 2, result.output  # a usage error, before any password is read
        assert "role" in result.output.lower()
    result = run(app, "create-user", "kim@dtenv.example", input=PASSWORD + "\n")
    assert result.exit_code == 2 and "--role" in result.output
    assert users(app) == {}


def test_create_user_refuses_a_bad_email_and_a_duplicate(app):
    result = run(app, "create-user", "not-an-email", "--role", "counsellor", input=PASSWORD + "\n")
    assert result.exit_code != 0 and "email" in result.output
    assert run(app, "create-user", "kim@dtenv.example", "--role", "counsellor",
               input=PASSWORD + "\n").exit_code == 0
    result = run(app, "create-user", "KIM@dtenv.example", "--role", "finance",
                 input=PASSWORD + "\n")
    assert result.exit_code != 0 and "already exists" in result.output
    assert [u.role for u in users(app).values()] == ["counsellor"]


def test_api_token_prints_a_working_token_on_its_last_line(app, client):
    assert run(app, "create-user", "kim@dtenv.example", "--role", "counsellor",
               input=PASSWORD + "\n").exit_code == 0
    result = run(app, "api-token", "Kim@dtenv.example")
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    resp = client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["total"] == 0
    # The token works for writing too: the counsellor can open a case with it.
    from ..web.test_api import body
    resp = client.post("/api/v1/cases", json=body(), headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    counsellor = resp.get_json()["counsellor"]  # named as every answer names a user
    assert counsellor["name"] == "kim" and isinstance(counsellor["id"], int)
    # Only the hash is stored; a second token is different and both work.
    second = run(app, "api-token", "kim@dtenv.example").output.strip().splitlines()[-1]
    assert second != token
    with Session(app.extensions["returnprog.engine"]) as s:
        hashes = s.execute(select(ApiToken.token_hash)).scalars().all()
    assert token not in hashes and auth.hash_token(token) in hashes and len(hashes) == 2
    for t in (token, second):
        assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {t}"}).status_code == 200
    # Revoking it ends it.
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(ApiToken).where(ApiToken.token_hash == auth.hash_token(token))
                  .values(revoked=True))
        s.commit()
    assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get("/api/v1/cases", headers={"Authorization": f"Bearer {second}"}).status_code == 200


def test_api_token_for_an_unknown_user_fails_cleanly(app):
    result = run(app, "api-token", "nobody@dtenv.example")
    assert result.exit_code == 1
    assert "no user nobody@dtenv.example" in result.output
    with Session(app.extensions["returnprog.engine"]) as s:
        assert s.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_audit_verify_reports_an_intact_chain_and_the_first_broken_link(app, client):
    result = run(app, "audit-verify")
    assert result.exit_code == 0, result.output
    assert "audit chain intact: 0 events" in result.output
    assert run(app, "create-user", "kim@dtenv.example", "--role", "counsellor",
               input=PASSWORD + "\n").exit_code == 0
    token = run(app, "api-token", "kim@dtenv.example").output.strip().splitlines()[-1]
    from ..web.test_api import body
    headers = {"Authorization": f"Bearer {token}"}
    ref = client.post("/api/v1/cases", json=body(), headers=headers).get_json()["reference"]
    assert client.get(f"/api/v1/cases/{ref}", headers=headers).status_code == 200
    with Session(app.extensions["returnprog.engine"]) as s:
        events = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    assert events == 3  # create_user, issue_api_token, open_case (the read is in the access log)
    result = run(app, "audit-verify")
    assert result.exit_code == 0, result.output
    assert f"audit chain intact: {events} events" in result.output
    # Editing one event is reported with its sequence number.
    with Session(app.extensions["returnprog.engine"]) as s:
        s.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="someone@else"))
        s.commit()
    result = run(app, "audit-verify")
    assert result.exit_code == 1
    assert "audit chain BROKEN at event 3" in result.output
