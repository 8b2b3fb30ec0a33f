"""What the call core returns: frozen, slotted actions (STYLE items 4 and 26).

The core never sends, sleeps or logs. The glue (``sipcore/aio/server.py``) executes the actions
in order:

- ``SendRequest``: start a client transaction for ``request`` to ``dest``; every response it
  produces (including a synthesized 408/503) goes back to ``CallManager.on_response(resp,
  owner, now)``. ``owner`` is ``None`` for an ACK to a 2xx, which is sent outside any
  transaction (RFC 3261 13.2.2.4) straight to the transport.
- ``SendResponse``: answer ``request`` through its server transaction (or statelessly when it
  has none, e.g. a 2xx retransmission after the transaction is gone).
- ``SetTimer``/``CancelTimer``: arm or drop timer ``name`` of call ``key``; when it fires, call
  ``CallManager.on_timer(key, name, now)``.
- ``Log``: one structured event (``call.received``, ``route.decided``, ...).
- ``WriteCdr``: hand the record to the store, off the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sipcore.message import Request, Response
from sipcore.transaction.events import Destination

__all__ = [
    "B2buaAction",
    "CancelTimer",
    "CdrRecord",
    "Log",
    "Owner",
    "SendRequest",
    "SendResponse",
    "SetTimer",
    "WriteCdr",
]

# (call ref, transaction ref within the call): hashable, so the glue can key a dict on it.
Owner = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SendRequest:
    request: Request
    dest: Destination
    owner: Owner | None


@dataclass(frozen=True, slots=True)
class SendResponse:
    response: Response
    request: Request


@dataclass(frozen=True, slots=True)
class SetTimer:
    key: str
    name: str
    at: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    key: str
    name: str


@dataclass(frozen=True, slots=True)
class Log:
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrRecord:
    """The shape of ``policy.store.Cdr`` without importing the store (no database here)."""

    call_id: str
    started_at: datetime
    direction: str
    caller: str
    callee: str
    outcome: str
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    user: str | None = None
    cause: str | None = None
    decided_by: str | None = None
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class WriteCdr:
    record: CdrRecord


B2buaAction = SendRequest | SendResponse | SetTimer | CancelTimer | Log | WriteCdr
