"""Flask commands: init-db, seed-demo, create-user, set-person, api-token, audit-verify,
audit-checkpoint, verify-pdf, metrics, access-requests, records (:mod:`returnprog.cli_records`)."""
from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app

from .cli_base import OPERATOR, session as _session, with_app
from .roles import ROLES

# Only click, Flask and the roles at the top: ``flask --help`` imports this module to list
# the commands, and must not pay for the database layer, the services or the models (issue
# 11, item 4). Each command imports what it uses.


def init_app(app: Flask) -> None:
    """Register the commands on ``app``."""
    from .cli_records import records_group
    from .mailsink import mail_sink_command

    for command in (init_db, seed_demo, create_user, set_person, api_token, audit_verify,
                    audit_checkpoint, scheduler_command, mail_sink_command, verify_pdf,
                    metrics_command, access_requests_command, records_group,
                    queue_cache_command):
        app.cli.add_command(command)


@click.command("scheduler")
@click.option("--once", is_flag=True,
              help="run every job once (sweep, delivery, webhooks, checkpoint, records, "
                   "work-queue cache) and exit (for cron or checks)")
@with_app
def scheduler_command(once):
    """Run the reminder scheduler (sweep and SMTP delivery); one active per database."""
    from .scheduler import run_scheduler

    run_scheduler(current_app, once)


@click.command("queue-cache")
@with_app
def queue_cache_command():
    """Work out the work-queue cache of every open case that needs it now (the scheduler
    does this every QUEUE_CACHE_SECONDS; run it after a bulk load or a restore)."""
    from .services import Context
    from .services import queues

    with _session() as session:
        ctx = Context(session=session, policy=current_app.extensions["returnprog.policy"],
                      actor=None, channel="cli")
        total = queues.refresh_cache_fully(ctx)
    click.echo(f"{total} cases worked out")


@click.command("init-db")
@with_app
def init_db():
    """Create or upgrade the database schema (Alembic) and the instance folder; everything
    in the instance folder is made private (0600 files, 0700 folders)."""
    from . import db, files

    instance = files.private_dir(current_app.instance_path)
    key_file = instance / "secret_key"
    if not key_file.exists():
        files.write_private(key_file, secrets.token_hex(32), exclusive=True)
    db.make_sqlite_file_private(current_app.config["DATABASE_URL"])
    db.upgrade(current_app.config["DATABASE_URL"])
    files.tighten(instance)
    click.echo("database is at the newest schema")


@click.command("seed-demo")
@with_app
@click.option("--force", is_flag=True, help="seed even when users already exist")
def seed_demo(force):
    """Create demo users and about twenty cases in every state; the users' passwords are
    written to instance/demo-credentials.txt (0600), not printed."""
    from sqlalchemy import select

    from .models import User
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
@with_app
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", default="")
@click.option("--team", default="Team Noord")
@click.option("--person", default=None,
              help="the staff member's personnel number, shared by all their accounts "
                   "(four eyes compares people); without it the account is a person of its own")
def create_user(email, role, name, team, person):
    """Create a staff user; the password is prompted for, or read from standard input.

    The operator's way to make accounts, the first administrators included: it takes
    effect at once (an administrator in the web pages needs a second one for privileged
    roles) and is audited as the operator."""
    from marshmallow import ValidationError

    from . import auth
    from .schemas import UserCreateSchema

    password = _read_password()
    try:
        data = UserCreateSchema().load({"email": email, "role": role, "name": name,
                                        "team": team, "password": password,
                                        **({"person": person} if person else {})})
    except ValidationError as exc:
        raise click.ClickException(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.normalized_messages().items()))
    with _session() as session:
        try:
            auth.create_user(session, actor=OPERATOR, **data)
        except ValueError as exc:
            raise click.ClickException(str(exc))
    click.echo(f"created {data['email']} ({role})")


@click.command("set-person")
@with_app
@click.argument("email")
@click.argument("person")
def set_person(email, person):
    """Record the personnel number of an existing account (e.g. one made before persons
    existed), so that four eyes knows it belongs to that staff member. Audited as the
    operator; refused when it would give an administrator a case role or vice versa."""
    from . import auth
    from .messages import M
    from .schemas import PERSON_NUMBER

    if not PERSON_NUMBER.match(person):
        raise click.ClickException(str(M("validate.person_number")))
    with _session() as session:
        try:
            auth.set_person(session, email, person, actor=OPERATOR)
        except ValueError as exc:
            raise click.ClickException(str(exc))
    click.echo(f"{email.strip().lower()} now belongs to person {auth.normal_person(person)}")


@click.command("api-token")
@with_app
@click.argument("email")
def api_token(email):
    """Issue an API bearer token for a user; the token is printed on the last line."""
    from sqlalchemy import select

    from . import auth
    from .models import User

    with _session() as session:
        user = session.execute(select(User).where(User.email == email.strip().lower())
                               ).scalar_one_or_none()
        if user is None:
            raise click.ClickException(f"no user {email}")
        token = auth.issue_api_token(
            session, user, name="flask api-token",
            days=int(current_app.config.get("API_TOKEN_DAYS", auth.API_TOKEN_DAYS)))
    click.echo("API token (shown once; store it safely):")
    click.echo(token)


@click.command("audit-verify")
@with_app
def audit_verify():
    """Check the audit chain end to end and against its signed checkpoints outside the
    database; report the first broken link or checkpoint."""
    from . import anchor, audit
    from .web.verify import trusted_certs

    path = anchor.default_path(current_app.config, current_app.instance_path)
    anchors = anchor.read(path, trusted_certs(), anchor.chain_name(current_app.config))
    with _session() as session:
        report = audit.verify(session, checkpoints=anchors.checkpoints)
    for problem in anchors.problems:
        click.echo(f"audit checkpoint BROKEN: {problem}", err=True)
    if not report.ok:
        click.echo(f"audit chain BROKEN at event {report.broken_seq}: {report.reason}", err=True)
    if anchors.problems or not report.ok:
        sys.exit(1)
    click.echo(f"audit chain intact: {report.events} events")
    if report.destroyed:
        lists = ", ".join(str(n) for n in report.destruction_lists)
        click.echo(f"{report.destroyed} of them destroyed (personal details erased under "
                   f"destruction list {lists}; what remains of them verified)")
    latest = anchors.latest
    if latest is None:
        click.echo(f"no checkpoints in {path}: truncation of the chain cannot be detected yet")
    else:
        click.echo(f"{len(anchors.checkpoints)} checkpoints; the last covers event "
                   f"{latest.seq} (sealed {latest.at}); events after it rest on the chain alone")


@click.command("audit-checkpoint")
@with_app
def audit_checkpoint():
    """Seal the audit chain's head and append it to the checkpoint file (the scheduler
    does this every AUDIT_CHECKPOINT_SECONDS)."""
    import datetime as dt

    from . import anchor
    from .web.sessions import seal

    with _session() as session:
        made = anchor.checkpoint(session, current_app.config, current_app.instance_path,
                                 dt.datetime.now(dt.timezone.utc), seal=seal())
    if made is None:
        click.echo("the last checkpoint already covers the chain; nothing written")
    else:
        click.echo(f"checkpoint written: event {made.seq} at {made.at}")


@click.command("verify-pdf")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@with_app
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
@with_app
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


@click.command("access-requests")
@click.option("--within", default=7, show_default=True, type=click.IntRange(0, 366),
              help="Also list requests due within this many days.")
@with_app
def access_requests_command(within):
    """List the access requests still to answer that are overdue or due within --within
    days (issue 16), soonest first; exit code 1 when any is overdue."""
    import datetime as dt

    from .policy import TIMEZONE
    from .services import access_requests

    today = dt.datetime.now(TIMEZONE).date()
    with _session() as session:
        rows = access_requests.due_list(session, today, within)
    if not rows:
        click.echo(f"no access requests due within {within} days")
        return
    for r in rows:
        when = (f"OVERDUE by {-r['days_left']} days" if r["days_left"] < 0
                else f"due in {r['days_left']} days")
        click.echo(f"#{r['id']:<6} {r['reference']:<16} {r['status']:<9} "
                   f"due {r['due_on'].isoformat()}  {when}")
    if any(r["days_left"] < 0 for r in rows):
        sys.exit(1)
