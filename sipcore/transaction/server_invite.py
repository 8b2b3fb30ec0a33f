"""The INVITE server transaction: RFC 3261 17.2.1 (figure 7) with the RFC 6026 Accepted state.

::

    PROCEEDING --1xx from TU--> PROCEEDING
       +-- 2xx from TU --> ACCEPTED --Timer L--> TERMINATED
       +-- 300-699 from TU --> COMPLETED --ACK--> CONFIRMED --Timer I--> TERMINATED
                                  +-- Timer H (no ACK; NoAck delivered) --> TERMINATED

100 Trying: ``start`` arms a "Trying" timer 200 ms out (``TRYING_DELAY``); if the TU has not
sent any response by then the transaction sends 100 Trying itself (17.2.1 MUST). A TU that
answers at once (a B2BUA usually sends its own 100 straight away) simply cancels it. Pass
``auto_trying=False`` to leave 100 entirely to the TU.

A retransmitted INVITE re-sends the last response (provisional or final) while PROCEEDING or
COMPLETED and is absorbed while CONFIRMED or ACCEPTED. Timer G retransmits a non-2xx final (UDP
only, T1 doubling to T2). Per RFC 6026 the 2xx is retransmitted by the TU, which sends each
retransmission through ``UserRespond`` while ACCEPTED; ACKs arriving then are passed up.
Responses go to ``dest``, the source the request came from (RFC 3581 symmetric response;
on TCP the same connection).
"""

from __future__ import annotations

import enum

from sipcore.errors import LocalProtocolError
from sipcore.message import Request, Response

from ._machine import ActionFn, Transaction
from .events import (
    Action,
    Deliver,
    Destination,
    NoAck,
    RecvRequest,
    Send,
    TimerFired,
    TransportError,
    TransportFailed,
    TxInput,
    TxKey,
    UserRespond,
    synth_response,
)
from .keys import server_key
from .timers import DEFAULT_TIMERS, TRYING_DELAY, TimerConfig

__all__ = ["ServerInviteState", "ServerInviteTransaction"]


class ServerInviteState(enum.Enum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class ServerInviteTransaction(Transaction[ServerInviteState]):
    """Serves one received INVITE; call ``start(now)`` once, then ``handle(input, now)``."""

    __slots__ = ("_interval", "_started", "auto_trying", "last_response", "request")

    _terminated = ServerInviteState.TERMINATED

    def __init__(
        self,
        request: Request,
        source: Destination,
        config: TimerConfig = DEFAULT_TIMERS,
        key: TxKey | None = None,
        *,
        auto_trying: bool = True,
    ) -> None:
        if request.method != "INVITE":
            raise LocalProtocolError(f"ServerInviteTransaction needs an INVITE, got {request.method}")
        super().__init__(key if key is not None else server_key(request), source, config)
        self.state = ServerInviteState.PROCEEDING
        self.request = request
        self.auto_trying = auto_trying
        self.last_response: Response | None = None
        self._interval = config.timer_g
        self._started = False

    def start(self, now: float) -> list[Action]:
        """Pass the INVITE up to the TU and arm the 100 Trying timer."""
        if self._started:
            raise LocalProtocolError("transaction already started")
        self._started = True
        actions: list[Action] = [Deliver(self.request, self.key)]
        if self.auto_trying:
            actions.append(self._set_timer("Trying", now + TRYING_DELAY))
        return actions


Tx = ServerInviteTransaction


def _send(tx: Tx, response: Response) -> Send:
    tx.last_response = response
    return Send(response, tx.dest)


def _resend_last(tx: Tx, ev: RecvRequest, now: float) -> list[Action]:
    return [Send(tx.last_response, tx.dest)] if tx.last_response is not None else []


def _auto_trying(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    if tx.last_response is not None:
        return []
    return [_send(tx, synth_response(tx.request, 100, "Trying"))]


def _provisional(tx: Tx, ev: UserRespond, now: float) -> list[Action]:
    return [*tx._cancel_timers("Trying"), _send(tx, ev.response)]


def _accept(tx: Tx, ev: UserRespond, now: float) -> list[Action]:
    return [
        *tx._cancel_timers("Trying"),
        _send(tx, ev.response),
        tx._set_timer("L", now + tx.config.timer_l),
    ]


def _resend_2xx(tx: Tx, ev: UserRespond, now: float) -> list[Action]:
    return [_send(tx, ev.response)]


def _complete(tx: Tx, ev: UserRespond, now: float) -> list[Action]:
    actions: list[Action] = [*tx._cancel_timers("Trying"), _send(tx, ev.response)]
    if not tx.reliable:
        actions.append(tx._set_timer("G", now + tx._interval))
    actions.append(tx._set_timer("H", now + tx.config.timer_h))
    return actions


def _retransmit_final(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    tx._interval = tx.config.next_interval(tx._interval)
    return [*_resend_last(tx, RecvRequest(tx.request), now), tx._set_timer("G", now + tx._interval)]


def _no_ack(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    return [Deliver(NoAck(tx.request), tx.key)]


def _confirm(tx: Tx, ev: RecvRequest, now: float) -> list[Action]:
    return [*tx._cancel_timers("G", "H"), tx._set_timer("I", now + tx.config.timer_i_for(tx.reliable))]


def _ack_up(tx: Tx, ev: RecvRequest, now: float) -> list[Action]:
    return [Deliver(ev.msg, tx.key)]


def _transport_failed(tx: Tx, ev: TransportError, now: float) -> list[Action]:
    return [Deliver(TransportFailed(ev.reason), tx.key)]


S = ServerInviteState
I = TxInput  # noqa: E741

_TRANSITIONS: dict[tuple[ServerInviteState, TxInput], tuple[ActionFn | None, ServerInviteState]] = {
    (S.PROCEEDING, I.RECV_REQUEST): (_resend_last, S.PROCEEDING),
    (S.PROCEEDING, I.TIMER_TRYING): (_auto_trying, S.PROCEEDING),
    (S.PROCEEDING, I.USER_1XX): (_provisional, S.PROCEEDING),
    (S.PROCEEDING, I.USER_2XX): (_accept, S.ACCEPTED),
    (S.PROCEEDING, I.USER_3XX_PLUS): (_complete, S.COMPLETED),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    (S.COMPLETED, I.RECV_REQUEST): (_resend_last, S.COMPLETED),
    (S.COMPLETED, I.RECV_ACK): (_confirm, S.CONFIRMED),
    (S.COMPLETED, I.TIMER_G): (_retransmit_final, S.COMPLETED),
    (S.COMPLETED, I.TIMER_H): (_no_ack, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    # Confirmed: ACK retransmissions are absorbed until Timer I.
    (S.CONFIRMED, I.RECV_ACK): (None, S.CONFIRMED),
    (S.CONFIRMED, I.RECV_REQUEST): (None, S.CONFIRMED),
    (S.CONFIRMED, I.TIMER_I): (None, S.TERMINATED),
    # Accepted (RFC 6026 7.1): absorb INVITEs, pass ACKs up, send the TU's 2xx retransmissions.
    (S.ACCEPTED, I.RECV_REQUEST): (None, S.ACCEPTED),
    (S.ACCEPTED, I.RECV_ACK): (_ack_up, S.ACCEPTED),
    (S.ACCEPTED, I.USER_2XX): (_resend_2xx, S.ACCEPTED),
    (S.ACCEPTED, I.TRANSPORT_ERROR): (_transport_failed, S.ACCEPTED),
    (S.ACCEPTED, I.TIMER_L): (None, S.TERMINATED),
}
del S, I

ServerInviteTransaction._table = _TRANSITIONS
