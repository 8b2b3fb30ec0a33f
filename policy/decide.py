"""``decide(call, snapshot, now) -> Plan``: the call-handling rules of SPEC 3.2 and 4.

Pure and deterministic: no I/O, no clock, no logging. What does not depend on the call or the
time (a user's filled slots, alternative number, working-hours level, the ring part of the plan)
is computed once per (snapshot, user, number kind) and kept in ``snapshot.memo``.

Incoming order (SPEC 3.2): 1 activity, 2 outside working hours, 3 busy with a non-ringing busy
group, 4 ring all devices with the no-answer timer and the busy/no-answer/unreachable outcomes;
an empty slot skips its step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from policy.catalogue import Group
from policy.hours import effective_schedule, is_working_time, zone
from policy.model import ActivityKind, CallerIdRole, DirectorySnapshot, NumberKind, User, WeeklySchedule
from policy.plan import Action, CallContext, Outcome, Plan, Presentation, RingSpec, Step

__all__ = ["DEFAULT_MAX_RING_SECONDS", "NON_RINGING_BUSY", "decide"]

DEFAULT_MAX_RING_SECONDS = 120

#: Busy groups that stop the devices ringing while the user is in a call (SPEC 3.2 step 3).
NON_RINGING_BUSY = frozenset({"voicemail_no_waiting", "queue", "alt_number"})

# RFC 4458 causes for the media server / History-Info.
CAUSE_UNCONDITIONAL = 302
CAUSE_BUSY = 486
CAUSE_NO_ANSWER = 408
CAUSE_UNREACHABLE = 503
# SIP statuses for reject.
STATUS_NOT_FOUND = 404
STATUS_FORBIDDEN = 403
STATUS_TEMPORARILY_UNAVAILABLE = 480

_ACTION_TEXT = {
    "announcement_voicemail": "announcement, then voicemail",
    "voicemail": "voicemail",
    "voicemail_no_waiting": "voicemail (no call waiting)",
    "announcement": "announcement only (no voicemail)",
    "alt_number": "alternative number",
    "queue": "personal queue",
}


def _fmt_until(until: datetime | None, now: datetime, tz: tzinfo) -> str:
    if until is None:
        return ""
    local = until.astimezone(tz)
    if local.date() == now.astimezone(tz).date():
        return f" until {local:%H:%M}"
    return f" until {local:%Y-%m-%d %H:%M}"


def _group_text(g: Group) -> str:
    return f"group `{g.id}` ({g.name})"


@dataclass(frozen=True, slots=True)
class _Alt:
    """A resolved forwarding target for alt_number, or the reason there is none."""

    number: str | None
    target_user: str | None
    text: str  # "alternative number +46... (company level, external)" or why it is unusable


@dataclass(frozen=True, slots=True)
class _Forward:
    action: Action
    target: str | None
    target_user: str | None
    note: str


@dataclass(frozen=True, slots=True)
class _Rules:
    """Everything about (user, number kind) that does not depend on the call or the time."""

    user: User
    kind: NumberKind
    slots: dict[str, Group]
    alt: _Alt
    schedule: WeeklySchedule | None
    hours_level: str | None
    tz: tzinfo
    ring: RingSpec
    no_answer: Outcome
    busy: Outcome
    unreachable: Outcome
    call_waiting: bool
    ring_steps: tuple[Step, ...]
    busy_skip_step: Step  # user in a call, but the busy group rings (or there is none)


def _resolve_alt(user: User, snapshot: DirectorySnapshot) -> _Alt:
    number: str | None = None
    level = ""
    if user.alt_number:
        number, level = user.alt_number, "user"
    else:
        dept = snapshot.departments.get(user.department) if user.department else None
        if dept is not None and dept.alt_number:
            number, level = dept.alt_number, "department"
        elif snapshot.company.alt_number:
            number, level = snapshot.company.alt_number, "company"
    if number is None:
        return _Alt(None, None, "no alternative number at user, department or company level")
    hit = snapshot.by_number.get(number)
    owner = hit[0] if hit is not None else snapshot.by_extension.get(number)
    if owner == user.username:
        return _Alt(
            None, None, f"the alternative number {number} ({level} level) is {user.username}'s own number"
        )
    if owner is not None:
        return _Alt(number, owner, f"alternative number {number} ({level} level, internal: user {owner})")
    return _Alt(number, None, f"alternative number {number} ({level} level, external)")


def _forward(action: str, alt: _Alt) -> _Forward:
    """Carry out a group action that may need the alternative number (falls back to voicemail)."""
    if action != "alt_number":
        return _Forward(action, None, None, _ACTION_TEXT.get(action, action))  # type: ignore[arg-type]
    if alt.number is None:
        return _Forward("voicemail", None, None, f"{alt.text}: voicemail instead")
    return _Forward("alt_number", alt.number, alt.target_user, alt.text)


def _compile(user: User, kind: NumberKind, snapshot: DirectorySnapshot, max_ring: int) -> _Rules:
    cat = snapshot.catalogue
    slots: dict[str, Group] = {}
    for gid in sorted(user.groups):
        g = cat.groups.get(gid)
        if g is None:  # the store validates memberships; an unknown id is ignored here
            continue
        for slot in g.slots:
            slots.setdefault(slot, g)
    alt = _resolve_alt(user, snapshot)
    schedule, level = effective_schedule(user, snapshot)
    k = kind.value
    ring = RingSpec(softphones=True, mobile=user.mobile, timeout=None)
    na = slots.get(f"no_answer.{k}")
    legs = "softphones" + (f" + mobile {user.mobile}" if user.mobile else "")
    steps: list[Step] = []
    if na is None:
        ring = RingSpec(softphones=True, mobile=user.mobile, timeout=max_ring)
        no_answer = Outcome(action="reject", seconds=max_ring, cause=STATUS_TEMPORARILY_UNAVAILABLE)
        unreachable = Outcome(action="reject", seconds=0, cause=STATUS_TEMPORARILY_UNAVAILABLE)
        steps.append(Step("ring", f"ring {legs}", f"ring all devices, up to the system maximum {max_ring} s"))
        steps.append(
            Step(
                "no_answer",
                "reject 480",
                f"no no-answer group for the {k} number: after {max_ring} s the call ends",
            )
        )
        steps.append(Step("unreachable", "reject 480", "no device reachable: the call ends at once"))
    else:
        fw = _forward(na.action, alt)
        ring = RingSpec(softphones=True, mobile=user.mobile, timeout=na.seconds)
        no_answer = Outcome(
            action=fw.action,
            seconds=na.seconds,
            decided_by=na.id,
            target=fw.target,
            target_user=fw.target_user,
            cause=CAUSE_NO_ANSWER,
        )
        unreachable = Outcome(
            action=fw.action,
            seconds=0,
            decided_by=na.id,
            target=fw.target,
            target_user=fw.target_user,
            cause=CAUSE_UNREACHABLE,
        )
        steps.append(Step("ring", f"ring {legs}", f"ring all devices for {na.seconds} s ({_group_text(na)})"))
        steps.append(
            Step("no_answer", fw.action, f"no answer after {na.seconds} s -> {_group_text(na)}: {fw.note}")
        )
        steps.append(
            Step("unreachable", fw.action, f"no device reachable -> {_group_text(na)} at once: {fw.note}")
        )
    bg = slots.get(f"busy.{k}")
    if bg is None:
        busy = Outcome(action="reject", cause=CAUSE_BUSY, call_waiting=True)
        call_waiting = True
        steps.append(
            Step("busy_answer", "reject 486", f"every device answers busy, no busy group for the {k} number")
        )
        busy_skip = Step("busy", "ring (call waiting)", f"user in a call, no busy group for the {k} number")
    else:
        action = "voicemail" if bg.action == "voicemail_no_waiting" else bg.action
        fw = _forward(action, alt)
        call_waiting = bg.action not in NON_RINGING_BUSY
        busy = Outcome(
            action=fw.action,
            decided_by=bg.id,
            target=fw.target,
            target_user=fw.target_user,
            cause=CAUSE_BUSY,
            call_waiting=call_waiting,
        )
        steps.append(
            Step("busy_answer", fw.action, f"every device answers busy -> {_group_text(bg)}: {fw.note}")
        )
        busy_skip = Step(
            "busy", "ring (call waiting)", f"user in a call, {_group_text(bg)} rings the devices"
        )
    tzname = snapshot.company.timezone
    return _Rules(
        user=user,
        kind=kind,
        slots=slots,
        alt=alt,
        schedule=schedule,
        hours_level=level,
        tz=zone(tzname),
        ring=ring,
        no_answer=no_answer,
        busy=busy,
        unreachable=unreachable,
        call_waiting=call_waiting,
        ring_steps=tuple(steps),
        busy_skip_step=busy_skip,
    )


def _rules(username: str, kind: NumberKind, snapshot: DirectorySnapshot, max_ring: int) -> _Rules | None:
    key = (username, kind, max_ring)
    memo = snapshot.memo
    r = memo.get(key)
    if r is None:
        user = snapshot.users.get(username)
        if user is None:
            return None
        r = _compile(user, kind, snapshot, max_ring)
        memo[key] = r
    return r  # type: ignore[return-value]


_ACTIVITY_SKIP = Step("activity", "skip", "available")
_BUSY_SKIP = Step("busy", "skip", "user not in a call")
_HOURS_NONE = Step("off_hours", "skip", "no working hours set at any level: always open")


def _reject(call: CallContext, status: int, reason: str, steps: tuple[Step, ...] = ()) -> Plan:
    return Plan(
        direction=call.direction,
        action="reject",
        cause=status,
        explanation=(*steps, Step("route", f"reject {status}", reason)),
    )


def _closed_reason(r: _Rules, now: datetime, snapshot: DirectorySnapshot) -> str:
    day = now.astimezone(r.tz).date()
    assert r.schedule is not None
    if day in r.schedule.closed_dates:
        why = f"closed date {day.isoformat()}"
    elif r.schedule.use_public_holidays and day in snapshot.public_holidays:
        why = f"public holiday {day.isoformat()}"
    else:
        why = f"{now.astimezone(r.tz):%a %H:%M} {snapshot.company.timezone}"
    return f"outside working hours ({r.hours_level} level; {why})"


def decide(
    call: CallContext,
    snapshot: DirectorySnapshot,
    now: datetime,
    *,
    max_ring_seconds: int = DEFAULT_MAX_RING_SECONDS,
) -> Plan:
    """Decide what happens to ``call`` at ``now`` (timezone-aware) under ``snapshot``."""
    if call.direction == "outgoing":
        return _decide_outgoing(call, snapshot, now)
    dialled = call.dialled
    hit = snapshot.by_number.get(dialled)
    if hit is not None:
        username, kind = hit
        number_step = Step("number", kind.value, f"{dialled} is the {kind.value} number of {username}")
    else:
        ext_user = snapshot.by_extension.get(dialled)
        if ext_user is None:
            return _reject(call, STATUS_NOT_FOUND, f"{dialled} is not a number or extension of any user")
        username, kind = ext_user, NumberKind.FIXED
        number_step = Step(
            "number", "fixed", f"{dialled} is the extension of {username} (fixed-number rules)"
        )
    r = _rules(username, kind, snapshot, max_ring_seconds)
    if r is None:
        return _reject(
            call, STATUS_NOT_FOUND, f"{dialled} belongs to unknown user {username}", (number_step,)
        )
    user = r.user
    k = kind.value
    slots = r.slots

    # 1. Activity.
    activity = user.activity.effective(now)
    if activity is ActivityKind.AVAILABLE:
        act_step = _ACTIVITY_SKIP
    else:
        until = user.activity.until
        what = f"{activity.value}{_fmt_until(until, now, r.tz)}"
        g = slots.get(f"activity.{k}")
        if g is None:
            act_step = Step("activity", "skip", f"{what}, but no activity group for the {k} number")
        else:
            fw = _forward(g.action, r.alt)
            announce = g.action in ("announcement_voicemail", "announcement") or (
                g.action == "voicemail" and user.play_activity_message
            )
            note = fw.note
            if g.action == "voicemail":
                note += (
                    " (activity message played first)"
                    if user.play_activity_message
                    else " (no activity message)"
                )
            return Plan(
                direction="incoming",
                action=fw.action,
                decided_by=g.id,
                target=fw.target,
                target_user=fw.target_user,
                user=username,
                number_kind=kind,
                cause=CAUSE_UNCONDITIONAL,
                activity=activity,
                activity_until=until,
                announce_activity=announce,
                call_waiting=r.call_waiting,
                explanation=(number_step, Step("activity", fw.action, f"{what} -> {_group_text(g)}: {note}")),
            )

    # 2. Outside working hours.
    if r.schedule is None:
        hours_step = _HOURS_NONE
    elif is_working_time(r.schedule, now, r.tz, snapshot.public_holidays):
        hours_step = Step("off_hours", "skip", f"inside working hours ({r.hours_level} level)")
    else:
        reason = _closed_reason(r, now, snapshot)
        g = slots.get(f"off_hours.{k}")
        if g is None:
            hours_step = Step("off_hours", "skip", f"{reason}, but no off-hours group for the {k} number")
        else:
            fw = _forward(g.action, r.alt)
            return Plan(
                direction="incoming",
                action=fw.action,
                decided_by=g.id,
                target=fw.target,
                target_user=fw.target_user,
                user=username,
                number_kind=kind,
                cause=CAUSE_UNCONDITIONAL,
                activity=None,
                announce_activity=False,
                call_waiting=r.call_waiting,
                explanation=(
                    number_step,
                    act_step,
                    Step("off_hours", fw.action, f"{reason} -> {_group_text(g)}: {fw.note}"),
                ),
            )

    # 3. Busy with a non-ringing busy group.
    if not call.user_busy:
        busy_step = _BUSY_SKIP
    else:
        g = slots.get(f"busy.{k}")
        if g is not None and g.action in NON_RINGING_BUSY:
            action = "voicemail" if g.action == "voicemail_no_waiting" else g.action
            fw = _forward(action, r.alt)
            return Plan(
                direction="incoming",
                action=fw.action,
                decided_by=g.id,
                target=fw.target,
                target_user=fw.target_user,
                user=username,
                number_kind=kind,
                cause=CAUSE_BUSY,
                call_waiting=False,
                explanation=(
                    number_step,
                    act_step,
                    hours_step,
                    Step("busy", fw.action, f"user in a call -> {_group_text(g)}: {fw.note}"),
                ),
            )
        busy_step = r.busy_skip_step

    # 4. Ring all devices.
    return Plan(
        direction="incoming",
        action="ring",
        user=username,
        number_kind=kind,
        ring=r.ring,
        no_answer=r.no_answer,
        busy=r.busy,
        unreachable=r.unreachable,
        call_waiting=r.call_waiting,
        explanation=(number_step, act_step, hours_step, busy_step, *r.ring_steps),
    )


# --- outgoing (SPEC 4) ---------------------------------------------------------------------------


def _show(choice: str, user: User, r: _Rules, snapshot: DirectorySnapshot) -> tuple[str | None, bool, str]:
    """(number shown, privacy, note) for a caller-ID choice, with fallbacks when a number is missing."""
    own = user.fixed or user.mobile
    if choice == "hidden":
        return None, True, "hidden (anonymous From, Privacy: id)"
    if choice == "mobile":
        if user.mobile:
            return user.mobile, False, f"mobile number {user.mobile}"
        choice, lead = "fixed", "no mobile number: "
    elif choice == "alt_number":
        alt = r.alt.number
        if alt is not None and not alt.startswith("+") and r.alt.target_user is not None:
            owner = snapshot.users.get(r.alt.target_user)
            alt = owner.fixed if owner is not None else None
        if alt is not None and alt.startswith("+"):
            return alt, False, f"alternative number {alt}"
        choice, lead = "fixed", f"{r.alt.text}, none to show: "
    else:
        lead = ""
    if user.fixed:
        return user.fixed, False, f"{lead}fixed number {user.fixed}"
    if own:
        return own, False, f"{lead}no fixed number: mobile number {own}"
    return None, True, f"{lead}user has no number: hidden"


def _decide_outgoing(call: CallContext, snapshot: DirectorySnapshot, now: datetime) -> Plan:
    username = call.caller_user
    if username is None or username not in snapshot.users:
        return _reject(call, STATUS_FORBIDDEN, f"outgoing call from unknown user {username!r}")
    r = _rules(username, NumberKind.FIXED, snapshot, DEFAULT_MAX_RING_SECONDS)
    assert r is not None
    user = r.user
    dialled = call.dialled
    hit = snapshot.by_number.get(dialled)
    target_user = hit[0] if hit is not None else snapshot.by_extension.get(dialled)
    internal = target_user is not None and target_user != username
    where = f"internal: user {target_user}" if internal else "external"
    steps = [Step("route", "ring", f"{username} calls {dialled} ({where})")]
    role = user.caller_id_role
    decided_by: str | None = None
    choice: str | None = None
    ig = r.slots.get("caller_id.internal")
    if internal and ig is not None:
        if user.mobile:
            choice, decided_by = "mobile", ig.id
            steps.append(
                Step("caller_id", "mobile", f"call to another user of the company -> {_group_text(ig)}")
            )
        else:
            steps.append(Step("caller_id", "skip", f"{_group_text(ig)}, but {username} has no mobile number"))
    if choice is None:
        if role is CallerIdRole.TIME_BASED:
            hg = r.slots.get("caller_id.hours")
            if hg is None:
                choice = "fixed"
                steps.append(Step("caller_id", "fixed", "role time_based without a caller_id.hours group"))
            else:
                decided_by = hg.id
                if is_working_time(r.schedule, now, r.tz, snapshot.public_holidays):
                    choice = hg.action
                    inside = (
                        "no working hours set: always open" if r.schedule is None else "inside working hours"
                    )
                    steps.append(Step("caller_id", choice, f"role time_based, {inside} -> {_group_text(hg)}"))
                else:
                    choice = "mobile"
                    steps.append(
                        Step(
                            "caller_id",
                            "mobile",
                            f"role time_based, {_closed_reason(r, now, snapshot)} -> {_group_text(hg)}",
                        )
                    )
        else:
            choice = role.value
            steps.append(Step("caller_id", choice, f"caller-ID role {role.value}"))
    number, privacy, note = _show(choice, user, r, snapshot)
    steps.append(Step("presentation", "hidden" if privacy else str(number), note))
    asserted = number if number is not None else (user.fixed or user.mobile)
    return Plan(
        direction="outgoing",
        action="ring",
        target=dialled,
        target_user=target_user if internal else None,
        user=username,
        presentation=Presentation(
            number=number, privacy=privacy, asserted=asserted, decided_by=decided_by, role=role.value
        ),
        explanation=tuple(steps),
    )
