"""Properties of decide() over random directories, memberships, times and user states (STYLE 21)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from policy_fixtures import DEMO_HOURS, demo_snapshot

from policy.catalogue import MembershipError, load_catalogue
from policy.decide import decide
from policy.hours import parse_hours_spec
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
from policy.plan import ACTIONS, CallContext

CAT = load_catalogue()
SLOTS = sorted({s for g in CAT.groups.values() for s in g.slots})
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def memberships(draw: st.DrawFn) -> frozenset[str]:
    """A valid membership, built by adding groups that check_membership accepts."""
    chosen: list[str] = []
    for gid in draw(st.lists(st.sampled_from(sorted(CAT.groups)), max_size=12)):
        try:
            CAT.check_membership([*chosen, gid])
        except MembershipError:
            continue
        chosen.append(gid)
    return frozenset(chosen)


numbers = st.one_of(
    st.none(), st.sampled_from(["+4681000000", "+4681000001", "+46812345678", "1001", "+4681001001"])
)
schedules = st.one_of(
    st.none(),
    st.just(DEMO_HOURS),
    st.just(WeeklySchedule()),
    st.just(WeeklySchedule(parse_hours_spec(["sun 01:00-04:00", "sat 10:00-14:00,15:00-24:00"]))),
)
times = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))


@st.composite
def snapshots(draw: st.DrawFn) -> DirectorySnapshot:
    n = draw(st.integers(1, 6))
    users = []
    for i in range(n):
        ext = str(1001 + i)
        act_kind = draw(st.sampled_from(list(ActivityKind)))
        until = draw(st.one_of(st.none(), times))
        users.append(
            User(
                username=f"u{i}",
                display_name=f"User {i}",
                extension=ext,
                fixed=draw(st.sampled_from([f"+46810010{ext[-2:]}", None])) if i else f"+46810010{ext[-2:]}",
                mobile=draw(st.sampled_from([f"+467010010{ext[-2:]}", None])),
                department=draw(st.sampled_from(["Sales", "Support", None])),
                groups=draw(memberships()),
                activity=Activity(act_kind, until),
                caller_id_role=draw(st.sampled_from(list(CallerIdRole))),
                alt_number=draw(numbers),
                hours=draw(schedules),
                play_activity_message=draw(st.booleans()),
            )
        )
    return DirectorySnapshot.build(
        version=1,
        company=Company(name="X", domain="x.test", alt_number=draw(numbers), hours=draw(schedules)),
        catalogue=CAT,
        users=users,
        departments=[
            Department("Sales", alt_number=draw(numbers), hours=draw(schedules)),
            Department("Support"),
        ],
        public_holidays=demo_snapshot().public_holidays,
    )


@st.composite
def calls(draw: st.DrawFn, snap: DirectorySnapshot) -> CallContext:
    users = sorted(snap.users)
    known = sorted(snap.by_number) + sorted(snap.by_extension)
    dialled = draw(st.one_of(st.sampled_from(known), st.just("+46899999999")))
    if draw(st.booleans()):
        return CallContext.outgoing(draw(st.sampled_from(users)), dialled)
    return CallContext.incoming(
        dialled,
        caller=draw(st.one_of(st.none(), st.just("+46812345678"))),
        caller_user=draw(st.one_of(st.none(), st.sampled_from(users))),
        user_busy=draw(st.booleans()),
    )


@SETTINGS
@given(st.data())
def test_decide_properties(data: st.DataObject) -> None:
    snap = data.draw(snapshots())
    call = data.draw(calls(snap))
    now = data.draw(times)
    plan = decide(call, snap, now)  # never raises for a valid snapshot
    # exactly one plan, with a known action and a non-empty explanation
    assert plan.action in ACTIONS and plan.explanation
    assert all(str(s) for s in plan.explanation)
    # deterministic, also on a freshly built (unmemoised) snapshot
    assert decide(call, snap, now) == plan
    fresh = DirectorySnapshot.build(
        version=2,
        company=snap.company,
        catalogue=snap.catalogue,
        users=list(snap.users.values()),
        departments=list(snap.departments.values()),
        public_holidays=snap.public_holidays,
    )
    assert decide(call, fresh, now) == plan
    # never routes to an undefined number
    defined = {snap.company.alt_number, *(d.alt_number for d in snap.departments.values())}
    defined |= {u.alt_number for u in snap.users.values()}
    defined.discard(None)
    outcomes = [plan, plan.no_answer, plan.busy, plan.unreachable]
    for o in outcomes:
        if o is None:
            continue
        if o.action == "alt_number":
            assert o.target in defined
            assert o.decided_by is not None and o.decided_by in CAT
        if o.target_user is not None:
            assert o.target_user in snap.users and o.target_user != plan.user
    if plan.decided_by is not None:
        assert plan.decided_by in snap.users[plan.user].groups  # type: ignore[index]
    if call.direction == "incoming" and plan.action != "reject":
        assert plan.user is not None
        if plan.action == "ring":
            assert plan.ring is not None and plan.ring.timeout
            assert plan.no_answer and plan.busy and plan.unreachable
    if call.direction == "outgoing" and plan.action != "reject":
        pr = plan.presentation
        assert pr is not None
        user = snap.users[call.caller_user]  # type: ignore[index]
        own = {user.fixed, user.mobile} | defined
        assert pr.privacy or pr.number in own or pr.number in {u.fixed for u in snap.users.values()}
    plan.to_json()


@SETTINGS
@given(st.lists(st.sampled_from(sorted(CAT.groups)), min_size=2, max_size=6))
def test_two_groups_in_one_slot_are_always_refused(ids: list[str]) -> None:
    filled: dict[str, str] = {}
    clash = False
    for gid in set(ids):
        for slot in CAT.get(gid).slots:
            if slot in filled:
                clash = True
            filled[slot] = gid
    if clash:
        with pytest.raises(MembershipError):
            CAT.check_membership(ids)
    else:
        CAT.check_membership(ids)


@SETTINGS
@given(st.data())
def test_ring_only_when_no_rule_takes_the_call(data: st.DataObject) -> None:
    """An unexpired activity with an activity group never rings (a rule explicitly overrides)."""
    snap = data.draw(snapshots())
    now = data.draw(times)
    for number, (username, kind) in snap.by_number.items():
        user = snap.users[username]
        if user.activity.effective(now) is not ActivityKind.AVAILABLE and any(
            f"activity.{kind.value}" in CAT.get(g).slots for g in user.groups
        ):
            assert decide(CallContext.incoming(number), snap, now).action != "ring"
        assert decide(CallContext.incoming(number), snap, now + timedelta(0)).explanation
