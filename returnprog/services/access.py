"""Recording a look at personal data (the access log) without turning the read into a
serialised write: see :mod:`returnprog.access_log`."""
from __future__ import annotations

from .. import access_log
from . import Context
from .uow import atomic, commit


@atomic
def record_look(ctx: Context, case_id: int, view: str, subject: str = "") -> None:
    """Log that ``ctx.actor`` looked at ``view`` of case ``case_id``, then end the read.

    Called at the end of a read use case, after everything shown has been read. The
    existence check is part of the read; the read's transaction then ends before anything
    is written, so a SQLite reader never has to upgrade a stale snapshot to a writer, and a
    look already logged in this interval writes nothing (and, once this process has seen
    its row, reads nothing either). When the log cannot be written the
    read fails (Conflict): personal data is not shown unrecorded.
    """
    look = access_log.Look(case_id=case_id, view=view, subject=subject, channel=ctx.channel)
    now = ctx.now()
    logged = access_log.already_logged(ctx.session, ctx.actor, look, now)
    ctx.session.commit()  # nothing was written: this only ends the read snapshot
    if not logged:
        access_log.record(ctx.session, ctx.actor, look, now, ip=ctx.ip)
        commit(ctx)
        access_log.remember(ctx.session, ctx.actor, look, now)
