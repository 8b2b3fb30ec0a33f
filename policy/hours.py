"""Working hours (SPEC 2): parsing, formatting, the level that applies, and "is it open now?".

Intervals are local wall-clock times in the company's zone, so DST is handled by evaluating ``now``
in that zone: 01:00-04:00 on the night the clocks go forward lasts two real hours, on the night
they go back four. ``24:00`` as an end time means the end of the day (stored as ``time.max``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from policy.catalogue import PolicyError
from policy.model import Interval, WeeklySchedule

if TYPE_CHECKING:
    from policy.model import DirectorySnapshot, User

__all__ = [
    "HoursSpecError",
    "Level",
    "effective_schedule",
    "format_hours",
    "is_working_time",
    "parse_hours_spec",
    "public_holidays_for",
    "zone",
]

Level = Literal["user", "department", "company"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_INDEX = {d: i for i, d in enumerate(DAYS)}
_END_OF_DAY = time.max
_SPEC = re.compile(
    r"^\s*(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+(?P<rest>.+?)\s*$"
)
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class HoursSpecError(PolicyError, ValueError):
    """A working-hours spec that cannot be parsed; the message names the offending part."""


def _parse_days(text: str, spec: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        ends = [p.strip() for p in part.split("-")]
        for d in ends:
            if d not in _DAY_INDEX:
                raise HoursSpecError(f"{spec!r}: unknown day {d!r} (use mon, tue, wed, thu, fri, sat, sun)")
        if len(ends) == 1:
            days.append(_DAY_INDEX[ends[0]])
            continue
        a, b = _DAY_INDEX[ends[0]], _DAY_INDEX[ends[1]]
        if b < a:
            raise HoursSpecError(f"{spec!r}: day range {part.strip()!r} runs backwards")
        days.extend(range(a, b + 1))
    return days


def _parse_time(h: str, m: str, spec: str, *, end: bool) -> time:
    hh, mm = int(h), int(m)
    if end and hh == 24 and mm == 0:
        return _END_OF_DAY
    if not (0 <= hh <= 23 and 0 <= mm <= 59):
        raise HoursSpecError(f"{spec!r}: invalid time {h}:{m}")
    return time(hh, mm)


def _fmt_time(t: time) -> str:
    return "24:00" if t == _END_OF_DAY else f"{t.hour:02d}:{t.minute:02d}"


def _fmt_interval(iv: Interval) -> str:
    return f"{DAYS[iv.weekday]} {_fmt_time(iv.start)}-{_fmt_time(iv.end)}"


def parse_hours_spec(specs: Iterable[str]) -> tuple[Interval, ...]:
    """Parse ``["mon-fri 08:00-12:00,13:00-17:00", "sat 10:00-14:00", "sun closed"]``.

    A spec is days (``mon``, ``mon-fri``, ``mon,wed``) then intervals (comma or space separated)
    or ``closed``. Errors (end not after start, overlapping intervals, a day both closed and open)
    raise ``HoursSpecError`` naming the interval. Returns intervals sorted by day and start.
    """
    per_day: dict[int, list[tuple[Interval, str]]] = {}
    closed: dict[int, str] = {}
    for spec in specs:
        m = _SPEC.match(spec.lower())
        if m is None:
            raise HoursSpecError(f"{spec!r}: expected 'DAYS HH:MM-HH:MM[,HH:MM-HH:MM...]' or 'DAYS closed'")
        days = _parse_days(m["days"], spec)
        rest = m["rest"]
        if rest == "closed":
            for d in days:
                if per_day.get(d):
                    raise HoursSpecError(f"{spec!r}: {DAYS[d]} is both closed and open")
                closed[d] = spec
            continue
        for part in re.split(r"[\s,]+(?=\d)", rest):
            im = _INTERVAL.match(part.strip())
            if im is None:
                raise HoursSpecError(
                    f"{spec!r}: cannot read interval {part.strip()!r} (expected HH:MM-HH:MM)"
                )
            start = _parse_time(im[1], im[2], spec, end=False)
            end = _parse_time(im[3], im[4], spec, end=True)
            if end <= start:
                raise HoursSpecError(f"{spec!r}: interval {part.strip()} ends before it starts")
            for d in days:
                if d in closed:
                    raise HoursSpecError(f"{spec!r}: {DAYS[d]} is both closed ({closed[d]!r}) and open")
                new = Interval(d, start, end)
                for old, old_spec in per_day.get(d, []):
                    if new.start < old.end and old.start < new.end:
                        raise HoursSpecError(
                            f"{spec!r}: interval {_fmt_interval(new)} overlaps {_fmt_interval(old)}"
                            f" (from {old_spec!r})"
                        )
                per_day.setdefault(d, []).append((new, spec))
    out = [iv for d in sorted(per_day) for iv, _ in per_day[d]]
    return tuple(sorted(out, key=lambda iv: (iv.weekday, iv.start)))


def format_hours(schedule: WeeklySchedule | None) -> list[str]:
    """The schedule as spec lines, one per weekday (consecutive equal days joined: ``mon-fri``)."""
    if schedule is None:
        return ["always open (no working hours set)"]
    by_day: list[str] = []
    for d in range(7):
        ivs = sorted((iv for iv in schedule.intervals if iv.weekday == d), key=lambda iv: iv.start)
        by_day.append(",".join(f"{_fmt_time(iv.start)}-{_fmt_time(iv.end)}" for iv in ivs) or "closed")
    lines: list[str] = []
    d = 0
    while d < 7:
        e = d
        while e + 1 < 7 and by_day[e + 1] == by_day[d]:
            e += 1
        days = DAYS[d] if d == e else f"{DAYS[d]}-{DAYS[e]}"
        lines.append(f"{days} {by_day[d]}")
        d = e + 1
    for cd in sorted(schedule.closed_dates):
        lines.append(f"closed {cd.isoformat()}")
    if not schedule.use_public_holidays:
        lines.append("open on public holidays")
    return lines


def effective_schedule(user: User, snapshot: DirectorySnapshot) -> tuple[WeeklySchedule | None, Level | None]:
    """The most specific working hours: user > department > company; ``(None, None)`` = always open."""
    if user.hours is not None:
        return user.hours, "user"
    if user.department is not None:
        dept = snapshot.departments.get(user.department)
        if dept is not None and dept.hours is not None:
            return dept.hours, "department"
    if snapshot.company.hours is not None:
        return snapshot.company.hours, "company"
    return None, None


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """A ``ZoneInfo`` by IANA name (cached)."""
    return ZoneInfo(name)


def is_working_time(
    schedule: WeeklySchedule | None,
    now: datetime,
    tz: tzinfo | str,
    public_holidays: frozenset[date] | Sequence[date] = frozenset(),
) -> bool:
    """True when ``now`` (timezone-aware) falls in an interval of ``schedule``, read in zone ``tz``.

    Closed on ``schedule.closed_dates`` and, when ``schedule.use_public_holidays``, on
    ``public_holidays``. No schedule means always open.
    """
    if schedule is None:
        return True
    if now.tzinfo is None:
        raise ValueError("is_working_time needs a timezone-aware datetime")
    local = now.astimezone(zone(tz) if isinstance(tz, str) else tz)
    day = local.date()
    if day in schedule.closed_dates:
        return False
    if schedule.use_public_holidays and day in public_holidays:
        return False
    wd = local.weekday()
    t = local.time()
    for iv in schedule.intervals:
        if iv.weekday == wd and iv.start <= t and (t < iv.end or iv.end == _END_OF_DAY):
            return True
    return False


def public_holidays_for(country: str, years: Iterable[int]) -> frozenset[date]:
    """Public holidays of ``country`` for ``years``, plus its de facto closed days where the
    ``holidays`` package has them (Sweden: julafton, midsommarafton, nyårsafton).

    Called by the snapshot builder; the call path only reads the resulting set.
    """
    import holidays  # imported lazily: only the snapshot builder needs it

    ys = sorted(set(years))
    if not ys:
        return frozenset()
    cls = holidays.country_holidays(country.upper(), years=ys[0]).__class__
    supported = set(getattr(cls, "supported_categories", ("public",)))
    categories = tuple(c for c in ("public", "de_facto") if c in supported) or ("public",)
    cal = holidays.country_holidays(country.upper(), years=ys, categories=categories)
    return frozenset(d for d in cal if isinstance(d, date))
