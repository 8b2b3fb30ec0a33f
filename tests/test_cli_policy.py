"""The policy command line, run as a real process on a real SQLite file (SPEC section 7).

The issue's acceptance: bob's fixed number on a Saturday morning rings his devices (no off-hours
group); after ``user groups bob --add off_hours.fixed.voicemail`` it goes to voicemail citing the
group; a slot conflict exits 2 naming both groups and changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SATURDAY = "2026-11-28T10:00+01:00"
BOB_FIXED = "+4681001002"
# The installed console script; without it, the same entry point. (Not ``-m vidare.cli``: that runs
# cli.py as ``__main__`` next to ``vidare.cli``, two UsageError classes, and errors are not caught.)
_SCRIPT = Path(sys.executable).parent / "vidare"
COMMAND = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "import sys; from vidare.cli import main; sys.exit(main())"]
)


def vidare(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args, "--data-dir", str(data_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(data_dir: Path, *args: str) -> str:
    result = vidare(data_dir, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(data_dir: Path, *args: str) -> str:
    """Exit 2 with exactly one line on stderr; returns that line."""
    result = vidare(data_dir, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vidare: ")
    return lines[0]


def explain_json(data_dir: Path, *args: str) -> dict[str, Any]:
    plan: dict[str, Any] = json.loads(ok(data_dir, "explain", *args, "--json"))
    return plan


def test_off_hours_group_acceptance(tmp_path: Path) -> None:
    text = ok(tmp_path, "explain", "--to", BOB_FIXED, "--at", SATURDAY)
    first = text.splitlines()[0]
    assert first.startswith("bob") and "ring" in first
    assert "no off-hours group" in text

    plan = explain_json(tmp_path, "--to", BOB_FIXED, "--at", SATURDAY)
    assert plan["action"] == "ring" and plan["user"] == "bob"
    assert {"action", "decided_by", "target"} <= plan.keys()
    assert plan["no_answer"]["action"] == "voicemail"
    assert plan["no_answer"]["decided_by"] == "no_answer.both.voicemail.30"
    assert plan["busy"]["decided_by"] == "busy.both.voicemail"

    out = ok(tmp_path, "user", "groups", "bob", "--add", "off_hours.fixed.voicemail")
    assert "off_hours.fixed.voicemail" in out and "Tidsstyrt Vk Fastnr -> Telefonsvar" in out

    text = ok(tmp_path, "explain", "--to", BOB_FIXED, "--at", SATURDAY)
    assert "voicemail" in text.splitlines()[0]
    assert "off_hours.fixed.voicemail" in text
    plan = explain_json(tmp_path, "--to", BOB_FIXED, "--at", SATURDAY)
    assert (plan["action"], plan["decided_by"]) == ("voicemail", "off_hours.fixed.voicemail")
    assert "target" in plan

    # The mobile number has no off-hours group: it still rings.
    assert explain_json(tmp_path, "--to", "+46701001002", "--at", SATURDAY)["action"] == "ring"


def test_slot_conflict_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    before = ok(tmp_path, "user", "groups", "bob")
    version = ok(tmp_path, "migrate")
    line = refused(tmp_path, "user", "groups", "bob", "--add", "no_answer.fixed.alt_number.20")
    assert "no_answer.both.voicemail.30" in line and "no_answer.fixed.alt_number.20" in line
    # Together with a valid addition: still nothing is written.
    refused(tmp_path, "user", "groups", "bob", "--add", "busy.fixed.queue", "--add", "busy.fixed.alt_number")
    assert ok(tmp_path, "user", "groups", "bob") == before
    assert ok(tmp_path, "migrate") == version

    # Unticking the default first, as the guide says, makes it possible.
    out = ok(
        tmp_path,
        "user",
        "groups",
        "bob",
        "--remove",
        "no_answer.both.voicemail.30",
        "--add",
        "no_answer.fixed.alt_number.20",
    )
    assert "no_answer.fixed.alt_number.20" in out and "no_answer.both.voicemail.30" not in out


def test_user_list_and_show(tmp_path: Path) -> None:
    listing = ok(tmp_path, "user", "list")
    for name, ext in (("alice", "1001"), ("bob", "1002"), ("carol", "1003")):
        assert name in listing and ext in listing
    show = ok(tmp_path, "user", "show", "bob")
    for text in (
        "+4681001002",
        "+46701001002",
        "Sales",
        "activity.both.announcement_voicemail",
        "Fastnr_Mobil -> Medd_Telefonsvar",
        "no_answer.both.voicemail.30",
        "caller ID",
    ):
        assert text in show
    assert "outside working hours" in show  # the situation table


def test_activity_then_explain(tmp_path: Path) -> None:
    out = ok(tmp_path, "activity", "bob", "meeting", "--until", "2099-01-01T09:00+01:00")
    assert "meeting" in out
    plan = explain_json(tmp_path, "--to", BOB_FIXED, "--at", "2026-11-30T10:00+01:00")
    assert plan["action"] == "announcement_voicemail"
    assert plan["decided_by"] == "activity.both.announcement_voicemail"
    assert plan["activity"] == "meeting"
    ok(tmp_path, "activity", "bob", "available")
    assert explain_json(tmp_path, "--to", BOB_FIXED, "--at", "2026-11-30T10:00+01:00")["action"] == "ring"


def test_hours_set_show_round_trip(tmp_path: Path) -> None:
    assert "not set" in ok(tmp_path, "hours", "show", "--user", "bob")
    company = ok(tmp_path, "hours", "show", "--company")
    assert "mon-fri 08:00-17:00" in company

    specs = ("mon-thu 08:00-12:00,13:00-17:00", "fri 08:00-15:00", "sat 10:00-14:00")
    set_out = ok(tmp_path, "hours", "set", "--department", "Sales", *specs, "--closed", "2026-12-23")
    show_out = ok(tmp_path, "hours", "show", "--department", "Sales")
    assert set_out == show_out
    lines = [line.strip() for line in show_out.splitlines()[1:]]
    assert lines == [*specs, "sun closed", "closed 2026-12-23"]

    # The department's hours now apply to bob: Saturday 10:00 is inside them.
    ok(tmp_path, "user", "groups", "bob", "--add", "off_hours.fixed.voicemail")
    assert explain_json(tmp_path, "--to", BOB_FIXED, "--at", SATURDAY)["action"] == "ring"
    assert "cleared" in ok(tmp_path, "hours", "set", "--department", "Sales", "--clear")
    assert explain_json(tmp_path, "--to", BOB_FIXED, "--at", SATURDAY)["action"] == "voicemail"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("user", "show", "nobody"), "unknown user 'nobody'"),
        (("user", "groups", "bob", "--add", "no.such.group"), "no.such.group"),
        (("explain", "--to", "12"), "--to"),
        (("explain", "--to", BOB_FIXED, "--at", "tomorrow"), "--at"),
        (("hours", "set", "--company", "mon-fri 17:00-08:00"), "17:00-08:00"),
        (("hours", "set", "--department", "Nowhere", "mon 08:00-09:00"), "unknown department 'Nowhere'"),
        (("hours", "set", "--user", "bob", "mon 08:00-09:00", "--closed", "2026-13-01"), "--closed"),
        (("activity", "bob", "meeting", "--until", "2020-01-01T10:00+01:00"), "in the past"),
        (("activity", "bob", "dancing"), "invalid choice"),
        (("user", "list", "--set", "sip.no_such_key=1"), "sip.no_such_key"),
        (("user", "list", "--set", "demo.enabled=maybe"), "demo.enabled"),
    ],
    ids=[
        "unknown-user",
        "unknown-group",
        "bad-number",
        "bad-time",
        "bad-hours",
        "unknown-department",
        "bad-closed-date",
        "past-return-time",
        "unknown-activity",
        "bad-config-key",
        "bad-config-value",
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], needle: str) -> None:
    assert needle in refused(tmp_path, *args)


def test_no_demo_on_an_empty_database_is_one_line(tmp_path: Path) -> None:
    line = refused(tmp_path, "explain", "--to", BOB_FIXED, "--set", "demo.enabled=false")
    assert "no company" in line
    assert "revision" in ok(tmp_path, "migrate", "--set", "demo.enabled=false")
