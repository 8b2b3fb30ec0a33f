"""The non-INVITE client transaction: RFC 3261 17.1.2 (figure 6).

::

    TRYING --1xx--> PROCEEDING --200-699--> COMPLETED --Timer K--> TERMINATED
       +-- 200-699 --> COMPLETED
       +-- Timer F / transport error --> TERMINATED (408 / 503 delivered)

Timer E retransmits the request (UDP only): from T1 doubling up to T2 while TRYING, and every
T2 once PROCEEDING (17.1.2.2). Timer K absorbs response retransmissions (T4; 0 on TCP).
Also used for CANCEL (build it with ``make_cancel``).
"""

from __future__ import annotations

import enum

from sipcore.errors import LocalProtocolError
from sipcore.message import Request

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

__all__ = ["ClientNonInviteState", "ClientNonInviteTransaction"]


class ClientNonInviteState(enum.Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ClientNonInviteTransaction(Transaction[ClientNonInviteState]):
    """Sends one non-INVITE request to ``dest``; call ``start(now)`` once, then ``handle``."""

    __slots__ = ("_interval", "_started", "request")

    _terminated = ClientNonInviteState.TERMINATED

    def __init__(
        self,
        request: Request,
        dest: Destination,
        config: TimerConfig = DEFAULT_TIMERS,
        key: TxKey | None = None,
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"ClientNonInviteTransaction cannot send {request.method}")
        super().__init__(key if key is not None else client_key(request), dest, config)
        self.state = ClientNonInviteState.TRYING
        self.request = request
        self._interval = config.timer_e
        self._started = False

    def start(self, now: float) -> list[Action]:
        """Send the request and arm Timers E (UDP) and F."""
        if self._started:
            raise LocalProtocolError("transaction already started")
        self._started = True
        actions: list[Action] = [Send(self.request, self.dest)]
        if not self.reliable:
            actions.append(self._set_timer("E", now + self._interval))
        actions.append(self._set_timer("F", now + self.config.timer_f))
        return actions


Tx = ClientNonInviteTransaction


def _retransmit_trying(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    tx._interval = tx.config.next_interval(tx._interval)
    return [Send(tx.request, tx.dest), tx._set_timer("E", now + tx._interval)]


def _retransmit_proceeding(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    return [Send(tx.request, tx.dest), tx._set_timer("E", now + tx.config.t2)]


def _timeout(tx: Tx, ev: TimerFired, now: float) -> list[Action]:
    return [Deliver(synth_response(tx.request, 408, "Request Timeout"), tx.key)]


def _transport_failed(tx: Tx, ev: TransportError, now: float) -> list[Action]:
    return [Deliver(synth_response(tx.request, 503, "Service Unavailable"), tx.key)]


def _deliver(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    return [Deliver(ev.msg, tx.key)]


def _complete(tx: Tx, ev: RecvResponse, now: float) -> list[Action]:
    return [
        *tx._cancel_timers("E", "F"),
        Deliver(ev.msg, tx.key),
        tx._set_timer("K", now + tx.config.timer_k_for(tx.reliable)),
    ]


S = ClientNonInviteState
I = TxInput  # noqa: E741

_TRANSITIONS: dict[tuple[ClientNonInviteState, TxInput], tuple[ActionFn | None, ClientNonInviteState]] = {
    (S.TRYING, I.TIMER_E): (_retransmit_trying, S.TRYING),
    (S.TRYING, I.TIMER_F): (_timeout, S.TERMINATED),
    (S.TRYING, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    (S.TRYING, I.RECV_1XX): (_deliver, S.PROCEEDING),
    (S.TRYING, I.RECV_2XX): (_complete, S.COMPLETED),
    (S.TRYING, I.RECV_3XX_PLUS): (_complete, S.COMPLETED),
    (S.PROCEEDING, I.TIMER_E): (_retransmit_proceeding, S.PROCEEDING),
    (S.PROCEEDING, I.TIMER_F): (_timeout, S.TERMINATED),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    (S.PROCEEDING, I.RECV_1XX): (_deliver, S.PROCEEDING),
    (S.PROCEEDING, I.RECV_2XX): (_complete, S.COMPLETED),
    (S.PROCEEDING, I.RECV_3XX_PLUS): (_complete, S.COMPLETED),
    # Completed: response retransmissions are absorbed until Timer K.
    (S.COMPLETED, I.RECV_1XX): (None, S.COMPLETED),
    (S.COMPLETED, I.RECV_2XX): (None, S.COMPLETED),
    (S.COMPLETED, I.RECV_3XX_PLUS): (None, S.COMPLETED),
    (S.COMPLETED, I.TIMER_K): (None, S.TERMINATED),
}
del S, I

ClientNonInviteTransaction._table = _TRANSITIONS
