"""Benchmark decide(): ``python -m bench.decide`` builds a 10,000-user directory and times a mix of calls.

Prints the median and p99 time per call, cold (first call per user after a snapshot swap, which
fills the per-snapshot memo) and warm. Not a test; it gates nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from policy.catalogue import MembershipError, load_catalogue
from policy.decide import decide
from policy.hours import parse_hours_spec, public_holidays_for
from policy.model import (
    Activity,
    ActivityKind,
    CallerIdRole,
    Company,
    Department,
    DirectorySnapshot,
    User,
    WeeklySchedule,
)
from policy.plan import CallContext

TZ = ZoneInfo("Europe/Stockholm")


def build(n: int, rng: random.Random) -> DirectorySnapshot:
    cat = load_catalogue()
    ids = sorted(cat.groups)
    depts = [Department(f"D{i}", alt_number=f"+46810{i:05d}" if i % 3 == 0 else None) for i in range(50)]
    hours = WeeklySchedule(parse_hours_spec(["mon-fri 08:00-12:00,13:00-17:00"]))
    users = []
    for i in range(n):
        groups = set(cat.defaults)
        for gid in rng.sample(ids, 4):
            try:
                cat.check_membership([*groups, gid])
                groups.add(gid)
            except MembershipError:
                pass
        act = rng.choice([ActivityKind.AVAILABLE] * 4 + list(ActivityKind))
        users.append(
            User(
                username=f"user{i}",
                display_name=f"User {i}",
                extension=str(10000 + i),
                fixed=f"+468{2000000 + i}",
                mobile=f"+4670{3000000 + i}" if i % 5 else None,
                department=f"D{i % 50}",
                groups=frozenset(groups),
                activity=Activity(act),
                caller_id_role=rng.choice(list(CallerIdRole)),
                alt_number=f"+468{2000000 + (i + 1) % n}" if i % 7 == 0 else None,
                hours=hours if i % 11 == 0 else None,
            )
        )
    return DirectorySnapshot.build(
        version=1,
        company=Company(
            name="Bench AB",
            domain="bench.test",
            alt_number="+4681000000",
            hours=WeeklySchedule(parse_hours_spec(["mon-fri 08:00-17:00"])),
        ),
        catalogue=cat,
        users=users,
        departments=depts,
        public_holidays=public_holidays_for("SE", range(2025, 2029)),
    )


def calls(snap: DirectorySnapshot, count: int, rng: random.Random) -> list[tuple[CallContext, datetime]]:
    users = list(snap.users.values())
    starts = [
        datetime(2026, 11, 25, 10, 0, tzinfo=TZ),
        datetime(2026, 11, 28, 10, 0, tzinfo=TZ),
        datetime(2026, 11, 25, 20, 0, tzinfo=TZ),
        datetime(2026, 12, 24, 10, 0, tzinfo=TZ),
    ]
    out = []
    for _ in range(count):
        u = rng.choice(users)
        now = rng.choice(starts)
        r = rng.random()
        if r < 0.1:
            ctx = CallContext.outgoing(u.username, rng.choice(["+46812345678", rng.choice(users).extension]))
        elif r < 0.12:
            ctx = CallContext.incoming("+46899999999")
        else:
            dialled = u.mobile if (u.mobile and rng.random() < 0.4) else (u.fixed or u.extension)
            ctx = CallContext.incoming(dialled, caller="+46812345678", user_busy=rng.random() < 0.2)
        out.append((ctx, now))
    return out


def measure(snap: DirectorySnapshot, mix: list[tuple[CallContext, datetime]]) -> list[float]:
    times = []
    clock = time.perf_counter_ns
    for ctx, now in mix:
        t0 = clock()
        decide(ctx, snap, now)
        times.append((clock() - t0) / 1000.0)
    return times


def report(label: str, times: list[float]) -> None:
    times = sorted(times)
    p99 = times[int(len(times) * 0.99) - 1]
    print(f"{label}: n={len(times)} median {statistics.median(times):.1f} us, p99 {p99:.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    rng = random.Random(1)
    t0 = time.perf_counter()
    snap = build(args.users, rng)
    print(f"built {args.users} users in {time.perf_counter() - t0:.2f} s")
    mix = calls(snap, args.calls, rng)
    report("cold (fresh snapshot, memo filling)", measure(snap, mix[: args.users]))
    measure(snap, mix)
    report("warm", measure(snap, mix))


if __name__ == "__main__":
    main()
