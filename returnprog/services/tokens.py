"""Use cases of API bearer tokens: issue (the value is shown once and stored hashed), list
and revoke — by their owner, and by administrators for any user. Tokens expire
``API_TOKEN_DAYS`` after issue (the caller passes the setting).

Signing out of the staff UI does not revoke API tokens: they belong to integrations and
scripts that keep running when a browser session ends. The token page lists them with
their last use, so an owner sees what is live and revokes what is not needed; an admin
does so for anyone. Deactivating a user makes all their tokens refused at once.
"""
from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import select, update

from .. import audit, auth
from ..db import begin_write
from ..messages import M
from ..models import ApiToken, User
from ..roles import ADMIN
from . import Context, Forbidden, Invalid, NotFound
from .lookups import user_ref
from .uow import atomic, commit

NAME_MAX = 100


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _is_admin(ctx: Context) -> bool:
    return ctx.actor is not None and ctx.actor.role == ADMIN


def _status(row: ApiToken, now: dt.datetime) -> str:
    if row.revoked:
        return "revoked"
    expires = _aware(row.expires_at)
    return "expired" if expires is None or expires <= now else "active"


def list_tokens(ctx: Context, everyone: bool = False) -> list[dict]:
    """The caller's tokens (newest first) — or, for an administrator asking for
    ``everyone``, every user's — with label, dates, last use and status; never a value.
    ``user`` is the owner as ``{"id", "name"}``; ``user_email`` the address (pages)."""
    if ctx.actor is None:
        raise Forbidden("token.not_yours")
    if everyone and not _is_admin(ctx):
        raise Forbidden("account.admin_only")
    query = select(ApiToken, User.email, User.name).join(User, User.id == ApiToken.user_id)
    if not everyone:
        query = query.where(ApiToken.user_id == ctx.actor.id)
    now = ctx.now()
    rows = ctx.session.execute(query.order_by(ApiToken.created_at.desc(),
                                              ApiToken.id.desc())).all()
    return [{"id": t.id, "name": t.name, "user_id": t.user_id,
             "user": user_ref(t.user_id, user_name, email), "user_email": email,
             "created_at": _aware(t.created_at), "expires_at": _aware(t.expires_at),
             "last_used_at": _aware(t.last_used_at), "revoked_at": _aware(t.revoked_at),
             "status": _status(t, now)} for t, email, user_name in rows]


def _clean_name(name) -> str:
    name = name if isinstance(name, str) else ""
    if not name.strip():
        raise Invalid("error.invalid_fields", {"name": [M("token.name_required")]})
    if len(name) > NAME_MAX:
        raise Invalid("error.invalid_fields", {"name": [M("token.name_too_long",
                                                          max=NAME_MAX)]})
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise Invalid("error.invalid_fields", {"name": [M("token.name_characters")]})
    return name.strip()


@atomic
def issue(ctx: Context, name: str, days: int) -> str:
    """A new token for the caller, labelled ``name`` and valid for ``days`` days. Returns
    the clear value — the only time anyone sees it."""
    if ctx.actor is None:
        raise Forbidden("token.not_yours")
    label = _clean_name(name)
    begin_write(ctx.session)
    user = ctx.session.get(User, ctx.actor.id)
    return auth.issue_api_token(ctx.session, user, name=label, days=days, ip=ctx.ip)


@atomic
def revoke(ctx: Context, token_id: int) -> dict:
    """Revoke a token: its owner may, and an administrator may for anyone. Someone else's
    token is "not found" (its existence is not revealed). Revoking twice changes nothing
    the second time."""
    if ctx.actor is None:
        raise Forbidden("token.not_yours")
    begin_write(ctx.session)
    row = ctx.session.get(ApiToken, token_id)
    if row is None or (row.user_id != ctx.actor.id and not _is_admin(ctx)):
        ctx.session.rollback()
        raise NotFound("token.not_found")
    if row.revoked:
        ctx.session.rollback()
        return {"id": row.id, "status": "revoked"}
    now = ctx.now()
    ctx.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(
        revoked=True, revoked_at=now, revoked_by=ctx.actor.id))
    audit.append(ctx.session, actor=ctx.actor, action="revoke_api_token", ip=ctx.ip,
                 details={"token": row.id, "user": row.user_id})
    commit(ctx)
    return {"id": row.id, "status": "revoked"}
