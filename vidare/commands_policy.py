"""The directory subcommands (SPEC section 7): ``user``, ``activity``, ``hours``, ``explain``, ``migrate``.

Each command opens the store at ``config.database_url``, migrates it, creates the demo company on
an empty database (when ``demo.enabled``), does its work in one transaction and closes the store.
A change is visible to a running server within its poll interval (it watches the directory
version). Every user error is one line on stderr and exit status 2 (``UsageError``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from policy.catalogue import PolicyError
from policy.model import ActivityKind, DirectorySnapshot, User
from policy.store import NotFoundError, Store, StoreError
from vidare.cli import UsageError
from vidare.config import Config
from vidare.store import open_store

__all__ = ["add_commands"]

_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _run(config: Config, body: Callable[[Store], Awaitable[int]]) -> int:
    """Open, migrate, ensure the demo company, run ``body``, close; map errors to ``UsageError``."""
    from alembic.util import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    async def main() -> int:
        store = await open_store(config)
        try:
            await store.migrate()
            if config.get("demo", "enabled"):
                await store.ensure_demo(str(config.get("sip", "domain")))
            return await body(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (StoreError, PolicyError) as e:
        raise UsageError(_one_line(str(e))) from None
    except (SQLAlchemyError, CommandError, OSError) as e:
        try:
            where = make_url(config.database_url).render_as_string(hide_password=True)
        except Exception:  # an unparsable URL: say so, without echoing it
            where = "(unparsable store.url)"
        detail = str(getattr(e, "orig", None) or e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(_one_line(f"database {where}: {detail}")) from None


def _company_zone(snapshot: DirectorySnapshot) -> ZoneInfo:
    return ZoneInfo(snapshot.company.timezone)


def _parse_when(text: str, tz: ZoneInfo, what: str, *, now: datetime | None = None) -> datetime:
    """``HH:MM`` (today in the company time zone) or ISO 8601 (naive = company time zone)."""
    m = _HHMM.fullmatch(text.strip())
    if m is not None:
        today = (now or datetime.now(UTC)).astimezone(tz).date()
        return datetime.combine(today, time(int(m[1]), int(m[2])), tzinfo=tz)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{what} {text!r}: expected HH:MM or an ISO 8601 time (2026-11-28T10:00+01:00)"
        ) from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _fmt_local(value: datetime, tz: ZoneInfo) -> str:
    local = value.astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M %Z")


# ---------------------------------------------------------------------- user


def _activity_text(user: User, tz: ZoneInfo, now: datetime) -> str:
    kind = user.activity.effective(now)
    if kind is ActivityKind.AVAILABLE:
        return "available"
    if user.activity.until is None:
        return f"{kind.value} (no return time)"
    return f"{kind.value} until {_fmt_local(user.activity.until, tz)}"


def _group_lines(store: Store, groups: frozenset[str]) -> list[str]:
    cat = store.catalogue
    ordered = [g for g in cat.groups.values() if g.id in groups]
    unknown = sorted(groups - cat.groups.keys())
    width = max((len(g.id) for g in ordered), default=0)
    lines = [f"  {g.id:<{width}}  {g.name}  [{g.situation}]" for g in ordered]
    lines += [f"  {gid}  (not in the catalogue)" for gid in unknown]
    return lines or ["  (none)"]


async def _user_list(store: Store) -> int:
    users = await store.list_users()
    now = datetime.now(UTC)
    rows = [("USER", "EXT", "FIXED", "MOBILE", "DEPARTMENT", "ACTIVITY", "NAME")]
    for u in users:
        kind = u.activity.effective(now).value
        rows.append(
            (
                u.username,
                u.extension,
                u.fixed or "-",
                u.mobile or "-",
                u.department or "-",
                kind,
                u.display_name,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    return 0


async def _user_show(store: Store, username: str) -> int:
    from policy.explain import format_situation_table, situation_table

    now = datetime.now(UTC)
    snapshot = await store.snapshot(now)
    user = snapshot.users.get(username)
    if user is None:
        raise NotFoundError("user", username)
    tz = _company_zone(snapshot)
    print(f"{user.username}: {user.display_name}")
    print(f"  extension      {user.extension}")
    print(f"  fixed number   {user.fixed or '-'}")
    print(f"  mobile number  {user.mobile or '-'}")
    print(f"  department     {user.department or '-'}")
    print(f"  alt. number    {user.alt_number or '-'}")
    print(f"  activity       {_activity_text(user, tz, now)}")
    print(f"  caller ID      {user.caller_id_role.value}")
    print("groups:")
    for line in _group_lines(store, user.groups):
        print(line)
    aor = f"sip:{user.username}@{snapshot.company.domain}"
    bindings = [b for b in await store.load_bindings(now) if b.aor == aor]
    print("registered softphones:" if bindings else "registered softphones: none")
    for b in bindings:
        left = int((b.expires_at - now).total_seconds())
        agent = f"  ({b.user_agent})" if b.user_agent else ""
        flow = f"{b.transport.upper()} {b.source_host}:{b.source_port}"
        print(f"  {b.contact}  via {flow}, {left} s left{agent}")
    print(f"calls now ({_fmt_local(now, tz)}):")
    print(format_situation_table(situation_table(username, snapshot, now)))
    return 0


async def _user_groups(store: Store, username: str, add: list[str], remove: list[str]) -> int:
    if add or remove:
        groups = await store.set_groups(username, add=add, remove=remove)
    else:
        groups = (await store.get_user(username)).groups
    print(f"groups of {username}:")
    for line in _group_lines(store, groups):
        print(line)
    return 0


# ---------------------------------------------------------------------- activity


async def _activity(store: Store, username: str, kind: str, until_text: str | None) -> int:
    company = await store.company()
    tz = ZoneInfo(company.timezone)
    if kind == ActivityKind.AVAILABLE.value:
        if until_text is not None:
            raise UsageError("'available' takes no --until")
        await store.set_activity(username, ActivityKind.AVAILABLE)
        print(f"{username}: available")
        return 0
    until = None if until_text is None else _parse_when(until_text, tz, "--until")
    activity = await store.set_activity(username, kind, until)
    when = "" if activity.until is None else f" until {_fmt_local(activity.until, tz)}"
    print(f"{username}: {activity.kind.value}{when}")
    return 0


# ---------------------------------------------------------------------- hours


def _level(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.company:
        return "company", None
    if args.department is not None:
        return "department", args.department
    return "user", args.user


def _level_title(level: str, owner: str | None) -> str:
    return "the company" if level == "company" else f"{level} {owner}"


async def _hours_set(
    store: Store, level: str, owner: str | None, specs: list[str], closed: list[date], clear: bool
) -> int:
    from policy.hours import format_hours

    if clear and (specs or closed):
        raise UsageError("--clear takes no hours and no --closed dates")
    if not clear and not specs and not closed:
        raise UsageError('give the hours (e.g. "mon-fri 08:00-17:00"), --closed dates, or --clear')
    schedule = await store.set_hours(level, owner, specs, closed)
    if schedule is None:
        print(f"working hours of {_level_title(level, owner)}: cleared (a less specific level applies)")
        return 0
    print(f"working hours of {_level_title(level, owner)}:")
    for line in format_hours(schedule):
        print(f"  {line}")
    return 0


async def _hours_show(store: Store, level: str, owner: str | None) -> int:
    from policy.hours import format_hours

    schedule = await store.get_hours(level, owner)
    if schedule is None:
        fallback = {"user": "the department's or the company's", "department": "the company's"}.get(
            level, "no"
        )
        print(f"working hours of {_level_title(level, owner)}: not set ({fallback} hours apply)")
        return 0
    print(f"working hours of {_level_title(level, owner)}:")
    for line in format_hours(schedule):
        print(f"  {line}")
    return 0


# ---------------------------------------------------------------------- explain


def _number_arg(text: str, snapshot: DirectorySnapshot, what: str) -> str:
    """An extension of the company as is; anything else normalised to E.164."""
    from policy.numbers import InvalidNumberError, normalise

    text = text.strip()
    if text in snapshot.by_extension:
        return text
    try:
        return normalise(text, snapshot.company.country)
    except InvalidNumberError as e:
        raise UsageError(f"{what}: {e}") from None


def _user_of(number: str | None, snapshot: DirectorySnapshot) -> str | None:
    if number is None:
        return None
    hit = snapshot.by_number.get(number)
    if hit is not None:
        return hit[0]
    return snapshot.by_extension.get(number)


async def _explain(store: Store, config: Config, args: argparse.Namespace) -> int:
    from policy.decide import decide
    from policy.explain import format_plan
    from policy.plan import CallContext

    probe = await store.snapshot()
    tz = _company_zone(probe)
    at = datetime.now(UTC) if args.at is None else _parse_when(args.at, tz, "--at")
    snapshot = await store.snapshot(at)
    dialled = _number_arg(args.to, snapshot, "--to")
    caller = None if args.caller is None else _number_arg(args.caller, snapshot, "--from")
    caller_user = _user_of(caller, snapshot)
    if _user_of(dialled, snapshot) is None and caller_user is not None:
        call = CallContext.outgoing(caller_user, dialled)
    else:
        call = CallContext.incoming(dialled, caller=caller, caller_user=caller_user, user_busy=args.busy)
    plan = decide(call, snapshot, at, max_ring_seconds=int(config.get("sip", "max_ring_seconds")))
    if args.json:
        print(json.dumps(plan.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_plan(plan))
    return 0


# ---------------------------------------------------------------------- migrate


async def _migrate(store: Store) -> int:
    revision, version = await store.schema_revision(), await store.version()
    print(f"database schema at revision {revision}, directory version {version}")
    return 0


# ---------------------------------------------------------------------- registration


def _closed_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--closed {text!r}: expected YYYY-MM-DD") from None


def _level_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--company", action="store_true", help="the company's hours")
    g.add_argument("--department", metavar="NAME", help="one department's hours")
    g.add_argument("--user", metavar="USER", help="one user's hours")


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    def handler(fn: Callable[[argparse.Namespace, Config], Callable[[Store], Awaitable[int]]]) -> Any:
        def run(args: argparse.Namespace, config: Config) -> int:
            return _run(config, fn(args, config))

        return run

    user = sub.add_parser("user", help="list, show and change users")
    user_sub = user.add_subparsers(dest="user_command", required=True)

    p = user_sub.add_parser("list", help="list the users")
    common(p)
    p.set_defaults(handler=handler(lambda a, c: _user_list))

    p = user_sub.add_parser("show", help="a user's numbers, groups, activity and what happens to calls")
    p.add_argument("username", metavar="USER")
    common(p)
    p.set_defaults(handler=handler(lambda a, c: lambda s: _user_show(s, a.username)))

    p = user_sub.add_parser("groups", help="show or change a user's groups (atomic)")
    p.add_argument("username", metavar="USER")
    p.add_argument("--add", action="append", default=[], metavar="ID", help="group id to add (repeatable)")
    p.add_argument(
        "--remove", action="append", default=[], metavar="ID", help="group id to remove (repeatable)"
    )
    common(p)
    p.set_defaults(handler=handler(lambda a, c: lambda s: _user_groups(s, a.username, a.add, a.remove)))

    p = sub.add_parser("activity", help="set a user's activity (meeting, lunch, ... or available)")
    p.add_argument("username", metavar="USER")
    p.add_argument("kind", choices=[k.value for k in ActivityKind], metavar="ACTIVITY")
    p.add_argument("--until", metavar="HH:MM|ISO-8601", help="return time (HH:MM: today, company time zone)")
    common(p)
    p.set_defaults(handler=handler(lambda a, c: lambda s: _activity(s, a.username, a.kind, a.until)))

    hours = sub.add_parser("hours", help="working hours of the company, a department or a user")
    hours_sub = hours.add_subparsers(dest="hours_command", required=True)

    p = hours_sub.add_parser("set", help='set working hours, e.g. "mon-fri 08:00-17:00" "sat 10:00-14:00"')
    _level_options(p)
    p.add_argument(
        "specs", nargs="*", metavar="SPEC", help='"DAYS HH:MM-HH:MM[,HH:MM-HH:MM]" or "DAYS closed"'
    )
    p.add_argument("--closed", action="append", default=[], type=_closed_date, metavar="YYYY-MM-DD")
    p.add_argument("--clear", action="store_true", help="remove this level's hours (inherit)")
    common(p)
    p.set_defaults(
        handler=handler(
            lambda a, c: lambda s: _hours_set(s, *_level(a), list(a.specs), list(a.closed), bool(a.clear))
        )
    )

    p = hours_sub.add_parser("show", help="show working hours")
    _level_options(p)
    common(p)
    p.set_defaults(handler=handler(lambda a, c: lambda s: _hours_show(s, *_level(a))))

    p = sub.add_parser("explain", help="print how a call would be handled, without placing it")
    p.add_argument("--to", required=True, metavar="NUMBER", help="dialled number or extension")
    p.add_argument("--from", dest="caller", metavar="NUMBER", help="caller's number or extension")
    p.add_argument("--at", metavar="ISO-8601", help="time of the call (default now; naive = company zone)")
    p.add_argument("--busy", action="store_true", help="the user is in a call already")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    common(p)
    p.set_defaults(handler=handler(lambda a, c: lambda s: _explain(s, c, a)))

    p = sub.add_parser("migrate", help="create or upgrade the database schema")
    common(p)
    p.set_defaults(handler=handler(lambda a, c: _migrate))
