"""decide(): every one of the 36 groups in every situation it governs, fixed and mobile (SPEC 3.2, 4)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pytest
from policy_fixtures import ALT_NUMBER, at, demo_snapshot, with_user

from policy.catalogue import Group, load_catalogue
from policy.decide import decide
from policy.explain import format_plan, format_situation_table, situation_table
from policy.model import Activity, ActivityKind, CallerIdRole, Department, NumberKind
from policy.plan import CallContext, Plan

CAT = load_catalogue()
WEEKDAY = at("2026-11-25T10:00")  # Wednesday, inside working hours
SATURDAY = at("2026-11-28T10:00+01:00")
NUMBERS = {NumberKind.FIXED: "+4681001002", NumberKind.MOBILE: "+46701001002"}
MEETING = Activity(ActivityKind.MEETING, at("2026-11-25T14:30"))


@dataclass(frozen=True)
class Expect:
    action: str
    target: str | None = None
    cause: int | None = None


# What each group action means, written out independently of decide().
ACTIVITY = {
    "announcement_voicemail": Expect("announcement_voicemail", None, 302),
    "voicemail": Expect("voicemail", None, 302),
    "alt_number": Expect("alt_number", ALT_NUMBER, 302),
    "announcement": Expect("announcement", None, 302),
}
OFF_HOURS = {"voicemail": Expect("voicemail", None, 302), "alt_number": Expect("alt_number", ALT_NUMBER, 302)}
BUSY_AT_ONCE = {
    "alt_number": Expect("alt_number", ALT_NUMBER, 486),
    "queue": Expect("queue", None, 486),
    "voicemail_no_waiting": Expect("voicemail", None, 486),
}
NO_ANSWER = {"voicemail": Expect("voicemail"), "alt_number": Expect("alt_number", ALT_NUMBER)}


def _cases() -> list[tuple[str, NumberKind]]:
    out = []
    for g in CAT.groups.values():
        if g.situation == "caller_id":
            continue
        for kind in NumberKind:
            if f"{g.situation}.{kind.value}" in g.slots:
                out.append((g.id, kind))
    return out


CASES = _cases()


def _snap(g: Group, **user_changes: object) -> object:
    return with_user(demo_snapshot(), "bob", groups={g.id}, **user_changes)


def _assert_cites(plan: Plan, gid: str) -> None:
    assert any(f"`{gid}`" in str(s) for s in plan.explanation), [str(s) for s in plan.explanation]
    assert gid in format_plan(plan)


def test_every_incoming_group_and_number_is_covered() -> None:
    assert len({gid for gid, _ in CASES}) == 31
    assert len(CASES) == 3 * 2 + 28


@pytest.mark.parametrize(("gid", "kind"), CASES, ids=[f"{g}-{k.value}" for g, k in CASES])
def test_group_in_its_situation(gid: str, kind: NumberKind) -> None:
    g = CAT.get(gid)
    number = NUMBERS[kind]
    if g.situation == "activity":
        snap = _snap(g, activity=MEETING)
        plan = decide(CallContext.incoming(number), snap, WEEKDAY)  # type: ignore[arg-type]
        exp = ACTIVITY[g.action]
        assert plan.activity is ActivityKind.MEETING and plan.activity_until == MEETING.until
        assert plan.announce_activity == (g.action in ("announcement_voicemail", "announcement"))
    elif g.situation == "off_hours":
        plan = decide(CallContext.incoming(number), _snap(g), SATURDAY)  # type: ignore[arg-type]
        exp = OFF_HOURS[g.action]
        # Inside working hours the number is open.
        inside = decide(CallContext.incoming(number), _snap(g), WEEKDAY)  # type: ignore[arg-type]
        assert inside.action == "ring" and inside.decided_by is None
    elif g.situation == "busy":
        plan = decide(CallContext.incoming(number, user_busy=True), _snap(g), WEEKDAY)  # type: ignore[arg-type]
        if g.action == "voicemail":  # call waiting: devices still ring; a busy answer goes to voicemail
            assert plan.action == "ring" and plan.call_waiting and plan.decided_by is None
            assert plan.busy is not None
            assert (plan.busy.action, plan.busy.decided_by, plan.busy.cause) == ("voicemail", gid, 486)
            assert plan.busy.call_waiting is True
            _assert_cites(plan, gid)
            return
        exp = BUSY_AT_ONCE[g.action]
        assert not plan.call_waiting
        # Not busy: the devices ring and a busy answer gets the same action.
        free = decide(CallContext.incoming(number), _snap(g), WEEKDAY)  # type: ignore[arg-type]
        assert free.action == "ring" and free.busy is not None and free.busy.decided_by == gid
        assert free.busy.action == exp.action and free.busy.call_waiting is False
    else:
        plan = decide(CallContext.incoming(number), _snap(g), WEEKDAY)  # type: ignore[arg-type]
        assert plan.action == "ring" and plan.ring is not None and plan.decided_by is None
        assert plan.ring.timeout == g.seconds and plan.ring.softphones and plan.ring.mobile == "+46701001002"
        exp = NO_ANSWER[g.action]
        for oc, cause, seconds in ((plan.no_answer, 408, g.seconds), (plan.unreachable, 503, 0)):
            assert oc is not None
            assert (oc.action, oc.target, oc.decided_by, oc.cause, oc.seconds) == (
                exp.action,
                exp.target,
                gid,
                cause,
                seconds,
            )
        _assert_cites(plan, gid)
        return
    assert (plan.action, plan.target, plan.decided_by, plan.cause) == (exp.action, exp.target, gid, exp.cause)
    assert plan.user == "bob" and plan.number_kind is kind
    _assert_cites(plan, gid)
    js = plan.to_json()
    assert js["action"] == exp.action and js["decided_by"] == gid and js["target"] == exp.target


SINGLE = [(g, k) for g, k in CASES if CAT.get(g).number != "both"]


@pytest.mark.parametrize(("gid", "kind"), SINGLE, ids=[f"{g}-{k.value}" for g, k in SINGLE])
def test_group_does_not_govern_the_other_number(gid: str, kind: NumberKind) -> None:
    g = CAT.get(gid)
    other = NumberKind.MOBILE if kind is NumberKind.FIXED else NumberKind.FIXED
    snap = _snap(g, activity=MEETING)
    busy = g.situation == "busy"
    plan = decide(CallContext.incoming(NUMBERS[other], user_busy=busy), snap, SATURDAY)  # type: ignore[arg-type]
    assert plan.action == "ring" and plan.decided_by is None
    assert all(o is None or o.decided_by is None for o in (plan.no_answer, plan.busy))


def test_acceptance_saturday_rings_bob_without_off_hours_group() -> None:
    snap = demo_snapshot()
    plan = decide(CallContext.incoming("+4681001002"), snap, at("2026-11-28T10:00+01:00"))
    assert plan.action == "ring" and plan.user == "bob" and plan.decided_by is None
    assert plan.no_answer is not None and plan.no_answer.decided_by == "no_answer.both.voicemail.30"
    assert "outside working hours" in str(plan.explanation[2]) and "no off-hours group" in str(
        plan.explanation[2]
    )
    js = plan.to_json()
    assert js["no_answer"]["action"] == "voicemail" and js["no_answer"]["seconds"] == 30
    assert js["busy"]["decided_by"] == "busy.both.voicemail" and isinstance(js["explanation"], list)
    snap2 = with_user(snap, "bob", groups={*CAT.defaults, "off_hours.fixed.voicemail"})
    plan2 = decide(CallContext.incoming("+4681001002"), snap2, at("2026-11-28T10:00+01:00"))
    assert (plan2.action, plan2.decided_by) == ("voicemail", "off_hours.fixed.voicemail")
    assert "`off_hours.fixed.voicemail`" in str(plan2.explanation[-1])
    # The mobile number has no off-hours group: it still rings.
    assert decide(CallContext.incoming("+46701001002"), snap2, SATURDAY).action == "ring"


def test_defaults_activity_and_order() -> None:
    meeting = Activity(ActivityKind.MEETING, at("2026-11-28T14:30"))
    snap = with_user(
        demo_snapshot(), "bob", activity=meeting, groups={*CAT.defaults, "off_hours.fixed.alt_number"}
    )
    p = decide(CallContext.incoming("+4681001002", user_busy=True), snap, SATURDAY)
    assert (p.action, p.decided_by) == ("announcement_voicemail", "activity.both.announcement_voicemail")
    assert "meeting" in str(p.explanation[1])
    # The activity has a return time: after it, the activity is over (next rule: off hours).
    later = at("2026-11-28T10:00")
    snap_exp = with_user(snap, "bob", activity=Activity(ActivityKind.MEETING, at("2026-11-28T09:00")))
    p2 = decide(CallContext.incoming("+4681001002"), snap_exp, later)
    assert (p2.action, p2.decided_by, p2.target) == ("alt_number", "off_hours.fixed.alt_number", ALT_NUMBER)


def test_activity_voicemail_plays_message_per_user_setting() -> None:
    for play in (False, True):
        snap = with_user(
            demo_snapshot(),
            "bob",
            activity=MEETING,
            groups={"activity.fixed.voicemail"},
            play_activity_message=play,
        )
        p = decide(CallContext.incoming("+4681001002"), snap, WEEKDAY)
        assert p.action == "voicemail" and p.announce_activity is play


def test_no_groups_rings_until_system_maximum() -> None:
    snap = with_user(demo_snapshot(), "bob", groups=set())
    p = decide(CallContext.incoming("+4681001002", user_busy=True), snap, WEEKDAY, max_ring_seconds=90)
    assert p.action == "ring" and p.ring is not None and p.ring.timeout == 90
    assert p.no_answer is not None and (p.no_answer.action, p.no_answer.cause) == ("reject", 480)
    assert p.busy is not None and (p.busy.action, p.busy.cause, p.busy.call_waiting) == ("reject", 486, True)
    assert p.unreachable is not None and p.unreachable.seconds == 0
    assert (
        decide(CallContext.incoming("+4681001002"), with_user(snap, "bob", activity=MEETING), WEEKDAY).action
        == "ring"
    )


def test_extension_counts_as_fixed_number() -> None:
    snap = with_user(demo_snapshot(), "bob", groups={"off_hours.fixed.voicemail"})
    p = decide(CallContext.incoming("1002", caller_user="alice"), snap, SATURDAY)
    assert (p.action, p.number_kind) == ("voicemail", NumberKind.FIXED)


def test_unknown_number_is_rejected_404() -> None:
    p = decide(CallContext.incoming("+46812345678"), demo_snapshot(), WEEKDAY)
    assert (p.action, p.cause, p.decided_by) == ("reject", 404, None) and p.explanation
    assert decide(CallContext.incoming("9999"), demo_snapshot(), WEEKDAY).cause == 404


def _alt_plan(snap: object) -> Plan:
    return decide(CallContext.incoming("+4681001002"), snap, WEEKDAY)  # type: ignore[arg-type]


def test_alt_number_levels_most_specific_wins() -> None:
    base = with_user(demo_snapshot(), "bob", activity=MEETING, groups={"activity.fixed.alt_number"})
    assert _alt_plan(base).target == ALT_NUMBER
    dept = demo_snapshot(departments=[Department("Sales", alt_number="+4681002000"), Department("Support")])
    dept = with_user(dept, "bob", activity=MEETING, groups={"activity.fixed.alt_number"})
    assert _alt_plan(dept).target == "+4681002000" and "department level" in str(
        _alt_plan(dept).explanation[-1]
    )
    user = with_user(dept, "bob", alt_number="+46812345678")
    p = _alt_plan(user)
    assert (
        p.target == "+46812345678"
        and p.target_user is None
        and "user level, external" in str(p.explanation[-1])
    )


def test_alt_number_missing_falls_back_to_voicemail() -> None:
    snap = demo_snapshot(company=replace(demo_snapshot().company, alt_number=None))
    snap = with_user(
        snap, "bob", activity=MEETING, groups={"activity.fixed.alt_number", "no_answer.mobile.alt_number.20"}
    )
    p = _alt_plan(snap)
    assert (p.action, p.target, p.decided_by) == ("voicemail", None, "activity.fixed.alt_number")
    assert "no alternative number" in str(p.explanation[-1]) and "voicemail instead" in str(p.explanation[-1])
    p2 = decide(CallContext.incoming("+46701001002"), with_user(snap, "bob", activity=Activity()), WEEKDAY)
    assert p2.no_answer is not None and p2.no_answer.action == "voicemail"


def test_internal_alt_number_names_the_user() -> None:
    for alt in ("+4681001003", "1003", "+46701001003"):
        snap = with_user(
            demo_snapshot(), "bob", activity=MEETING, groups={"activity.fixed.alt_number"}, alt_number=alt
        )
        p = _alt_plan(snap)
        assert (p.action, p.target, p.target_user) == ("alt_number", alt, "carol")
        assert "internal: user carol" in str(p.explanation[-1])
    own = with_user(
        demo_snapshot(), "bob", activity=MEETING, groups={"activity.fixed.alt_number"}, alt_number="1002"
    )
    p = _alt_plan(own)
    assert p.action == "voicemail" and "own number" in str(p.explanation[-1])


# --- outgoing: caller ID (SPEC 4) ---------------------------------------------------------------

EVENING = at("2026-11-25T20:00")
EXTERNAL = "+46812345678"


@pytest.mark.parametrize(
    ("gid", "inside", "outside", "privacy_inside"),
    [
        ("caller_id.hours.fixed", "+4681001002", "+46701001002", False),
        ("caller_id.hours.alt_number", ALT_NUMBER, "+46701001002", False),
        ("caller_id.hours.mobile", "+46701001002", "+46701001002", False),
        ("caller_id.hours.hidden", None, "+46701001002", True),
    ],
)
def test_time_based_caller_id(gid: str, inside: str | None, outside: str, privacy_inside: bool) -> None:
    snap = with_user(demo_snapshot(), "bob", groups={gid}, caller_id_role=CallerIdRole.TIME_BASED)
    p = decide(CallContext.outgoing("bob", EXTERNAL), snap, WEEKDAY)
    assert p.presentation is not None
    assert (p.presentation.number, p.presentation.privacy, p.presentation.decided_by) == (
        inside,
        privacy_inside,
        gid,
    )
    assert p.presentation.asserted == (inside or "+4681001002")
    _assert_cites(p, gid)
    q = decide(CallContext.outgoing("bob", EXTERNAL), snap, EVENING)
    assert q.presentation is not None
    assert (q.presentation.number, q.presentation.privacy, q.presentation.decided_by) == (outside, False, gid)
    assert (p.action, p.target, p.target_user) == ("ring", EXTERNAL, None)


def test_time_based_without_group_shows_fixed() -> None:
    snap = with_user(demo_snapshot(), "bob", caller_id_role=CallerIdRole.TIME_BASED)
    p = decide(CallContext.outgoing("bob", EXTERNAL), snap, EVENING)
    assert (
        p.presentation is not None
        and p.presentation.number == "+4681001002"
        and p.presentation.decided_by is None
    )


@pytest.mark.parametrize(
    ("role", "number", "privacy"),
    [
        (CallerIdRole.FIXED, "+4681001002", False),
        (CallerIdRole.MOBILE, "+46701001002", False),
        (CallerIdRole.ALT_NUMBER, ALT_NUMBER, False),
        (CallerIdRole.HIDDEN, None, True),
    ],
)
def test_caller_id_roles_and_internal_mobile(role: CallerIdRole, number: str | None, privacy: bool) -> None:
    snap = with_user(demo_snapshot(), "bob", caller_id_role=role, groups={"caller_id.internal.mobile"})
    ext = decide(CallContext.outgoing("bob", EXTERNAL), snap, WEEKDAY)
    assert ext.presentation is not None
    assert (ext.presentation.number, ext.presentation.privacy, ext.presentation.decided_by) == (
        number,
        privacy,
        None,
    )
    for internal in ("+4681001001", "1001", "+46701001001"):
        p = decide(CallContext.outgoing("bob", internal), snap, WEEKDAY)
        assert p.target_user == "alice" and p.presentation is not None
        assert (p.presentation.number, p.presentation.privacy) == ("+46701001002", False)
        _assert_cites(p, "caller_id.internal.mobile")
    without = with_user(snap, "bob", groups=set())
    p = decide(CallContext.outgoing("bob", "1001"), without, WEEKDAY)
    assert p.presentation is not None and p.presentation.number == number


def test_outgoing_from_unknown_user_is_rejected() -> None:
    p = decide(CallContext.outgoing("mallory", EXTERNAL), demo_snapshot(), WEEKDAY)
    assert (p.action, p.cause) == ("reject", 403)


def test_situation_table_is_derived_from_decide() -> None:
    snap = with_user(
        demo_snapshot(),
        "bob",
        groups={
            "activity.fixed.alt_number",
            "activity.mobile.announcement",
            "busy.fixed.queue",
            "no_answer.mobile.alt_number.20",
            "off_hours.fixed.voicemail",
            "busy.mobile.voicemail",
        },
    )
    rows = situation_table("bob", snap, WEEKDAY)
    got = {(r.number_kind.value, r.situation): (r.action, r.decided_by) for r in rows}
    assert got == {
        ("fixed", "activity"): ("alt_number", "activity.fixed.alt_number"),
        ("fixed", "off_hours"): ("voicemail", "off_hours.fixed.voicemail"),
        ("fixed", "busy"): ("queue", "busy.fixed.queue"),
        ("fixed", "no_answer"): ("reject", None),
        ("mobile", "activity"): ("announcement", "activity.mobile.announcement"),
        ("mobile", "off_hours"): ("ring", None),
        ("mobile", "busy"): ("ring", "busy.mobile.voicemail"),
        ("mobile", "no_answer"): ("alt_number", "no_answer.mobile.alt_number.20"),
    }
    text = format_situation_table(rows)
    assert "busy.fixed.queue" in text and "outside working hours" in text
    # The real snapshot is untouched.
    assert snap.users["bob"].activity.kind is ActivityKind.AVAILABLE


def test_decide_is_deterministic_and_json_serialisable() -> None:
    import json

    snap = demo_snapshot()
    for t in (WEEKDAY, SATURDAY, at("2026-12-24T10:00")):
        a = decide(CallContext.incoming("+46701001001"), snap, t)
        b = decide(CallContext.incoming("+46701001001"), snap, t)
        assert a == b
        json.dumps(a.to_json())


def test_now_types() -> None:
    assert isinstance(WEEKDAY, datetime) and WEEKDAY.tzinfo is not None
