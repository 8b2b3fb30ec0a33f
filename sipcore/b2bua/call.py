"""One call: an inbound leg A (we are its UAS) and one or more outbound legs B (we are their UAC).

A sans-IO state machine: the manager feeds it requests, responses, timer firings and policy
plans; it returns actions (``events.py``). States::

    RINGING --first 2xx--> ANSWERED --BYE either side--> ENDED
       |  \\--all legs fail / no-answer timer--> (outcome: forward = new legs, still RINGING)
       +--caller CANCEL / reject / max ring--> ENDED

Forwarding (voicemail, announcement, queue, alternative number) is "ring a new set of legs"
from the caller's point of view, so it stays in RINGING with a new ``situation``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from policy.plan import Outcome, Plan
from sipcore.builders import make_response, new_branch, new_call_id, new_tag
from sipcore.dialog import Dialog
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.transaction.client_invite import make_cancel
from sipcore.transaction.events import Destination

from . import forwarding
from .config import B2buaConfig
from .events import B2buaAction, CdrRecord, Log, SendRequest, SendResponse, SetTimer, WriteCdr
from .events import CancelTimer as CancelTimerAction
from .header_policy import copy_headers
from .in_dialog import InDialog, Relay
from .leg import CallState, Leg, LegKind, LegState, dest_of, dest_of_dialog

if TYPE_CHECKING:
    from policy.model import DirectorySnapshot, User
    from sipcore.registrar import Binding

__all__ = ["COMPLETED_ELSEWHERE", "Call", "CallServices", "CallState"]

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
BUSY_CODES = frozenset({486, 600, 603})
_MEDIA_SERVICES = {"voicemail", "announcement", "announcement_voicemail", "queue"}
_OUTCOME_CDR = {
    "voicemail": "voicemail",
    "announcement": "announcement",
    "announcement_voicemail": "announcement",
}


class CallServices(Protocol):
    """What a call may ask of its manager: all in memory, no I/O."""

    config: B2buaConfig

    def snapshot(self) -> DirectorySnapshot: ...

    def contacts(self, username: str, now: float) -> list[Binding]: ...

    def plan_incoming(
        self,
        username: str,
        caller: str | None,
        caller_user: str | None,
        now: float,
        dialled: str | None = None,
    ) -> Plan: ...

    def mark_busy(self, username: str, delta: int) -> None: ...


class Call(InDialog):
    def __init__(
        self,
        ref: str,
        services: CallServices,
        invite: Request,
        source: Destination,
        *,
        trusted: bool,
        direction: str,
        caller: str,
        dialled: str,
        now: float,
        wall: datetime,
    ) -> None:
        self.ref = ref
        self.svc = services
        self.cfg = services.config
        self.a_invite = invite
        self.a_source = source
        self.a_trusted = trusted
        self.direction = direction
        self.caller = caller
        self.dialled = dialled
        self.a_tag = new_tag()
        self.local_contact = NameAddr(Uri(user="vidare", host=self.cfg.local_host, port=self.cfg.local_port))
        self.a_dialog = Dialog.uas(invite, self.a_tag, self.local_contact)
        self.state = CallState.RINGING
        self.legs: dict[str, Leg] = {}
        self.winner: Leg | None = None
        self.plan: Plan | None = None  # until answered: what happens on no answer, busy, ...
        self.decided_by: str | None = None  # the last plan's deciding group, for the CDR
        self.user: str | None = None  # whose rules apply now (changes on internal forwarding)
        self.first_user: str | None = None
        self.visited: list[str] = []
        self.diversions = 0
        # (diverting address, cause) per diversion so far: Diversion and History-Info (RFC 5806,
        # RFC 7044) name the whole chain on every later leg.
        self.chain: list[tuple[str, int]] = []
        self.situation = "ring"  # ring | busy | no_answer | unreachable | forward
        self.outcome = "failed"
        self.cause = ""
        self.busy_users: set[str] = set()
        self.started = now
        self.started_wall = wall
        self.answered: float | None = None
        self.lingering = False  # ended, kept a while for late responses (the manager's)
        self._seq = 0
        self._relays: dict[str, Relay] = {}
        self._pending_ack: dict[str, int] = {}  # side that will ACK -> CSeq for the other side's ACK
        self._a_2xx: Response | None = None
        self._a_2xx_interval = self.cfg.timers.t1
        self._a_acked = False
        self.caller_user: str | None = None
        self.extra_b_headers: list[tuple[str, str]] = []  # identity headers for outgoing calls
        self.b_from: NameAddr | None = None

    # ------------------------------------------------------------------------------ helpers

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def _via(self, dest: Destination) -> Via:
        return Via(
            dest.transport, self.cfg.local_host, self.cfg.local_port, {"branch": new_branch(), "rport": None}
        )

    def _log(self, event: str, **fields: object) -> Log:
        return Log(
            event, {"call_id": self.a_invite.call_id, "call_ref": self.ref, "user": self.user, **fields}
        )

    def aor(self, username: str) -> str:
        return f"sip:{username}@{self.cfg.domain}"

    def _user(self, username: str | None) -> User | None:
        return None if username is None else self.svc.snapshot().users.get(username)

    def _respond_a(
        self, status: int, *, body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> SendResponse:
        resp = make_response(
            self.a_invite, status, to_tag=self.a_tag if status > 100 else None, headers=headers or []
        )
        if 100 < status < 300:
            resp.contact = [self.local_contact.copy()]
            resp.record_route = [r.copy() for r in self.a_invite.record_route]
        resp.body = body
        return SendResponse(resp, self.a_invite)

    def _b_from(self) -> NameAddr:
        if self.b_from is not None:
            na = self.b_from.copy()
        else:
            src = self.a_invite.from_
            na = NameAddr(Uri(user=src.uri.user or "anonymous", host=self.cfg.domain), display=src.display)
        na.params["tag"] = new_tag()
        return na

    def new_leg(
        self,
        kind: LegKind,
        uri: Uri,
        dest: Destination,
        *,
        user: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[Leg, list[B2buaAction]]:
        """Build and send one outbound INVITE carrying the caller's SDP unchanged."""
        a = self.a_invite
        mf = (a.max_forwards if a.max_forwards is not None else 70) - 1
        hidden = any(v.strip().lower() == "id" for v in a.header_values("Privacy"))
        # RFC 3325 9.1: a withheld identity goes no further than trusted peers (trunks, media).
        exclude = frozenset({"p-asserted-identity"}) if hidden and kind is LegKind.SOFTPHONE else frozenset()
        if self.b_from is not None:
            # Vidare decided the caller's identity (SPEC 4): a trunk's own assertion (the mobile
            # network's PAI on a call out from a user's mobile) must not ride along beside it.
            exclude |= {"p-asserted-identity"}
            if any(n.lower() == "privacy" for n, _ in self.extra_b_headers):
                exclude |= {"privacy"}
        hdrs = copy_headers(a, trusted=self.a_trusted, exclude=exclude)
        hdrs.extend(self.extra_b_headers)
        hdrs.extend(headers or [])
        invite = Request(
            method="INVITE",
            uri=uri,
            via=[self._via(dest)],
            from_=self._b_from(),
            to=NameAddr(a.to.uri.copy() if kind is LegKind.SOFTPHONE else uri.copy(), display=a.to.display),
            call_id=new_call_id(self.cfg.local_host),
            cseq=CSeq(1, "INVITE"),
            max_forwards=mf,
            contact=[self.local_contact.copy()],
            headers=hdrs,
            body=a.body,
        )
        leg = Leg(self._next("b"), kind, invite, dest, user=user)
        self.legs[leg.ref] = leg
        return leg, [
            SendRequest(invite, dest, (self.ref, leg.ref)),
            self._log("leg.started", leg=leg.ref, kind=str(kind), uri=str(uri)),
        ]

    def _cancel_leg(self, leg: Leg, reason: str | None) -> list[B2buaAction]:
        if leg.state is LegState.CALLING:
            # RFC 3261 9.1: no CANCEL before a provisional; owe it until one arrives.
            leg.state = LegState.CANCELLING
            leg.cancel_reason = reason or ""
            return []
        if leg.state is not LegState.EARLY:
            return []
        leg.state = LegState.CANCELLING
        cancel = make_cancel(leg.invite)
        if reason:
            cancel.set_header("Reason", reason)
        return [
            SendRequest(cancel, leg.dest, (self.ref, leg.ref + ":cancel")),
            self._log("leg.cancelled", leg=leg.ref, reason=reason),
        ]

    def _cancel_pending(self, reason: str | None) -> list[B2buaAction]:
        out: list[B2buaAction] = []
        for leg in self.legs.values():
            out.extend(self._cancel_leg(leg, reason))
        return out

    def _cancel_timers(self) -> list[B2buaAction]:
        return [CancelTimerAction(self.ref, "ring"), CancelTimerAction(self.ref, "2xx")]

    # ------------------------------------------------------------------------------ plans

    def start(self, plan: Plan, now: float) -> list[B2buaAction]:
        """Carry out a plan for the current ``self.user`` (incoming) or the caller (outgoing)."""
        self.plan = plan
        self.decided_by = plan.decided_by
        if plan.user is not None and self.first_user is None:
            self.first_user = plan.user
        if plan.user is not None:
            self.user = plan.user
            self.visited.append(plan.user)
        out: list[B2buaAction] = [
            self._log(
                "route.decided",
                action=plan.action,
                decided_by=plan.decided_by,
                plan=plan.to_json(),
                explanation=[str(s) for s in plan.explanation],
            )
        ]
        if plan.action == "reject":
            return out + self._fail(plan.cause or 404, "rejected", now)
        if plan.action == "ring":
            return out + self._start_ring(plan, now)
        if plan.action in _MEDIA_SERVICES:
            return out + self._forward_media(plan.action, plan.cause or 302, now)
        if plan.action == "alt_number":
            oc = Outcome(
                action="alt_number", target=plan.target, target_user=plan.target_user, cause=plan.cause
            )
            return out + self._forward_alt(oc, plan.cause or 302, now)
        return out + self._fail(500, "unknown plan action", now)

    def _start_ring(self, plan: Plan, now: float) -> list[B2buaAction]:
        out: list[B2buaAction] = []
        if plan.direction == "outgoing" and plan.target_user is None:
            # An external call: one leg out through the PSTN trunk.
            host, port = self.cfg.pstn
            _leg, acts = self.new_leg(
                LegKind.PSTN, Uri(user=plan.target, host=host, port=port), Destination(host, port)
            )
            return acts
        ring = plan.ring
        user = self.user
        if ring is not None and user is not None:
            if ring.softphones:
                for b in self.svc.contacts(user, now):
                    dest = (
                        Destination(b.source.host, b.source.port, b.source.transport)
                        if b.source
                        else dest_of(b.contact.uri)
                    )
                    uri = b.contact.uri.copy()
                    hdrs = self._chain_headers(uri)
                    out.extend(self.new_leg(LegKind.SOFTPHONE, uri, dest, user=user, headers=hdrs)[1])
            if ring.mobile:
                host, port = self.cfg.mobile
                uri = Uri(user=ring.mobile, host=host, port=port)
                hdrs = self._chain_headers(uri)
                out.extend(
                    self.new_leg(LegKind.MOBILE, uri, Destination(host, port), user=user, headers=hdrs)[1]
                )
        if not any(leg.pending for leg in self.legs.values()):
            return out + self._all_failed(now)
        timeout = ring.timeout if ring is not None and ring.timeout else None
        at = now + (timeout if timeout is not None else self.cfg.max_ring_seconds)
        out.append(SetTimer(self.ref, "ring", at))
        return out

    def _outcome_for(self, situation: str) -> tuple[Outcome | None, int]:
        plan = self.plan
        if plan is None:
            return None, 480
        if situation == "busy":
            return plan.busy, 486
        if situation == "unreachable":
            oc = plan.unreachable or plan.no_answer
            return oc, 408
        return plan.no_answer, 408

    def _apply_outcome(self, situation: str, now: float) -> list[B2buaAction]:
        self.situation = situation
        oc, default_cause = self._outcome_for(situation)
        out: list[B2buaAction] = [
            self._log("call.situation", situation=situation, outcome=None if oc is None else oc.to_json())
        ]
        if oc is None:
            return out + self._fail(486 if situation == "busy" else 480, situation, now)
        # The media server knows 486 (busy), 408 (no answer; also "nobody reachable", which
        # SPEC 3.2 treats as no answer at once) and 302; the plan's own cause is for reject.
        cause = default_cause
        if oc.action == "reject":
            return out + self._fail(oc.cause or default_cause, situation, now)
        if oc.action == "alt_number":
            return out + self._forward_alt(oc, cause, now)
        return out + self._forward_media(oc.action, cause, now)

    def _diverting_address(self) -> str:
        """Who diverts the call now: the number the caller dialled when it is this user's (a call
        to the mobile number diverts from the mobile number), else the user's fixed number."""
        user = self._user(self.user)
        if user is not None and self.dialled and self.dialled in (user.fixed, user.mobile):
            return f"sip:{self.dialled}@{self.cfg.domain}"
        if user is not None and user.fixed:
            return f"sip:{user.fixed}@{self.cfg.domain}"
        return self.aor(self.user or "unknown")

    def _chain_headers(self, retarget: Uri) -> list[tuple[str, str]]:
        if not self.chain:
            return []
        return [
            ("History-Info", forwarding.history_info(self.chain, retarget)),
            ("Diversion", forwarding.diversion(self.chain)),
        ]

    def _forward_media(
        self, service: str, cause: int, now: float, *, diverts: bool = True
    ) -> list[B2buaAction]:
        if diverts:
            self.chain.append((self._diverting_address(), cause))
        user = self._user(self.user)
        plan = self.plan
        if plan is not None and plan.user != self.user:
            plan = None  # the chain was cut back to the first user: the last one's plan is not theirs
        host, port = self.cfg.media
        target = self.aor(self.user or "unknown")
        uri = forwarding.media_uri(service, host, port, target, cause)
        snap = self.svc.snapshot()
        hdrs = [("History-Info", forwarding.history_info(self.chain, uri))]
        if user is not None:
            hdrs += forwarding.vidare_headers(
                name=user.display_name,
                extension=user.extension,
                language=user.language or snap.company.language,
                activity=None if plan is None or plan.activity is None else str(plan.activity),
                # In the company's zone: the media server reads the return time out as it is.
                until=None
                if plan is None or plan.activity_until is None
                else plan.activity_until.astimezone(ZoneInfo(snap.company.timezone)),
                play_activity=bool(plan is not None and (plan.announce_activity or service != "voicemail")),
            )
        self.outcome = _OUTCOME_CDR.get(service, "forwarded")
        self.cause = str(cause)
        _leg, acts = self.new_leg(LegKind.MEDIA, uri, Destination(host, port), headers=hdrs)
        return [self._log("call.forwarded", to=str(uri), service=service, cause=cause), *acts]

    def _forward_alt(self, oc: Outcome, cause: int, now: float) -> list[B2buaAction]:
        self.diversions += 1
        self.chain.append((self._diverting_address(), cause))
        loop = oc.target_user is not None and oc.target_user in self.visited
        if (
            loop
            or self.diversions > self.cfg.max_diversions
            or (oc.target_user is None and oc.target is None)
        ):
            # Break the chain at the first user's voicemail (SPEC 3.3).
            event = "call.loop" if loop else "call.diversion_limit"
            stop = self._log(event, to=oc.target_user or oc.target, diversions=self.diversions)
            self.user = self.first_user
            return [stop, *self._forward_media("voicemail", cause, now, diverts=False)]
        if oc.target_user is not None:
            plan = self.svc.plan_incoming(oc.target_user, self.caller, self.caller_user, now, oc.target)
            out: list[B2buaAction] = [
                self._log("call.forwarded", to=oc.target_user, internal=True, cause=cause)
            ]
            return out + self.start(plan, now)
        assert oc.target is not None
        host, port = self.cfg.pstn
        uri = Uri(user=oc.target, host=host, port=port)
        self.outcome = "forwarded"
        self.cause = str(cause)
        _leg, acts = self.new_leg(
            LegKind.PSTN, uri, Destination(host, port), headers=self._chain_headers(uri)
        )
        return [self._log("call.forwarded", to=str(uri), internal=False, cause=cause), *acts]

    # ------------------------------------------------------------------------------ B-leg responses

    def on_leg_response(self, leg: Leg, resp: Response, now: float) -> list[B2buaAction]:
        status = resp.status
        if status < 200:
            return self._leg_provisional(leg, resp)
        if status < 300:
            return self._leg_2xx(leg, resp, now)
        return self._leg_failed(leg, resp, now)

    def _leg_provisional(self, leg: Leg, resp: Response) -> list[B2buaAction]:
        if resp.status == 100:
            if leg.state is LegState.CANCELLING and leg.cancel_reason is not None:
                pass  # 100 is hop-by-hop but allows CANCEL too (9.1)
            else:
                return []
        if leg.state is LegState.CANCELLING and leg.cancel_reason is not None:
            reason, leg.cancel_reason, leg.state = leg.cancel_reason, None, LegState.EARLY
            return self._cancel_leg(leg, reason or None)
        if leg.state is not LegState.CALLING and leg.state is not LegState.EARLY:
            return []
        leg.state = LegState.EARLY
        if self.state is not CallState.RINGING or resp.status == 100:
            return []
        hdrs = copy_headers(resp, trusted=False, exclude=frozenset({"reason"}))
        return [
            self._respond_a(resp.status, body=resp.body, headers=hdrs),
            self._log("leg.ringing", leg=leg.ref, status=resp.status, kind=str(leg.kind)),
        ]

    def _leg_2xx(self, leg: Leg, resp: Response, now: float) -> list[B2buaAction]:
        if leg.dialog is not None:
            # A retransmitted 2xx: re-send our ACK if we sent one.
            return [SendRequest(leg.ack, dest_of_dialog(leg), None)] if leg.ack is not None else []
        leg.dialog = Dialog.uac(leg.invite, resp, self.local_contact)
        if self.winner is not None or self.state is not CallState.RINGING:
            # A late 2xx from a leg that lost the race: ACK and BYE it (RFC 3261 15).
            leg.state = LegState.ENDED
            dest = dest_of_dialog(leg)
            leg.ack = leg.dialog.ack(leg.invite.cseq.number, self._via(dest))
            bye = leg.dialog.new_request("BYE", self._via(dest), headers=[("Reason", COMPLETED_ELSEWHERE)])
            return [
                SendRequest(leg.ack, dest, None),
                SendRequest(bye, dest, (self.ref, leg.ref + ":bye")),
                self._log("leg.late_answer", leg=leg.ref),
            ]
        leg.state = LegState.ANSWERED
        self.winner = leg
        self.state = CallState.ANSWERED
        self.plan = None  # answered: its no-answer/busy branches are moot, and calls last minutes
        self.answered = now
        if self.outcome == "failed":
            self.outcome = "answered"
        if leg.kind in (LegKind.SOFTPHONE, LegKind.MOBILE) and leg.user is not None:
            self.busy_users.add(leg.user)
        if self.caller_user is not None:
            self.busy_users.add(self.caller_user)
        for u in self.busy_users:
            self.svc.mark_busy(u, +1)
        self.a_dialog.confirm()
        hdrs = copy_headers(resp, trusted=False)
        r = self._respond_a(200, body=resp.body, headers=hdrs)
        self._a_2xx = r.response
        out: list[B2buaAction] = [CancelTimerAction(self.ref, "ring"), r]
        out.append(SetTimer(self.ref, "2xx", now + self._a_2xx_interval))
        out.append(self._log("leg.answered", leg=leg.ref, kind=str(leg.kind)))
        for other in self.legs.values():
            if other is not leg:
                out.extend(self._cancel_leg(other, COMPLETED_ELSEWHERE))
        return out

    def _leg_failed(self, leg: Leg, resp: Response, now: float) -> list[B2buaAction]:
        was_cancelled = leg.state is LegState.CANCELLING
        if leg.state not in (LegState.CALLING, LegState.EARLY, LegState.CANCELLING):
            return []
        leg.state = LegState.FAILED
        leg.status = resp.status
        out: list[B2buaAction] = [self._log("leg.failed", leg=leg.ref, code=resp.status, kind=str(leg.kind))]
        if was_cancelled or self.state is not CallState.RINGING:
            return out
        if any(other.pending for other in self.legs.values()):
            return out
        return out + self._all_failed(now)

    def _all_failed(self, now: float) -> list[B2buaAction]:
        """Every leg has failed: busy if anyone said busy, else nobody is reachable."""
        out: list[B2buaAction] = [CancelTimerAction(self.ref, "ring")]
        current = [
            leg for leg in self.legs.values() if leg.status is not None and leg.state is LegState.FAILED
        ]
        if self.situation != "ring":
            # A forward target failed too: give the caller its failure; no second chance.
            last = current[-1].status if current else 480
            return out + self._fail(last or 480, "forward failed", now)
        if any(leg.status in BUSY_CODES for leg in current):
            return out + self._apply_outcome("busy", now)
        if self.plan is not None and self.plan.direction == "outgoing" and self.plan.target_user is None:
            last = current[-1].status if current else 480
            return out + self._fail(last or 480, "failed", now)
        return out + self._apply_outcome("unreachable", now)

    def _fail(self, status: int, why: str, now: float) -> list[B2buaAction]:
        self.outcome = {486: "busy", 600: "busy", 408: "no_answer", 480: "no_answer", 487: "cancelled"}.get(
            status, "failed"
        )
        self.cause = f"{status} {why}"
        return [self._respond_a(status), *self._end(now)]

    # ------------------------------------------------------------------------------ timers

    def on_timer(self, name: str, now: float) -> list[B2buaAction]:
        if self.state is CallState.ENDED:
            return []
        if name == "ring" and self.state is CallState.RINGING:
            out = self._cancel_pending(None)
            if self.situation != "ring" or self.plan is None or self.plan.no_answer is None:
                return out + self._fail(480, "max ring time", now)
            return out + self._apply_outcome("no_answer", now)
        if name == "2xx" and self._a_2xx is not None and not self._a_acked:
            if now - (self.answered or now) >= self.cfg.timers.timer_h:
                self.cause = "no ACK from caller"
                return self._hangup(None, now)
            self._a_2xx_interval = min(2 * self._a_2xx_interval, self.cfg.timers.t2)
            return [
                SendResponse(self._a_2xx, self.a_invite),
                SetTimer(self.ref, "2xx", now + self._a_2xx_interval),
            ]
        return []

    # ------------------------------------------------------------------------------ requests

    def on_cancel(self, cancel: Request, now: float) -> list[B2buaAction]:
        """The caller gave up (RFC 3261 9.2): cancel every leg, 487 to the INVITE."""
        if self.state is not CallState.RINGING:
            return []
        reason = cancel.header("Reason")
        out = [CancelTimerAction(self.ref, "ring"), *self._cancel_pending(reason)]
        self.outcome, self.cause = "cancelled", "487 caller cancelled"
        out.append(self._respond_a(487))
        return out + self._end(now)

    # ------------------------------------------------------------------------------ ending

    def _end(self, now: float) -> list[B2buaAction]:
        if self.state is CallState.ENDED:
            return []
        self.state = CallState.ENDED
        for u in self.busy_users:
            self.svc.mark_busy(u, -1)
        self.a_dialog.terminate()
        duration = round(now - self.answered, 3) if self.answered is not None else 0.0
        ended_wall = self.started_wall + timedelta(seconds=now - self.started)
        answered_wall = (
            None
            if self.answered is None
            else self.started_wall + timedelta(seconds=self.answered - self.started)
        )
        self.plan = None  # nothing after the end reads the plan: free it
        rec = CdrRecord(
            call_id=self.a_invite.call_id,
            started_at=self.started_wall,
            direction=self.direction,
            caller=self.caller,
            callee=self.dialled,
            outcome=self.outcome,
            answered_at=answered_wall,
            ended_at=ended_wall,
            user=self.first_user or self.caller_user,
            cause=self.cause or None,
            decided_by=self.decided_by,
            duration=duration,
        )
        return [
            *self._cancel_timers(),
            self._log(
                "call.ended",
                cause=self.cause,
                outcome=self.outcome,
                duration=duration,
                setup=round((self.answered or now) - self.started, 3),
            ),
            WriteCdr(rec),
        ]
