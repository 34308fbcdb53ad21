"""Use cases of staff accounts: sign in (with a progressive delay per account and
address after repeated failures), sign out (which makes every earlier session cookie
useless), and the administrators' user management under four eyes between people:
administrators do no case work, and a new privileged account, a role change or a new
password for someone else's privileged account waits for a second administrator (another
person) to approve it. Like every service, each function commits a whole change with its
audit event or raises having changed nothing."""
from __future__ import annotations

import datetime as dt
from functools import cache

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.security import check_password_hash, generate_password_hash

from .. import audit, auth, passwords
from ..db import begin_write
from ..models import PENDING, AccountRequest, Team, User
from ..roles import ADMIN, PRIVILEGED_ROLES, ROLES
from . import Conflict, Context, Forbidden, Invalid, NotFound, ServiceError
from ..messages import M
from .uow import atomic, commit, flush_or_conflict


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


# Every staff page asks (the session cookie's user): built once.
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


def session_user(ctx: Context, user_id: int, epoch) -> User | None:
    """The active user of a session cookie, or None when the cookie's epoch is stale
    (signed out, password reset, deactivated) or the user is gone."""
    user = ctx.session.execute(_USER_BY_ID, {"user_id": user_id}).scalar_one_or_none()
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
             "person": u.person,
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


def _field(field: str, code: str, **params) -> Invalid:
    return Invalid('error.invalid_fields', {field: [M(code, **params)]})


def _same_person(a: User | None, b: User | None) -> bool:
    return a is not None and b is not None and (a.id == b.id or a.person == b.person)


def _email_free(ctx: Context, email: str) -> None:
    """Refuse an address that has an account or a request waiting for one."""
    taken = ctx.session.execute(select(User.id).where(User.email == email)).first() or \
        ctx.session.execute(select(AccountRequest.id).where(
            AccountRequest.email == email, AccountRequest.status == PENDING)).first()
    if taken:
        raise _field("email", 'account.email_taken')


def _request(ctx: Context, action: str, **values) -> AccountRequest:
    """Record a privileged change for a second administrator's decision (audited)."""
    request = AccountRequest(requested_by=ctx.actor.id, requested_at=ctx.now(), **values)
    ctx.session.add(request)
    flush_or_conflict(ctx, 'account.request_exists')
    audit.append(ctx.session, actor=ctx.actor, action=action,
                 details={"request_id": request.id, "user": request.email,
                          "role": request.role, "old_role": request.old_role,
                          "person": request.person}, ip=ctx.ip)
    commit(ctx, 'account.request_exists')
    return request


@atomic
def create_user(ctx: Context, data: dict) -> User | AccountRequest:
    """Create a staff user from validated data (:class:`~returnprog.schemas.UserCreateSchema`).

    The personnel number is required. A counsellor account takes effect at once; an
    account with a privileged role (supervisor, finance, admin) becomes a pending
    :class:`~returnprog.models.AccountRequest` that another administrator — another
    person — must approve (:func:`decide_request`). Refused: an account for the
    administrator's own personnel number, a case role for a person who is an administrator
    and an administrator account for a person who does case work."""
    _admin(ctx)
    begin_write(ctx.session)
    if data.get("role") not in ROLES:
        raise _field("role", "validate.one_of", choices=", ".join(ROLES))
    person = auth.normal_person(data.get("person"))
    if not person:
        raise _field("person", 'account.person_required')
    if person == ctx.actor.person:
        raise _field("person", 'account.own_person')
    problem = auth.person_role_problem(ctx.session, person, data["role"])
    if problem:
        raise _field("role", problem)
    email = data["email"].strip().lower()
    _email_free(ctx, email)
    try:
        password_hash = auth.hash_new_password(data["password"], email=email,
                                               name=data.get("name", ""))
    except passwords.WeakPassword as exc:
        raise Invalid('error.invalid_fields', {"password": exc.messages}) from exc
    team = data.get("team") or "Team Noord"
    if data["role"] in PRIVILEGED_ROLES:
        return _request(ctx, "request_create_user", kind="create_user", email=email,
                        name=data.get("name") or email.split("@")[0], team=team,
                        person=person, role=data["role"], password_hash=password_hash)
    try:
        user = auth.add_user(ctx.session, email=email, role=data["role"],
                             name=data.get("name", ""), team=team, person=person,
                             password_hash=password_hash)
    except (ValueError, IntegrityError, OperationalError) as exc:
        # The same address taken at the same moment by another administrator.
        ctx.session.rollback()
        raise _field("email", 'account.email_taken') from exc
    audit.append(ctx.session, actor=ctx.actor, action="create_user",
                 details={"user": email, "role": user.role, "team": team, "person": person},
                 ip=ctx.ip)
    commit(ctx, 'account.email_taken')
    return user


@atomic
def request_role_change(ctx: Context, user_id: int, role: str) -> AccountRequest:
    """Ask for another role for an account; it takes effect when a second administrator
    approves it. Never for an account of the administrator's own person."""
    _admin(ctx)
    begin_write(ctx.session)
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound('account.no_such_user')
    if role not in ROLES:
        raise _field("role", "validate.one_of", choices=", ".join(ROLES))
    if _same_person(user, ctx.actor):
        raise Forbidden('account.own_person')
    if role == user.role:
        raise _field("role", 'account.role_unchanged')
    problem = auth.person_role_problem(ctx.session, user.person, role, except_user_id=user.id)
    if problem:
        raise _field("role", problem)
    return _request(ctx, "request_role_change", kind="change_role", user_id=user.id,
                    email=user.email, name=user.name, person=user.person, role=role,
                    old_role=user.role)


def _pending(ctx: Context, request_id: int) -> AccountRequest:
    # Row-locked (PostgreSQL): of two administrators deciding at once, the second waits and
    # then finds it decided. SQLite is serialised by begin_write already.
    request = ctx.session.execute(
        select(AccountRequest).where(AccountRequest.id == request_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if request is None:
        raise NotFound('account.no_such_request')
    if request.status != PENDING:
        raise Conflict('account.request_decided')
    return request


def _recheck(ctx: Context, request: AccountRequest) -> User | None:
    """The rules again at decision time (things may have changed since the request)."""
    user = None
    if request.kind == "create_user":
        if ctx.session.execute(select(User.id).where(User.email == request.email)).first():
            raise Conflict('account.email_taken')
    else:
        user = ctx.session.get(User, request.user_id)
        if user is None or (request.kind == "change_role" and user.role != request.old_role):
            raise Conflict('account.request_stale')
    if request.kind != "reset_password":
        problem = auth.person_role_problem(ctx.session, request.person, request.role,
                                           except_user_id=request.user_id)
        if problem:
            raise Conflict(problem)
    return user


@atomic
def decide_request(ctx: Context, request_id: int, approve: bool,
                   reason: str | None = None) -> AccountRequest:
    """A second administrator approves (the change takes effect now) or rejects a pending
    request. Never the requester, nor another account of the requester's person, nor the
    person the request is about. Both outcomes are audited."""
    _admin(ctx)
    begin_write(ctx.session)
    request = _pending(ctx, request_id)
    requester = ctx.session.get(User, request.requested_by)
    if _same_person(requester, ctx.actor):
        raise Forbidden('account.request_own')
    if request.person == ctx.actor.person:
        raise Forbidden('account.request_own_person')
    now = ctx.now()
    if approve:
        user = _recheck(ctx, request)
        if request.kind == "create_user":
            try:
                user = auth.add_user(ctx.session, email=request.email, role=request.role,
                                     name=request.name, team=request.team,
                                     person=request.person, password_hash=request.password_hash)
            except (ValueError, IntegrityError, OperationalError) as exc:
                ctx.session.rollback()
                raise Conflict('account.email_taken') from exc
        elif request.kind == "change_role":
            # A new role is new permissions: sessions under the old one end.
            user.role = request.role
            user.session_epoch += 1
        else:
            auth.set_password_hash(user, request.password_hash)
            user.failed_logins, user.locked_until = 0, None
        ctx.session.flush()
    changed = ctx.session.execute(
        update(AccountRequest).where(AccountRequest.id == request.id,
                                     AccountRequest.status == PENDING)
        .values(status="approved" if approve else "rejected", decided_by=ctx.actor.id,
                decided_at=now, reason=(reason or "").strip() or None, password_hash="",
                user_id=user.id if approve else request.user_id)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        raise Conflict('account.request_decided')
    audit.append(ctx.session, actor=ctx.actor,
                 action="approve_account_request" if approve else "reject_account_request",
                 details={"request_id": request.id, "kind": request.kind,
                          "user": request.email, "role": request.role,
                          "old_role": request.old_role, "person": request.person,
                          "requested_by": requester.email if requester else None},
                 ip=ctx.ip)
    commit(ctx, 'account.request_decided')
    ctx.session.refresh(request)
    return request


def list_requests(ctx: Context, pending_only: bool = True) -> list[dict]:
    """Account requests (newest first) with who asked and who decided, for administrators;
    ``mine`` tells the reader's own, which he cannot decide."""
    _admin(ctx)
    query = select(AccountRequest).order_by(AccountRequest.id.desc())
    if pending_only:
        query = query.where(AccountRequest.status == PENDING)
    rows = ctx.session.execute(query).scalars().all()
    ids = {r.requested_by for r in rows} | {r.decided_by for r in rows if r.decided_by}
    people = {u.id: u for u in ctx.session.execute(
        select(User).where(User.id.in_(ids))).scalars()} if ids else {}
    out = []
    for r in rows:
        requester = people.get(r.requested_by)
        out.append({"id": r.id, "kind": r.kind, "status": r.status, "email": r.email,
                    "name": r.name, "team": r.team, "person": r.person, "role": r.role,
                    "old_role": r.old_role, "requested_at": r.requested_at,
                    "requested_by": requester.email if requester else None,
                    "decided_by": people[r.decided_by].email if r.decided_by in people
                    else None, "decided_at": r.decided_at,
                    "mine": _same_person(requester, ctx.actor) or r.person == ctx.actor.person})
    return out


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
def reset_password(ctx: Context, user_id: int, password: str) -> User | AccountRequest:
    """Give a user a new password (checked by the policy as typed, with the user's own
    address and name); ends their sessions and lifts a lock. For someone else's account
    with a privileged role (supervisor, finance, admin) this is a request a second
    administrator approves — else one administrator could sign in as a supervisor."""
    _admin(ctx)
    begin_write(ctx.session)
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound('account.no_such_user')
    try:
        password_hash = auth.hash_new_password(password, email=user.email, name=user.name)
    except passwords.WeakPassword as exc:
        raise Invalid('error.invalid_fields', {"password": exc.messages}) from exc
    if user.role in PRIVILEGED_ROLES and not _same_person(user, ctx.actor):
        return _request(ctx, "request_reset_password", kind="reset_password",
                        user_id=user.id, email=user.email, name=user.name,
                        person=user.person, role=user.role, password_hash=password_hash)
    auth.set_password_hash(user, password_hash)
    user.failed_logins, user.locked_until = 0, None
    audit.append(ctx.session, actor=ctx.actor, action="reset_password",
                 details={"user": user.email}, ip=ctx.ip)
    commit(ctx)
    return user
