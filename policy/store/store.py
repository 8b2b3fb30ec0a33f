"""The directory store: one ``AsyncEngine`` (SQLite by default, PostgreSQL by URL) behind one class.

Every operation is one transaction: nothing is half-applied. Every transaction that changes the
directory first increments ``meta.directory_version``; that update also takes the write lock (SQLite)
or the row lock (PostgreSQL), so directory writers are serialised and each one's checks see the
latest committed state. The running server polls ``version()`` (one cheap SELECT) and rebuilds its
``DirectorySnapshot`` when the number changes: that is how an edit reaches the next call.

Registrations and CDRs are not part of the directory and do not change the version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, event, func, insert, or_, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from policy.catalogue import Catalogue, load_catalogue
from policy.hours import parse_hours_spec, public_holidays_for
from policy.model import (
    Activity,
    ActivityKind,
    CallerIdRole,
    Company,
    Department,
    DirectorySnapshot,
    SipCredentials,
    User,
    WeeklySchedule,
)
from policy.numbers import InvalidNumberError, normalise
from policy.store import demo
from policy.store.errors import NoCompanyError, NotFoundError, ValidationError
from policy.store.schema import (
    LEVELS,
    CdrRow,
    ClosedDateRow,
    CompanyRow,
    DepartmentRow,
    Meta,
    RegistrationRow,
    UserGroupRow,
    UserRow,
    WorkingHoursRow,
)

__all__ = ["MIGRATIONS_DIR", "Binding", "Cdr", "HoursLevel", "Store", "digest_ha1"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

HoursLevel = Literal["company", "department", "user"]

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_EXTENSION = re.compile(r"[0-9]{2,8}")
_LANGUAGE = re.compile(r"[a-z]{2}")
_USER_FIELDS = frozenset(
    {
        "display_name",
        "extension",
        "fixed",
        "mobile",
        "department",
        "alt_number",
        "sip_password",
        "web_password_hash",
        "voicemail_pin_hash",
        "play_activity_message",
        "caller_id_role",
        "language",
    }
)


def digest_ha1(username: str, realm: str, password: str) -> tuple[str, str]:
    """RFC 7616 HA1 = H(username:realm:password) with MD5 and SHA-256, as lower-case hex."""
    a1 = f"{username}:{realm}:{password}".encode()
    return hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record (RFC 3261 10.3, RFC 5626 instance/reg-id)."""

    aor: str
    contact: str
    expires_at: datetime  # timezone-aware
    call_id: str
    cseq: int
    source_host: str
    source_port: int
    transport: str  # udp | tcp
    q: float = 1.0
    instance_id: str | None = None
    reg_id: int | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Cdr:
    """One call detail record; ``id`` is set by the store."""

    call_id: str
    started_at: datetime
    direction: str  # incoming | outgoing | internal
    caller: str
    callee: str
    outcome: str  # answered | voicemail | announcement | forwarded | busy | no_answer | cancelled | failed
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    user: str | None = None
    cause: str | None = None
    decided_by: str | None = None
    duration: float | None = None  # seconds talked
    id: int | None = None


class CdrFields(Protocol):
    """What ``add_cdrs`` reads: a ``Cdr``, or the B2BUA's own record of the same shape."""

    @property
    def call_id(self) -> str: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...
    @property
    def direction(self) -> str: ...
    @property
    def caller(self) -> str: ...
    @property
    def callee(self) -> str: ...
    @property
    def user(self) -> str | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def cause(self) -> str | None: ...
    @property
    def decided_by(self) -> str | None: ...
    @property
    def duration(self) -> float | None: ...


def _cdr_values(cdr: CdrFields) -> dict[str, Any]:
    return {
        "call_id": cdr.call_id,
        "started_at": _aware(cdr.started_at, "started_at"),
        "answered_at": None if cdr.answered_at is None else _aware(cdr.answered_at, "answered_at"),
        "ended_at": None if cdr.ended_at is None else _aware(cdr.ended_at, "ended_at"),
        "direction": cdr.direction,
        "caller": cdr.caller,
        "callee": cdr.callee,
        "username": cdr.user,
        "outcome": cdr.outcome,
        "cause": cdr.cause,
        "decided_by": cdr.decided_by,
        "duration": cdr.duration,
    }


class _Unchanged(Exception):
    """Raised inside a change transaction to roll it back quietly (nothing to do)."""


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, f"{field}: {value.isoformat()} has no time zone")
    return value.astimezone(UTC)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (the server's poll) never block a writer
    cursor.close()
    # SQLAlchemy emits BEGIN itself (see ``_sqlite_on_begin``): real transactions, reads included.
    dbapi_connection.isolation_level = None


def _sqlite_on_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _upgrade_head(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _current_revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


class Store:
    """The directory, registrations and CDRs. Open with ``await Store.open(url)``; ``await close()``."""

    def __init__(self, engine: AsyncEngine, catalogue: Catalogue | None = None) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
        self._catalogue = catalogue if catalogue is not None else load_catalogue()
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_on_begin)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, url: str, *, catalogue: Catalogue | None = None) -> Store:
        """Create the engine (and the SQLite file's folder). Call ``migrate()`` before use."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return cls(create_async_engine(url), catalogue)

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def catalogue(self) -> Catalogue:
        return self._catalogue

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (``alembic upgrade head``)."""
        async with self._engine.begin() as conn:
            await conn.run_sync(_upgrade_head)

    async def schema_revision(self) -> str | None:
        async with self._engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    @asynccontextmanager
    async def _change(self) -> AsyncIterator[AsyncSession]:
        """One transaction that changes the directory: the version bump comes first (see module doc)."""
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(Meta).where(Meta.id == 1).values(directory_version=Meta.directory_version + 1)
            )
            try:
                yield session
                await session.flush()
            except IntegrityError as e:
                raise ValidationError("directory", f"refused by the database: {e.orig}") from None

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        """A plain transaction (reads, registrations, CDRs): no version bump."""
        async with self._sessions() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ version and snapshot

    async def version(self) -> int:
        """The directory version: one SELECT, cheap enough to poll every half second."""
        async with self._engine.connect() as conn:
            value = (await conn.execute(select(Meta.directory_version).where(Meta.id == 1))).scalar_one()
            return int(value)

    async def snapshot(self, now: datetime | None = None) -> DirectorySnapshot:
        """The whole directory as one immutable, consistent view (read in one transaction)."""
        async with self._tx() as s:
            version = int((await s.execute(select(Meta.directory_version))).scalar_one())
            company_row = await self._company_row(s)
            schedules = await self._schedules(s)
            depts = (await s.scalars(select(DepartmentRow).order_by(DepartmentRow.name))).all()
            rows = (await s.scalars(select(UserRow).order_by(UserRow.username))).all()
        company = self._company(company_row, schedules)
        users = [self._user(r, schedules) for r in rows]
        known = self._catalogue.groups
        users = [
            u
            if u.groups <= known.keys()
            else _replace_groups(u, frozenset(g for g in u.groups if g in known))
            for u in users
        ]
        departments = [
            Department(name=d.name, alt_number=d.alt_number, hours=schedules.get(("department", d.name)))
            for d in depts
        ]
        credentials = [SipCredentials(r.username, company.domain, r.ha1_md5, r.ha1_sha256) for r in rows]
        local_now = (now or datetime.now(UTC)).astimezone(_zone(company.timezone))
        years = (local_now.year - 1, local_now.year, local_now.year + 1)
        return DirectorySnapshot.build(
            version=version,
            company=company,
            catalogue=self._catalogue,
            users=users,
            departments=departments,
            public_holidays=public_holidays_for(company.country, years),
            credentials=credentials,
        )

    # ------------------------------------------------------------------ company and demo

    async def company(self) -> Company:
        async with self._tx() as s:
            row = await self._company_row(s)
            schedules = await self._schedules(s, "company")
        return self._company(row, schedules)

    async def has_company(self) -> bool:
        async with self._tx() as s:
            return bool(await s.scalar(select(func.count()).select_from(CompanyRow)))

    async def create_company(
        self,
        name: str,
        domain: str,
        *,
        timezone: str = demo.DEMO_TIMEZONE,
        country: str = demo.DEMO_COUNTRY,
        language: str = demo.DEMO_LANGUAGE,
        alt_number: str | None = None,
        hours: Sequence[str] = (),
        departments: Sequence[str] = (),
    ) -> Company:
        """Create the (one) company; refused when one exists."""
        async with self._change() as s:
            await self._create_company(
                s, name, domain, timezone, country, language, alt_number, hours, departments
            )
        return await self.company()

    async def ensure_demo(self, domain: str) -> bool:
        """On an empty database create the demo company of SPEC 7; True when it was created."""
        if await self.has_company():
            return False
        try:
            async with self._change() as s:
                if await s.scalar(select(func.count()).select_from(CompanyRow)):
                    raise _Unchanged  # another process got there first
                company = await self._create_company(
                    s,
                    demo.DEMO_COMPANY_NAME,
                    domain,
                    demo.DEMO_TIMEZONE,
                    demo.DEMO_COUNTRY,
                    demo.DEMO_LANGUAGE,
                    demo.DEMO_ALT_NUMBER,
                    demo.DEMO_HOURS,
                    demo.DEMO_DEPARTMENTS,
                )
                for u in demo.DEMO_USERS:
                    await self._add_user(
                        s,
                        company,
                        username=u.username,
                        display_name=u.display_name,
                        extension=u.extension,
                        fixed=u.fixed,
                        mobile=u.mobile,
                        department=u.department,
                        sip_password=u.sip_password,
                        groups=None,
                    )
        except _Unchanged:
            return False
        return True

    async def demo_passwords_unchanged(self) -> list[str]:
        """Demo users whose SIP password is still the published demo one (loopback-only guard)."""
        async with self._tx() as s:
            company = await self._company_row(s)
            rows = (await s.scalars(select(UserRow))).all()
        by_name = {r.username: r for r in rows}
        out: list[str] = []
        for u in demo.DEMO_USERS:
            row = by_name.get(u.username)
            if row is not None and row.ha1_md5 == digest_ha1(u.username, company.domain, u.sip_password)[0]:
                out.append(u.username)
        return out

    async def create_department(self, name: str, alt_number: str | None = None) -> Department:
        name = name.strip()
        if not name or len(name) > 100:
            raise ValidationError("department", "a department name must be 1-100 characters")
        async with self._change() as s:
            company = await self._company_row(s)
            if await s.scalar(select(DepartmentRow.id).where(DepartmentRow.name == name)) is not None:
                raise ValidationError("department", f"department {name!r} already exists")
            number = await self._alt_number(s, company, alt_number)
            s.add(DepartmentRow(name=name, alt_number=number))
        return Department(name=name, alt_number=number)

    # ------------------------------------------------------------------ users

    async def list_users(self) -> list[User]:
        async with self._tx() as s:
            rows = (await s.scalars(select(UserRow).order_by(UserRow.username))).all()
            schedules = await self._schedules(s, "user")
        return [self._user(r, schedules) for r in rows]

    async def get_user(self, username: str) -> User:
        async with self._tx() as s:
            row = await self._user_row(s, username)
            schedules = await self._schedules(s, "user", username)
        return self._user(row, schedules)

    async def create_user(
        self,
        username: str,
        display_name: str,
        extension: str,
        sip_password: str,
        *,
        fixed: str | None = None,
        mobile: str | None = None,
        department: str | None = None,
        groups: Iterable[str] | None = None,
    ) -> User:
        """Add a user; numbers are normalised to E.164; ``groups=None`` gives the catalogue defaults."""
        async with self._change() as s:
            company = await self._company_row(s)
            await self._add_user(
                s,
                company,
                username=username,
                display_name=display_name,
                extension=extension,
                fixed=fixed,
                mobile=mobile,
                department=department,
                sip_password=sip_password,
                groups=groups,
            )
        return await self.get_user(username)

    async def update_user(self, username: str, **fields: object) -> User:
        """Change some of: display_name, extension, fixed, mobile, department, alt_number,
        sip_password, web_password_hash, voicemail_pin_hash, play_activity_message, caller_id_role,
        language. Groups, activity and hours have their own methods."""
        unknown = sorted(set(fields) - _USER_FIELDS)
        if unknown:
            raise ValidationError(unknown[0], f"cannot change {', '.join(unknown)} with update_user")
        async with self._change() as s:
            company = await self._company_row(s)
            row = await self._user_row(s, username)
            for name, value in fields.items():
                await self._set_user_field(s, company, row, name, value)
        return await self.get_user(username)

    async def delete_user(self, username: str) -> None:
        async with self._change() as s:
            row = await self._user_row(s, username)
            await s.execute(
                delete(WorkingHoursRow).where(
                    WorkingHoursRow.level == "user", WorkingHoursRow.owner == username
                )
            )
            await s.execute(
                delete(ClosedDateRow).where(ClosedDateRow.level == "user", ClosedDateRow.owner == username)
            )
            await s.delete(row)

    async def set_groups(
        self, username: str, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> frozenset[str]:
        """Add and remove groups atomically: the resulting set is checked first (``MembershipError``
        names both groups and the slot); on any error nothing is written. Returns the new set."""
        add_set, remove_set = frozenset(add), frozenset(remove)
        for gid in sorted(add_set | remove_set):
            self._catalogue.get(gid)  # UnknownGroupError
        both = sorted(add_set & remove_set)
        if both:
            raise ValidationError("groups", f"group {both[0]!r} is both added and removed")
        async with self._change() as s:
            row = await self._user_row(s, username)
            current = frozenset(g.group_id for g in row.groups)
            return self._write_groups(row, (current - remove_set) | add_set)

    async def replace_groups(self, username: str, ids: Iterable[str]) -> frozenset[str]:
        """Set the user's groups to exactly ``ids`` (checked first; nothing written on error)."""
        wanted = frozenset(ids)
        self._catalogue.check_membership(wanted)
        async with self._change() as s:
            row = await self._user_row(s, username)
            return self._write_groups(row, wanted)

    async def set_activity(
        self,
        username: str,
        kind: ActivityKind | str,
        until: datetime | None = None,
        *,
        now: datetime | None = None,
    ) -> Activity:
        """Set the user's activity; a return time must be in the future. Available clears it."""
        try:
            activity = ActivityKind(kind)
        except ValueError:
            choices = ", ".join(k.value for k in ActivityKind)
            raise ValidationError("activity", f"unknown activity {kind!r} (one of {choices})") from None
        if activity is ActivityKind.AVAILABLE:
            until = None
        elif until is not None:
            until = _aware(until, "until")
            current = (now or datetime.now(UTC)).astimezone(UTC)
            if until <= current:
                raise ValidationError(
                    "until", f"return time {until.isoformat()} is in the past (now {current.isoformat()})"
                )
        async with self._change() as s:
            row = await self._user_row(s, username)
            row.activity_kind = activity.value
            row.activity_until = until
        return Activity(activity, until)

    async def set_caller_id_role(self, username: str, role: CallerIdRole | str) -> CallerIdRole:
        async with self._change() as s:
            company = await self._company_row(s)
            row = await self._user_row(s, username)
            await self._set_user_field(s, company, row, "caller_id_role", role)
            return CallerIdRole(row.caller_id_role)

    # ------------------------------------------------------------------ hours and alternative numbers

    async def set_hours(
        self,
        level: HoursLevel | str,
        owner: str | None,
        specs: Sequence[str],
        closed_dates: Iterable[date] = (),
    ) -> WeeklySchedule | None:
        """Replace the working hours at one level. No specs and no closed dates removes that level's
        hours (the next less specific level applies). Returns the stored schedule."""
        try:
            intervals = parse_hours_spec(list(specs))
        except ValueError as e:
            raise ValidationError("hours", str(e)) from None
        closed = frozenset(closed_dates)
        async with self._change() as s:
            key = await self._level_owner(s, level, owner)
            await s.execute(
                delete(WorkingHoursRow).where(
                    WorkingHoursRow.level == key[0], WorkingHoursRow.owner == key[1]
                )
            )
            await s.execute(
                delete(ClosedDateRow).where(ClosedDateRow.level == key[0], ClosedDateRow.owner == key[1])
            )
            for iv in intervals:
                s.add(
                    WorkingHoursRow(
                        level=key[0], owner=key[1], weekday=iv.weekday, start=iv.start, end=iv.end
                    )
                )
            for d in sorted(closed):
                s.add(ClosedDateRow(level=key[0], owner=key[1], day=d))
        if not intervals and not closed:
            return None
        return WeeklySchedule(intervals=intervals, closed_dates=closed)

    async def get_hours(self, level: HoursLevel | str, owner: str | None) -> WeeklySchedule | None:
        """The hours set at exactly this level (None: none set here, a less specific level applies)."""
        async with self._tx() as s:
            key = await self._level_owner(s, level, owner)
            schedules = await self._schedules(s, key[0], key[1])
        return schedules.get(key)

    async def set_alt_number(
        self, level: HoursLevel | str, owner: str | None, number: str | None
    ) -> str | None:
        """Set (or with None clear) the alternative number of the company, a department or a user.
        An existing extension is kept as is; anything else is normalised to E.164."""
        async with self._change() as s:
            company = await self._company_row(s)
            lvl, who = await self._level_owner(s, level, owner)
            value = await self._alt_number(s, company, number)
            if lvl == "company":
                company.alt_number = value
            elif lvl == "department":
                dept = await s.scalar(select(DepartmentRow).where(DepartmentRow.name == who))
                assert dept is not None
                dept.alt_number = value
            else:
                (await self._user_row(s, who)).alt_number = value
            return value

    # ------------------------------------------------------------------ registrations (location service)

    async def save_binding(self, binding: Binding, *, now: datetime | None = None) -> None:
        """Insert or refresh a binding. The same binding is the same ``+sip.instance``/reg-id when
        given (RFC 5626), otherwise the same contact URI."""
        expires_at = _aware(binding.expires_at, "expires_at")
        updated = (now or datetime.now(UTC)).astimezone(UTC)
        async with self._tx() as s:
            query = select(RegistrationRow).where(RegistrationRow.aor == binding.aor)
            if binding.instance_id is not None:
                query = query.where(
                    RegistrationRow.instance_id == binding.instance_id,
                    RegistrationRow.reg_id == binding.reg_id
                    if binding.reg_id is not None
                    else RegistrationRow.reg_id.is_(None),
                )
            else:
                query = query.where(RegistrationRow.contact == binding.contact)
            rows = list((await s.scalars(query.order_by(RegistrationRow.id))).all())
            row = rows[0] if rows else RegistrationRow(aor=binding.aor)
            for extra in rows[1:]:
                await s.delete(extra)
            row.contact = binding.contact
            row.expires_at = expires_at
            row.call_id = binding.call_id
            row.cseq = binding.cseq
            row.q = binding.q
            row.instance_id = binding.instance_id
            row.reg_id = binding.reg_id
            row.source_host = binding.source_host
            row.source_port = binding.source_port
            row.transport = binding.transport
            row.user_agent = binding.user_agent
            row.updated_at = updated
            if not rows:
                s.add(row)

    async def replace_bindings(
        self, aor: str, bindings: Iterable[Binding], *, now: datetime | None = None
    ) -> None:
        """Make ``bindings`` the whole stored location of ``aor``, in one transaction.

        The registrar holds the live state; writing an AOR's bindings whole keeps the store equal
        to it whatever mix of adds, refreshes and removals one REGISTER made.
        """
        updated = (now or datetime.now(UTC)).astimezone(UTC)
        async with self._tx() as s:
            await s.execute(delete(RegistrationRow).where(RegistrationRow.aor == aor))
            for b in bindings:
                s.add(
                    RegistrationRow(
                        aor=aor,
                        contact=b.contact,
                        expires_at=_aware(b.expires_at, "expires_at"),
                        call_id=b.call_id,
                        cseq=b.cseq,
                        q=b.q,
                        instance_id=b.instance_id,
                        reg_id=b.reg_id,
                        source_host=b.source_host,
                        source_port=b.source_port,
                        transport=b.transport,
                        user_agent=b.user_agent,
                        updated_at=updated,
                    )
                )

    async def delete_bindings(self, aor: str, contact: str | None = None) -> int:
        """Remove one contact of ``aor`` (or all of them); returns how many were removed."""
        async with self._tx() as s:
            query = delete(RegistrationRow).where(RegistrationRow.aor == aor)
            if contact is not None:
                query = query.where(RegistrationRow.contact == contact)
            result = await s.execute(query)
            return int(getattr(result, "rowcount", 0) or 0)

    async def load_bindings(self, now: datetime) -> list[Binding]:
        """Every binding still valid at ``now``; expired ones are deleted."""
        current = _aware(now, "now")
        async with self._tx() as s:
            await s.execute(delete(RegistrationRow).where(RegistrationRow.expires_at <= current))
            rows = (
                await s.scalars(
                    select(RegistrationRow).order_by(
                        RegistrationRow.aor, RegistrationRow.q.desc(), RegistrationRow.id
                    )
                )
            ).all()
            return [
                Binding(
                    aor=r.aor,
                    contact=r.contact,
                    expires_at=r.expires_at,
                    call_id=r.call_id,
                    cseq=r.cseq,
                    source_host=r.source_host,
                    source_port=r.source_port,
                    transport=r.transport,
                    q=r.q,
                    instance_id=r.instance_id,
                    reg_id=r.reg_id,
                    user_agent=r.user_agent,
                )
                for r in rows
            ]

    # ------------------------------------------------------------------ CDRs

    async def add_cdr(self, cdr: CdrFields) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(insert(CdrRow).returning(CdrRow.id), _cdr_values(cdr))
            return int(result.scalar_one())

    async def add_cdrs(self, cdrs: Sequence[CdrFields]) -> None:
        """Write many CDRs in one transaction (the server batches calls that ended together).

        A Core executemany, not ORM objects: at a thousand calls a second the unit of work
        cost more than the SIP side of a call."""
        if not cdrs:
            return
        rows = [_cdr_values(c) for c in cdrs]
        async with self._engine.begin() as conn:
            await conn.execute(insert(CdrRow), rows)

    async def list_cdrs(
        self,
        user: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[Cdr]:
        """Newest first; ``since`` inclusive, ``until`` exclusive (on the start time)."""
        query = select(CdrRow)
        if user is not None:
            query = query.where(CdrRow.username == user)
        if since is not None:
            query = query.where(CdrRow.started_at >= _aware(since, "since"))
        if until is not None:
            query = query.where(CdrRow.started_at < _aware(until, "until"))
        query = query.order_by(CdrRow.started_at.desc(), CdrRow.id.desc()).limit(max(0, limit))
        async with self._tx() as s:
            rows = (await s.scalars(query)).all()
        return [
            Cdr(
                id=r.id,
                call_id=r.call_id,
                started_at=r.started_at,
                answered_at=r.answered_at,
                ended_at=r.ended_at,
                direction=r.direction,
                caller=r.caller,
                callee=r.callee,
                user=r.username,
                outcome=r.outcome,
                cause=r.cause,
                decided_by=r.decided_by,
                duration=r.duration,
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ helpers (inside a transaction)

    async def _company_row(self, s: AsyncSession) -> CompanyRow:
        row = await s.scalar(select(CompanyRow).order_by(CompanyRow.id).limit(1))
        if row is None:
            raise NoCompanyError()
        return row

    async def _user_row(self, s: AsyncSession, username: str) -> UserRow:
        row = await s.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise NotFoundError("user", username)
        return row

    async def _level_owner(self, s: AsyncSession, level: str, owner: str | None) -> tuple[str, str]:
        if level not in LEVELS:
            raise ValidationError("level", f"unknown level {level!r} (one of {', '.join(LEVELS)})")
        if level == "company":
            if owner:
                raise ValidationError("owner", "the company level takes no owner")
            return ("company", "")
        if not owner:
            raise ValidationError("owner", f"the {level} level needs a {level} name")
        if level == "department":
            if await s.scalar(select(DepartmentRow.id).where(DepartmentRow.name == owner)) is None:
                raise NotFoundError("department", owner)
        else:
            await self._user_row(s, owner)
        return (level, owner)

    async def _schedules(
        self, s: AsyncSession, level: str | None = None, owner: str | None = None
    ) -> dict[tuple[str, str], WeeklySchedule]:
        """Working hours by (level, owner); a level with no rows at all is absent (it inherits)."""
        hq = select(WorkingHoursRow)
        cq = select(ClosedDateRow)
        if level is not None:
            hq = hq.where(WorkingHoursRow.level == level)
            cq = cq.where(ClosedDateRow.level == level)
        if owner is not None:
            hq = hq.where(WorkingHoursRow.owner == owner)
            cq = cq.where(ClosedDateRow.owner == owner)
        from policy.model import Interval

        intervals: dict[tuple[str, str], list[Interval]] = {}
        for h in (await s.scalars(hq.order_by(WorkingHoursRow.weekday, WorkingHoursRow.start))).all():
            intervals.setdefault((h.level, h.owner), []).append(Interval(h.weekday, h.start, h.end))
        closed: dict[tuple[str, str], set[date]] = {}
        for c in (await s.scalars(cq)).all():
            closed.setdefault((c.level, c.owner), set()).add(c.day)
        return {
            key: WeeklySchedule(
                intervals=tuple(intervals.get(key, ())), closed_dates=frozenset(closed.get(key, ()))
            )
            for key in intervals.keys() | closed.keys()
        }

    @staticmethod
    def _company(row: CompanyRow, schedules: dict[tuple[str, str], WeeklySchedule]) -> Company:
        return Company(
            name=row.name,
            domain=row.domain,
            timezone=row.timezone,
            country=row.country,
            language=row.language,
            alt_number=row.alt_number,
            hours=schedules.get(("company", "")),
        )

    @staticmethod
    def _user(row: UserRow, schedules: dict[tuple[str, str], WeeklySchedule]) -> User:
        return User(
            username=row.username,
            display_name=row.display_name,
            extension=row.extension,
            fixed=row.fixed,
            mobile=row.mobile,
            department=row.department.name if row.department is not None else None,
            groups=frozenset(g.group_id for g in row.groups),
            activity=Activity(ActivityKind(row.activity_kind), row.activity_until),
            caller_id_role=CallerIdRole(row.caller_id_role),
            alt_number=row.alt_number,
            hours=schedules.get(("user", row.username)),
            play_activity_message=row.play_activity_message,
            language=row.language,
        )

    def _write_groups(self, row: UserRow, wanted: frozenset[str]) -> frozenset[str]:
        self._catalogue.check_membership(wanted)  # before anything is written
        current = {g.group_id: g for g in row.groups}
        for gid, link in current.items():
            if gid not in wanted:
                row.groups.remove(link)
        for gid in sorted(wanted - current.keys()):
            row.groups.append(UserGroupRow(group_id=gid))
        return wanted

    async def _create_company(
        self,
        s: AsyncSession,
        name: str,
        domain: str,
        timezone: str,
        country: str,
        language: str,
        alt_number: str | None,
        hours: Sequence[str],
        departments: Sequence[str],
    ) -> CompanyRow:
        if await s.scalar(select(func.count()).select_from(CompanyRow)):
            raise ValidationError("company", "the database already holds a company")
        if not name.strip():
            raise ValidationError("name", "the company needs a name")
        if not domain.strip():
            raise ValidationError("domain", "the company needs a SIP domain")
        _zone(timezone)
        country = country.upper()
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise ValidationError("country", f"country must be a two-letter code, not {country!r}")
        try:
            intervals = parse_hours_spec(list(hours))
        except ValueError as e:
            raise ValidationError("hours", str(e)) from None
        row = CompanyRow(
            name=name.strip(),
            domain=domain.strip().lower(),
            timezone=timezone,
            country=country,
            language=language,
            alt_number=None,
        )
        row.alt_number = await self._alt_number(s, row, alt_number)
        s.add(row)
        for iv in intervals:
            s.add(WorkingHoursRow(level="company", owner="", weekday=iv.weekday, start=iv.start, end=iv.end))
        for dept in departments:
            s.add(DepartmentRow(name=dept))
        await s.flush()
        return row

    async def _add_user(
        self,
        s: AsyncSession,
        company: CompanyRow,
        *,
        username: str,
        display_name: str,
        extension: str,
        fixed: str | None,
        mobile: str | None,
        department: str | None,
        sip_password: str,
        groups: Iterable[str] | None,
    ) -> UserRow:
        if not _USERNAME.fullmatch(username):
            raise ValidationError(
                "username",
                f"username {username!r}: use 1-64 of a-z 0-9 . _ - (starting with a letter or digit)",
            )
        if await s.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
            raise ValidationError("username", f"user {username!r} already exists")
        wanted = frozenset(self._catalogue.defaults if groups is None else groups)
        self._catalogue.check_membership(wanted)
        row = UserRow(
            username=username,
            display_name="",
            extension="",
            ha1_md5="",
            ha1_sha256="",
            play_activity_message=False,
            caller_id_role=CallerIdRole.FIXED.value,
            activity_kind=ActivityKind.AVAILABLE.value,
        )
        await self._set_user_field(s, company, row, "display_name", display_name)
        await self._set_user_field(s, company, row, "extension", extension)
        await self._set_user_field(s, company, row, "fixed", fixed)
        await self._set_user_field(s, company, row, "mobile", mobile)
        await self._set_user_field(s, company, row, "department", department)
        await self._set_user_field(s, company, row, "sip_password", sip_password)
        row.groups = [UserGroupRow(group_id=g) for g in sorted(wanted)]
        s.add(row)
        await s.flush()
        return row

    async def _set_user_field(
        self, s: AsyncSession, company: CompanyRow, row: UserRow, name: str, value: object
    ) -> None:
        if name in ("display_name", "extension", "sip_password", "caller_id_role"):
            if not isinstance(value, str):
                raise ValidationError(name, f"{name} must be text")
        if name == "display_name":
            assert isinstance(value, str)
            if not value.strip() or len(value) > 200:
                raise ValidationError(name, "the display name must be 1-200 characters")
            row.display_name = value.strip()
        elif name == "extension":
            assert isinstance(value, str)
            if not _EXTENSION.fullmatch(value):
                raise ValidationError(name, f"extension {value!r} must be 2-8 digits")
            other = await s.scalar(select(UserRow.username).where(UserRow.extension == value))
            if other is not None and other != row.username:
                raise ValidationError(name, f"extension {value} is already {other}'s")
            row.extension = value
        elif name in ("fixed", "mobile"):
            number = await self._user_number(s, company, row, name, value)
            setattr(row, name, number)
        elif name == "department":
            if value is None or value == "":
                row.department_id = None
                row.department = None
            else:
                if not isinstance(value, str):
                    raise ValidationError(name, "the department must be a name")
                dept = await s.scalar(select(DepartmentRow).where(DepartmentRow.name == value))
                if dept is None:
                    raise NotFoundError("department", value)
                row.department = dept
        elif name == "alt_number":
            if value is not None and not isinstance(value, str):
                raise ValidationError(name, "the alternative number must be text")
            row.alt_number = await self._alt_number(s, company, value)
        elif name == "sip_password":
            assert isinstance(value, str)
            if len(value) < 8:
                raise ValidationError(name, "the SIP password must be at least 8 characters")
            row.ha1_md5, row.ha1_sha256 = digest_ha1(row.username, company.domain, value)
        elif name in ("web_password_hash", "voicemail_pin_hash"):
            if value is not None and not isinstance(value, str):
                raise ValidationError(name, f"{name} must be text or None")
            setattr(row, name, value)
        elif name == "play_activity_message":
            if not isinstance(value, bool):
                raise ValidationError(name, "play_activity_message must be true or false")
            row.play_activity_message = value
        elif name == "caller_id_role":
            try:
                row.caller_id_role = CallerIdRole(str(value)).value
            except ValueError:
                choices = ", ".join(r.value for r in CallerIdRole)
                raise ValidationError(name, f"unknown caller-ID role {value!r} (one of {choices})") from None
        elif name == "language":
            if value is not None and (not isinstance(value, str) or not _LANGUAGE.fullmatch(value)):
                raise ValidationError(name, f"language must be a two-letter code, not {value!r}")
            row.language = value
        else:  # pragma: no cover - guarded by _USER_FIELDS
            raise ValidationError(name, f"unknown user field {name!r}")

    async def _user_number(
        self, s: AsyncSession, company: CompanyRow, row: UserRow, field: str, value: object
    ) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValidationError(field, f"the {field} number must be text")
        try:
            number = normalise(value, company.country)
        except InvalidNumberError as e:
            raise ValidationError(field, f"{field} number: {e}") from None
        clash = await s.scalar(
            select(UserRow).where(
                or_(UserRow.fixed == number, UserRow.mobile == number), UserRow.username != row.username
            )
        )
        if clash is not None:
            which = "fixed" if clash.fixed == number else "mobile"
            raise ValidationError(field, f"{number} is already {clash.username}'s {which} number")
        other_field = "mobile" if field == "fixed" else "fixed"
        if getattr(row, other_field, None) == number:
            raise ValidationError(field, f"{number} is already this user's {other_field} number")
        return number

    async def _alt_number(self, s: AsyncSession, company: CompanyRow, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        text = value.strip()
        if text.isdigit() and await s.scalar(select(UserRow.id).where(UserRow.extension == text)) is not None:
            return text  # an internal target: that user's own rules apply
        try:
            return normalise(text, company.country)
        except InvalidNumberError as e:
            raise ValidationError("alt_number", f"alternative number: {e}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("timezone", f"unknown time zone {name!r}") from None


def _replace_groups(user: User, groups: frozenset[str]) -> User:
    from dataclasses import replace

    return replace(user, groups=groups)
