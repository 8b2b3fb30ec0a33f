"""Personal queue hand-over (issue 5 point 7): third-party call control, RFC 3725 flow I.

A queued caller's call is ANSWERED with its winning leg at ``sip:queue@<media>``. When the user's
last established call ends, the manager picks the oldest such call for that user and hands it
over:

1. INVITE *without* SDP to each of the user's registered devices (the user is "rung" with the
   queued caller's identity);
2. the first 2xx brings the device's SDP offer; the other devices get CANCEL;
3. re-INVITE to the caller with that offer; the caller's 2xx brings the answer;
4. ACK to the caller, ACK to the device carrying the caller's answer, BYE to the media server's
   leg. The device leg becomes the call's winner: RTP flows between the caller and the user.

If nobody answers (``handover_ring`` seconds) or every device refuses, the caller stays in the
queue (the media server sends them to voicemail after ``media.queue_max_wait``). If the caller's
re-INVITE fails, the device leg is ACKed and released and the caller stays queued. If the caller
hangs up meanwhile, the device legs are cancelled or released.

Sans-IO; the manager routes responses and the ``handover`` timer of the call here.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sipcore.builders import new_call_id
from sipcore.dialog import Dialog
from sipcore.message import CSeq, NameAddr, Request, Response, Uri
from sipcore.transaction.events import Destination

from .events import B2buaAction, CancelTimer, Log, SendRequest, SetTimer
from .leg import Leg, LegKind, LegState, dest_of, dest_of_dialog

if TYPE_CHECKING:
    from sipcore.registrar import Binding

    from .call import Call

__all__ = ["Handover", "HandoverState", "is_queued"]

COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
_SDP = ("Content-Type", "application/sdp")


class HandoverState(enum.Enum):
    RINGING = "ringing"
    REINVITING = "reinviting"
    DONE = "done"
    FAILED = "failed"


def is_queued(call: Call, now: float | None = None) -> bool:
    """The call is answered by the media server's personal queue (and, given ``now``, has not
    waited ``queue_max_wait`` yet: then the media server has moved it to voicemail, in the same
    dialog, and handing it over would cut the message short)."""
    from .call import CallState

    w = call.winner
    max_wait = call.cfg.queue_max_wait
    if now is not None and max_wait > 0 and now - (call.answered or call.started) >= max_wait:
        return False
    return (
        call.state is CallState.ANSWERED
        and w is not None
        and w.kind is LegKind.MEDIA
        and w.invite.uri.user == "queue"
    )


class Handover:
    def __init__(self, call: Call, user: str, ring_seconds: float) -> None:
        self.call = call
        self.user = user
        self.ring_seconds = ring_seconds
        self.state = HandoverState.RINGING
        self.legs: dict[str, Leg] = {}
        self.chosen: Leg | None = None
        self.reinvite_ref: str | None = None
        self.media_leg = call.winner

    @property
    def finished(self) -> bool:
        return self.state in (HandoverState.DONE, HandoverState.FAILED)

    def _log(self, event: str, **fields: object) -> Log:
        c = self.call
        return Log(event, {"call_id": c.a_invite.call_id, "call_ref": c.ref, "user": self.user, **fields})

    # ------------------------------------------------------------------ 1. ring the user

    def start(self, contacts: list[Binding], now: float) -> list[B2buaAction]:
        c = self.call
        out: list[B2buaAction] = []
        for b in contacts:
            uri = b.contact.uri.copy()
            dest = Destination(b.source.host, b.source.port, b.source.transport) if b.source else dest_of(uri)
            invite = Request(
                method="INVITE",
                uri=uri,
                via=[c._via(dest)],
                from_=c._b_from(),
                to=NameAddr(Uri(user=self.user, host=c.cfg.domain)),
                call_id=new_call_id(c.cfg.local_host),
                cseq=CSeq(1, "INVITE"),
                max_forwards=70,
                contact=[c.local_contact.copy()],
            )
            leg = Leg(c._next("h"), LegKind.SOFTPHONE, invite, dest, user=self.user)
            c.legs[leg.ref] = leg
            self.legs[leg.ref] = leg
            out.append(SendRequest(invite, dest, (c.ref, leg.ref)))
        out.append(SetTimer(c.ref, "handover", now + self.ring_seconds))
        out.append(self._log("queue.handover_started", devices=len(self.legs)))
        return out

    # ------------------------------------------------------------------ 2. the devices answer

    def on_leg_response(self, leg: Leg, resp: Response, now: float) -> list[B2buaAction]:
        c = self.call
        if resp.status < 200:
            return c._leg_provisional(leg, resp)
        if resp.status >= 300:
            if leg.state not in (LegState.CALLING, LegState.EARLY, LegState.CANCELLING):
                return []
            leg.state, leg.status = LegState.FAILED, resp.status
            out: list[B2buaAction] = [self._log("leg.failed", leg=leg.ref, code=resp.status)]
            if self.state is HandoverState.RINGING and not any(x.pending for x in self.legs.values()):
                out += self._fail("no device answered", now)
            return out
        if leg.dialog is not None:
            return [SendRequest(leg.ack, dest_of_dialog(leg), None)] if leg.ack is not None else []
        leg.dialog = Dialog.uac(leg.invite, resp, c.local_contact)
        if self.state is not HandoverState.RINGING or self.chosen is not None:
            return self._release(leg, c.a_invite.body)
        # 3. The device's offer goes to the caller in a re-INVITE.
        self.chosen = leg
        leg.state = LegState.ANSWERED
        self.state = HandoverState.REINVITING
        out = [CancelTimer(c.ref, "handover"), self._log("queue.handover_answered", leg=leg.ref)]
        for other in self.legs.values():
            if other is not leg:
                out += c._cancel_leg(other, COMPLETED_ELSEWHERE)
        dest = dest_of(c.a_dialog.next_hop(), c.a_source)
        reinvite = c.a_dialog.new_request("INVITE", c._via(dest), body=resp.body, headers=[_SDP])
        self.reinvite_ref = c._next("hx")
        out.append(SendRequest(reinvite, dest, (c.ref, self.reinvite_ref)))
        return out

    # ------------------------------------------------------------------ 4. the caller answers

    def on_reinvite_response(self, resp: Response, now: float) -> list[B2buaAction]:
        c = self.call
        leg = self.chosen
        if resp.status < 200 or self.state is not HandoverState.REINVITING or leg is None:
            return []
        if resp.status >= 300:
            released = self._release(leg, c.a_invite.body)
            return released + self._fail(f"caller refused the re-INVITE ({resp.status})", now)
        c.a_dialog.on_response(resp)
        a_dest = dest_of(c.a_dialog.next_hop(), c.a_source)
        out: list[B2buaAction] = [SendRequest(c.a_dialog.ack(resp.cseq.number, c._via(a_dest)), a_dest, None)]
        assert leg.dialog is not None
        dest = dest_of_dialog(leg)
        leg.ack = leg.dialog.ack(leg.invite.cseq.number, c._via(dest), body=resp.body, headers=[_SDP])
        out.append(SendRequest(leg.ack, dest, None))
        media = self.media_leg
        if media is not None and media.dialog is not None and media.state is not LegState.ENDED:
            mdest = dest_of_dialog(media)
            bye = media.dialog.new_request("BYE", c._via(mdest))
            out.append(SendRequest(bye, mdest, (c.ref, media.ref + ":bye")))
            media.state = LegState.ENDED
        c.winner = leg
        c.outcome = "answered"
        c.cause = ""  # not the forwarding cause: the hang-up says who ended it
        if self.user not in c.busy_users:
            c.busy_users.add(self.user)
            c.svc.mark_busy(self.user, +1)
        self.state = HandoverState.DONE
        return [*out, self._log("queue.handed_over", leg=leg.ref, waited=round(now - c.started, 3))]

    # ------------------------------------------------------------------ giving up

    def on_timeout(self, now: float) -> list[B2buaAction]:
        if self.state is not HandoverState.RINGING:
            return []
        out: list[B2buaAction] = []
        for leg in self.legs.values():
            out += self.call._cancel_leg(leg, None)
        return out + self._fail("no answer", now)

    def on_call_ended(self, now: float) -> list[B2buaAction]:
        """The caller (or the media server) hung up during the hand-over."""
        if self.finished:
            return []
        out: list[B2buaAction] = [CancelTimer(self.call.ref, "handover")]
        for leg in self.legs.values():
            if leg is self.chosen and leg.dialog is not None:
                out += self._release(leg, self.call.a_invite.body)
            else:
                out += self.call._cancel_leg(leg, None)
        self.state = HandoverState.FAILED
        return [*out, self._log("queue.handover_failed", why="caller gone")]

    def _release(self, leg: Leg, body: bytes) -> list[B2buaAction]:
        """ACK a 2xx to our offerless INVITE (with an answer, as RFC 3261 13.2.2.4 wants), then BYE."""
        assert leg.dialog is not None
        leg.state = LegState.ENDED
        dest = dest_of_dialog(leg)
        leg.ack = leg.dialog.ack(leg.invite.cseq.number, self.call._via(dest), body=body, headers=[_SDP])
        bye = leg.dialog.new_request("BYE", self.call._via(dest))
        return [SendRequest(leg.ack, dest, None), SendRequest(bye, dest, (self.call.ref, leg.ref + ":bye"))]

    def _fail(self, why: str, now: float) -> list[B2buaAction]:
        self.state = HandoverState.FAILED
        return [CancelTimer(self.call.ref, "handover"), self._log("queue.handover_failed", why=why)]
