"""The directory as an immutable in-memory view (SPEC section 2).

A ``DirectorySnapshot`` is built by the store from the database, validated once, and swapped
atomically when anything changes; a call keeps the snapshot it started with. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from policy.catalogue import Catalogue

__all__ = [
    "EMPTY_MAPPING",
    "Activity",
    "ActivityKind",
    "CallerIdRole",
    "Company",
    "Department",
    "DirectorySnapshot",
    "Interval",
    "NumberKind",
    "SipCredentials",
    "User",
    "WeeklySchedule",
]

EMPTY_MAPPING: Mapping[str, str] = MappingProxyType({})


class ActivityKind(StrEnum):
    AVAILABLE = "available"
    MEETING = "meeting"
    LUNCH = "lunch"
    AWAY = "away"
    GONE = "gone"  # gone for the day
    VACATION = "vacation"
    SICK = "sick"
    TRIP = "trip"  # business trip


class CallerIdRole(StrEnum):
    FIXED = "fixed"
    MOBILE = "mobile"
    ALT_NUMBER = "alt_number"
    HIDDEN = "hidden"
    TIME_BASED = "time_based"


class NumberKind(StrEnum):
    """Which of the user's numbers was dialled (selects the Fastnr or Mobilnr rules)."""

    FIXED = "fixed"
    MOBILE = "mobile"


@dataclass(frozen=True, slots=True)
class Activity:
    kind: ActivityKind = ActivityKind.AVAILABLE
    until: datetime | None = None  # timezone-aware; the activity ends by itself at this time

    def effective(self, now: datetime) -> ActivityKind:
        """The activity in force at ``now``: an expired one is Available again."""
        if self.kind is ActivityKind.AVAILABLE:
            return ActivityKind.AVAILABLE
        if self.until is not None and now >= self.until:
            return ActivityKind.AVAILABLE
        return self.kind


@dataclass(frozen=True, slots=True)
class Interval:
    """One weekly opening interval: ``weekday`` 0=Monday .. 6=Sunday, local wall-clock times."""

    weekday: int
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """Working hours at one level (company, department or user).

    ``closed_dates`` are explicit extra closed days; ``holidays`` are the public holidays of the
    company's country for the years the snapshot covers (filled in by the snapshot builder from
    the ``holidays`` package, so evaluation needs no I/O).
    """

    intervals: tuple[Interval, ...] = ()
    closed_dates: frozenset[date] = frozenset()
    use_public_holidays: bool = True


@dataclass(frozen=True, slots=True)
class SipCredentials:
    """Digest credentials of a user as stored: HA1 = H(username:realm:password), never the password."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str
    extension: str
    fixed: str | None  # E.164
    mobile: str | None  # E.164
    department: str | None
    groups: frozenset[str]
    activity: Activity = Activity()
    caller_id_role: CallerIdRole = CallerIdRole.FIXED
    alt_number: str | None = None  # user-level alternative number (E.164 or extension)
    hours: WeeklySchedule | None = None  # user-level working hours
    play_activity_message: bool = False
    language: str | None = None  # None: the company language


@dataclass(frozen=True, slots=True)
class Department:
    name: str
    alt_number: str | None = None
    hours: WeeklySchedule | None = None


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    timezone: str = "Europe/Stockholm"
    country: str = "SE"
    language: str = "sv"
    alt_number: str | None = None
    hours: WeeklySchedule | None = None


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """An immutable view of one company's directory, with the lookups the call path needs."""

    version: int
    company: Company
    catalogue: Catalogue
    users: Mapping[str, User]
    departments: Mapping[str, Department] = field(default_factory=lambda: MappingProxyType({}))
    # Public holidays of the company's country, precomputed for the years around the snapshot.
    public_holidays: frozenset[date] = frozenset()
    # Derived indexes (built by ``DirectorySnapshot.build``).
    by_number: Mapping[str, tuple[str, NumberKind]] = field(default_factory=lambda: MappingProxyType({}))
    by_extension: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    credentials: Mapping[str, SipCredentials] = field(default_factory=lambda: MappingProxyType({}))
    # Per-snapshot memo for derived data that policy computes lazily (a pure function of the fields
    # above, e.g. each user's filled slots). Not an init field: ``dataclasses.replace`` starts empty.
    memo: dict[object, object] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        *,
        version: int,
        company: Company,
        catalogue: Catalogue,
        users: list[User],
        departments: list[Department] = (),  # type: ignore[assignment]
        public_holidays: frozenset[date] = frozenset(),
        credentials: list[SipCredentials] = (),  # type: ignore[assignment]
    ) -> DirectorySnapshot:
        by_number: dict[str, tuple[str, NumberKind]] = {}
        by_ext: dict[str, str] = {}
        for u in users:
            if u.fixed:
                by_number[u.fixed] = (u.username, NumberKind.FIXED)
            if u.mobile:
                by_number[u.mobile] = (u.username, NumberKind.MOBILE)
            by_ext[u.extension] = u.username
        return cls(
            version=version,
            company=company,
            catalogue=catalogue,
            users=MappingProxyType({u.username: u for u in users}),
            departments=MappingProxyType({d.name: d for d in departments}),
            public_holidays=public_holidays,
            by_number=MappingProxyType(by_number),
            by_extension=MappingProxyType(by_ext),
            credentials=MappingProxyType({c.username: c for c in credentials}),
        )
