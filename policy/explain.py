"""Explanations for people: a plan's trace, and a user's "what happens when" table (SPEC 3.2, 5).

The table is derived by calling ``decide`` with synthetic states (an activity set, always closed,
busy, ringing), never by a second copy of the rules.
"""

from __future__ import annotations

from collections import ChainMap
from dataclasses import dataclass, replace
from datetime import datetime, time
from types import MappingProxyType
from typing import Literal

from policy.decide import DEFAULT_MAX_RING_SECONDS, decide
from policy.model import Activity, ActivityKind, DirectorySnapshot, Interval, NumberKind, User, WeeklySchedule
from policy.plan import CallContext, Outcome, Plan

__all__ = ["SITUATION_LABELS", "SituationRow", "format_plan", "format_situation_table", "situation_table"]

Situation = Literal["activity", "off_hours", "busy", "no_answer"]

SITUATION_LABELS: dict[str, str] = {
    "activity": "activity set (e.g. meeting)",
    "off_hours": "outside working hours",
    "busy": "already in a call",
    "no_answer": "no answer",
}

_ALWAYS_OPEN = WeeklySchedule(
    intervals=tuple(Interval(d, time(0, 0), time.max) for d in range(7)), use_public_holidays=False
)
_ALWAYS_CLOSED = WeeklySchedule(intervals=(), use_public_holidays=False)


@dataclass(frozen=True, slots=True)
class SituationRow:
    number_kind: NumberKind
    number: str | None  # the dialled number (the extension for a user without a fixed number)
    situation: Situation
    action: str  # ring | voicemail | ... | "-" when the user has no such number
    target: str | None
    seconds: int | None
    decided_by: str | None
    summary: str  # one line for people (English; the admin words its own from the fields)
    then: str | None = None  # busy row: the action when every device answers busy
    cause: int | None = None  # for a "reject": the SIP status the call ends with


def _outcome_text(o: Outcome) -> str:
    what = {"alt_number": f"forward to {o.target}", "reject": f"call ends ({o.cause})"}.get(
        o.action, o.action
    )
    if o.target_user:
        what += f" (user {o.target_user})"
    return what


def _plan_text(p: Plan) -> str:
    if p.action == "ring" and p.ring is not None:
        legs = "softphones" + (" + mobile" if p.ring.mobile else "")
        return f"rings {legs}"
    if p.action == "alt_number":
        return f"forward to {p.target}" + (f" (user {p.target_user})" if p.target_user else "")
    if p.action == "voicemail" and p.announce_activity:
        return "voicemail (activity message first)"
    if p.action == "reject":
        return f"rejected ({p.cause})"
    return {
        "announcement_voicemail": "announcement, then voicemail",
        "announcement": "announcement only",
        "queue": "personal queue",
    }.get(p.action, p.action)


def format_plan(plan: Plan) -> str:
    """The decision trace as printed by ``vidare explain``."""
    lines: list[str] = []
    head = _plan_text(plan)
    if plan.direction == "outgoing" and plan.presentation is not None and plan.action != "reject":
        pr = plan.presentation
        shown = "hidden (Privacy: id)" if pr.privacy else pr.number
        lines.append(f"outgoing call from {plan.user} to {plan.target}: caller ID {shown}")
        if pr.asserted:
            lines.append(f"  asserted identity: {pr.asserted}")
    else:
        who = f"{plan.user} ({plan.number_kind.value} number)" if plan.user and plan.number_kind else "call"
        lines.append(f"{who}: {head}" + (f" [{plan.decided_by}]" if plan.decided_by else ""))
        if plan.action == "ring" and plan.ring is not None:
            lines.append(
                f"  timer: {plan.ring.timeout} s" + ("" if plan.call_waiting else " (no call waiting)")
            )
            for name, oc in (
                ("no answer", plan.no_answer),
                ("busy", plan.busy),
                ("unreachable", plan.unreachable),
            ):
                if oc is not None:
                    by = f" [{oc.decided_by}]" if oc.decided_by else ""
                    lines.append(f"  on {name}: {_outcome_text(oc)}{by}")
        if plan.cause is not None and plan.action != "reject":
            lines.append(f"  cause: {plan.cause}")
    lines.append("trace:")
    lines.extend(f"  {i}. {step}" for i, step in enumerate(plan.explanation, 1))
    return "\n".join(lines)


def _with_user(snapshot: DirectorySnapshot, user: User) -> DirectorySnapshot:
    """The snapshot with one user replaced, in O(1): a read-only overlay, not a copy of all users."""
    overlay: ChainMap[str, User] = ChainMap({user.username: user}, snapshot.users)  # type: ignore[arg-type]
    return replace(snapshot, users=MappingProxyType(overlay))


def situation_table(
    username: str,
    snapshot: DirectorySnapshot,
    now: datetime,
    *,
    max_ring_seconds: int = DEFAULT_MAX_RING_SECONDS,
) -> list[SituationRow]:
    """What happens to a call to the fixed and to the mobile number in each situation."""
    user = snapshot.users[username]
    base = replace(user, activity=Activity(), hours=_ALWAYS_OPEN)
    states: dict[Situation, tuple[User, bool]] = {
        "activity": (replace(base, activity=Activity(ActivityKind.MEETING)), False),
        "off_hours": (replace(base, hours=_ALWAYS_CLOSED), False),
        "busy": (base, True),
        "no_answer": (base, False),
    }
    rows: list[SituationRow] = []
    for kind in (NumberKind.FIXED, NumberKind.MOBILE):
        number = user.fixed or user.extension if kind is NumberKind.FIXED else user.mobile
        for situation, (synthetic, busy) in states.items():
            if number is None:
                rows.append(SituationRow(kind, None, situation, "-", None, None, None, "no mobile number"))
                continue
            snap = _with_user(snapshot, synthetic)
            plan = decide(
                CallContext.incoming(number, user_busy=busy), snap, now, max_ring_seconds=max_ring_seconds
            )
            rows.append(_row(kind, number, situation, plan))
    return rows


def _row(kind: NumberKind, number: str, situation: Situation, plan: Plan) -> SituationRow:
    if plan.action != "ring":
        text = _plan_text(plan)
        if situation in ("activity", "off_hours") and plan.decided_by is None:
            text = "rings (no special handling)"
        return SituationRow(
            kind, number, situation, plan.action, plan.target, None, plan.decided_by, text, cause=plan.cause
        )
    if situation == "no_answer" and plan.no_answer is not None:
        oc = plan.no_answer
        return SituationRow(
            kind,
            number,
            situation,
            oc.action,
            oc.target,
            oc.seconds,
            oc.decided_by,
            f"after {oc.seconds} s: {_outcome_text(oc)}",
            cause=oc.cause,
        )
    if situation == "busy" and plan.busy is not None:
        oc = plan.busy
        return SituationRow(
            kind,
            number,
            situation,
            "ring",
            oc.target,
            None,
            oc.decided_by,
            f"rings (call waiting); if every device is busy: {_outcome_text(oc)}",
            then=oc.action,
            cause=oc.cause,
        )
    return SituationRow(kind, number, situation, "ring", None, None, None, "rings (no special handling)")


def format_situation_table(rows: list[SituationRow]) -> str:
    """A plain-text table: number, situation, what happens, deciding group."""
    header = ("number", "situation", "what happens", "group")
    body = [
        (
            f"{r.number_kind.value} {r.number or ''}".strip(),
            SITUATION_LABELS.get(r.situation, r.situation),
            r.summary,
            r.decided_by or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(3)]
    out = []
    for row in [header, *body]:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return "\n".join(line.rstrip() for line in out)
