"""Use cases of staff accounts: sign in (with lockout after repeated failures), sign out
(which makes every earlier session cookie useless), and the administrators' user
management. Like every service, each function commits a whole change with its audit event
or raises having changed nothing."""
from __future__ import annotations

import datetime as dt
from functools import cache

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from .. import audit, auth
from ..db import begin_write
from ..models import Team, User
from ..roles import ADMIN
from . import Conflict, Context, Forbidden, Invalid, NotFound, ServiceError
from ..messages import M
from .uow import atomic, commit

MAX_FAILURES = 5
LOCK_MINUTES = 15


@cache
def _dummy_hash() -> str:
    """A real hash of a throwaway password: checking it takes as long as checking a real
    user's, so the answer time does not reveal whether an address has an account."""
    return generate_password_hash("not-a-password-0c5b2f")


class SignInRefused(ServiceError):
    """Wrong address or password, an inactive account, or a temporary lock."""

    status, code = 401, "sign_in_refused"

    def __init__(self, message: str, locked_until: dt.datetime | None = None):
        super().__init__(message)
        self.locked_until = locked_until


WRONG = "account.sign_in_wrong"
LOCKED = "account.locked"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


@atomic
def authenticate(ctx: Context, email: str, password: str, *, max_failures: int = MAX_FAILURES,
                 lock_minutes: int = LOCK_MINUTES) -> User:
    """The user signing in with ``email`` and ``password``.

    After ``max_failures`` wrong passwords in a row the account is locked for
    ``lock_minutes``; while locked even the right password is refused.
    """
    begin_write(ctx.session)
    now = ctx.now()
    user = ctx.session.execute(select(User).where(
        User.email == (email or "").strip().lower())).scalar_one_or_none()
    if user is None or not user.active or not user.password_hash:
        check_password_hash(_dummy_hash(), password or "")
        ctx.session.rollback()
        raise SignInRefused(WRONG)
    locked_until = _aware(user.locked_until)
    if locked_until is not None and locked_until > now:
        ctx.session.rollback()
        raise SignInRefused(LOCKED, locked_until)
    if not auth.check_password(user, password or ""):
        failures = ctx.session.execute(
            update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)).scalar_one()
        lock = None
        if failures >= max_failures:
            lock = now + dt.timedelta(minutes=lock_minutes)
            ctx.session.execute(update(User).where(User.id == user.id)
                                .values(failed_logins=0, locked_until=lock))
        audit.append(ctx.session, actor=user, action="sign_in_locked" if lock else "sign_in_failed",
                     details={"failures": failures}, ip=ctx.ip)
        commit(ctx)
        raise SignInRefused(LOCKED if lock else WRONG, lock)
    ctx.session.execute(update(User).where(User.id == user.id)
                        .values(failed_logins=0, locked_until=None))
    audit.append(ctx.session, actor=user, action="sign_in", ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(user)
    return user


@atomic
def sign_out(ctx: Context, user_id: int) -> int:
    """End the user's sessions: the session epoch moves on, so any cookie issued before —
    including a copy of the one just used — is refused from now on. Returns the new epoch."""
    begin_write(ctx.session)
    epoch = ctx.session.execute(update(User).where(User.id == user_id)
                                .values(session_epoch=User.session_epoch + 1)
                                .returning(User.session_epoch)).scalar_one_or_none()
    if epoch is None:
        ctx.session.rollback()
        raise NotFound('account.no_such_user')
    audit.append(ctx.session, actor=ctx.actor, action="sign_out", ip=ctx.ip)
    commit(ctx)
    return epoch


def session_user(ctx: Context, user_id: int, epoch) -> User | None:
    """The active user of a session cookie, or None when the cookie's epoch is stale
    (signed out, password reset, deactivated) or the user is gone."""
    user = ctx.session.get(User, user_id)
    if user is None or not user.active or epoch != user.session_epoch:
        return None
    return user


# --- user administration (admins only) --------------------------------------------------------

def _admin(ctx: Context) -> None:
    if ctx.actor is None or ctx.actor.role != ADMIN:
        raise Forbidden('account.admin_only')


def list_users(ctx: Context) -> list[dict]:
    """Every staff user with team, role, status and lock."""
    _admin(ctx)
    rows = ctx.session.execute(select(User, Team.name).outerjoin(Team, Team.id == User.team_id)
                               .order_by(User.email)).all()
    now = ctx.now()
    return [{"id": u.id, "email": u.email, "name": u.name, "role": u.role, "team": team,
             "active": u.active, "created_at": u.created_at,
             "locked_until": _aware(u.locked_until)
             if u.locked_until and _aware(u.locked_until) > now else None}
            for u, team in rows]


def get_user(ctx: Context, user_id: int) -> User:
    """One user, for an administrator."""
    _admin(ctx)
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound('account.no_such_user')
    return user


@atomic
def create_user(ctx: Context, data: dict) -> User:
    """Create a staff user from validated data (:class:`~returnprog.schemas.UserCreateSchema`)."""
    _admin(ctx)
    begin_write(ctx.session)
    try:
        return auth.create_user(ctx.session, actor=ctx.actor, **data)
    except ValueError as exc:
        ctx.session.rollback()
        raise Invalid('error.invalid_fields', {"email": [
            M('account.email_taken')]}) from exc


@atomic
def set_active(ctx: Context, user_id: int, active: bool) -> User:
    """Deactivate (or reactivate) a user; deactivating ends their sessions at once."""
    _admin(ctx)
    begin_write(ctx.session)
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound('account.no_such_user')
    if user.id == ctx.actor.id and not active:
        ctx.session.rollback()
        raise Conflict('account.self_deactivate')
    values = {"active": active}
    if not active:
        values["session_epoch"] = User.session_epoch + 1
    ctx.session.execute(update(User).where(User.id == user.id).values(**values))
    audit.append(ctx.session, actor=ctx.actor, action="activate_user" if active else "deactivate_user",
                 details={"user": user.email}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(user)
    return user


@atomic
def reset_password(ctx: Context, user_id: int, password: str) -> User:
    """Give a user a new password (validated by the caller's schema); ends their sessions
    and lifts a lock."""
    _admin(ctx)
    begin_write(ctx.session)
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound('account.no_such_user')
    auth.set_password(user, password)
    user.failed_logins, user.locked_until = 0, None
    audit.append(ctx.session, actor=ctx.actor, action="reset_password",
                 details={"user": user.email}, ip=ctx.ip)
    commit(ctx)
    return user
