"""Non-INVITE server transaction: RFC 3261 figure 8."""

from __future__ import annotations

import pytest
from txharness import TCP, UDP, Harness, drive, make_request, respond

from sipcore.errors import LocalProtocolError
from sipcore.transaction import (
    Deliver,
    Send,
    ServerNonInviteState,
    ServerNonInviteTransaction,
    SetTimer,
    TimerFired,
    UserRespond,
)

S = ServerNonInviteState


def start(dest=UDP, method="OPTIONS"):
    tx = ServerNonInviteTransaction(make_request(method), dest)
    h = Harness.for_tx(tx)
    h.apply(tx.start(0.0))
    return tx, h


CASES = [
    ("trying-absorbs-retransmission", UDP, [("retx",), ("at", 10), ("retx",)], S.TRYING, [], [], None),
    ("1xx-proceeding", UDP, [("respond", 100)], S.PROCEEDING, [(0, "100")], [], None),
    ("proceeding-retx-resends-1xx", UDP, [("respond", 100), ("at", 1), ("retx",)], S.PROCEEDING,
     [(0, "100"), (1, "100")], [], None),
    ("200-completed", UDP, [("at", 1), ("respond", 200)], S.COMPLETED, [(1, "200")], [], None),
    ("completed-retx-resends-final", UDP, [("respond", 200), ("at", 2), ("retx",), ("retx",)], S.COMPLETED,
     [(0, "200"), (2, "200"), (2, "200")], [], None),
    ("timer-J-64T1", UDP, [("respond", 404), ("at", 31.9)], S.COMPLETED, [(0, "404")], [], None),
    ("timer-J-terminates", UDP, [("respond", 404), ("at", 32)], S.TERMINATED, [(0, "404")], [], "timer_J"),
    ("1xx-then-final", UDP, [("respond", 100), ("respond", 180), ("respond", 486), ("retx",)], S.COMPLETED,
     [(0, "100"), (0, "180"), (0, "486"), (0, "486")], [], None),
    ("no-timers-while-trying", UDP, [("at", 1000)], S.TRYING, [], [], None),
    ("transport-error-trying", UDP, [("err",)], S.TERMINATED, [], ["TransportFailed"], "transport_error"),
    ("transport-error-completed", UDP, [("respond", 500), ("err",)], S.TERMINATED, [(0, "500")],
     ["TransportFailed"], "transport_error"),
    ("tcp-timer-J-zero", TCP, [("at", 3), ("respond", 200), ("at", 3)], S.TERMINATED, [(3, "200")], [],
     "timer_J"),
]  # fmt: skip


@pytest.mark.parametrize(("dest", "steps", "state", "sends", "delivered", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_table(dest, steps, state, sends, delivered, reason):
    tx, h = start(dest)
    drive(h, tx, steps)
    assert tx.state is state
    assert h.sends() == [(float(t), m) for t, m in sends]
    assert h.deliveries() == ["OPTIONS", *delivered]
    assert [t.reason for t in h.terminated] == ([reason] if reason else [])
    if state is S.TERMINATED:
        assert h.pending() == [] and tx.armed_timers == {}


def test_start_and_final_actions():
    tx = ServerNonInviteTransaction(make_request("BYE"), UDP)
    assert tx.start(0.0) == [Deliver(tx.request, tx.key)]
    r = respond(tx.request, 200)
    assert tx.handle(UserRespond(r), 2.0) == [Send(r, UDP), SetTimer(tx.key, "J", 34.0)]


@pytest.mark.parametrize("second", [100, 200, 486], ids=["1xx", "2xx", "4xx"])
def test_response_after_final_raises(second):
    tx, _ = start()
    tx.handle(UserRespond(respond(tx.request, 200)), 0.0)
    with pytest.raises(LocalProtocolError):
        tx.handle(UserRespond(respond(tx.request, second)), 0.1)


def test_unknown_timer_ignored():
    tx, _ = start()
    assert tx.handle(TimerFired("J"), 1.0) == []  # not armed yet
    assert tx.handle(TimerFired("Z"), 1.0) == []


@pytest.mark.parametrize("method", ["INVITE", "ACK"])
def test_rejects_invite_and_ack(method):
    with pytest.raises(LocalProtocolError):
        ServerNonInviteTransaction(make_request(method), UDP)
