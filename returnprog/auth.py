"""Users, roles, passwords and API tokens (Flask-free; the web layer wires it in)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .db import begin_write
from .models import ApiToken, Team, User, utcnow
from .roles import ROLES


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


def create_user(session: Session, *, email: str, role: str, password: str, name: str = "",
                team: str = "Team Noord", actor="system") -> User:
    """Create a staff user with a hashed password and record it in the audit trail."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    email = email.strip().lower()
    if session.execute(select(User).where(User.email == email)).scalar_one_or_none():
        raise ValueError(f"a user {email} already exists")
    user = User(email=email, name=name or email.split("@")[0], role=role,
                team_id=team_named(session, team).id, password_hash=generate_password_hash(password))
    session.add(user)
    session.flush()
    audit.append(session, actor=actor, action="create_user",
                 details={"user": email, "role": role, "team": team})
    session.commit()
    return user


def check_password(user: User, password: str) -> bool:
    """True when ``password`` matches the user's stored hash."""
    return bool(user.password_hash) and check_password_hash(user.password_hash, password)


def set_password(user: User, password: str) -> None:
    """Store a new password hash and invalidate the user's existing sessions."""
    user.password_hash = generate_password_hash(password)
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


def check_api_token(session: Session, token: str) -> tuple[User | None, str]:
    """The active user a bearer token belongs to and ``"ok"``, or None and why not:
    ``"unknown"`` (also a deactivated user's token), ``"revoked"`` or ``"expired"``. A
    good token's ``last_used_at`` is brought up to date (committed here, at most once a
    minute), before the request's own work starts."""
    if not token or len(token) > 200:
        return None, "unknown"
    row = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(
        ApiToken.token_hash == hash_token(token))).first()
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
            begin_write(session)
            session.execute(update(ApiToken).where(ApiToken.id == api_token.id)
                            .values(last_used_at=now))
            session.commit()
        except OperationalError:  # a busy database delays the note, never the request
            session.rollback()
    return user, "ok"


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a usable (known, unrevoked, unexpired) bearer token belongs to."""
    return check_api_token(session, token)[0]
