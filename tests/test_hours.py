"""Working hours: parsing, levels, DST, holidays (SPEC 2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from policy_fixtures import DEMO_HOURS, at, demo_snapshot

from policy.hours import (
    HoursSpecError,
    effective_schedule,
    format_hours,
    is_working_time,
    parse_hours_spec,
    public_holidays_for,
)
from policy.model import Department, Interval, WeeklySchedule

TZ = "Europe/Stockholm"
SE = public_holidays_for("SE", [2026])


def _open_seconds(schedule: WeeklySchedule, start: datetime, end: datetime, step: int = 60) -> int:
    n, t = 0, start
    while t < end:
        n += step if is_working_time(schedule, t, TZ) else 0
        t += timedelta(seconds=step)
    return n


def test_dst_spring_night_is_two_real_hours() -> None:
    s = WeeklySchedule(parse_hours_spec(["sun 01:00-04:00"]), use_public_holidays=False)
    start = datetime(2026, 3, 28, 22, 0, tzinfo=UTC)
    assert _open_seconds(s, start, start + timedelta(hours=8)) == 2 * 3600
    assert is_working_time(s, datetime(2026, 3, 29, 0, 30, tzinfo=UTC), TZ)  # 01:30 CET
    assert is_working_time(s, datetime(2026, 3, 29, 1, 30, tzinfo=UTC), TZ)  # 03:30 CEST
    assert not is_working_time(s, datetime(2026, 3, 29, 2, 0, tzinfo=UTC), TZ)  # 04:00 CEST


def test_dst_autumn_night_is_four_real_hours() -> None:
    s = WeeklySchedule(parse_hours_spec(["sun 01:00-04:00"]), use_public_holidays=False)
    start = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)
    assert _open_seconds(s, start, start + timedelta(hours=8)) == 4 * 3600
    # 02:30 happens twice; both are inside.
    assert is_working_time(s, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), TZ)
    assert is_working_time(s, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), TZ)


def test_office_hours_in_summer_and_winter() -> None:
    assert is_working_time(DEMO_HOURS, datetime(2026, 6, 1, 6, 0, tzinfo=UTC), TZ, SE)  # 08:00 CEST Monday
    assert not is_working_time(DEMO_HOURS, datetime(2026, 6, 1, 5, 59, tzinfo=UTC), TZ, SE)
    assert is_working_time(DEMO_HOURS, datetime(2026, 12, 1, 7, 0, tzinfo=UTC), TZ, SE)  # 08:00 CET Tuesday
    assert not is_working_time(DEMO_HOURS, datetime(2026, 12, 1, 16, 0, tzinfo=UTC), TZ, SE)  # 17:00 CET


def test_christmas_eve_is_closed_in_sweden() -> None:
    assert date(2026, 12, 24) in SE  # julafton: de facto holiday in the holidays package
    assert date(2026, 12, 25) in SE and date(2026, 6, 19) in SE and date(2026, 1, 6) in SE
    thursday = at("2026-12-24T10:00")
    assert thursday.weekday() == 3
    assert not is_working_time(DEMO_HOURS, thursday, TZ, SE)
    assert is_working_time(DEMO_HOURS, at("2026-12-23T10:00"), TZ, SE)
    assert is_working_time(replace(DEMO_HOURS, use_public_holidays=False), thursday, TZ, SE)


def test_other_countries() -> None:
    de = public_holidays_for("DE", [2026])
    assert date(2026, 12, 25) in de and date(2026, 12, 24) not in de
    assert public_holidays_for("SE", []) == frozenset()


def test_explicit_closed_dates() -> None:
    s = replace(DEMO_HOURS, closed_dates=frozenset({date(2026, 11, 27)}))
    assert not is_working_time(s, at("2026-11-27T10:00"), TZ)
    assert is_working_time(s, at("2026-11-26T10:00"), TZ)


def test_several_intervals_per_day_and_24_00() -> None:
    ivs = parse_hours_spec(["mon-fri 08:00-12:00,13:00-17:00", "sat 10:00-14:00", "sun 20:00-24:00"])
    s = WeeklySchedule(ivs)
    assert is_working_time(s, at("2026-11-23T11:59"), TZ)
    assert not is_working_time(s, at("2026-11-23T12:30"), TZ)
    assert is_working_time(s, at("2026-11-23T13:00"), TZ)
    assert is_working_time(s, at("2026-11-28T10:00"), TZ)
    assert is_working_time(s, at("2026-11-29T23:59:59"), TZ)
    assert not is_working_time(s, at("2026-11-30T07:59"), TZ)
    assert format_hours(s) == ["mon-fri 08:00-12:00,13:00-17:00", "sat 10:00-14:00", "sun 20:00-24:00"]
    assert len(ivs) == 12 and ivs[0] == Interval(0, time(8), time(12))


def test_no_schedule_always_open_and_empty_schedule_always_closed() -> None:
    assert is_working_time(None, at("2026-12-25T03:00"), TZ, SE)
    assert not is_working_time(WeeklySchedule(), at("2026-11-25T10:00"), TZ)
    assert format_hours(None) == ["always open (no working hours set)"]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        is_working_time(DEMO_HOURS, datetime(2026, 11, 25, 10, 0), TZ)


def test_format_round_trip() -> None:
    specs = ["mon-wed 08:00-17:00", "thu 08:00-12:00", "fri 09:00-15:00", "sat-sun closed"]
    assert format_hours(WeeklySchedule(parse_hours_spec(specs))) == specs
    s = WeeklySchedule(
        parse_hours_spec(specs), closed_dates=frozenset({date(2026, 7, 1)}), use_public_holidays=False
    )
    assert format_hours(s)[-2:] == ["closed 2026-07-01", "open on public holidays"]


@pytest.mark.parametrize(
    ("specs", "error"),
    [
        (["mon 10:00-09:00"], "10:00-09:00 ends before it starts"),
        (["mon 10:00-10:00"], "ends before it starts"),
        (["mon-fri 08:00-12:00,11:00-13:00"], "overlaps"),
        (["mon 08:00-12:00", "mon-fri 11:30-13:00"], "mon 11:30-13:00 overlaps mon 08:00-12:00"),
        (["xyz 08:00-09:00"], "unknown day 'xyz'"),
        (["fri-mon 08:00-09:00"], "runs backwards"),
        (["mon 8-9"], "cannot read interval '8-9'"),
        (["mon 25:00-26:00"], "invalid time"),
        (["mon"], "expected"),
        (["mon closed", "mon 08:00-09:00"], "both closed"),
    ],
)
def test_spec_errors(specs: list[str], error: str) -> None:
    with pytest.raises(HoursSpecError) as ei:
        parse_hours_spec(specs)
    assert error in str(ei.value)


def test_level_precedence() -> None:
    snap = demo_snapshot()
    dept_hours = WeeklySchedule(parse_hours_spec(["mon-fri 07:00-16:00"]))
    user_hours = WeeklySchedule(parse_hours_spec(["sat 10:00-14:00"]))
    bob = snap.users["bob"]
    assert effective_schedule(bob, snap) == (DEMO_HOURS, "company")
    snap2 = demo_snapshot(departments=[Department("Sales", hours=dept_hours), Department("Support")])
    assert effective_schedule(snap2.users["bob"], snap2) == (dept_hours, "department")
    assert effective_schedule(snap2.users["carol"], snap2) == (DEMO_HOURS, "company")
    assert effective_schedule(replace(bob, hours=user_hours), snap2) == (user_hours, "user")
    bare = demo_snapshot(company=replace(snap.company, hours=None))
    assert effective_schedule(bare.users["bob"], bare) == (None, None)
