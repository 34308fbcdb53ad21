"""Flask commands: init-db, seed-demo, create-user, api-token, audit-verify, verify-pdf,
metrics."""
from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from . import audit, auth, db
from .models import User


def _session():
    return db.session_scope(current_app.extensions["returnprog.engine"])


def init_app(app: Flask) -> None:
    """Register the commands on ``app``."""
    from .mailsink import mail_sink_command
    from .scheduler import scheduler_command

    for command in (init_db, seed_demo, create_user, api_token, audit_verify,
                    scheduler_command, mail_sink_command, verify_pdf, metrics_command):
        app.cli.add_command(command)


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or upgrade the database schema (Alembic) and the instance folder."""
    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    db.upgrade(current_app.config["DATABASE_URL"])
    click.echo("database is at the newest schema")


@click.command("seed-demo")
@with_appcontext
@click.option("--force", is_flag=True, help="seed even when users already exist")
def seed_demo(force):
    """Create demo users (printing their passwords) and about twenty cases in every state."""
    from .seed import seed
    from .web.sessions import seal

    with _session() as session:
        if not force and session.execute(select(User.id).limit(1)).first():
            click.echo("demo data already present; not seeding again")
            return
        credentials = Path(current_app.instance_path) / "demo-credentials.txt"
        for line in seed(session, current_app.extensions["returnprog.policy"], seal,
                         credentials):
            click.echo(line)


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\n")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(auth.ROLES))
@click.option("--name", default="")
@click.option("--team", default="Team Noord")
def create_user(email, role, name, team):
    """Create a staff user; the password is prompted for, or read from standard input."""
    from marshmallow import ValidationError

    from .schemas import UserCreateSchema

    password = _read_password()
    try:
        data = UserCreateSchema().load({"email": email, "role": role, "name": name,
                                        "team": team, "password": password})
    except ValidationError as exc:
        raise click.ClickException(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.normalized_messages().items()))
    with _session() as session:
        try:
            auth.create_user(session, **data)
        except ValueError as exc:
            raise click.ClickException(str(exc))
    click.echo(f"created {data['email']} ({role})")


@click.command("api-token")
@with_appcontext
@click.argument("email")
def api_token(email):
    """Issue an API bearer token for a user; the token is printed on the last line."""
    with _session() as session:
        user = session.execute(select(User).where(User.email == email.strip().lower())
                               ).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"no user {email}")
        token = auth.issue_api_token(session, user)
    click.echo("API token (shown once; store it safely):")
    click.echo(token)


@click.command("audit-verify")
@with_appcontext
def audit_verify():
    """Check the audit chain end to end; report the first broken link."""
    with _session() as session:
        report = audit.verify(session)
    if report.ok:
        click.echo(f"audit chain intact: {report.events} events")
        return
    click.echo(f"audit chain BROKEN at event {report.broken_seq}: {report.reason}", err=True)
    sys.exit(1)


@click.command("verify-pdf")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@with_appcontext
def verify_pdf(file):
    """Check a signed PDF: valid only when the service's seal is intact, trusted and covers
    the whole file and its SHA-256 is in the register. The check runs bounded like the
    public page's (VERIFY_* settings). Exit code 0 valid, 1 not valid, 2 busy."""
    from . import verifier
    from .services import verification
    from .web.verify import limits, trusted_certs

    data = Path(file).read_bytes()
    with _session() as session:
        try:
            answer = verification.verify(session, data, trusted_certs(), channel="cli",
                                         limits=limits())
        except verifier.Busy:
            click.echo("BUSY: every check slot is taken (VERIFY_MAX_CONCURRENT); "
                       "try again in a minute", err=True)
            sys.exit(2)
    for line in verification.describe(answer):
        click.echo(line)
    sys.exit(0 if answer.valid else 1)


@click.command("metrics")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 3660),
              help="How many days back, today included.")
@click.option("--prefix", default="", help="Only counters whose name starts with this, "
              "e.g. verify.")
@with_appcontext
def metrics_command(days, prefix):
    """Print the daily counters (e.g. anonymous verifications per verdict: verify.web.valid,
    .invalid, .unchecked for files stopped by a limit, .busy for uploads refused at the
    concurrency cap), newest day first, with a total per counter."""
    import datetime as dt

    from .services import metrics

    since = metrics.today() - dt.timedelta(days=days - 1)
    with _session() as session:
        rows = metrics.counts(session, prefix=prefix, since=since)
    if not rows:
        click.echo(f"no counts since {since.isoformat()}")
        return
    totals: dict[str, int] = {}
    for day, name, count in rows:
        click.echo(f"{day.isoformat()}  {name:<28} {count:>8}")
        totals[name] = totals.get(name, 0) + count
    click.echo(f"total since {since.isoformat()}:")
    for name in sorted(totals):
        click.echo(f"            {name:<28} {totals[name]:>8}")
