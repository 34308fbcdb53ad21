"""Users, roles, passwords and API tokens (Flask-free; the web layer wires it in)."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlmodel import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
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


def issue_api_token(session: Session, user: User) -> str:
    """Create a bearer token for ``user``; the clear token is returned once, never stored."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token)))
    audit.append(session, actor=user, action="issue_api_token")
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The active user a bearer token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    row = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(
        ApiToken.token_hash == hash_token(token), ApiToken.revoked == False)).first()  # noqa: E712
    if row is None or not row[1].active:
        return None
    return row[1]
