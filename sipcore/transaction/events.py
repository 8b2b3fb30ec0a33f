"""Inputs to and actions from the transaction state machines, plus the events they pass up.

Inputs and actions are frozen, slotted value classes (h11 ``_events.py``): tests compare them
with ``==`` and dispatch is on ``type(x)``, so don't subclass them.

The public inputs carry data (``RecvResponse(msg)``, ``TimerFired("B")``). Each machine first
*classifies* an input into a ``TxInput`` (``RECV_1XX``, ``TIMER_B``, ``USER_3XX_PLUS``, ...):
that finite alphabet, named the sipgo way, is what the transition tables are keyed on, and what
the diagrams print. Classification is one dict lookup or one integer division.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sipcore.builders import make_response
from sipcore.message import Request, Response

__all__ = [
    "Action",
    "CancelReceived",
    "CancelTimer",
    "Deliver",
    "Destination",
    "Input",
    "NoAck",
    "RecvRequest",
    "RecvResponse",
    "Send",
    "SetTimer",
    "Terminated",
    "TimerFired",
    "TransportError",
    "TransportFailed",
    "TxInput",
    "TxKey",
    "UpEvent",
    "UserRespond",
    "classify",
    "synth_response",
]

# A transaction key: a plain tuple so a lookup is one hash (see keys.py for its shapes).
TxKey = tuple[str | int | None, ...]

_RELIABLE = frozenset({"TCP", "TLS", "SCTP", "TLS-SCTP", "WS", "WSS"})


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a message goes (or came from). ``transport`` is the Via token: UDP, TCP, TLS, ..."""

    host: str
    port: int
    transport: str = "UDP"

    @property
    def reliable(self) -> bool:
        """Reliable transports skip retransmissions and zero Timers D, I, J, K (RFC 3261 17)."""
        return self.transport.upper() in _RELIABLE


# --------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class RecvRequest:
    """A request from the network matched to this server transaction (retransmission or ACK)."""

    msg: Request


@dataclass(frozen=True, slots=True)
class RecvResponse:
    """A response from the network matched to this client transaction."""

    msg: Response


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer set by ``SetTimer`` reached its deadline. ``name`` is the RFC letter or "Trying"."""

    name: str


@dataclass(frozen=True, slots=True)
class TransportError:
    """The transport could not send a message of this transaction (RFC 3261 17.1.4, 17.2.4)."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class UserRespond:
    """The TU sends a response through a server transaction."""

    response: Response


Input = RecvRequest | RecvResponse | TimerFired | TransportError | UserRespond


class TxInput(enum.Enum):
    """The classified input alphabet of the transition tables."""

    RECV_REQUEST = "recv_request"  # a retransmission of the transaction's request
    RECV_ACK = "recv_ack"
    RECV_1XX = "recv_1xx"
    RECV_2XX = "recv_2xx"
    RECV_3XX_PLUS = "recv_3xx_plus"
    USER_1XX = "user_1xx"
    USER_2XX = "user_2xx"
    USER_3XX_PLUS = "user_3xx_plus"
    TIMER_TRYING = "timer_Trying"
    TIMER_A = "timer_A"
    TIMER_B = "timer_B"
    TIMER_D = "timer_D"
    TIMER_E = "timer_E"
    TIMER_F = "timer_F"
    TIMER_G = "timer_G"
    TIMER_H = "timer_H"
    TIMER_I = "timer_I"
    TIMER_J = "timer_J"
    TIMER_K = "timer_K"
    TIMER_L = "timer_L"
    TIMER_M = "timer_M"
    TRANSPORT_ERROR = "transport_error"

    @property
    def is_local(self) -> bool:
        """True for inputs our own TU produced: a missing table entry for one of them is a bug."""
        return self.name.startswith("USER_")


_TIMERS = {m.value[6:]: m for m in TxInput if m.name.startswith("TIMER_")}
_RECV_BY_CLASS = (None, TxInput.RECV_1XX, TxInput.RECV_2XX)
_USER_BY_CLASS = (None, TxInput.USER_1XX, TxInput.USER_2XX)


def classify(event: Input) -> TxInput | None:
    """Map an input to its table symbol; ``None`` for something no table knows (ignored)."""
    if type(event) is RecvResponse:
        cls = event.msg.status // 100
        return _RECV_BY_CLASS[cls] if cls < 3 else TxInput.RECV_3XX_PLUS
    if type(event) is TimerFired:
        return _TIMERS.get(event.name)
    if type(event) is RecvRequest:
        return TxInput.RECV_ACK if event.msg.method == "ACK" else TxInput.RECV_REQUEST
    if type(event) is UserRespond:
        cls = event.response.status // 100
        return _USER_BY_CLASS[cls] if cls < 3 else TxInput.USER_3XX_PLUS
    if type(event) is TransportError:
        return TxInput.TRANSPORT_ERROR
    return None


# -------------------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    """Hand ``message`` to the transport for ``dest``."""

    message: Request | Response
    dest: Destination


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm timer ``name`` of transaction ``owner`` at absolute monotonic time ``at``.

    Setting a timer that is already armed replaces it. When it fires, feed
    ``TimerFired(name)`` to the owner (``TransactionLayer.handle_timer(owner, name, now)``).
    """

    owner: TxKey
    name: str
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    owner: TxKey
    name: str


@dataclass(frozen=True, slots=True)
class NoAck:
    """Server INVITE: Timer H fired with no ACK for our non-2xx final response."""

    request: Request


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """Server transaction: the transport failed to send a response (RFC 3261 17.2.4)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL matched this INVITE server transaction before its final response.

    The layer has already answered the CANCEL with 200; the TU should now send 487 on the
    INVITE (RFC 3261 9.2) and tear down whatever it started for it.
    """

    cancel: Request


UpEvent = Request | Response | NoAck | TransportFailed | CancelReceived


@dataclass(frozen=True, slots=True)
class Deliver:
    """Pass ``event`` up to the TU.

    ``owner`` is the transaction it belongs to (``None`` for what the layer hands up outside
    any transaction: a dialog-level ACK for a 2xx, or a stray response). A new server request
    arrives as ``Deliver(request)``; a client timeout (Timer B/F) as a synthesized 408 and a
    client transport error as a synthesized 503 (RFC 3261 8.1.3.1).
    """

    event: UpEvent
    owner: TxKey | None


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction reached Terminated; the layer forgets it. ``reason`` is for the log."""

    owner: TxKey
    reason: str


Action = Send | SetTimer | CancelTimer | Deliver | Terminated


def synth_response(request: Request, status: int, reason: str) -> Response:
    """A locally generated response to ``request`` (100 Trying, the 408/503 given to the TU).

    Copies Via, From, To, Call-ID and CSeq (RFC 3261 8.2.6.2); adds no To tag.
    """
    return make_response(request, status, reason)
