"""What the admin needs from the users table that the store does not offer: the web password.

``users.web_password_hash`` is a column of the store's table reserved for the admin package; it is
not part of the directory snapshot (no call depends on it), so writing it needs no version bump.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["get_web_password_hash", "set_web_password_hash"]

_users = sa.table(
    "users",
    sa.column("username", sa.String),
    sa.column("web_password_hash", sa.String),
)


async def get_web_password_hash(engine: AsyncEngine, username: str) -> str | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(_users.c.web_password_hash).where(_users.c.username == username))
        ).first()
    return None if row is None or row[0] is None else str(row[0])


async def set_web_password_hash(
    engine: AsyncEngine, username: str, password_hash: str, *, only_if_unset: bool = False
) -> bool:
    query = _users.update().where(_users.c.username == username).values(web_password_hash=password_hash)
    if only_if_unset:
        query = query.where(_users.c.web_password_hash.is_(None))
    async with engine.begin() as conn:
        result = await conn.execute(query)
    return bool(result.rowcount)
