"""Test driver for the transaction state machines: a fake clock and an action-applying harness.

``Harness`` plays the I/O glue (STYLE item 13): it records ``Send``/``Deliver``/``Terminated``,
keeps ``SetTimer`` deadlines in a heap (``CancelTimer`` and re-arming invalidate the old entry),
and moves the ``FakeClock`` from deadline to deadline, feeding each fire back. No sleeping.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sipcore.builders import make_response
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.transaction import (
    Action,
    CancelTimer,
    Deliver,
    Destination,
    RecvRequest,
    RecvResponse,
    Send,
    SetTimer,
    Terminated,
    TimerFired,
    TransactionLayer,
    TransportError,
    TxKey,
    UpEvent,
    UserRespond,
)
from sipcore.transaction._machine import Transaction

UDP = Destination("192.0.2.10", 5060, "UDP")
TCP = Destination("192.0.2.10", 5060, "TCP")

FireFn = Callable[[TxKey, str, float], list[Action]]


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now


@dataclass(frozen=True)
class Sent:
    at: float
    message: Request | Response
    dest: Destination

    @property
    def label(self) -> str:
        """``INVITE``/``ACK``/... for requests, the status code as text for responses."""
        m = self.message
        return m.method if isinstance(m, Request) else str(m.status)


@dataclass(frozen=True)
class Delivered:
    at: float
    event: UpEvent
    owner: TxKey | None


class Harness:
    def __init__(self, fire: FireFn, clock: FakeClock | None = None) -> None:
        self.fire = fire
        self.clock = clock if clock is not None else FakeClock()
        self.sent: list[Sent] = []
        self.delivered: list[Delivered] = []
        self.terminated: list[Terminated] = []
        self._heap: list[tuple[float, int, TxKey, str]] = []
        self._live: dict[tuple[TxKey, str], int] = {}
        self._seq = 0

    @classmethod
    def for_tx(cls, tx: Transaction[Any], clock: FakeClock | None = None) -> Harness:
        return cls(lambda key, name, now: tx.handle(TimerFired(name), now), clock)

    @classmethod
    def for_layer(cls, layer: TransactionLayer, clock: FakeClock | None = None) -> Harness:
        return cls(layer.handle_timer, clock)

    @property
    def now(self) -> float:
        return self.clock.now

    def apply(self, actions: Iterable[Action]) -> list[Action]:
        """Perform ``actions`` in order; returns them for further assertions."""
        actions = list(actions)
        for a in actions:
            if isinstance(a, Send):
                self.sent.append(Sent(self.clock.now, a.message, a.dest))
            elif isinstance(a, SetTimer):
                assert a.at >= self.clock.now, f"timer {a.name} set in the past"
                self._seq += 1
                self._live[(a.owner, a.name)] = self._seq
                heapq.heappush(self._heap, (a.at, self._seq, a.owner, a.name))
            elif isinstance(a, CancelTimer):
                self._live.pop((a.owner, a.name), None)
            elif isinstance(a, Deliver):
                self.delivered.append(Delivered(self.clock.now, a.event, a.owner))
            elif isinstance(a, Terminated):
                self.terminated.append(a)
            else:  # pragma: no cover
                raise AssertionError(f"unknown action {a!r}")
        return actions

    def _drop_dead(self) -> None:
        while self._heap:
            _at, seq, owner, name = self._heap[0]
            if self._live.get((owner, name)) == seq:
                return
            heapq.heappop(self._heap)

    def next_deadline(self) -> float | None:
        self._drop_dead()
        return self._heap[0][0] if self._heap else None

    def pending(self) -> list[str]:
        """Names of the armed timers, in deadline order."""
        return [n for at, seq, o, n in sorted(self._heap) if self._live.get((o, n)) == seq]

    def step(self) -> bool:
        """Advance the clock to the next deadline and fire that timer; False when none is armed."""
        self._drop_dead()
        if not self._heap:
            return False
        at, _seq, owner, name = heapq.heappop(self._heap)
        del self._live[(owner, name)]
        self.clock.now = max(self.clock.now, at)
        self.apply(self.fire(owner, name, self.clock.now))
        return True

    def run_until(self, t: float) -> None:
        """Fire every timer due at or before ``t``, then leave the clock at ``t``."""
        while (d := self.next_deadline()) is not None and d <= t:
            self.step()
        self.clock.now = max(self.clock.now, t)

    def run_all(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("timers never ran out")

    # -------------------------------------------------------------------------------- summaries

    def sends(self) -> list[tuple[float, str]]:
        return [(round(s.at, 6), s.label) for s in self.sent]

    def deliveries(self) -> list[str]:
        out = []
        for d in self.delivered:
            e = d.event
            if isinstance(e, Response):
                out.append(str(e.status))
            elif isinstance(e, Request):
                out.append(e.method)
            else:
                out.append(type(e).__name__)
        return out


# --------------------------------------------------------------------------------- messages


def make_request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK-tx-1",
    cseq: int = 1,
    transport: str = "UDP",
    host: str = "client.example.com",
    port: int | None = 5060,
    to_tag: str | None = None,
    call_id: str = "call-1@client.example.com",
    route: bool = True,
) -> Request:
    params: dict[str, str | None] = {} if branch is None else {"branch": branch}
    to = NameAddr(Uri(user="bob", host="example.com"))
    if to_tag is not None:
        to.params["tag"] = to_tag
    return Request(
        method=method,
        uri=Uri(user="bob", host="example.com"),
        via=[
            Via(transport, host, port, params),
            Via("UDP", "proxy.example.net", 5060, {"branch": "z9hG4bKp"}),
        ],
        from_=NameAddr(Uri(user="alice", host="example.com"), params={"tag": "from-1"}),
        to=to,
        call_id=call_id,
        cseq=CSeq(cseq, "ACK" if method == "ACK" else method),
        max_forwards=70,
        route=[NameAddr(Uri(host="proxy.example.net", params={"lr": None}))] if route else [],
    )


def respond(request: Request, status: int, *, to_tag: str | None = "to-1") -> Response:
    """A response to ``request`` (no To tag for 100, as RFC 3261 8.2.6.2 allows)."""
    return make_response(request, status, to_tag=None if status == 100 else to_tag)


def ack_for(invite: Request, response: Response, *, branch: str | None = None) -> Request:
    """The peer's ACK: the INVITE's branch for a non-2xx (17.1.1.3), a new one for a 2xx."""
    top = invite.via[0]
    return make_request(
        "ACK",
        branch=branch if branch is not None else top.branch,
        cseq=invite.cseq.number,
        to_tag=response.to.tag,
        transport=top.transport,
        host=top.host,
        port=top.port,
        call_id=invite.call_id,
    )


# A script step: ("at", t) runs timers up to t; ("recv", code) feeds a response from the peer;
# ("respond", code) is the TU answering; ("retx",) a retransmitted request; ("ack",) the ACK
# for the last response sent; ("err",) a transport error.
Step = tuple[Any, ...]


def drive(h: Harness, tx: Any, steps: Iterable[Step]) -> None:
    for step in steps:
        kind = step[0]
        if kind == "at":
            h.run_until(float(step[1]))
        elif kind == "recv":
            h.apply(tx.handle(RecvResponse(respond(tx.request, int(step[1]))), h.now))
        elif kind == "respond":
            h.apply(tx.handle(UserRespond(respond(tx.request, int(step[1]))), h.now))
        elif kind == "retx":
            h.apply(tx.handle(RecvRequest(tx.request), h.now))
        elif kind == "ack":
            h.apply(tx.handle(RecvRequest(ack_for(tx.request, tx.last_response)), h.now))
        elif kind == "err":
            h.apply(tx.handle(TransportError("boom"), h.now))
        else:  # pragma: no cover
            raise AssertionError(f"unknown step {step!r}")
