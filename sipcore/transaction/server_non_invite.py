"""The non-INVITE server transaction: RFC 3261 17.2.2 (figure 8).

::

    TRYING --1xx from TU--> PROCEEDING --200-699 from TU--> COMPLETED --Timer J--> TERMINATED
       +-- 200-699 from TU --> COMPLETED
       +-- transport error --> TERMINATED (TransportFailed delivered)

Request retransmissions are absorbed while TRYING (nothing to resend yet) and answered with the
last response while PROCEEDING or COMPLETED. Timer J is 64*T1 on UDP, 0 on TCP. Responses go to
``dest``, the source the request came from.
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
    RecvRequest,
    Send,
    TransportError,
    TransportFailed,
    TxInput,
    TxKey,
    UserRespond,
)
from .keys import server_key
from .timers import DEFAULT_TIMERS, TimerConfig

__all__ = ["ServerNonInviteState", "ServerNonInviteTransaction"]


class ServerNonInviteState(enum.Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class ServerNonInviteTransaction(Transaction[ServerNonInviteState]):
    """Serves one received non-INVITE request; ``start(now)`` passes it up to the TU."""

    __slots__ = ("_started", "last_response", "request")

    _terminated = ServerNonInviteState.TERMINATED

    def __init__(
        self,
        request: Request,
        source: Destination,
        config: TimerConfig = DEFAULT_TIMERS,
        key: TxKey | None = None,
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise LocalProtocolError(f"ServerNonInviteTransaction cannot serve {request.method}")
        super().__init__(key if key is not None else server_key(request), source, config)
        self.state = ServerNonInviteState.TRYING
        self.request = request
        self.last_response: Response | None = None
        self._started = False

    def start(self, now: float) -> list[Action]:
        """Pass the request up to the TU."""
        if self._started:
            raise LocalProtocolError("transaction already started")
        self._started = True
        return [Deliver(self.request, self.key)]


Tx = ServerNonInviteTransaction


def _resend_last(tx: Tx, ev: RecvRequest, now: float) -> list[Action]:
    return [Send(tx.last_response, tx.dest)] if tx.last_response is not None else []


def _provisional(tx: Tx, ev: UserRespond, now: float) -> list[Action]:
    tx.last_response = ev.response
    return [Send(ev.response, tx.dest)]


def _complete(tx: Tx, ev: UserRespond, now: float) -> list[Action]:
    tx.last_response = ev.response
    return [Send(ev.response, tx.dest), tx._set_timer("J", now + tx.config.timer_j_for(tx.reliable))]


def _transport_failed(tx: Tx, ev: TransportError, now: float) -> list[Action]:
    return [Deliver(TransportFailed(ev.reason), tx.key)]


S = ServerNonInviteState
I = TxInput  # noqa: E741

_TRANSITIONS: dict[tuple[ServerNonInviteState, TxInput], tuple[ActionFn | None, ServerNonInviteState]] = {
    (S.TRYING, I.RECV_REQUEST): (None, S.TRYING),
    (S.TRYING, I.USER_1XX): (_provisional, S.PROCEEDING),
    (S.TRYING, I.USER_2XX): (_complete, S.COMPLETED),
    (S.TRYING, I.USER_3XX_PLUS): (_complete, S.COMPLETED),
    (S.TRYING, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    (S.PROCEEDING, I.RECV_REQUEST): (_resend_last, S.PROCEEDING),
    (S.PROCEEDING, I.USER_1XX): (_provisional, S.PROCEEDING),
    (S.PROCEEDING, I.USER_2XX): (_complete, S.COMPLETED),
    (S.PROCEEDING, I.USER_3XX_PLUS): (_complete, S.COMPLETED),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
    (S.COMPLETED, I.RECV_REQUEST): (_resend_last, S.COMPLETED),
    (S.COMPLETED, I.TIMER_J): (None, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (_transport_failed, S.TERMINATED),
}
del S, I

ServerNonInviteTransaction._table = _TRANSITIONS
