"""The admin operations shared by the REST API and the web pages.

Reads come from the store's directory snapshot (the same immutable view the call path uses);
writes go through the store's methods (each bumps the directory version, so the next call sees the
change without a restart) and are written to the audit log with the state before and after.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from admin.audit import AuditLog
from policy.catalogue import Catalogue
from policy.hours import format_hours
from policy.model import DirectorySnapshot, User, WeeklySchedule
from policy.store.errors import NotFoundError, ValidationError

__all__ = [
    "LEVELS",
    "AdminService",
    "HoursView",
    "NotFoundError",
    "ValidationError",
    "hours_view",
    "user_view",
]

LEVELS = ("company", "department", "user")


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


@dataclass(frozen=True, slots=True)
class HoursView:
    level: str
    owner: str
    configured: bool
    days: tuple[tuple[str, ...], ...]  # per weekday 0..6: intervals "HH:MM-HH:MM"
    closed_dates: tuple[date, ...]
    specs: tuple[str, ...]


def _fmt_t(t: Any) -> str:
    return "24:00" if (t.hour, t.minute, t.second) == (23, 59, 59) else f"{t.hour:02d}:{t.minute:02d}"


def hours_view(level: str, owner: str, schedule: WeeklySchedule | None) -> HoursView:
    if schedule is None:
        return HoursView(level, owner, False, tuple(() for _ in range(7)), (), ())
    days: list[list[str]] = [[] for _ in range(7)]
    for iv in sorted(schedule.intervals, key=lambda iv: (iv.weekday, iv.start)):
        days[iv.weekday].append(f"{_fmt_t(iv.start)}-{_fmt_t(iv.end)}")
    return HoursView(
        level,
        owner,
        True,
        tuple(tuple(d) for d in days),
        tuple(sorted(schedule.closed_dates)),
        tuple(line for line in format_hours(schedule) if not line.startswith(("closed 2", "closed 1"))),
    )


def user_view(u: User) -> dict[str, Any]:
    return {
        "username": u.username,
        "display_name": u.display_name,
        "extension": u.extension,
        "fixed": u.fixed,
        "mobile": u.mobile,
        "department": u.department,
        "groups": sorted(u.groups),
        "activity": {"kind": str(u.activity.kind), "until": u.activity.until},
        "caller_id_role": str(u.caller_id_role),
        "alt_number": u.alt_number,
        "play_activity_message": u.play_activity_message,
        "language": u.language,
    }


class AdminService:
    def __init__(self, store: Any, audit: AuditLog, catalogue: Catalogue | None = None) -> None:
        self.store = store
        self.audit = audit
        self._catalogue = catalogue

    # -- reads --------------------------------------------------------------------------------------

    async def snapshot(self) -> DirectorySnapshot:
        snap: DirectorySnapshot = await _maybe(self.store.snapshot())
        return snap

    async def catalogue(self) -> Catalogue:
        if self._catalogue is not None:
            return self._catalogue
        return (await self.snapshot()).catalogue

    async def users(self) -> list[User]:
        snap = await self.snapshot()
        return sorted(snap.users.values(), key=lambda u: (u.extension, u.username))

    async def user(self, username: str) -> User:
        snap = await self.snapshot()
        u = snap.users.get(username)
        if u is None:
            raise NotFoundError("user", username)
        return u

    async def departments(self) -> list[str]:
        snap = await self.snapshot()
        return sorted(snap.departments)

    async def require_department(self, name: str) -> None:
        if name not in (await self.snapshot()).departments:
            raise NotFoundError("department", name)

    async def members(self, group_id: str) -> list[str]:
        return sorted(u.username for u in (await self.users()) if group_id in u.groups)

    async def company_zone(self) -> ZoneInfo:
        return ZoneInfo((await self.snapshot()).company.timezone)

    async def hours(self, level: str, owner: str) -> HoursView:
        snap = await self.snapshot()
        schedule: WeeklySchedule | None
        if level == "company":
            schedule = snap.company.hours
        elif level == "department":
            dep = snap.departments.get(owner)
            if dep is None:
                raise NotFoundError("department", owner)
            schedule = dep.hours
        else:
            schedule = (await self.user(owner)).hours
        return hours_view(level, owner, schedule)

    async def alt_number(self, level: str, owner: str) -> str | None:
        snap = await self.snapshot()
        if level == "company":
            return snap.company.alt_number
        if level == "department":
            dep = snap.departments.get(owner)
            if dep is None:
                raise NotFoundError("department", owner)
            return dep.alt_number
        return (await self.user(owner)).alt_number

    async def cdrs(
        self, user: str | None, since: datetime | None, until: datetime | None, limit: int
    ) -> list[Any]:
        rows: list[Any] = await _maybe(self.store.list_cdrs(user=user, since=since, until=until, limit=limit))
        return list(rows)

    # -- writes (audited) ---------------------------------------------------------------------------

    async def create_user(self, actor: str, fields: dict[str, Any]) -> User:
        await _maybe(self.store.create_user(**fields))
        created = await self.user(fields["username"])
        await self.audit.record(actor, "user.create", f"user:{created.username}", None, user_view(created))
        return created

    async def update_user(self, actor: str, username: str, fields: dict[str, Any]) -> User:
        before = await self.user(username)
        if fields:
            await _maybe(self.store.update_user(username, **fields))
        after = await self.user(username)
        after_view = user_view(after)
        secrets = sorted(
            k for k in ("sip_password", "web_password_hash", "voicemail_pin_hash") if k in fields
        )
        if secrets:  # never the values, only that they changed
            after_view["changed_secrets"] = secrets
        await self.audit.record(actor, "user.update", f"user:{username}", user_view(before), after_view)
        return after

    async def delete_user(self, actor: str, username: str) -> None:
        before = await self.user(username)
        await _maybe(self.store.delete_user(username))
        await self.audit.record(actor, "user.delete", f"user:{username}", user_view(before), None)

    async def replace_groups(self, actor: str, username: str, ids: Iterable[str]) -> User:
        before = await self.user(username)
        wanted = sorted(set(ids))
        await _maybe(self.store.replace_groups(username, wanted))
        after = await self.user(username)
        await self.audit.record(
            actor, "user.groups", f"user:{username}", sorted(before.groups), sorted(after.groups)
        )
        return after

    async def set_activity(self, actor: str, username: str, kind: str, until: datetime | None) -> User:
        before = await self.user(username)
        await _maybe(self.store.set_activity(username, kind, until))
        after = await self.user(username)
        await self.audit.record(
            actor,
            "user.activity",
            f"user:{username}",
            user_view(before)["activity"],
            user_view(after)["activity"],
        )
        return after

    async def set_hours(
        self, actor: str, level: str, owner: str, specs: Sequence[str], closed_dates: Sequence[date]
    ) -> HoursView:
        before = await self.hours(level, owner)
        await _maybe(self.store.set_hours(level, owner, list(specs), closed_dates=tuple(closed_dates)))
        after = await self.hours(level, owner)
        await self.audit.record(
            actor,
            "hours.set",
            f"{level}:{owner}" if owner else level,
            {"specs": before.specs, "closed": before.closed_dates} if before.configured else None,
            {"specs": after.specs, "closed": after.closed_dates} if after.configured else None,
        )
        return after

    async def set_alt_number(self, actor: str, level: str, owner: str, number: str | None) -> str | None:
        before = await self.alt_number(level, owner)
        await _maybe(self.store.set_alt_number(level, owner, number))
        after = await self.alt_number(level, owner)
        await self.audit.record(
            actor, "alt_number.set", f"{level}:{owner}" if owner else level, before, after
        )
        return after
