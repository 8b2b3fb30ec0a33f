"""Joins the ``CallManager`` to the ``TransactionLayer``; still sans-IO.

The manager speaks in calls (send this request for leg b2 of call c7, answer that request); the
layer speaks in transactions. The driver translates, so the asyncio glue stays a few lines:

- a request the layer delivers (``Deliver(request)``, a dialog ACK, or
  ``Deliver(CancelReceived)``) -> ``on_request(request, source, now)``;
- a response the layer delivers (``Deliver(response, owner=tx_key)``, or ``owner=None`` when
  stray) -> ``on_response(response, tx_key, now)``;
- a timer whose owner key starts with ``TIMER_OWNER`` -> ``on_timer(owner, name, now)``;
- a ``Terminated(owner=tx_key)`` -> ``forget(tx_key)``.

Each returns the layer's own actions (``Send``, ``SetTimer``, ``CancelTimer``, ``Deliver``,
``Terminated``), to be executed exactly like the layer's, plus ``Log`` and ``WriteCdr``.
Call timers become ordinary ``SetTimer(owner=("b2bua", call_ref), name, at)`` so the one timer
service serves both.
"""

from __future__ import annotations

from sipcore.errors import LocalProtocolError
from sipcore.message import Request, Response
from sipcore.transaction.events import Action, CancelTimer, Destination, Send, SetTimer, TxKey
from sipcore.transaction.keys import server_key
from sipcore.transaction.layer import TransactionLayer

from . import events as ev
from .manager import CallManager

__all__ = ["B2BUA_METHODS", "TIMER_OWNER", "B2buaDriver", "DriverOutput"]

# Methods the B2BUA handles (REGISTER and OPTIONS stay with the registrar/runtime).
B2BUA_METHODS = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "UPDATE", "INFO", "NOTIFY", "SUBSCRIBE", "PRACK", "REFER", "MESSAGE"}
)
TIMER_OWNER = "b2bua"

DriverOutput = Action | ev.Log | ev.WriteCdr


class B2buaDriver:
    __slots__ = ("_owners", "layer", "manager")

    def __init__(self, manager: CallManager, layer: TransactionLayer) -> None:
        self.manager = manager
        self.layer = layer
        self._owners: dict[TxKey, ev.Owner] = {}  # our client transactions -> (call, leg)

    def on_request(self, request: Request, source: Destination, now: float) -> list[DriverOutput]:
        return self._execute(self.manager.on_request(request, source, now), now)

    def on_response(self, response: Response, tx_key: TxKey | None, now: float) -> list[DriverOutput]:
        owner = None if tx_key is None else self._owners.get(tx_key)
        return self._execute(self.manager.on_response(response, owner, now), now)

    def on_timer(self, owner: TxKey, name: str, now: float) -> list[DriverOutput]:
        return self._execute(self.manager.on_timer(str(owner[1]), name, now), now)

    def forget(self, tx_key: TxKey) -> None:
        self._owners.pop(tx_key, None)

    def __len__(self) -> int:
        return len(self._owners)

    def _execute(self, actions: list[ev.B2buaAction], now: float) -> list[DriverOutput]:
        out: list[DriverOutput] = []
        for a in actions:
            if type(a) is ev.SendRequest:
                if a.owner is None:
                    out.append(Send(a.request, a.dest))  # ACK for a 2xx: no transaction (13.2.2.4)
                    continue
                tx, tx_actions = self.layer.send_request(a.request, a.dest, now)
                self._owners[tx.key] = a.owner
                out.extend(tx_actions)
            elif type(a) is ev.SendResponse:
                try:
                    out.extend(self.layer.respond(server_key(a.request), a.response, now))
                except LocalProtocolError as exc:
                    # The transaction is gone (or refuses): nothing sensible to send.
                    out.append(
                        ev.Log("b2bua.response_dropped", {"status": a.response.status, "why": str(exc)})
                    )
            elif type(a) is ev.SetTimer:
                out.append(SetTimer((TIMER_OWNER, a.key), a.name, a.at))
            elif type(a) is ev.CancelTimer:
                out.append(CancelTimer((TIMER_OWNER, a.key), a.name))
            else:
                out.append(a)  # type: ignore[arg-type]
        return out
