"""The INVITE client transaction: RFC 3261 17.1.1 (figure 5) with the RFC 6026 Accepted state.

::

    CALLING --1xx--> PROCEEDING --2xx--> ACCEPTED --Timer M--> TERMINATED
       |  \\___________ 300-699: send ACK ______/ \\--> COMPLETED --Timer D--> TERMINATED
       +-- Timer B / transport error --> TERMINATED (408 / 503 delivered)

Timer A retransmits the INVITE while CALLING, doubling each time (UDP only). The ACK for a
non-2xx final response belongs to this transaction (17.1.1.3) and is re-sent for every
retransmitted final response; the ACK for a 2xx is the TU's (a new transaction-less request),
so every 2xx, including retransmissions and forked 2xx while ACCEPTED, is passed up.
"""

from __future__ import annotations

import enum

from sipcore.errors import LocalProtocolError
from sipcore.message import CSeq, Request, Response

from ._machine import ActionFn, Transaction
from .events import (
    Action,
    Deliver,
    Destination,
    RecvResponse,
    Send,
    TimerFired,
    TransportError,
    TxInput,
    TxKey,
    synth_response,
)
from .keys import client_key
from .timers import DEFAULT_TIMERS, TimerConfig

__all__ = ["ClientInviteState", "ClientInviteTransaction", "make_ack", "make_cancel"]


class ClientInviteState(enum.Enum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number as the INVITE (method ACK), the To of the
    response (it carries the UAS's tag), only the INVITE's top Via, and its Route headers.
    """
    return Request(
        method="ACK",
        uri=invite.uri.copy(),
        via=[invite.via[0].copy()] if invite.via else [],
        from_=invite.from_.copy(),
        to=response.to.copy(),
        call_id=invite.call_id,
        cseq=CSeq(invite.cseq.number, "ACK"),
        max_forwards=invite.max_forwards,
        route=[r.copy() for r in invite.route],
    )


def make_cancel(invite: Request) -> Request:
    """A CANCEL for ``invite`` (RFC 3261 9.1); send it as its own non-INVITE client transaction.

    Same Request-URI, Call-ID, To, From and CSeq number (method CANCEL), a single Via equal to
    the INVITE's top Via (so it reaches the same server transaction and shares its branch),
    and the INVITE's Route headers. The TU should only send it after a provisional response.
    """
    return Request(
        method="CANCEL",
        uri=invite.uri.copy(),
        via=[invite.via[0].copy()] if invite.via else [],
        from_=invite.from_.copy(),
        to=invite.to.copy(),
        call_id=invite.call_id,
        cseq=CSeq(invite.cseq.number, "CANCEL"),
        max_forwards=invite.max_forwards,
        route=[r.copy() for r in invite.route],
    )


class ClientInviteTransaction(Transaction[ClientInviteState]):
    """Sends one INVITE to ``dest``; call ``start(now)`` once, then ``handle(input, now)``."""

    __slots__ = ("_ack", "_interval", "_started", "request")

    _terminated = ClientInviteState.TERMINATED

    def __init__(
        self,
        request: Request,
        dest: Destination,
        config: TimerConfig = DEFAULT_TIMERS,
        key: TxKey | None = None,
    ) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"ClientInviteTransaction needs an INVITE, got {request.method}")
        super().__init__(key if key is not None else client_key(request), dest, config)
        self.state = ClientInviteState.CALLING
        self.request = request
        self._ack: Request | None = None
        self._interval = config.timer_a
        self._started = False

    def start(self, now: float) -> list[Action]:
        """Send the INVITE and arm Timers A (UDP) and B."""
        if self._started:
            raise LocalProtocolError("transaction already started")
        self._started = True
        actions: list[Action] = [Send(self.request, self.dest)]
        if not self.reliable:
            actions.append(self._set_timer("A", now + self._interval))
        actions.append(self._set_timer("B", now + self.config.timer_b))
        return actions

    @property
    def ack(self) -> Request | None:
        """The ACK this transaction sent for a non-2xx final response, if any."""
        return self._ack


# ------------------------------------------------------------------------------- action functions
# Each gets (transaction, input, now) after the state has changed and returns the actions.

Tx = ClientInviteTransaction


def _retransmit(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    tx._interval *= 2  # Timer A doubles without a cap; Timer B bounds it
    return [Send(tx.request, tx.dest), tx._set_timer("A", now + tx._interval)]


def _timeout(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    return [Deliver(synth_response(tx.request, 408, "Request Timeout"), tx.key)]


def _transport_failed(tx: Tx, ev: TransportError, now: float) -> list[Action]:
    return [Deliver(synth_response(tx.request, 503, "Service Unavailable"), tx.key)]


def _deliver(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    return [Deliver(ev.msg, tx.key)]


def _first_1xx(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    return [*tx._cancel_timers("A", "B"), Deliver(ev.msg, tx.key)]


def _accept(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    return [
        *tx._cancel_timers("A", "B"),
        Deliver(ev.msg, tx.key),
        tx._set_timer("M", now + tx.config.timer_m),
    ]


def _complete(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    tx._ack = make_ack(tx.request, ev.msg)
    return [
        *tx._cancel_timers("A", "B"),
        Send(tx._ack, tx.dest),
        Deliver(ev.msg, tx.key),
        tx._set_timer("D", now + tx.config.timer_d_for(tx.reliable)),
    ]


def _reack(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    assert tx._ack is not None  # COMPLETED is only entered through _complete
    return [Send(tx._ack, tx.dest)]


S = ClientInviteState
I = TxInput  # noqa: E741

_TRANSITIONS: dict[tuple[ClientInviteState, TxInput], tuple[ActionFn | None, ClientInviteState]] = {
    (S.CALLING, I.TIMER_A): (_retransmit, S.CALLING),
    (S.CALLING, I.TIMER_B): (_timeout, S.TERMINATED),
    (S.CALLING, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    (S.CALLING, I.RECV_1XX): (_first_1xx, S.PROCEEDING),
    (S.CALLING, I.RECV_2XX): (_accept, S.ACCEPTED),
    (S.CALLING, I.RECV_3XX_PLUS): (_complete, S.COMPLETED),
    (S.PROCEEDING, I.RECV_1XX): (_deliver, S.PROCEEDING),
    (S.PROCEEDING, I.RECV_2XX): (_accept, S.ACCEPTED),
    (S.PROCEEDING, I.RECV_3XX_PLUS): (_complete, S.COMPLETED),
    # Completed: retransmitted finals are re-ACKed and not passed up; anything else absorbed.
    (S.COMPLETED, I.RECV_3XX_PLUS): (_reack, S.COMPLETED),
    (S.COMPLETED, I.RECV_1XX): (None, S.COMPLETED),
    (S.COMPLETED, I.RECV_2XX): (None, S.COMPLETED),
    (S.COMPLETED, I.TIMER_D): (None, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (None, S.TERMINATED),
    # Accepted (RFC 6026 7.2): every 2xx goes up for the TU to ACK; 1xx and non-2xx dropped.
    (S.ACCEPTED, I.RECV_2XX): (_deliver, S.ACCEPTED),
    (S.ACCEPTED, I.RECV_1XX): (None, S.ACCEPTED),
    (S.ACCEPTED, I.RECV_3XX_PLUS): (None, S.ACCEPTED),
    (S.ACCEPTED, I.TIMER_M): (None, S.TERMINATED),
}
del S, I

ClientInviteTransaction._table = _TRANSITIONS
