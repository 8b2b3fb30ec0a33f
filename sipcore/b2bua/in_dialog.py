"""In-dialog requests of an established call, relayed between the A and B dialogs.

BYE from either side is answered at once and turned into a BYE toward the other side; ACK,
re-INVITE, UPDATE, INFO, NOTIFY, ... cross to the other dialog with its own CSeq, and the answer
comes back to the original request. The ACK of a relayed re-INVITE's 2xx follows the same path.
A mixin of ``Call``: it shares the call's state and helpers (declared below for the type checker).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sipcore.builders import make_response
from sipcore.message import Request, Response, Via
from sipcore.transaction.events import Destination

from .events import B2buaAction, SendRequest, SendResponse
from .events import CancelTimer as CancelTimerAction
from .header_policy import copy_headers
from .leg import CallState, Leg, LegState, dest_of, dest_of_dialog

if TYPE_CHECKING:
    from sipcore.dialog import Dialog
    from sipcore.message import NameAddr

__all__ = ["InDialog", "Relay"]

# Headers an in-dialog relay needs beyond the cross-leg allowlist (RFC 6665, RFC 6086).
_EVENT_HEADERS = ("event", "subscription-state", "info-package")


@dataclass(slots=True)
class Relay:
    """An in-dialog request relayed from one side to the other, awaiting its response."""

    origin: str  # "a" or "b"
    request: Request


class InDialog:
    # The call's state and helpers this mixin uses; ``Call`` sets and defines them. Declared
    # plainly (not under TYPE_CHECKING) so that mypyc can compile the class.
    ref: str
    state: CallState
    winner: Leg | None
    a_dialog: Dialog
    a_invite: Request
    a_source: Destination
    local_contact: NameAddr
    cause: str
    _a_acked: bool
    _a_2xx: Response | None
    _pending_ack: dict[str, int]
    _relays: dict[str, Relay]

    def _via(self, dest: Destination) -> Via:
        raise NotImplementedError

    def _next(self, prefix: str) -> str:
        raise NotImplementedError

    def _end(self, now: float) -> list[B2buaAction]:
        raise NotImplementedError

    def on_a_request(self, req: Request, now: float) -> list[B2buaAction]:
        """An in-dialog request from the caller's side."""
        if req.method == "ACK":
            return self._on_ack("a", req)
        if self.state is CallState.ENDED:
            return self._after_end(req)
        err = self.a_dialog.receive_request(req)
        if err is not None:
            return [SendResponse(make_response(req, err), req)]
        if req.method == "BYE":
            return [SendResponse(make_response(req, 200), req), *self._hangup("a", now)]
        return self._relay("a", req)

    def on_b_request(self, leg: Leg, req: Request, now: float) -> list[B2buaAction]:
        if leg is not self.winner or leg.dialog is None:
            return (
                [SendResponse(make_response(req, 200 if req.method == "BYE" else 481), req)]
                if req.method != "ACK"
                else []
            )
        if req.method == "ACK":
            return self._on_ack("b", req)
        if self.state is CallState.ENDED:
            return self._after_end(req)
        err = leg.dialog.receive_request(req)
        if err is not None:
            return [SendResponse(make_response(req, err), req)]
        if req.method == "BYE":
            return [SendResponse(make_response(req, 200), req), *self._hangup("b", now)]
        return self._relay("b", req)

    @staticmethod
    def _after_end(req: Request) -> list[B2buaAction]:
        # The call ended while this was on its way (a BYE crossing ours): answer it, relay
        # nothing; the other side has its BYE already.
        return [SendResponse(make_response(req, 200 if req.method == "BYE" else 481), req)]

    def _on_ack(self, side: str, ack: Request) -> list[B2buaAction]:
        if side == "a" and not self._a_acked and ack.cseq.number == self.a_invite.cseq.number:
            self._a_acked = True
            self._a_2xx = None  # acknowledged: no more retransmissions of it
            leg = self.winner
            if leg is None or leg.dialog is None:
                return [CancelTimerAction(self.ref, "2xx")]
            dest = dest_of_dialog(leg)
            leg.ack = leg.dialog.ack(
                leg.invite.cseq.number,
                self._via(dest),
                body=ack.body,
                headers=copy_headers(ack, trusted=False),
            )
            return [CancelTimerAction(self.ref, "2xx"), SendRequest(leg.ack, dest, None)]
        cseq = self._pending_ack.pop(side, None)
        if cseq is None:
            return []
        if side == "a":
            leg = self.winner
            if leg is None or leg.dialog is None:
                return []
            dest = dest_of_dialog(leg)
            return [SendRequest(leg.dialog.ack(cseq, self._via(dest), body=ack.body), dest, None)]
        dest = dest_of(self.a_dialog.next_hop(), self.a_source)
        return [SendRequest(self.a_dialog.ack(cseq, self._via(dest), body=ack.body), dest, None)]

    def _relay(self, origin: str, req: Request) -> list[B2buaAction]:
        """Re-INVITE, UPDATE, INFO, NOTIFY, ...: the same request on the other dialog."""
        if self.state is not CallState.ANSWERED or self.winner is None or self.winner.dialog is None:
            return [SendResponse(make_response(req, 481 if self.state is CallState.ENDED else 491), req)]
        hdrs = copy_headers(req, trusted=False) + [
            (n, v) for n, v in req.headers if n.lower() in _EVENT_HEADERS
        ]
        if origin == "a":
            dialog = self.winner.dialog
            dest = dest_of_dialog(self.winner)
        else:
            dialog = self.a_dialog
            dest = dest_of(self.a_dialog.next_hop(), self.a_source)
        out_req = dialog.new_request(req.method, self._via(dest), body=req.body, headers=hdrs)
        ref = self._next("r")
        self._relays[ref] = Relay(origin, req)
        return [SendRequest(out_req, dest, (self.ref, ref))]

    def on_relay_response(self, ref: str, resp: Response, now: float) -> list[B2buaAction]:
        relay = self._relays.get(ref)
        if relay is None or resp.status == 100:
            return []
        if resp.status >= 200:
            del self._relays[ref]
        origin_req = relay.request
        r = make_response(origin_req, resp.status, resp.reason, headers=copy_headers(resp, trusted=False))
        r.body = resp.body
        if resp.status < 300 and origin_req.method in ("INVITE", "UPDATE"):
            r.contact = [self.local_contact.copy()]
        if 200 <= resp.status < 300 and origin_req.method == "INVITE":
            # The origin side will ACK our 2xx; its ACK becomes ours to the other side.
            self._pending_ack[relay.origin] = resp.cseq.number
            # And the other side's dialog must learn its refreshed target.
            other = self.winner.dialog if relay.origin == "a" and self.winner else self.a_dialog
            if other is not None:
                other.on_response(resp)
        return [SendResponse(r, origin_req)]

    def _hangup(self, from_side: str | None, now: float) -> list[B2buaAction]:
        """Tear down the established call: BYE toward the side(s) that did not hang up."""
        out: list[B2buaAction] = []
        leg = self.winner
        if from_side != "b" and leg is not None and leg.dialog is not None:
            dest = dest_of_dialog(leg)
            out.append(
                SendRequest(
                    leg.dialog.new_request("BYE", self._via(dest)), dest, (self.ref, leg.ref + ":bye")
                )
            )
            leg.state = LegState.ENDED
        if from_side != "a":
            dest = dest_of(self.a_dialog.next_hop(), self.a_source)
            out.append(
                SendRequest(self.a_dialog.new_request("BYE", self._via(dest)), dest, (self.ref, "a:bye"))
            )
        if not self.cause:
            self.cause = {"a": "caller hung up", "b": "callee hung up"}.get(from_side or "", "ended")
        return out + self._end(now)
