"""API bearer tokens. A token is shown once at creation; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from accord.app.ports import Clock, SystemClock
from accord.domain.availability import check_id
from accord.domain.errors import AlreadyExists, NotFound
from accord.store import schema as t
from accord.store.db import Database

TOKEN_PREFIX = "acc_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, name: str, clock: Clock | None = None) -> str:
    check_id(name, "token name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = (clock or SystemClock()).now_ms()
    with db.engine.begin() as conn:
        exists = conn.execute(sa.select(t.api_tokens.c.name).where(t.api_tokens.c.name == name)).first()
        if exists:
            raise AlreadyExists(f"a token named {name!r} already exists; revoke it first")
        conn.execute(sa.insert(t.api_tokens).values(name=name, token_sha256=_digest(token), created_at=now))
    return token


def revoke_token(db: Database, name: str) -> None:
    with db.engine.begin() as conn:
        n = conn.execute(sa.delete(t.api_tokens).where(t.api_tokens.c.name == name)).rowcount
    if not n:
        raise NotFound("token", name)


def token_name(db: Database, token: str) -> str | None:
    """The name of a valid token, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with db.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.api_tokens.c.name).where(
                t.api_tokens.c.token_sha256 == _digest(token), t.api_tokens.c.revoked_at.is_(None)
            )
        ).first()
        conn.rollback()
    return row[0] if row else None


def list_tokens(db: Database) -> list[tuple[str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(t.api_tokens.c.name, t.api_tokens.c.created_at).order_by(t.api_tokens.c.name))
        out = [(r[0], int(r[1])) for r in rows]
        conn.rollback()
    return out
