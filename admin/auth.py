"""Logins, sessions, CSRF tokens, API tokens and the login rate limit.

* Passwords (admin accounts and users' web passwords) are argon2id hashes (argon2-cffi).
* A session is a random token in an ``HttpOnly`` + ``SameSite=Lax`` cookie (``Secure`` unless the
  admin address is loopback); the database keeps only its SHA-256, with the session's CSRF token.
* Every form post carries the CSRF token; API calls made with the session cookie must send it in
  ``X-CSRF-Token``; API calls with a bearer token (automation) need none.
* Login rate limit: after 5 wrong passwords within a minute for one (username, client address) the
  next attempts are refused *without checking the password* until the minute has passed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.tables import admin_accounts, admin_sessions, api_tokens

__all__ = [
    "PRE_COOKIE",
    "SESSION_COOKIE",
    "Auth",
    "Kind",
    "Principal",
    "RateLimiter",
    "hash_password",
    "verify_password",
]

Kind = Literal["admin", "user"]
SESSION_COOKIE = "vidare_session"
PRE_COOKIE = "vidare_pre"  # anonymous CSRF token for the login form (double submit)
SESSION_LIFETIME = timedelta(hours=12)

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    if not stored_hash:
        # Spend the same time as a real check so that unknown names are not revealed by timing.
        _dummy_verify(password)
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def _dummy_verify(password: str) -> None:
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    username: str
    via: Literal["session", "token"]
    csrf: str = ""  # the session's CSRF token ("" for bearer tokens)
    token_name: str = ""

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin"

    @property
    def actor(self) -> str:
        if self.via == "token":
            return f"{self.kind}:{self.username} (token {self.token_name})"
        return f"{self.kind}:{self.username}"

    def may_act_for(self, username: str) -> bool:
        return self.is_admin or self.username == username


class RateLimiter:
    """Counts wrong passwords per (username, client address) over a sliding window."""

    def __init__(
        self, max_failures: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self.max_failures = max_failures
        self.window = window
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self.clock()
        q = self._failures.setdefault(key, deque())
        while q and now - q[0] >= self.window:
            q.popleft()
        return q

    def blocked(self, username: str, client: str) -> bool:
        key = (username.casefold(), client)
        blocked = len(self._recent(key)) >= self.max_failures
        if not self._failures.get(key):
            self._failures.pop(key, None)
        return blocked

    def failure(self, username: str, client: str) -> None:
        self._recent((username.casefold(), client)).append(self.clock())

    def success(self, username: str, client: str) -> None:
        self._failures.pop((username.casefold(), client), None)


class Auth:
    """Account, session and token operations on the admin tables."""

    def __init__(
        self, engine: AsyncEngine, user_password_lookup: Callable[[str], Awaitable[str | None]]
    ) -> None:
        self.engine = engine
        # async callable username -> web_password_hash | None (users table, owned by the store)
        self._user_hash = user_password_lookup
        self.limiter = RateLimiter()

    # -- accounts ---------------------------------------------------------------------------------

    async def ensure_admin(self, username: str, password: str) -> bool:
        """Create the admin account if no admin account exists yet; True if it was created."""
        async with self.engine.begin() as conn:
            count = (await conn.execute(sa.select(sa.func.count()).select_from(admin_accounts))).scalar_one()
            if count:
                return False
            await conn.execute(
                admin_accounts.insert().values(
                    username=username, password_hash=hash_password(password), created_at=_now()
                )
            )
            return True

    async def admin_hash(self, username: str) -> str | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(admin_accounts.c.password_hash).where(admin_accounts.c.username == username)
                )
            ).first()
        return None if row is None else str(row[0])

    async def set_admin_password(self, username: str, password: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                admin_accounts.update()
                .where(admin_accounts.c.username == username)
                .values(password_hash=hash_password(password))
            )

    async def check_login(self, username: str, password: str) -> Kind | None:
        """The account kind if the password is right; None otherwise (no rate limiting here)."""
        admin_hash = await self.admin_hash(username)
        if admin_hash is not None:
            return "admin" if verify_password(admin_hash, password) else None
        user_hash = await self._user_hash(username)
        return "user" if verify_password(user_hash, password) else None

    # -- sessions ---------------------------------------------------------------------------------

    async def create_session(self, kind: Kind, username: str) -> tuple[str, str]:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        now = _now()
        async with self.engine.begin() as conn:
            await conn.execute(admin_sessions.delete().where(admin_sessions.c.expires_at < now))
            await conn.execute(
                admin_sessions.insert().values(
                    token_hash=_sha256(token),
                    kind=kind,
                    username=username,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                )
            )
        return token, csrf

    async def session(self, token: str | None) -> Principal | None:
        if not token:
            return None
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(admin_sessions).where(admin_sessions.c.token_hash == _sha256(token))
                )
            ).first()
        if row is None:
            return None
        if _aware(row.expires_at) < _now():
            return None
        return Principal(kind=row.kind, username=row.username, via="session", csrf=row.csrf)

    async def end_session(self, token: str | None) -> None:
        if token:
            async with self.engine.begin() as conn:
                await conn.execute(
                    admin_sessions.delete().where(admin_sessions.c.token_hash == _sha256(token))
                )

    # -- API tokens -------------------------------------------------------------------------------

    async def create_token(self, name: str, kind: Kind, username: str) -> tuple[int, str]:
        token = "vdr_" + secrets.token_urlsafe(32)
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_tokens.insert().values(
                    name=name, token_hash=_sha256(token), kind=kind, username=username, created_at=_now()
                )
            )
            pk = result.inserted_primary_key
            assert pk is not None
        return int(pk[0]), token

    async def token(self, token: str) -> Principal | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == _sha256(token)))
            ).first()
        if row is None:
            return None
        return Principal(kind=row.kind, username=row.username, via="token", token_name=row.name)

    async def list_tokens(self) -> list[dict[str, object]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))).all()
        return [
            {
                "id": r.id,
                "name": r.name,
                "kind": r.kind,
                "username": r.username,
                "created_at": _aware(r.created_at),
            }
            for r in rows
        ]

    async def delete_token(self, token_id: int) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(api_tokens.delete().where(api_tokens.c.id == token_id))
        return bool(result.rowcount)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def _aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes: they were written as UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
