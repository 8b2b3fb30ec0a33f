"""RFC 3261 section 17 transactions (with RFC 6026) as sans-IO state machines.

Each transaction exposes ``start(now)`` and ``handle(input, now) -> list[Action]``;
``TransactionLayer`` keeps the live ones and routes messages and timers to them.
"""

from .client_invite import ClientInviteState, ClientInviteTransaction, make_ack, make_cancel
from .client_non_invite import ClientNonInviteState, ClientNonInviteTransaction
from .events import (
    Action,
    CancelReceived,
    CancelTimer,
    Deliver,
    Destination,
    Input,
    NoAck,
    RecvRequest,
    RecvResponse,
    Send,
    SetTimer,
    Terminated,
    TimerFired,
    TransportError,
    TransportFailed,
    TxInput,
    TxKey,
    UpEvent,
    UserRespond,
)
from .keys import cancel_target_key, client_key, server_key
from .layer import AnyTransaction, ClientTransaction, ServerTransaction, TransactionLayer
from .server_invite import ServerInviteState, ServerInviteTransaction
from .server_non_invite import ServerNonInviteState, ServerNonInviteTransaction
from .timers import DEFAULT_TIMERS, TRYING_DELAY, TimerConfig

__all__ = [
    "DEFAULT_TIMERS",
    "TRYING_DELAY",
    "Action",
    "AnyTransaction",
    "CancelReceived",
    "CancelTimer",
    "ClientInviteState",
    "ClientInviteTransaction",
    "ClientNonInviteState",
    "ClientNonInviteTransaction",
    "ClientTransaction",
    "Deliver",
    "Destination",
    "Input",
    "NoAck",
    "RecvRequest",
    "RecvResponse",
    "Send",
    "ServerInviteState",
    "ServerInviteTransaction",
    "ServerNonInviteState",
    "ServerNonInviteTransaction",
    "ServerTransaction",
    "SetTimer",
    "Terminated",
    "TimerConfig",
    "TimerFired",
    "TransactionLayer",
    "TransportError",
    "TransportFailed",
    "TxInput",
    "TxKey",
    "UpEvent",
    "UserRespond",
    "cancel_target_key",
    "client_key",
    "make_ack",
    "make_cancel",
    "server_key",
]
