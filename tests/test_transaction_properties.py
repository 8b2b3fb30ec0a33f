"""Hypothesis state machines: any input sequence keeps each transaction's invariants.

- remote input (responses, retransmissions, ACKs, transport errors) and time never raise;
- at most one final outcome reaches the TU (client) or the peer (server), except the 2xx
  retransmissions RFC 6026 passes through;
- the transaction is bounded by its Timer B/F/H deadline and never sits in a state with no
  timer armed unless it is waiting for the TU or the peer (client INVITE Proceeding, server
  Trying/Proceeding);
- the timers the transaction believes armed are exactly those the harness holds.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from txharness import TCP, UDP, Harness, ack_for, make_request, respond

from sipcore.errors import LocalProtocolError
from sipcore.message import Request, Response
from sipcore.transaction import (
    ClientInviteState,
    ClientInviteTransaction,
    ClientNonInviteState,
    ClientNonInviteTransaction,
    Destination,
    NoAck,
    RecvRequest,
    RecvResponse,
    ServerInviteState,
    ServerInviteTransaction,
    ServerNonInviteState,
    ServerNonInviteTransaction,
    TimerConfig,
    TransportError,
    UserRespond,
)

CFG = TimerConfig()
SETTINGS = settings(
    max_examples=75, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 408, 486, 500, 603])
DESTS = st.sampled_from([UDP, TCP])
DELAYS = st.floats(min_value=0.0, max_value=12.0, allow_nan=False)


class _Base(RuleBasedStateMachine):
    tx: Any
    h: Harness

    @rule()
    def next_timer(self) -> None:
        self.h.step()

    @rule(dt=DELAYS)
    def wait(self, dt: float) -> None:
        self.h.run_until(self.h.now + dt)

    @rule()
    def transport_error(self) -> None:
        self.h.apply(self.tx.handle(TransportError("x"), self.h.now))

    @invariant()
    def timers_consistent(self) -> None:
        assert sorted(self.tx.armed_timers) == sorted(self.h.pending())

    @invariant()
    def terminated_once(self) -> None:
        assert len(self.h.terminated) == (1 if self.tx.terminated else 0)


class ClientInviteMachine(_Base):
    @initialize(dest=DESTS)
    def start(self, dest: Destination) -> None:
        self.tx = ClientInviteTransaction(make_request(), dest, CFG)
        self.h = Harness.for_tx(self.tx)
        self.h.apply(self.tx.start(0.0))

    @rule(status=STATUSES)
    def recv(self, status: int) -> None:
        self.h.apply(self.tx.handle(RecvResponse(respond(self.tx.request, status)), self.h.now))

    @invariant()
    def one_final_outcome(self) -> None:
        finals = [d.event.status for d in self.h.delivered if isinstance(d.event, Response)]
        finals = [s for s in finals if s >= 200]
        assert all(s < 300 for s in finals) or len(finals) == 1

    @invariant()
    def bounded_by_timer_b(self) -> None:
        if self.tx.state is ClientInviteState.CALLING:
            assert self.h.now <= CFG.timer_b

    @invariant()
    def never_stuck(self) -> None:
        if self.tx.state not in (ClientInviteState.TERMINATED, ClientInviteState.PROCEEDING):
            assert self.h.pending()

    def teardown(self) -> None:
        self.h.run_all()
        assert self.tx.state in (ClientInviteState.TERMINATED, ClientInviteState.PROCEEDING)


class ClientNonInviteMachine(_Base):
    @initialize(dest=DESTS)
    def start(self, dest: Destination) -> None:
        self.tx = ClientNonInviteTransaction(make_request("OPTIONS"), dest, CFG)
        self.h = Harness.for_tx(self.tx)
        self.h.apply(self.tx.start(0.0))

    @rule(status=STATUSES)
    def recv(self, status: int) -> None:
        self.h.apply(self.tx.handle(RecvResponse(respond(self.tx.request, status)), self.h.now))

    @invariant()
    def one_final(self) -> None:
        finals = [d for d in self.h.delivered if isinstance(d.event, Response) and d.event.status >= 200]
        assert len(finals) <= 1

    @invariant()
    def bounded_by_timer_f(self) -> None:
        if self.tx.state in (ClientNonInviteState.TRYING, ClientNonInviteState.PROCEEDING):
            assert self.h.now <= CFG.timer_f

    @invariant()
    def never_stuck(self) -> None:
        if not self.tx.terminated:
            assert self.h.pending()

    def teardown(self) -> None:
        self.h.run_all()
        assert self.tx.terminated


class _ServerBase(_Base):
    def _check_tu_error(self, status: int) -> None:
        raise NotImplementedError

    @rule()
    def retransmission(self) -> None:
        self.h.apply(self.tx.handle(RecvRequest(self.tx.request), self.h.now))

    @rule(status=STATUSES)
    def tu_responds(self, status: int) -> None:
        tx = self.tx
        try:
            self.h.apply(tx.handle(UserRespond(respond(tx.request, status)), self.h.now))
        except LocalProtocolError:
            self._check_tu_error(status)

    @invariant()
    def request_delivered_once(self) -> None:
        assert sum(isinstance(d.event, Request) and d.event is self.tx.request for d in self.h.delivered) == 1

    def final_objects(self) -> list[Response]:
        out: list[Response] = []
        for s in self.h.sent:
            m = s.message
            if isinstance(m, Response) and m.status >= 200 and all(m is not o for o in out):
                out.append(m)
        return out


class ServerInviteMachine(_ServerBase):
    @initialize(dest=DESTS)
    def start(self, dest: Destination) -> None:
        self.tx = ServerInviteTransaction(make_request(), dest, CFG)
        self.h = Harness.for_tx(self.tx)
        self.h.apply(self.tx.start(0.0))
        self.completed_at: float | None = None

    def _check_tu_error(self, status: int) -> None:
        # Only legal to refuse once a final went out (2xx may repeat while Accepted).
        assert self.tx.state is not ServerInviteState.PROCEEDING
        assert not (self.tx.state is ServerInviteState.ACCEPTED and 200 <= status < 300)

    @rule(status=STATUSES)
    def tu_responds(self, status: int) -> None:
        was = self.tx.state
        super().tu_responds(status)
        if was is ServerInviteState.PROCEEDING and self.tx.state is ServerInviteState.COMPLETED:
            self.completed_at = self.h.now

    @rule(our_tag=st.booleans())
    def ack(self, our_tag: bool) -> None:
        last = self.tx.last_response or respond(self.tx.request, 200)
        ack = ack_for(self.tx.request, last if our_tag else respond(self.tx.request, 200, to_tag="x"))
        self.h.apply(self.tx.handle(RecvRequest(ack), self.h.now))

    @invariant()
    def one_final_outcome(self) -> None:
        finals = self.final_objects()
        assert all(f.status < 300 for f in finals) or len(finals) == 1
        assert sum(isinstance(d.event, NoAck) for d in self.h.delivered) <= 1

    @invariant()
    def bounded_by_timer_h(self) -> None:
        if self.tx.state is ServerInviteState.COMPLETED:
            assert self.completed_at is not None and self.h.now <= self.completed_at + CFG.timer_h

    @invariant()
    def never_stuck(self) -> None:
        if self.tx.state not in (ServerInviteState.TERMINATED, ServerInviteState.PROCEEDING):
            assert self.h.pending()


class ServerNonInviteMachine(_ServerBase):
    @initialize(dest=DESTS)
    def start(self, dest: Destination) -> None:
        self.tx = ServerNonInviteTransaction(make_request("OPTIONS"), dest, CFG)
        self.h = Harness.for_tx(self.tx)
        self.h.apply(self.tx.start(0.0))

    def _check_tu_error(self, status: int) -> None:
        assert self.tx.state in (ServerNonInviteState.COMPLETED, ServerNonInviteState.TERMINATED)

    @invariant()
    def one_final(self) -> None:
        assert len(self.final_objects()) <= 1

    @invariant()
    def never_stuck(self) -> None:
        if self.tx.state is ServerNonInviteState.COMPLETED:
            assert self.h.pending()


TestClientInvite = ClientInviteMachine.TestCase
TestClientNonInvite = ClientNonInviteMachine.TestCase
TestServerInvite = ServerInviteMachine.TestCase
TestServerNonInvite = ServerNonInviteMachine.TestCase
for _case in (TestClientInvite, TestClientNonInvite, TestServerInvite, TestServerNonInvite):
    _case.settings = SETTINGS
del _case
