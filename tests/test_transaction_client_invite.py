"""INVITE client transaction: RFC 3261 figure 5 plus the RFC 6026 Accepted state."""

from __future__ import annotations

import pytest
from txharness import TCP, UDP, Harness, drive, make_request, respond

from sipcore.errors import LocalProtocolError
from sipcore.message import Request, Response
from sipcore.transaction import (
    DEFAULT_TIMERS,
    CancelTimer,
    ClientInviteState,
    ClientInviteTransaction,
    Deliver,
    RecvResponse,
    Send,
    SetTimer,
    Terminated,
    TimerConfig,
    TimerFired,
    make_ack,
    make_cancel,
)

S = ClientInviteState
INV = "INVITE"
UDP_RETX = [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # Timer A: T1, 2T1, 4T1, ... until B at 64*T1


def start(dest=UDP, config=DEFAULT_TIMERS):
    tx = ClientInviteTransaction(make_request(), dest, config)
    h = Harness.for_tx(tx)
    h.apply(tx.start(0.0))
    return tx, h


# (id, transport, steps, state, sends, deliveries, terminated reason)
CASES = [
    ("timer-A-3x", UDP, [("at", 3.6)], S.CALLING, [(t, INV) for t in (0, 0.5, 1.5, 3.5)], [], None),
    ("timer-B-408", UDP, [("at", 32)], S.TERMINATED, [(t, INV) for t in UDP_RETX], ["408"], "timer_B"),
    ("timer-B-not-early", UDP, [("at", 31.99)], S.CALLING, [(t, INV) for t in UDP_RETX], [], None),
    ("180-proceeding-stops-A-B", UDP, [("at", 0.7), ("recv", 180), ("at", 100)], S.PROCEEDING,
     [(0, INV), (0.5, INV)], ["180"], None),
    ("1xx-each-delivered", UDP, [("recv", 100), ("recv", 180), ("recv", 183)], S.PROCEEDING,
     [(0, INV)], ["100", "180", "183"], None),
    ("200-accepted", UDP, [("at", 1), ("recv", 200), ("at", 32.99)], S.ACCEPTED,
     [(0, INV), (0.5, INV)], ["200"], None),
    ("200-timer-M", UDP, [("at", 1), ("recv", 200), ("at", 33)], S.TERMINATED,
     [(0, INV), (0.5, INV)], ["200"], "timer_M"),
    ("200-retransmissions-passed-up", UDP, [("recv", 180), ("recv", 200), ("recv", 200), ("recv", 200)],
     S.ACCEPTED, [(0, INV)], ["180", "200", "200", "200"], None),
    ("accepted-drops-1xx-and-non2xx", UDP, [("recv", 200), ("recv", 180), ("recv", 486)], S.ACCEPTED,
     [(0, INV)], ["200"], None),
    ("486-ack-completed", UDP, [("at", 1), ("recv", 486)], S.COMPLETED,
     [(0, INV), (0.5, INV), (1, "ACK")], ["486"], None),
    ("486-retransmission-reacked-not-delivered", UDP, [("recv", 486), ("at", 2), ("recv", 486)],
     S.COMPLETED, [(0, INV), (0, "ACK"), (2, "ACK")], ["486"], None),
    ("486-timer-D-32s", UDP, [("at", 1), ("recv", 486), ("at", 32.9)], S.COMPLETED,
     [(0, INV), (0.5, INV), (1, "ACK")], ["486"], None),
    ("486-timer-D-terminates", UDP, [("at", 1), ("recv", 486), ("at", 33)], S.TERMINATED,
     [(0, INV), (0.5, INV), (1, "ACK")], ["486"], "timer_D"),
    ("180-then-603", UDP, [("recv", 180), ("recv", 603)], S.COMPLETED, [(0, INV), (0, "ACK")],
     ["180", "603"], None),
    ("completed-absorbs-1xx-2xx", UDP, [("recv", 404), ("recv", 180), ("recv", 200)], S.COMPLETED,
     [(0, INV), (0, "ACK")], ["404"], None),
    ("302-redirect", UDP, [("recv", 302)], S.COMPLETED, [(0, INV), (0, "ACK")], ["302"], None),
    ("transport-error-503", UDP, [("err",)], S.TERMINATED, [(0, INV)], ["503"], "transport_error"),
    ("proceeding-transport-error-ignored", UDP, [("recv", 180), ("err",)], S.PROCEEDING, [(0, INV)],
     ["180"], None),
    ("completed-transport-error", UDP, [("recv", 500), ("err",)], S.TERMINATED, [(0, INV), (0, "ACK")],
     ["500"], "transport_error"),
    ("tcp-no-timer-A", TCP, [("at", 31.9)], S.CALLING, [(0, INV)], [], None),
    ("tcp-timer-B", TCP, [("at", 32)], S.TERMINATED, [(0, INV)], ["408"], "timer_B"),
    ("tcp-486-timer-D-zero", TCP, [("at", 1), ("recv", 486), ("at", 1)], S.TERMINATED,
     [(0, INV), (1, "ACK")], ["486"], "timer_D"),
    ("tcp-200-timer-M", TCP, [("recv", 200), ("at", 32)], S.TERMINATED, [(0, INV)], ["200"], "timer_M"),
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
    assert all(s.dest == dest for s in h.sent)
    if state is S.TERMINATED:
        assert h.pending() == [] and tx.armed_timers == {}


def test_start_actions_udp():
    tx = ClientInviteTransaction(make_request(), UDP)
    key = tx.key
    assert tx.start(10.0) == [Send(tx.request, UDP), SetTimer(key, "A", 10.5), SetTimer(key, "B", 42.0)]


def test_start_actions_tcp():
    tx = ClientInviteTransaction(make_request(), TCP)
    assert tx.start(0.0) == [Send(tx.request, TCP), SetTimer(tx.key, "B", 32.0)]


def test_first_1xx_cancels_a_and_b():
    tx, _h = start()
    resp = respond(tx.request, 180)
    assert tx.handle(RecvResponse(resp), 0.1) == [
        CancelTimer(tx.key, "A"),
        CancelTimer(tx.key, "B"),
        Deliver(resp, tx.key),
    ]


def test_timer_b_delivers_synthesized_408():
    tx, h = start()
    h.run_until(32)
    (d,) = h.delivered
    assert isinstance(d.event, Response) and d.event.status == 408 and d.owner == tx.key
    assert d.event.call_id == tx.request.call_id and d.event.cseq == tx.request.cseq
    assert d.at == 32.0


def test_ack_for_non_2xx_fields():
    tx, h = start()
    resp = respond(tx.request, 486, to_tag="uas-tag")
    h.apply(tx.handle(RecvResponse(resp), 0.2))
    ack = h.sent[-1].message
    assert isinstance(ack, Request) and ack.method == "ACK"
    inv = tx.request
    assert ack.uri == inv.uri and ack.call_id == inv.call_id and ack.from_ == inv.from_
    assert ack.cseq.number == inv.cseq.number and ack.cseq.method == "ACK"
    assert ack.to.tag == "uas-tag"
    assert ack.via == [inv.via[0]]  # only the top Via: same branch as the INVITE
    assert ack.route == inv.route and ack.body == b""
    assert tx.ack is ack


def test_make_ack_is_independent_copy():
    inv = make_request()
    ack = make_ack(inv, respond(inv, 404))
    ack.via[0].params["branch"] = "changed"
    assert inv.via[0].branch == "z9hG4bK-tx-1"


def test_make_cancel_rfc3261_9_1():
    inv = make_request()
    cancel = make_cancel(inv)
    assert cancel.method == "CANCEL" and cancel.cseq.method == "CANCEL"
    assert cancel.cseq.number == inv.cseq.number
    assert cancel.uri == inv.uri and cancel.to == inv.to and cancel.from_ == inv.from_
    assert cancel.call_id == inv.call_id and cancel.via == [inv.via[0]] and cancel.route == inv.route


def test_custom_t1_scales_timers():
    tx, h = start(config=TimerConfig(t1=0.1, t2=1.0))
    h.run_until(6.5)
    assert [s.at for s in h.sent] == pytest.approx([0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert h.terminated[0].reason == "timer_B" and h.delivered[0].at == pytest.approx(6.4)
    assert tx.state is S.TERMINATED and h.deliveries() == ["408"]


def test_stale_timer_is_ignored():
    tx, h = start()
    h.apply(tx.handle(RecvResponse(respond(tx.request, 180)), 0.1))
    assert tx.handle(TimerFired("A"), 0.5) == []
    assert tx.handle(TimerFired("B"), 32) == []
    assert tx.handle(TimerFired("nonsense"), 32) == []
    assert tx.state is S.PROCEEDING


def test_terminated_emits_terminated_once():
    tx, h = start()
    h.run_until(40)
    assert tx.handle(RecvResponse(respond(tx.request, 200)), 41) == []
    assert h.terminated == [Terminated(tx.key, "timer_B")]


def test_rejects_non_invite_and_double_start():
    with pytest.raises(LocalProtocolError):
        ClientInviteTransaction(make_request("OPTIONS"), UDP)
    tx, _ = start()
    with pytest.raises(LocalProtocolError):
        tx.start(1.0)
