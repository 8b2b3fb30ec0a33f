"""The directory store on real SQLite files (no mocks): schema, demo company, snapshot, atomic
group changes, directory version, registrations, hours levels, activity, digest credentials."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select

from policy.catalogue import MembershipError, UnknownGroupError
from policy.hours import effective_schedule
from policy.model import ActivityKind, CallerIdRole, Interval, NumberKind
from policy.store import MIGRATIONS_DIR, Binding, Cdr, NotFoundError, Store, ValidationError
from policy.store.demo import DEMO_USERS
from policy.store.schema import RegistrationRow

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DEFAULTS = frozenset(
    {"activity.both.announcement_voicemail", "no_answer.both.voicemail.30", "busy.both.voicemail"}
)


def _url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'var' / 'vidare.db'}"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(_url(tmp_path))
    await s.migrate()
    assert await s.ensure_demo("demo.test")
    try:
        yield s
    finally:
        await s.close()


def _binding(contact: str, expires_at: datetime, **kw: object) -> Binding:
    fields: dict[str, object] = {
        "aor": "sip:bob@demo.test",
        "contact": contact,
        "expires_at": expires_at,
        "call_id": "c1@host",
        "cseq": 1,
        "source_host": "127.0.0.1",
        "source_port": 5062,
        "transport": "udp",
    }
    fields.update(kw)
    return Binding(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- schema and demo


async def test_migrations_create_the_schema(tmp_path: Path) -> None:
    s = await Store.open(_url(tmp_path))
    try:
        assert (tmp_path / "var").is_dir()  # the SQLite file's folder is created
        await s.migrate()
        await s.migrate()  # idempotent
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        assert await s.schema_revision() == ScriptDirectory.from_config(cfg).get_current_head()
        async with s.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            user_columns = {
                col["name"] for col in await conn.run_sync(lambda c: inspect(c).get_columns("users"))
            }
        assert {
            "meta",
            "company",
            "departments",
            "users",
            "user_groups",
            "working_hours",
            "closed_dates",
            "registrations",
            "cdrs",
            "alembic_version",
        } <= tables
        assert {
            "ha1_md5",
            "ha1_sha256",
            "web_password_hash",
            "voicemail_pin_hash",
            "activity_until",
        } <= user_columns
        assert not any("password" == c or c == "sip_password" for c in user_columns)
        assert await s.version() == 0
        assert not await s.has_company()
    finally:
        await s.close()


async def test_demo_company_is_created_once(store: Store) -> None:
    assert not await store.ensure_demo("demo.test")
    assert await store.version() == 1
    company = await store.company()
    assert (company.name, company.domain, company.timezone, company.country) == (
        "Demo AB",
        "demo.test",
        "Europe/Stockholm",
        "SE",
    )
    assert company.alt_number == "+4681000000"
    assert company.hours is not None
    assert company.hours.intervals == tuple(Interval(d, time(8), time(17)) for d in range(5))
    users = {u.username: u for u in await store.list_users()}
    assert sorted(users) == ["alice", "bob", "carol"]
    for demo in DEMO_USERS:
        u = users[demo.username]
        assert (u.display_name, u.extension, u.fixed, u.mobile, u.department) == (
            demo.display_name,
            demo.extension,
            demo.fixed,
            demo.mobile,
            demo.department,
        )
        assert u.groups == DEFAULTS
        assert u.activity.kind is ActivityKind.AVAILABLE
        assert u.caller_id_role is CallerIdRole.FIXED
    assert sorted(await store.demo_passwords_unchanged()) == ["alice", "bob", "carol"]


async def test_snapshot_content(store: Store) -> None:
    snap = await store.snapshot(NOW)
    assert snap.version == await store.version()
    assert snap.company.name == "Demo AB"
    assert sorted(snap.departments) == ["Sales", "Support"]
    assert snap.by_number["+4681001002"] == ("bob", NumberKind.FIXED)
    assert snap.by_number["+46701001003"] == ("carol", NumberKind.MOBILE)
    assert snap.by_extension["1001"] == "alice"
    assert snap.users["bob"].groups == DEFAULTS
    cred = snap.credentials["bob"]
    assert cred.realm == "demo.test"
    assert cred.ha1_md5 == hashlib.md5(b"bob:demo.test:bob-demo").hexdigest()
    # Public holidays of Sweden, last/this/next year.
    for year in (2025, 2026, 2027):
        assert date(year, 12, 25) in snap.public_holidays
    assert date(2024, 12, 25) not in snap.public_holidays
    assert snap.catalogue is store.catalogue


# ---------------------------------------------------------------------------- groups


async def test_group_conflict_is_refused_and_changes_nothing(store: Store) -> None:
    before, version = (await store.get_user("bob")).groups, await store.version()
    with pytest.raises(MembershipError) as info:
        # A valid addition together with a conflicting one: neither is written.
        await store.set_groups("bob", add=["off_hours.fixed.voicemail", "no_answer.fixed.alt_number.20"])
    assert "no_answer.both.voicemail.30" in str(info.value)
    assert "no_answer.fixed.alt_number.20" in str(info.value)
    with pytest.raises(MembershipError):
        await store.replace_groups("bob", [*before, "busy.mobile.queue"])
    with pytest.raises(UnknownGroupError):
        await store.set_groups("bob", add=["no_such.group"])
    assert (await store.get_user("bob")).groups == before
    assert await store.version() == version


async def test_group_changes(store: Store) -> None:
    groups = await store.set_groups(
        "bob", add=["no_answer.fixed.alt_number.20"], remove=["no_answer.both.voicemail.30"]
    )
    assert groups == (DEFAULTS - {"no_answer.both.voicemail.30"}) | {"no_answer.fixed.alt_number.20"}
    assert (await store.get_user("bob")).groups == groups
    assert await store.replace_groups("bob", ["busy.fixed.queue"]) == {"busy.fixed.queue"}
    assert (await store.snapshot(NOW)).users["bob"].groups == {"busy.fixed.queue"}
    with pytest.raises(NotFoundError):
        await store.set_groups("nobody", add=["busy.fixed.queue"])


async def test_version_increments_on_every_directory_change(store: Store) -> None:
    v = await store.version()
    await store.set_groups("alice", add=["off_hours.mobile.voicemail"])
    assert await store.version() == v + 1
    await store.set_activity("alice", "lunch", NOW + timedelta(hours=1), now=NOW)
    await store.set_hours("user", "alice", ["mon 09:00-10:00"])
    await store.set_alt_number("department", "Sales", "1003")
    await store.set_caller_id_role("alice", "hidden")
    await store.update_user("alice", display_name="Alice A.")
    assert await store.version() == v + 6
    with pytest.raises(ValidationError):
        await store.update_user("alice", mobile="+46701001002")  # bob's: refused, no bump
    # Registrations and CDRs are not directory changes.
    await store.save_binding(_binding("sip:bob@127.0.0.1:5062", NOW + timedelta(hours=1)), now=NOW)
    await store.add_cdr(Cdr("c1", NOW, "incoming", "+46811111111", "+4681001002", "answered", user="bob"))
    assert await store.version() == v + 6
    assert (await store.snapshot(NOW)).version == v + 6


# ---------------------------------------------------------------------------- users


async def test_create_update_delete_user(store: Store) -> None:
    dave = await store.create_user(
        "dave",
        "Dave Dahl",
        "1004",
        "dave-secret",
        fixed="08-100 010 04",
        mobile="070-100 10 04",
        department="Support",
    )
    assert (dave.fixed, dave.mobile, dave.department) == ("+46810001004", "+46701001004", "Support")
    assert dave.groups == DEFAULTS
    with pytest.raises(ValidationError) as info:
        await store.create_user("eve", "Eve", "1005", "eve-secret", mobile="+46701001002")
    assert info.value.field == "mobile" and "bob" in str(info.value)
    with pytest.raises(ValidationError) as info:
        await store.create_user("eve", "Eve", "1005", "eve-secret", fixed="12")
    assert info.value.field == "fixed"
    with pytest.raises(ValidationError) as info:
        await store.create_user("eve", "Eve", "1001", "eve-secret")
    assert info.value.field == "extension"
    with pytest.raises(NotFoundError):
        await store.create_user("eve", "Eve", "1005", "eve-secret", department="Nowhere")
    assert [u.username for u in await store.list_users()] == ["alice", "bob", "carol", "dave"]

    updated = await store.update_user(
        "dave", display_name="David Dahl", play_activity_message=True, language="en"
    )
    assert (updated.display_name, updated.play_activity_message, updated.language) == (
        "David Dahl",
        True,
        "en",
    )
    with pytest.raises(ValidationError):
        await store.update_user("dave", groups=["busy.fixed.queue"])
    await store.set_hours("user", "dave", ["mon 09:00-10:00"])
    await store.delete_user("dave")
    with pytest.raises(NotFoundError):
        await store.get_user("dave")
    assert "dave" not in (await store.snapshot(NOW)).users


# ---------------------------------------------------------------------------- hours and alt numbers


async def test_hours_levels(store: Store) -> None:
    assert await store.get_hours("department", "Sales") is None
    assert await store.get_hours("user", "bob") is None
    sales = await store.set_hours("department", "Sales", ["mon-fri 07:00-16:00"], [date(2026, 12, 23)])
    assert sales is not None and sales.closed_dates == {date(2026, 12, 23)}
    bob = await store.set_hours("user", "bob", ["mon-thu 09:00-12:00,13:00-18:00", "sat 10:00-14:00"])
    assert bob is not None and len(bob.intervals) == 9
    assert await store.get_hours("user", "bob") == bob
    assert await store.get_hours("department", "Sales") == sales

    snap = await store.snapshot(NOW)
    assert effective_schedule(snap.users["bob"], snap) == (bob, "user")
    assert effective_schedule(snap.users["alice"], snap) == (sales, "department")
    assert effective_schedule(snap.users["carol"], snap) == (snap.company.hours, "company")

    assert await store.set_hours("user", "bob", []) is None  # cleared: inherits again
    snap = await store.snapshot(NOW)
    assert effective_schedule(snap.users["bob"], snap) == (sales, "department")

    with pytest.raises(ValidationError) as info:
        await store.set_hours("company", None, ["mon-fri 17:00-08:00"])
    assert info.value.field == "hours"
    with pytest.raises(NotFoundError):
        await store.set_hours("department", "Nowhere", ["mon 08:00-09:00"])
    with pytest.raises(ValidationError):
        await store.set_hours("galaxy", "x", ["mon 08:00-09:00"])
    company = await store.company()
    assert company.hours is not None and len(company.hours.intervals) == 5  # unchanged


async def test_alt_numbers(store: Store) -> None:
    assert await store.set_alt_number("user", "bob", "08-100 010 99") == "+46810001099"
    assert await store.set_alt_number("department", "Support", "1001") == "1001"  # an extension
    assert await store.set_alt_number("company", None, None) is None
    snap = await store.snapshot(NOW)
    assert snap.users["bob"].alt_number == "+46810001099"
    assert snap.departments["Support"].alt_number == "1001"
    assert snap.company.alt_number is None
    with pytest.raises(ValidationError) as info:
        await store.set_alt_number("user", "bob", "not a number")
    assert info.value.field == "alt_number"


# ---------------------------------------------------------------------------- activity


async def test_activity_in_the_past_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError) as info:
        await store.set_activity("bob", "meeting", NOW - timedelta(minutes=1), now=NOW)
    assert info.value.field == "until"
    with pytest.raises(ValidationError):
        await store.set_activity("bob", "meeting", datetime(2026, 11, 26, 15, 0), now=NOW)  # naive
    with pytest.raises(ValidationError):
        await store.set_activity("bob", "dancing", None, now=NOW)
    assert (await store.get_user("bob")).activity.kind is ActivityKind.AVAILABLE

    until = datetime(2026, 11, 26, 14, 30, tzinfo=STOCKHOLM)
    await store.set_activity("bob", ActivityKind.MEETING, until, now=NOW)
    activity = (await store.get_user("bob")).activity
    assert activity.kind is ActivityKind.MEETING
    assert activity.until == until and activity.until.tzinfo is not None  # same instant, back as UTC
    await store.set_activity("bob", "available", until, now=NOW)
    assert (await store.get_user("bob")).activity.until is None


# ---------------------------------------------------------------------------- registrations, CDRs


async def test_bindings_survive_reopening_and_expired_ones_are_dropped(tmp_path: Path, store: Store) -> None:
    short = _binding("sip:bob@127.0.0.1:5062", NOW + timedelta(seconds=60))
    long = _binding("sip:bob@10.0.0.2:5060;transport=tcp", NOW + timedelta(hours=1), transport="tcp", q=0.5)
    await store.save_binding(short, now=NOW)
    await store.save_binding(long, now=NOW)
    await store.save_binding(_binding(short.contact, short.expires_at, cseq=2), now=NOW)  # refresh, no copy
    await store.close()

    reopened = await Store.open(_url(tmp_path))
    try:
        await reopened.migrate()
        got = await reopened.load_bindings(NOW)
        assert [b.contact for b in got] == [short.contact, long.contact]  # q order
        assert got[0].cseq == 2 and got[0].expires_at == short.expires_at
        assert got[1].transport == "tcp"

        later = await reopened.load_bindings(NOW + timedelta(minutes=5))
        assert [b.contact for b in later] == [long.contact]
        async with reopened.engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(RegistrationRow))).scalar_one()
        assert rows == 1  # the expired one is deleted, not only hidden

        # RFC 5626: the same instance replaces its old contact.
        inst = '"<urn:uuid:00000000-0000-0000-0000-000000000001>"'
        await reopened.save_binding(
            _binding("sip:bob@10.0.0.3:5060", NOW + timedelta(hours=1), instance_id=inst)
        )
        await reopened.save_binding(
            _binding("sip:bob@10.0.0.4:5060", NOW + timedelta(hours=1), instance_id=inst)
        )
        contacts = [b.contact for b in await reopened.load_bindings(NOW)]
        assert contacts == ["sip:bob@10.0.0.4:5060", long.contact]

        assert await reopened.delete_bindings("sip:bob@demo.test", long.contact) == 1
        assert await reopened.delete_bindings("sip:bob@demo.test") == 1
        assert await reopened.load_bindings(NOW) == []
        with pytest.raises(ValidationError):
            await reopened.save_binding(_binding("sip:x@y", datetime(2026, 1, 1)))  # naive
    finally:
        await reopened.close()


async def test_cdrs(store: Store) -> None:
    for i in range(3):
        start = NOW + timedelta(minutes=i)
        await store.add_cdr(
            Cdr(
                f"call-{i}",
                start,
                "incoming",
                "+46811111111",
                "+4681001002",
                "voicemail" if i else "answered",
                answered_at=start + timedelta(seconds=3),
                ended_at=start + timedelta(seconds=33),
                user="bob" if i < 2 else "alice",
                cause="408" if i else None,
                decided_by="no_answer.both.voicemail.30" if i else None,
                duration=30.0,
            )
        )
    assert [c.call_id for c in await store.list_cdrs()] == ["call-2", "call-1", "call-0"]
    bob = await store.list_cdrs(user="bob")
    assert [c.call_id for c in bob] == ["call-1", "call-0"]
    assert (
        bob[0].started_at == NOW + timedelta(minutes=1) and bob[0].decided_by == "no_answer.both.voicemail.30"
    )
    window = await store.list_cdrs(since=NOW + timedelta(minutes=1), until=NOW + timedelta(minutes=2))
    assert [c.call_id for c in window] == ["call-1"]
    assert len(await store.list_cdrs(limit=1)) == 1


# ---------------------------------------------------------------------------- credentials


async def test_ha1_values_and_no_plain_password_in_the_database(tmp_path: Path, store: Store) -> None:
    snap = await store.snapshot(NOW)
    for demo in DEMO_USERS:
        a1 = f"{demo.username}:demo.test:{demo.sip_password}".encode()
        cred = snap.credentials[demo.username]
        assert cred.ha1_md5 == hashlib.md5(a1).hexdigest()
        assert cred.ha1_sha256 == hashlib.sha256(a1).hexdigest()
    await store.create_user("dave", "Dave", "1004", "dave-very-secret")
    await store.update_user("bob", sip_password="bob-new-secret")
    assert await store.demo_passwords_unchanged() == ["alice", "carol"]
    a1 = b"bob:demo.test:bob-new-secret"
    assert (await store.snapshot(NOW)).credentials["bob"].ha1_md5 == hashlib.md5(a1).hexdigest()
    await store.close()  # checkpoints the WAL into the main file

    blobs = b"".join(p.read_bytes() for p in (tmp_path / "var").iterdir() if p.is_file())
    assert blobs  # the database is there
    for password in [d.sip_password for d in DEMO_USERS] + ["dave-very-secret", "bob-new-secret"]:
        assert password.encode() not in blobs


async def test_cdrs_written_in_one_batch_are_all_listed(store: Store) -> None:
    batch = [
        Cdr(
            f"batch-{i}",
            NOW + timedelta(seconds=i),
            "incoming",
            "+46811111111",
            "+4681001002",
            "answered",
            user="bob",
            duration=float(i),
        )
        for i in range(3)
    ]
    await store.add_cdrs(batch)
    await store.add_cdrs([])
    listed = await store.list_cdrs(user="bob")
    assert [c.call_id for c in listed if c.call_id.startswith("batch-")] == ["batch-2", "batch-1", "batch-0"]
