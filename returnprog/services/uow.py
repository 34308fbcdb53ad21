"""The unit of work: the one commit boundary every writing use case goes through.

A use case takes the write lock (:func:`begin_write`), changes rows, and ends with
:func:`commit`; :func:`atomic` wraps it so that any error rolls everything back. Constraint
races and lock time-outs surface as a clean :class:`~returnprog.services.Conflict` instead
of a database exception, so two requests racing on one case give one winner and one clear
refusal.
"""
from __future__ import annotations

import functools

from sqlalchemy.exc import IntegrityError, OperationalError

from ..db import begin_write
from . import Conflict, Context

__all__ = ["BUSY_MESSAGE", "atomic", "begin_write", "commit", "flush_or_conflict"]

# The message code of a lost race or a lock time-out (see messages.MESSAGES).
BUSY_MESSAGE = "case.busy"


def atomic(fn):
    """Wrap a use case (first argument a Context or a Session) so that any error rolls the session back: a refusal never leaves a
    write lock (SQLite's BEGIN IMMEDIATE lasts until the transaction ends) or a half-done
    change behind."""

    @functools.wraps(fn)
    def run(ctx_or_session, *args, **kwargs):
        try:
            return fn(ctx_or_session, *args, **kwargs)
        except BaseException:
            # System jobs (the scheduler, verification) take a bare session, not a Context.
            getattr(ctx_or_session, "session", ctx_or_session).rollback()
            raise
    return run


def commit(ctx: Context, conflict_message: str = BUSY_MESSAGE) -> None:
    """Commit the unit of work, turning constraint races and lock time-outs into a clean
    Conflict after rolling everything back."""
    try:
        ctx.session.commit()
    except (IntegrityError, OperationalError) as exc:
        ctx.session.rollback()
        raise Conflict(conflict_message) from exc


def flush_or_conflict(ctx: Context, message: str = BUSY_MESSAGE) -> None:
    """Flush pending rows now, so that a unique constraint lost to a racing request is a
    Conflict here rather than an IntegrityError escaping from a later autoflush."""
    try:
        ctx.session.flush()
    except (IntegrityError, OperationalError) as exc:
        ctx.session.rollback()
        raise Conflict(message) from exc
