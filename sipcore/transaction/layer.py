"""``TransactionLayer``: the table of live transactions and the routing of messages to them.

Pure and synchronous: it never touches sockets or clocks. The I/O glue calls

- ``on_request(request, source, now)`` for every parsed request from the network,
- ``on_response(response, now)`` for every parsed response,
- ``send_request(request, dest, now)`` when the TU sends a request (not ACK),
- ``respond(key, response, now)`` when the TU answers a server transaction,
- ``handle_timer(key, name, now)`` when a ``SetTimer(key, name, at)`` deadline passes,
- ``transport_error(key, now)`` when sending for a transaction failed,
- ``abort(key, reason, now)`` when the TU gives up on a transaction (RFC 3261 9.1),

and performs the returned actions in order. Terminated transactions are dropped from the table
as soon as they terminate; a timer or error for a key that is gone is ignored.

Routing (RFC 3261 17.1.3, 17.2.3, 9.2; RFC 6026):

- a request whose server key is known is a retransmission (or the ACK of a non-2xx final):
  it goes to that transaction, which absorbs it or re-sends its last response;
- an ACK with no matching INVITE server transaction (the ACK of a 2xx: it has its own branch)
  is handed up as ``Deliver(ack, owner=None)``, a dialog-level ACK;
- a new CANCEL gets its own non-INVITE server transaction, answered here at once: 200 if it
  matches an INVITE server transaction (which, if still PROCEEDING, also yields
  ``Deliver(CancelReceived(cancel), invite_key)`` so the TU sends 487), 481 otherwise;
- any other new request creates a server transaction and yields ``Deliver(request, key)``;
- a response goes to the client transaction with its branch and CSeq method; with none it is
  stray and handed up as ``Deliver(response, owner=None)`` (typically a 2xx retransmission
  after the INVITE client transaction ended, which the TU must re-ACK; others it may drop).
"""

from __future__ import annotations

from sipcore.builders import make_response, new_tag
from sipcore.errors import LocalProtocolError
from sipcore.message import Request, Response

from .client_invite import ClientInviteTransaction
from .client_non_invite import ClientNonInviteTransaction
from .events import (
    Action,
    CancelReceived,
    Deliver,
    Destination,
    Input,
    RecvRequest,
    RecvResponse,
    TimerFired,
    TransportError,
    TxKey,
    UserRespond,
)
from .keys import ack_matches, cancel_target_key, client_key, server_key
from .server_invite import ServerInviteState, ServerInviteTransaction
from .server_non_invite import ServerNonInviteTransaction
from .timers import DEFAULT_TIMERS, TimerConfig

__all__ = ["AnyTransaction", "ClientTransaction", "ServerTransaction", "TransactionLayer"]

ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
AnyTransaction = ClientTransaction | ServerTransaction


class TransactionLayer:
    """All live transactions of one stack, keyed by ``keys.client_key`` / ``keys.server_key``."""

    __slots__ = ("_txs", "auto_trying", "config")

    def __init__(self, config: TimerConfig = DEFAULT_TIMERS, *, auto_trying: bool = True) -> None:
        self.config = config
        self.auto_trying = auto_trying
        self._txs: dict[TxKey, AnyTransaction] = {}

    def __len__(self) -> int:
        return len(self._txs)

    def __contains__(self, key: object) -> bool:
        return key in self._txs

    def get(self, key: TxKey) -> AnyTransaction | None:
        return self._txs.get(key)

    # ------------------------------------------------------------------------------ network in

    def on_request(
        self, request: Request, source: Destination, now: float
    ) -> tuple[AnyTransaction | None, list[Action]]:
        """Route a request from the network; ``source`` is where responses go back to."""
        key = server_key(request)
        tx = self._txs.get(key)
        if request.method == "ACK":
            if type(tx) is ServerInviteTransaction and (
                key[0] == "s" or ack_matches(request, tx.last_response)
            ):
                return tx, self._run(tx, RecvRequest(request), now)
            return None, [Deliver(request, None)]
        if tx is not None:
            return tx, self._run(tx, RecvRequest(request), now)
        if request.method == "CANCEL":
            return self._on_cancel(request, key, source, now)
        new: ServerTransaction
        if request.method == "INVITE":
            new = ServerInviteTransaction(request, source, self.config, key, auto_trying=self.auto_trying)
        else:
            new = ServerNonInviteTransaction(request, source, self.config, key)
        self._txs[key] = new
        return new, new.start(now)

    def on_response(self, response: Response, now: float) -> tuple[ClientTransaction | None, list[Action]]:
        """Route a response from the network to its client transaction, or hand it up as stray."""
        tx = self._txs.get(client_key(response))
        if tx is None or not isinstance(tx, ClientInviteTransaction | ClientNonInviteTransaction):
            return None, [Deliver(response, None)]
        return tx, self._run(tx, RecvResponse(response), now)

    # ---------------------------------------------------------------------------------- TU in

    def send_request(
        self, request: Request, dest: Destination, now: float
    ) -> tuple[ClientTransaction, list[Action]]:
        """Start a client transaction for ``request`` (its top Via must carry a fresh branch)."""
        if request.method == "ACK":
            raise LocalProtocolError("ACK is not sent through a transaction: send the 2xx ACK directly")
        key = client_key(request)
        if key in self._txs:
            raise LocalProtocolError(f"client transaction {key!r} already exists (reused branch?)")
        tx: ClientTransaction
        if request.method == "INVITE":
            tx = ClientInviteTransaction(request, dest, self.config, key)
        else:
            tx = ClientNonInviteTransaction(request, dest, self.config, key)
        self._txs[key] = tx
        actions = tx.start(now)
        return tx, actions

    def respond(self, key: TxKey, response: Response, now: float) -> list[Action]:
        """Send the TU's ``response`` through server transaction ``key``.

        Raises ``LocalProtocolError`` if there is no such live server transaction or the
        response is not allowed in its state (e.g. a second non-2xx final).
        """
        tx = self._txs.get(key)
        if not isinstance(tx, ServerInviteTransaction | ServerNonInviteTransaction):
            raise LocalProtocolError(f"no live server transaction {key!r}")
        return self._run(tx, UserRespond(response), now)

    def abort(self, key: TxKey, reason: str, now: float) -> list[Action]:
        """End transaction ``key`` at once (see ``Transaction.abort``); unknown keys are ignored.

        E.g. the INVITE client transaction that got no final response within 64*T1 of its
        CANCEL (RFC 3261 9.1): the TU must abort it, no timer of ours covers PROCEEDING.
        """
        tx = self._txs.pop(key, None)
        return tx.abort(reason) if tx is not None else []

    # ---------------------------------------------------------------------------------- glue in

    def handle_timer(self, key: TxKey, name: str, now: float) -> list[Action]:
        tx = self._txs.get(key)
        return self._run(tx, TimerFired(name), now) if tx is not None else []

    def transport_error(self, key: TxKey, now: float, reason: str = "") -> list[Action]:
        tx = self._txs.get(key)
        return self._run(tx, TransportError(reason), now) if tx is not None else []

    # -------------------------------------------------------------------------------- internals

    def _run(self, tx: AnyTransaction, event: Input, now: float) -> list[Action]:
        actions = tx.handle(event, now)
        if tx.terminated and self._txs.get(tx.key) is tx:
            del self._txs[tx.key]
        return actions

    def _on_cancel(
        self, cancel: Request, key: TxKey, source: Destination, now: float
    ) -> tuple[ServerNonInviteTransaction, list[Action]]:
        # The CANCEL's own transaction absorbs its retransmissions (and resends our answer).
        ctx = ServerNonInviteTransaction(cancel, source, self.config, key)
        self._txs[key] = ctx
        invite = self._txs.get(cancel_target_key(cancel))
        if not isinstance(invite, ServerInviteTransaction):
            resp = make_response(cancel, 481, to_tag=new_tag())
            return ctx, self._run(ctx, UserRespond(resp), now)
        # 9.2: the CANCEL response SHOULD carry the To tag of the INVITE's response.
        last = invite.last_response
        tag = last.to.tag if last is not None and last.to.tag else new_tag()
        actions = self._run(ctx, UserRespond(make_response(cancel, 200, to_tag=tag)), now)
        if invite.state is ServerInviteState.PROCEEDING:
            actions.append(Deliver(CancelReceived(cancel), invite.key))
        return ctx, actions
