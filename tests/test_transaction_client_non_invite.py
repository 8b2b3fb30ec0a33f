"""Non-INVITE client transaction: RFC 3261 figure 6."""

from __future__ import annotations

import pytest
from txharness import TCP, UDP, Harness, drive, make_request, respond

from sipcore.errors import LocalProtocolError
from sipcore.message import Response
from sipcore.transaction import (
    ClientNonInviteState,
    ClientNonInviteTransaction,
    RecvResponse,
    Send,
    SetTimer,
    TimerConfig,
    make_cancel,
)

S = ClientNonInviteState
OPT = "OPTIONS"
# Timer E: T1, 2T1, 4T1, then capped at T2 = 4 s, until F at 64*T1 = 32 s.
E_TIMES = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


def start(dest=UDP, method=OPT):
    tx = ClientNonInviteTransaction(make_request(method), dest)
    h = Harness.for_tx(tx)
    h.apply(tx.start(0.0))
    return tx, h


CASES = [
    ("timer-E-doubles-to-T2", UDP, [("at", 12)], S.TRYING, [(t, OPT) for t in E_TIMES[:6]], [], None),
    ("timer-F-408", UDP, [("at", 32)], S.TERMINATED, [(t, OPT) for t in E_TIMES], ["408"], "timer_F"),
    ("1xx-proceeding-E-at-T2", UDP, [("at", 0.2), ("recv", 100), ("at", 9)], S.PROCEEDING,
     [(0, OPT), (0.5, OPT), (4.5, OPT), (8.5, OPT)], ["100"], None),
    ("proceeding-timer-F-408", UDP, [("recv", 180), ("at", 32)], S.TERMINATED,
     [(0, OPT)] + [(0.5 + 4 * i, OPT) for i in range(8)], ["180", "408"], "timer_F"),
    ("200-completed", UDP, [("at", 1), ("recv", 200), ("at", 5.9)], S.COMPLETED,
     [(0, OPT), (0.5, OPT)], ["200"], None),
    ("200-timer-K-T4", UDP, [("at", 1), ("recv", 200), ("at", 6)], S.TERMINATED,
     [(0, OPT), (0.5, OPT)], ["200"], "timer_K"),
    ("completed-absorbs-retransmissions", UDP, [("recv", 404), ("recv", 404), ("recv", 200), ("recv", 100)],
     S.COMPLETED, [(0, OPT)], ["404"], None),
    ("1xx-then-final", UDP, [("recv", 100), ("recv", 100), ("recv", 486)], S.COMPLETED, [(0, OPT)],
     ["100", "100", "486"], None),
    ("completed-stops-E-and-F", UDP, [("recv", 500), ("at", 4)], S.COMPLETED, [(0, OPT)], ["500"], None),
    ("transport-error-503", UDP, [("at", 1), ("err",)], S.TERMINATED, [(0, OPT), (0.5, OPT)], ["503"],
     "transport_error"),
    ("proceeding-transport-error-503", UDP, [("recv", 100), ("err",)], S.TERMINATED, [(0, OPT)],
     ["100", "503"], "transport_error"),
    ("tcp-no-timer-E", TCP, [("at", 31.9)], S.TRYING, [(0, OPT)], [], None),
    ("tcp-timer-F", TCP, [("at", 32)], S.TERMINATED, [(0, OPT)], ["408"], "timer_F"),
    ("tcp-timer-K-zero", TCP, [("at", 2), ("recv", 200), ("at", 2)], S.TERMINATED, [(0, OPT)], ["200"],
     "timer_K"),
]  # fmt: skip


@pytest.mark.parametrize(("dest", "steps", "state", "sends", "delivered", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_table(dest, steps, state, sends, delivered, reason):
    tx, h = start(dest)
    drive(h, tx, steps)
    assert tx.state is state
    assert h.sends() == [(float(t), m) for t, m in sends]
    assert h.deliveries() == delivered
    assert [t.reason for t in h.terminated] == ([reason] if reason else [])
    if state is S.TERMINATED:
        assert h.pending() == [] and tx.armed_timers == {}


def test_start_actions():
    tx = ClientNonInviteTransaction(make_request("REGISTER"), UDP)
    assert tx.start(1.0) == [Send(tx.request, UDP), SetTimer(tx.key, "E", 1.5), SetTimer(tx.key, "F", 33.0)]


def test_timeout_response_is_408_for_the_request():
    tx, h = start()
    h.run_all()
    (d,) = h.delivered
    assert isinstance(d.event, Response) and d.event.status == 408
    assert d.event.cseq.method == OPT and d.owner == tx.key


def test_cancel_is_its_own_transaction():
    inv = make_request("INVITE")
    cancel = make_cancel(inv)
    tx = ClientNonInviteTransaction(cancel, UDP)
    h = Harness.for_tx(tx)
    h.apply(tx.start(0.0))
    h.apply(tx.handle(RecvResponse(respond(cancel, 200)), 0.1))
    assert tx.state is S.COMPLETED and h.deliveries() == ["200"]
    # Same branch as the INVITE, but the CSeq method keeps the two client transactions apart.
    assert tx.key != ClientNonInviteTransaction(make_request("BYE"), UDP).key
    assert tx.key[-1] == "CANCEL"


def test_small_t2_caps_e():
    tx = ClientNonInviteTransaction(make_request(OPT), UDP, TimerConfig(t1=0.5, t2=1.0))
    h = Harness.for_tx(tx)
    h.apply(tx.start(0.0))
    h.run_until(4.0)
    assert [s.at for s in h.sent] == [0, 0.5, 1.5, 2.5, 3.5]


@pytest.mark.parametrize("method", ["INVITE", "ACK"])
def test_rejects_invite_and_ack(method):
    with pytest.raises(LocalProtocolError):
        ClientNonInviteTransaction(make_request(method), UDP)
