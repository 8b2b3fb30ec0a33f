"""What ``decide`` is asked (``CallContext``) and what it answers (``Plan``): plain frozen data.

A ``Plan`` tells the B2BUA what to do with one call now, and what to do later if the devices it
rings answer busy, do not answer, or cannot be reached; ``explanation`` says why, step by step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from policy.model import ActivityKind, NumberKind

__all__ = [
    "ACTIONS",
    "Action",
    "CallContext",
    "Direction",
    "Outcome",
    "Plan",
    "Presentation",
    "RingSpec",
    "Step",
]

Direction = Literal["incoming", "outgoing"]
Action = Literal[
    "ring", "voicemail", "announcement", "announcement_voicemail", "alt_number", "queue", "reject"
]
ACTIONS: tuple[Action, ...] = (
    "ring",
    "voicemail",
    "announcement",
    "announcement_voicemail",
    "alt_number",
    "queue",
    "reject",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """One call as the B2BUA sees it.

    incoming: ``dialled`` is an E.164 number or an extension; ``caller`` the caller's number (None
    when withheld); ``caller_user`` the username when the caller is a user of the company;
    ``user_busy`` whether the dialled user is in an established call on any device.
    outgoing: ``caller_user`` (required) calls ``dialled``.
    """

    direction: Direction
    dialled: str
    caller: str | None = None
    caller_user: str | None = None
    user_busy: bool = False

    @classmethod
    def incoming(
        cls,
        dialled: str,
        *,
        caller: str | None = None,
        caller_user: str | None = None,
        user_busy: bool = False,
    ) -> CallContext:
        return cls(
            direction="incoming", dialled=dialled, caller=caller, caller_user=caller_user, user_busy=user_busy
        )

    @classmethod
    def outgoing(cls, caller_user: str, dialled: str) -> CallContext:
        return cls(direction="outgoing", dialled=dialled, caller_user=caller_user)


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the explanation: which rule, what it concluded, and why."""

    rule: str
    verdict: str
    reason: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.reason} [{self.verdict}]"


@dataclass(frozen=True, slots=True, kw_only=True)
class RingSpec:
    """Ring all devices in parallel: every registered softphone and, if set, the mobile leg."""

    softphones: bool
    mobile: str | None  # E.164 of the mobile leg, via the mobile-network trunk
    timeout: int | None  # seconds until the no-answer outcome (the group's timer or the system maximum)

    def to_json(self) -> dict[str, Any]:
        return {"softphones": self.softphones, "mobile": self.mobile, "timeout": self.timeout}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What happens when a ringing call ends without an answer (busy, no answer, unreachable)."""

    action: Action  # voicemail | alt_number | queue | reject
    seconds: int | None = None  # no answer: the timer; unreachable: 0 (at once)
    decided_by: str | None = None
    target: str | None = None  # alt_number: the number forwarded to
    target_user: str | None = (
        None  # alt_number: set when the target is another user (a new call under their rules)
    )
    cause: int | None = None  # RFC 4458 cause (486/408/503), or the SIP status for reject (480/486)
    call_waiting: bool | None = None  # busy outcome only: do devices ring while the user is in a call

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "seconds": self.seconds,
            "decided_by": self.decided_by,
            "target": self.target,
            "target_user": self.target_user,
            "cause": self.cause,
        }
        if self.call_waiting is not None:
            out["call_waiting"] = self.call_waiting
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentation:
    """Outgoing caller ID (SPEC 4): mapped by sipcore onto From, P-Asserted-Identity and Privacy."""

    number: str | None  # the number the far end sees; None when hidden
    privacy: bool  # hidden: anonymous From + ``Privacy: id`` (RFC 3323)
    asserted: str | None  # true identity for P-Asserted-Identity toward trusted trunks (RFC 3325)
    decided_by: str | None  # caller-ID group that decided, None when the role alone decided
    role: str  # the caller-ID role in force (fixed, mobile, alt_number, hidden, time_based)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "privacy": self.privacy,
            "asserted": self.asserted,
            "decided_by": self.decided_by,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The routing decision for one call.

    incoming, ``action == "ring"``: ring ``ring``; then ``no_answer``/``busy``/``unreachable``.
    incoming, other actions: carry out ``action`` at once (``target``/``target_user`` for
    ``alt_number``; the user's box for voicemail; ``activity`` for announcements), telling the
    media server ``cause``.
    outgoing: ``action == "ring"`` with ``target`` = the dialled number (``target_user`` set when it
    is another user of the company: place it as an incoming call to them) and ``presentation``.
    ``reject``: answer the caller with SIP status ``cause`` (404 unknown number, 403 unknown caller).
    """

    direction: Direction
    action: Action
    decided_by: str | None = None
    target: str | None = None
    target_user: str | None = None
    user: str | None = None
    number_kind: NumberKind | None = None
    cause: int | None = None
    activity: ActivityKind | None = None
    activity_until: datetime | None = None
    announce_activity: bool = False  # voicemail: play the activity announcement first
    ring: RingSpec | None = None
    no_answer: Outcome | None = None
    busy: Outcome | None = None
    unreachable: Outcome | None = None
    call_waiting: bool = True
    presentation: Presentation | None = None
    explanation: tuple[Step, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "direction": self.direction,
            "action": self.action,
            "decided_by": self.decided_by,
            "target": self.target,
            "target_user": self.target_user,
            "user": self.user,
            "number_kind": None if self.number_kind is None else self.number_kind.value,
            "cause": self.cause,
            "call_waiting": self.call_waiting,
        }
        if self.activity is not None:
            out["activity"] = self.activity.value
            out["activity_until"] = None if self.activity_until is None else self.activity_until.isoformat()
            out["announce_activity"] = self.announce_activity
        if self.ring is not None:
            out["ring"] = self.ring.to_json()
        for name in ("no_answer", "busy", "unreachable"):
            oc: Outcome | None = getattr(self, name)
            if oc is not None:
                out[name] = oc.to_json()
        if self.presentation is not None:
            out["presentation"] = self.presentation.to_json()
        out["explanation"] = [str(s) for s in self.explanation]
        return out
