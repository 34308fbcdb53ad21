"""Use cases of staff accounts: sign in (with a progressive delay per account and
address after repeated failures), sign out (which makes every earlier session cookie
useless), and the administrators' user management. Like every service, each function
commits a whole change with its audit event or raises having changed nothing."""
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


@cache
def _dummy_hash() -> str:
    """A real hash of a throwaway password: checking it takes as long as checking a real
    user's, so the answer time does not reveal whether an address has an account."""
    return generate_password_hash("not-a-password-0c5b2f")


class SignInRefused(ServiceError):
    """Wrong address or password, or an inactive account: one answer for all three."""

    status, code = 401, "sign_in_refused"


class SignInThrottled(ServiceError):
    """Too many failed attempts for this account from this address: the attempt was not
    even checked; ``wait`` seconds must pass first."""

    status, code = 429, "sign_in_throttled"

    def __init__(self, wait: int):
        super().__init__(THROTTLED, seconds=int(wait))
        self.wait = int(wait)


WRONG = "account.sign_in_wrong"
THROTTLED = "account.sign_in_wait"


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _password_matches(stored_hash: str | None, password: str) -> bool:
    """Check ``password`` against ``stored_hash`` — or, when there is no usable account,
    against a dummy hash, so that both paths cost one real hash check."""
    matches = check_password_hash(stored_hash or _dummy_hash(), password)
    return bool(stored_hash) and matches


@atomic
def authenticate(ctx: Context, email: str, password: str, throttle=None) -> User:
    """The user signing in with ``email`` and ``password`` from ``ctx.ip``.

    An unknown address, a wrong password and a deactivated account get the same refusal
    (:class:`SignInRefused`, same message), after the same kind of work (one password
    hash check), so the answer does not tell which accounts exist. ``throttle``
    (:class:`returnprog.limiter.SignInThrottle`) slows repeated failures down per account
    and address: while it says wait, :class:`SignInThrottled` is raised without looking
    at the password. There is no lockout that a stranger could trigger for the owner.
    The throttle's counters are written outside this use case's transaction.
    """
    email = (email or "").strip().lower()
    if throttle is not None:
        wait = throttle.wait(email, ctx.ip)
        if wait:
            raise SignInThrottled(wait)
    # Read and check without the write lock: a password hash takes a while by design.
    user = ctx.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    usable = user is not None and user.active and bool(user.password_hash)
    if not _password_matches(user.password_hash if usable else None, password or ""):
        try:
            if usable:
                begin_write(ctx.session)
                audit.append(ctx.session, actor=user, action="sign_in_failed", ip=ctx.ip)
                commit(ctx)
            else:
                ctx.session.rollback()
        finally:
            # Counted even if the audit write lost a race (commit rolled back already, so
            # no write lock is held): a busy database gives no free guesses.
            if throttle is not None:
                throttle.failed(email, ctx.ip)
        raise SignInRefused(WRONG)
    begin_write(ctx.session)
    if not user.active:  # deactivated while the password was being checked
        ctx.session.rollback()
        raise SignInRefused(WRONG)
    audit.append(ctx.session, actor=user, action="sign_in", ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(user)
    if throttle is not None:
        throttle.succeeded(email, ctx.ip)
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
