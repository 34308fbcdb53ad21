"""``flask records …``: the records lifecycle from the server (issue 16) — the retention
rules in force, a dry run of the next destruction, proposing a list, destroying approved
lists, and replaying the destruction register after a restore. Reviewing and approving
lists and placing holds are done by people on the records screens, never here."""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from .cli_base import session as _session, with_app


def _context(session):
    from .services import Context

    return Context(session=session, policy=current_app.extensions["returnprog.policy"],
                   actor=None, channel="cli")


def _register_dir():
    from .scheduler import register_dir

    return register_dir(current_app.config, current_app.instance_path)


@click.group("records")
def records_group():
    """The records lifecycle: retention rules, destruction lists and the register."""


@records_group.command("rules")
@with_app
def rules():
    """Print the retention rules in force, per final state, with their sources."""
    policy = current_app.extensions["returnprog.policy"]
    for rule in sorted(policy.retention_rules, key=lambda r: (r.final_state, r.effective_from)):
        term = f"{rule.term_months} months" if rule.nomination == "destroy" else "-"
        click.echo(f"{rule.final_state:<15} from {rule.effective_from}  {rule.nomination:<8} "
                   f"{term:<11} {rule.source}")


@records_group.command("dry-run")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of lines")
@with_app
def dry_run(as_json):
    """Print what the next destruction would remove (cases on approved lists, else the
    cases due today), changing nothing."""
    from .services import records

    with _session() as session:
        ctx = _context(session)
        preview = records.dry_run(session, ctx.today())
    if as_json:
        click.echo(json.dumps(preview, indent=2))
        return
    if not preview:
        click.echo("nothing would be destroyed")
        return
    for case in preview:
        rows = ", ".join(f"{n} {table}" for table, n in sorted(case["rows"].items()))
        held = "  (held: would be skipped)" if case["held"] else ""
        click.echo(f"{case['reference']}  {case['final_state']:<15} action date "
                   f"{case['action_date']}: {rows}{held}")
    click.echo(f"{len(preview)} case(s)")


@records_group.command("propose")
@with_app
def propose():
    """Propose a destruction list of the cases due today now (the records job does this
    by itself), for a records manager to review."""
    from .services import records

    with _session() as session:
        dlist = records.propose_list(_context(session))
        click.echo(f"destruction list {dlist.id} proposed" if dlist else "no case is due")


@records_group.command("destroy")
@click.option("--list", "list_id", type=int, help="one approved list (default: all of them)")
@with_app
def destroy(list_id):
    """Destroy the cases of approved destruction lists now (the records job does this by
    itself) and write each list to the destruction register."""
    from sqlalchemy import select

    from .models import DestructionList
    from .services import ServiceError, records

    with _session() as session:
        ctx = _context(session)
        ids = [list_id] if list_id else list(session.execute(
            select(DestructionList.id).where(DestructionList.status == "approved")
            .order_by(DestructionList.id)).scalars())
        session.rollback()
        for one in ids:
            try:
                outcome = records.run_destruction(ctx, one)
            except ServiceError as exc:
                click.echo(f"list {one}: {exc.message}", err=True)
                sys.exit(1)
            path = records.write_register(_register_dir(), records.register_record(session, one))
            click.echo(f"list {one}: {outcome['destroyed']} destroyed, {outcome['skipped']} "
                       f"skipped; register entry {path}")
        if not ids:
            click.echo("no approved destruction list")


@records_group.command("replay")
@click.option("--register", "directory", type=click.Path(file_okay=False),
              help="the destruction register (default: RECORDS_REGISTER_DIR)")
@with_app
def replay(directory):
    """After restoring a backup: destroy again every case the destruction register says
    was destroyed. Run it before the service takes requests again."""
    from pathlib import Path

    from .services import records

    path = Path(directory) if directory else _register_dir()
    entries = records.read_register(path) if path.is_dir() else []
    with _session() as session:
        outcome = records.replay(_context(session), entries)
    click.echo(f"{len(entries)} register entries read; {outcome['destroyed']} case(s) "
               f"destroyed again in {outcome['lists']} list(s)")
