"""Voicemail rows and the few directory facts voicemail access needs (sync SQLAlchemy).

The media server is a polled pjsua2 loop, not asyncio, so it uses a synchronous engine on the same
database as the directory (``config.database_url``; ``sqlite+aiosqlite`` becomes ``sqlite``). Its
table ``voicemail_messages`` is created by the Alembic migration ``0003_voicemail`` (run by the
directory store's ``migrate()``; ``migrate(url)`` here runs the same chain for ``vidare media``
alone and for tests). Files live in ``var/voicemail/<username>/<file_name>``; a row exists only for
a complete file (the server renames the finished recording into place, then inserts the row).

PIN check (voicemail access from outside): ``users.voicemail_pin_hash`` is an argon2 hash
(argon2-cffi, ``$argon2id$...``); when it is NULL the demo default applies: the PIN is the last
four digits of the user's extension (bob, extension 1002: ``1002``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url

__all__ = [
    "Message",
    "UserInfo",
    "VoicemailStore",
    "default_pin",
    "migrate",
    "sync_url",
    "verify_pin",
    "voicemail_messages",
]

metadata = MetaData()

voicemail_messages = Table(
    "voicemail_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, index=True),
    Column("caller", String(255), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("duration", Float, nullable=False),
    Column("cause", String(16)),
    Column("heard", Boolean, nullable=False),
    Column("file_name", String(255), nullable=False),
)

# The columns of the directory's users table that voicemail access reads (0001_initial).
_users = Table(
    "users",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("username", String(64)),
    Column("display_name", String(200)),
    Column("extension", String(16)),
    Column("fixed", String(32)),
    Column("voicemail_pin_hash", String(255)),
    Column("language", String(8)),
)


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    username: str
    caller: str
    received_at: datetime  # UTC, aware
    duration: float
    cause: str | None
    heard: bool
    file_name: str


@dataclass(frozen=True, slots=True)
class UserInfo:
    username: str
    display_name: str
    extension: str
    fixed: str | None
    pin_hash: str | None
    language: str | None


def sync_url(url: str) -> str:
    """The synchronous twin of an async database URL."""
    u = make_url(url)
    backend = u.get_backend_name()
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}.get(backend, backend)
    return u.set(drivername=driver).render_as_string(hide_password=False)


def migrate(url: str) -> None:
    """Run the directory's Alembic chain (0001 ... 0003_voicemail) up to head."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    import policy

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(policy.__file__).resolve().parent / "migrations"))
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def default_pin(extension: str) -> str:
    """The demo PIN when none is set: the last four digits of the extension."""
    digits = "".join(c for c in extension if c.isdigit())
    return digits[-4:]


def verify_pin(user: UserInfo, pin: str) -> bool:
    if not pin:
        return False
    if user.pin_hash is None:
        return pin == default_pin(user.extension)
    if user.pin_hash.startswith("$argon2"):
        from argon2 import PasswordHasher
        from argon2.exceptions import Argon2Error, InvalidHashError

        try:
            return bool(PasswordHasher().verify(user.pin_hash, pin))
        except (Argon2Error, InvalidHashError):
            return False
    return False


def _aware(value: Any) -> datetime:
    when: datetime = value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class VoicemailStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(sync_url(url), connect_args=self._connect_args(url))

    @staticmethod
    def _connect_args(url: str) -> dict[str, Any]:
        return {"timeout": 10} if make_url(url).get_backend_name() == "sqlite" else {}

    def has_table(self) -> bool:
        return bool(inspect(self.engine).has_table("voicemail_messages"))

    def close(self) -> None:
        self.engine.dispose()

    # -- messages -------------------------------------------------------------------------------

    def add(
        self,
        *,
        username: str,
        caller: str,
        received_at: datetime,
        duration: float,
        cause: str | None,
        file_name: str,
    ) -> Message:
        values = {
            "username": username,
            "caller": caller,
            "received_at": received_at.astimezone(UTC),
            "duration": round(duration, 3),
            "cause": cause,
            "heard": False,
            "file_name": file_name,
        }
        with self.engine.begin() as conn:
            result = conn.execute(voicemail_messages.insert().values(**values))
            pk = result.inserted_primary_key
            assert pk is not None
            msg_id = int(pk[0])
        return Message(
            id=msg_id,
            username=username,
            caller=caller,
            received_at=received_at.astimezone(UTC),
            duration=round(duration, 3),
            cause=cause,
            heard=False,
            file_name=file_name,
        )

    def messages(self, username: str) -> list[Message]:
        """Unheard first, then heard; oldest first within each."""
        t = voicemail_messages
        query = select(t).where(t.c.username == username).order_by(t.c.heard, t.c.received_at, t.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            Message(
                id=r["id"],
                username=r["username"],
                caller=r["caller"],
                received_at=_aware(r["received_at"]),
                duration=float(r["duration"]),
                cause=r["cause"],
                heard=bool(r["heard"]),
                file_name=r["file_name"],
            )
            for r in rows
        ]

    def counts(self, username: str) -> tuple[int, int]:
        """(new, old) for the MWI body."""
        t = voicemail_messages
        query = select(t.c.heard, func.count()).where(t.c.username == username).group_by(t.c.heard)
        with self.engine.connect() as conn:
            got = {bool(heard): int(n) for heard, n in conn.execute(query).all()}
        return got.get(False, 0), got.get(True, 0)

    def mark_heard(self, msg_id: int) -> bool:
        """True when the row changed (it was unheard)."""
        t = voicemail_messages
        with self.engine.begin() as conn:
            result = conn.execute(update(t).where(t.c.id == msg_id, t.c.heard.is_(False)).values(heard=True))
        return bool(result.rowcount)

    def delete(self, msg_id: int) -> bool:
        t = voicemail_messages
        with self.engine.begin() as conn:
            result = conn.execute(delete(t).where(t.c.id == msg_id))
        return bool(result.rowcount)

    # -- directory (voicemail access only; never on the deposit path) ---------------------------

    def user(self, username: str) -> UserInfo | None:
        return self._one(_users.c.username == username)

    def user_by_number(self, digits: str) -> UserInfo | None:
        """The extension (``1002``) or the fixed number in any of ``+4681001002``/``4681001002``."""
        digits = digits.strip()
        if not digits:
            return None
        fixed = "+" + digits.lstrip("+")
        return self._one(or_(_users.c.extension == digits, _users.c.fixed == fixed))

    def _one(self, where: Any) -> UserInfo | None:
        u = _users.c
        query = select(u.username, u.display_name, u.extension, u.fixed, u.voicemail_pin_hash, u.language)
        with self.engine.connect() as conn:
            row = conn.execute(query.where(where)).first()
        if row is None:
            return None
        return UserInfo(
            username=row[0],
            display_name=row[1],
            extension=row[2],
            fixed=row[3],
            pin_hash=row[4],
            language=row[5],
        )
