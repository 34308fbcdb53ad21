"""Users, roles, passwords and API tokens (Flask-free; the web layer wires it in)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit, passwords
from .db import is_sqlite
from .messages import M
from .models import ApiToken, Team, User, utcnow
from .roles import ADMIN, CASE_ROLES, ROLES


def hash_token(token: str) -> str:
    """Tokens are stored only as their SHA-256: a database leak does not leak tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def team_named(session: Session, name: str) -> Team:
    """The team called ``name``, created if it does not exist yet."""
    team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def normal_person(value: str | None) -> str:
    """A personnel number as stored: trimmed and upper case ("" when none given)."""
    return (value or "").strip().upper()


def own_person(email: str) -> str:
    """The person key of an account made without a personnel number: a person of its own
    (a personnel number has no ``@``, so this never equals one)."""
    return "@" + email


def person_role_problem(session: Session, person: str, role: str,
                        except_user_id: int | None = None) -> str | None:
    """Why ``person`` may not hold an account with ``role`` (a message code), or None.

    Administrators hold no case role: whoever manages accounts does no case work, so an
    administrator cannot give himself a counsellor's, supervisor's or finance officer's
    account, and a person doing case work gets no administrator account. ``except_user_id``
    leaves out the account whose role is being changed."""
    query = select(User.role).where(User.person == person)
    if except_user_id is not None:
        query = query.where(User.id != except_user_id)
    held = set(session.execute(query).scalars())
    if role == ADMIN and held & set(CASE_ROLES):
        return "account.case_person_no_admin"
    if role in CASE_ROLES and ADMIN in held:
        return "account.admin_no_case_role"
    return None


def hash_new_password(password: str, *, email: str, name: str = "") -> str:
    """The hash of a new staff password, after the policy (:mod:`returnprog.passwords`)
    accepted it as typed; raises :class:`~returnprog.passwords.WeakPassword`."""
    passwords.require_acceptable(password, email=email, name=name)
    return generate_password_hash(password)


def add_user(session: Session, *, email: str, role: str, name: str, team: str, person: str,
             password_hash: str) -> User:
    """Insert a staff account (no audit event, no commit: the caller's unit of work does
    both). Raises ValueError for an unknown role or a taken address."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if session.execute(select(User).where(User.email == email)).scalar_one_or_none():
        raise ValueError(f"a user {email} already exists")
    user = User(email=email, name=name or email.split("@")[0], role=role, person=person,
                team_id=team_named(session, team).id, password_hash=password_hash)
    session.add(user)
    session.flush()
    return user


def create_user(session: Session, *, email: str, role: str, password: str, name: str = "",
                team: str = "Team Noord", actor="system", person: str | None = None) -> User:
    """Create a staff user with a hashed password and record it in the audit trail.

    This is the operator's way in (``flask create-user``, the demo seed): it takes effect
    at once, also for the first administrators. ``person`` is the personnel number; without
    one the account is a person of its own. Raises ValueError (WeakPassword for a password
    the policy refuses) having written nothing."""
    email = email.strip().lower()
    person = normal_person(person) or own_person(email)
    problem = person_role_problem(session, person, role)
    if problem:
        raise ValueError(str(M(problem)))
    user = add_user(session, email=email, role=role, name=name, team=team, person=person,
                    password_hash=hash_new_password(password, email=email, name=name))
    audit.append(session, actor=actor, action="create_user",
                 details={"user": email, "role": role, "team": team, "person": person})
    session.commit()
    return user


def set_person(session: Session, email: str, person: str, *, actor="operator") -> User:
    """Record that the account ``email`` belongs to personnel number ``person`` (the
    operator's command; audited). Raises ValueError for an unknown account or when the
    person would then hold an administrator and a case-role account."""
    email, person = email.strip().lower(), normal_person(person)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        raise ValueError(f"no user {email}")
    problem = person_role_problem(session, person, user.role, except_user_id=user.id)
    if problem:
        raise ValueError(str(M(problem)))
    old, user.person = user.person, person
    audit.append(session, actor=actor, action="set_person",
                 details={"user": email, "person": person, "old_person": old})
    session.commit()
    return user


def check_password(user: User, password: str) -> bool:
    """True when ``password`` matches the user's stored hash."""
    return bool(user.password_hash) and check_password_hash(user.password_hash, password)


def set_password(user: User, password: str) -> None:
    """Store a new password hash (the policy judges it as typed) and invalidate the user's
    existing sessions."""
    set_password_hash(user, hash_new_password(password, email=user.email, name=user.name))


def set_password_hash(user: User, password_hash: str) -> None:
    """Store an already checked and hashed password; invalidate the user's sessions."""
    user.password_hash = password_hash
    user.session_epoch += 1


API_TOKEN_DAYS = 30
# last_used_at is written at most this often per token: an API client's every request
# must not become a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def issue_api_token(session: Session, user: User, *, name: str = "",
                    days: int = API_TOKEN_DAYS, actor=None, ip: str | None = None) -> str:
    """Create a bearer token for ``user``, labelled ``name`` and valid for ``days`` days;
    the clear token is returned once, never stored. Audited (by ``actor``, else the user)."""
    token = new_token()
    now = utcnow()
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), name=name[:100],
                   created_at=now, expires_at=now + dt.timedelta(days=days))
    session.add(row)
    session.flush()
    audit.append(session, actor=actor or user, action="issue_api_token", ip=ip,
                 details={"token": row.id, "user": user.id, "name": row.name,
                          "expires_at": row.expires_at.isoformat(timespec="seconds")})
    session.commit()
    return token


# Every API request asks: built once (a statement built afresh has its cache key derived
# by walking it, which costs more than running it).
_TOKEN_OWNER = (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == bindparam("token_hash")))


def check_api_token(session: Session, token: str) -> tuple[User | None, str]:
    """The active user a bearer token belongs to and ``"ok"``, or None and why not:
    ``"unknown"`` (also a deactivated user's token), ``"revoked"`` or ``"expired"``. A
    good token's ``last_used_at`` is brought up to date (committed here, at most once a
    minute), before the request's own work starts."""
    if not token or len(token) > 200:
        return None, "unknown"
    row = session.execute(_TOKEN_OWNER, {"token_hash": hash_token(token)}).first()
    if row is None or not row[1].active:
        return None, "unknown"
    api_token, user = row
    if api_token.revoked:
        return None, "revoked"
    now = utcnow()
    expires = _aware(api_token.expires_at)
    if expires is None or expires <= now:
        return None, "expired"
    last = _aware(api_token.last_used_at)
    if last is None or now - last >= LAST_USED_RESOLUTION:
        try:
            # End the read first (a SQLite reader never upgrades its snapshot to a writer).
            # Committing it, rather than begin_write's rollback, keeps the user loaded for
            # the rest of the request instead of reading it again; the token row is not
            # looked at again, so the UPDATE need not refresh it.
            session.commit()
            if is_sqlite(session):
                session.connection(execution_options={"sqlite_immediate": True})
            session.execute(update(ApiToken).where(ApiToken.id == api_token.id)
                            .values(last_used_at=now)
                            .execution_options(synchronize_session=False))
            session.commit()
        except OperationalError:  # a busy database delays the note, never the request
            session.rollback()
    return user, "ok"


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a usable (known, unrevoked, unexpired) bearer token belongs to."""
    return check_api_token(session, token)[0]
