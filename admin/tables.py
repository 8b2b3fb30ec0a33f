"""The admin package's own tables: admin accounts, sessions, API tokens and the audit log.

They live on a ``MetaData`` of their own (the store owns the directory tables) and are created by
the Alembic migration ``0002_admin``; ``ensure_tables`` creates any that are missing, so the app
also works on a database migrated by an older store.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "admin_accounts",
    "admin_sessions",
    "api_tokens",
    "audit_log",
    "ensure_tables",
    "metadata",
]

metadata = sa.MetaData()

admin_accounts = sa.Table(
    "admin_accounts",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Server-side sessions: the cookie carries a random token; only its SHA-256 is stored.
admin_sessions = sa.Table(
    "admin_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # "admin" | "user"
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(8), nullable=False),  # "admin" | "user"
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),  # "admin:admin", "user:bob", "token:ci"
    sa.Column("action", sa.String(64), nullable=False),  # e.g. "user.groups"
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("before", sa.Text, nullable=True),  # JSON
    sa.Column("after", sa.Text, nullable=True),  # JSON
)


async def ensure_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all, checkfirst=True)
