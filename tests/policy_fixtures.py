"""The demo company of SPEC 7 as an in-memory DirectorySnapshot (no database)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from policy.catalogue import Catalogue, load_catalogue
from policy.hours import parse_hours_spec, public_holidays_for
from policy.model import Company, Department, DirectorySnapshot, User, WeeklySchedule

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ALT_NUMBER = "+4681000000"
DEMO_HOURS = WeeklySchedule(intervals=parse_hours_spec(["mon-fri 08:00-17:00"]))

# (username, display name, extension, fixed, mobile, department)
DEMO_USERS = (
    ("alice", "Alice Andersson", "1001", "+4681001001", "+46701001001", "Sales"),
    ("bob", "Bob Berg", "1002", "+4681001002", "+46701001002", "Sales"),
    ("carol", "Carol Carlsson", "1003", "+4681001003", "+46701001003", "Support"),
)


def at(text: str) -> datetime:
    """An ISO-8601 time; naive times are read in Europe/Stockholm."""
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=STOCKHOLM)


def demo_users(catalogue: Catalogue) -> list[User]:
    return [
        User(
            username=u,
            display_name=name,
            extension=ext,
            fixed=fixed,
            mobile=mobile,
            department=dept,
            groups=frozenset(catalogue.defaults),
        )
        for u, name, ext, fixed, mobile, dept in DEMO_USERS
    ]


def demo_snapshot(
    *,
    catalogue: Catalogue | None = None,
    users: Iterable[User] | None = None,
    company: Company | None = None,
    departments: Iterable[Department] | None = None,
    version: int = 1,
) -> DirectorySnapshot:
    cat = catalogue or load_catalogue()
    return DirectorySnapshot.build(
        version=version,
        company=company
        or Company(name="Demo AB", domain="demo.test", alt_number=ALT_NUMBER, hours=DEMO_HOURS),
        catalogue=cat,
        users=list(users) if users is not None else demo_users(cat),
        departments=list(departments)
        if departments is not None
        else [Department("Sales"), Department("Support")],
        public_holidays=public_holidays_for("SE", range(2025, 2029)),
    )


def with_user(snapshot: DirectorySnapshot, username: str, **changes: object) -> DirectorySnapshot:
    """A new snapshot where one user is changed (``groups`` may be given as any iterable)."""
    if "groups" in changes:
        changes["groups"] = frozenset(changes["groups"])  # type: ignore[arg-type]
    users = [replace(u, **changes) if u.username == username else u for u in snapshot.users.values()]  # type: ignore[arg-type]
    return DirectorySnapshot.build(
        version=snapshot.version + 1,
        company=snapshot.company,
        catalogue=snapshot.catalogue,
        users=users,
        departments=list(snapshot.departments.values()),
        public_holidays=snapshot.public_holidays,
    )
