"""The directory's tables (SQLAlchemy 2 declarative models).

Portable by construction: no SQLite-only types or SQL, so PostgreSQL (asyncpg) is a URL change.
Every timestamp is stored in UTC through ``UTCDateTime`` and comes back timezone-aware.
The migration ``policy/migrations/versions/0001_initial.py`` creates exactly these tables; a
change here needs a new migration.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "LEVELS",
    "Base",
    "CdrRow",
    "ClosedDateRow",
    "CompanyRow",
    "DepartmentRow",
    "Meta",
    "RegistrationRow",
    "UTCDateTime",
    "UserGroupRow",
    "UserRow",
    "WorkingHoursRow",
]

LEVELS = ("company", "department", "user")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (the store needs timezone-aware times)")
        value = value.astimezone(UTC)
        # SQLite keeps text: store naive UTC so that text comparison orders correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Meta(Base):
    """One row (id 1): ``directory_version`` grows by one in every transaction that changes the directory."""

    __tablename__ = "meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    directory_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class CompanyRow(Base):
    __tablename__ = "company"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    domain: Mapped[str] = mapped_column(String(255), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    alt_number: Mapped[str | None] = mapped_column(String(32))


class DepartmentRow(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    alt_number: Mapped[str | None] = mapped_column(String(32))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    extension: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    fixed: Mapped[str | None] = mapped_column(String(32), unique=True)
    mobile: Mapped[str | None] = mapped_column(String(32), unique=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    alt_number: Mapped[str | None] = mapped_column(String(32))
    # Digest HA1 = H(username:realm:password), realm = the company SIP domain. Never the password.
    ha1_md5: Mapped[str] = mapped_column(String(32), nullable=False)
    ha1_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    web_password_hash: Mapped[str | None] = mapped_column(String(255))
    voicemail_pin_hash: Mapped[str | None] = mapped_column(String(255))
    play_activity_message: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    caller_id_role: Mapped[str] = mapped_column(String(16), nullable=False, default="fixed")
    language: Mapped[str | None] = mapped_column(String(8))
    activity_kind: Mapped[str] = mapped_column(String(16), nullable=False, default="available")
    activity_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    department: Mapped[DepartmentRow | None] = relationship(lazy="joined")
    groups: Mapped[list[UserGroupRow]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )


class UserGroupRow(Base):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(100), primary_key=True)


class WorkingHoursRow(Base):
    """One weekly interval at a level; ``owner`` is '' for the company, else the department or username."""

    __tablename__ = "working_hours"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday"),
        CheckConstraint("level IN ('company', 'department', 'user')", name="level"),
        Index("ix_working_hours_level_owner", "level", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)
    weekday: Mapped[int] = mapped_column(Integer, nullable=False)
    start: Mapped[time] = mapped_column(Time, nullable=False)
    end: Mapped[time] = mapped_column(Time, nullable=False)


class ClosedDateRow(Base):
    __tablename__ = "closed_dates"
    __table_args__ = (
        UniqueConstraint("level", "owner", "day", name="uq_closed_dates_level_owner_day"),
        CheckConstraint("level IN ('company', 'department', 'user')", name="level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    owner: Mapped[str] = mapped_column(String(100), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)


class RegistrationRow(Base):
    """A location-service binding (RFC 3261 10.3): one contact of one address-of-record."""

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    aor: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    contact: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    call_id: Mapped[str] = mapped_column(String(255), nullable=False)
    cseq: Mapped[int] = mapped_column(Integer, nullable=False)
    q: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    instance_id: Mapped[str | None] = mapped_column(String(255))
    reg_id: Mapped[int | None] = mapped_column(Integer)
    source_host: Mapped[str] = mapped_column(String(64), nullable=False)
    source_port: Mapped[int] = mapped_column(Integer, nullable=False)
    transport: Mapped[str] = mapped_column(String(8), nullable=False)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class CdrRow(Base):
    """One call detail record, written when a call ends."""

    __tablename__ = "cdrs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    direction: Mapped[str] = mapped_column(String(16), nullable=False)
    caller: Mapped[str] = mapped_column(String(255), nullable=False)
    callee: Mapped[str] = mapped_column(String(255), nullable=False)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    cause: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[str | None] = mapped_column(String(100))
    duration: Mapped[float | None] = mapped_column(Float)
