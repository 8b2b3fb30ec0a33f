"""INVITE server transaction: RFC 3261 figure 7 plus the RFC 6026 Accepted state."""

from __future__ import annotations

import pytest
from txharness import TCP, UDP, Harness, drive, make_request, respond

from sipcore.errors import LocalProtocolError
from sipcore.message import Response
from sipcore.transaction import (
    CancelTimer,
    Deliver,
    NoAck,
    RecvRequest,
    Send,
    ServerInviteState,
    ServerInviteTransaction,
    SetTimer,
    UserRespond,
)

S = ServerInviteState
G_TIMES = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # T1 doubling, capped at T2


def start(dest=UDP, auto_trying=True):
    tx = ServerInviteTransaction(make_request(), dest, auto_trying=auto_trying)
    h = Harness.for_tx(tx)
    h.apply(tx.start(0.0))
    return tx, h


CASES = [
    ("auto-100-after-200ms", UDP, [("at", 0.2)], S.PROCEEDING, [(0.2, "100")], [], None),
    ("no-100-before-200ms", UDP, [("at", 0.19)], S.PROCEEDING, [], [], None),
    ("tu-180-cancels-auto-100", UDP, [("at", 0.1), ("respond", 180), ("at", 1)], S.PROCEEDING,
     [(0.1, "180")], [], None),
    ("retx-before-any-response-absorbed", UDP, [("retx",)], S.PROCEEDING, [], [], None),
    ("retx-resends-180", UDP, [("respond", 180), ("at", 1), ("retx",)], S.PROCEEDING,
     [(0, "180"), (1, "180")], [], None),
    ("retx-resends-auto-100", UDP, [("at", 0.5), ("retx",)], S.PROCEEDING, [(0.2, "100"), (0.5, "100")],
     [], None),
    ("retx-resends-latest-1xx", UDP, [("respond", 180), ("respond", 183), ("retx",)], S.PROCEEDING,
     [(0, "180"), (0, "183"), (0, "183")], [], None),
    ("486-timer-G-doubles-to-T2", UDP, [("respond", 486), ("at", 12)], S.COMPLETED,
     [(t, "486") for t in G_TIMES[:6]], [], None),
    ("486-timer-H-no-ack", UDP, [("respond", 486), ("at", 32)], S.TERMINATED, [(t, "486") for t in G_TIMES],
     ["NoAck"], "timer_H"),
    ("486-retx-resends-final", UDP, [("respond", 486), ("at", 0.2), ("retx",)], S.COMPLETED,
     [(0, "486"), (0.2, "486")], [], None),
    ("ack-confirmed-stops-G", UDP, [("respond", 486), ("at", 0.6), ("ack",), ("at", 5.5)], S.CONFIRMED,
     [(0, "486"), (0.5, "486")], [], None),
    ("confirmed-timer-I-T4", UDP, [("respond", 486), ("at", 0.6), ("ack",), ("at", 5.6)], S.TERMINATED,
     [(0, "486"), (0.5, "486")], [], "timer_I"),
    ("confirmed-absorbs-ack-and-invite", UDP, [("respond", 486), ("ack",), ("ack",), ("retx",)],
     S.CONFIRMED, [(0, "486")], [], None),
    ("180-then-603", UDP, [("respond", 180), ("respond", 603), ("retx",)], S.COMPLETED,
     [(0, "180"), (0, "603"), (0, "603")], [], None),
    ("2xx-accepted", UDP, [("respond", 180), ("respond", 200), ("at", 31.9)], S.ACCEPTED,
     [(0, "180"), (0, "200")], [], None),
    ("accepted-absorbs-invite", UDP, [("respond", 200), ("retx",), ("retx",)], S.ACCEPTED, [(0, "200")],
     [], None),
    ("accepted-passes-ack-up", UDP, [("respond", 200), ("ack",), ("ack",)], S.ACCEPTED, [(0, "200")],
     ["ACK", "ACK"], None),
    ("accepted-sends-tu-2xx-retransmission", UDP, [("respond", 200), ("at", 0.5), ("respond", 200)],
     S.ACCEPTED, [(0, "200"), (0.5, "200")], [], None),
    ("accepted-timer-L", UDP, [("respond", 200), ("at", 32)], S.TERMINATED, [(0, "200")], [], "timer_L"),
    ("transport-error", UDP, [("err",)], S.TERMINATED, [], ["TransportFailed"], "transport_error"),
    ("completed-transport-error", UDP, [("respond", 500), ("err",)], S.TERMINATED, [(0, "500")],
     ["TransportFailed"], "transport_error"),
    ("accepted-transport-error-informs-tu", UDP, [("respond", 200), ("err",)], S.ACCEPTED, [(0, "200")],
     ["TransportFailed"], None),
    ("tcp-486-no-G-timer-H", TCP, [("respond", 486), ("at", 32)], S.TERMINATED, [(0, "486")], ["NoAck"],
     "timer_H"),
    ("tcp-ack-timer-I-zero", TCP, [("respond", 486), ("at", 1), ("ack",), ("at", 1)], S.TERMINATED,
     [(0, "486")], [], "timer_I"),
    ("tcp-auto-100", TCP, [("at", 0.2)], S.PROCEEDING, [(0.2, "100")], [], None),
]  # fmt: skip


@pytest.mark.parametrize(("dest", "steps", "state", "sends", "delivered", "reason"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_table(dest, steps, state, sends, delivered, reason):
    tx, h = start(dest)
    drive(h, tx, steps)
    assert tx.state is state
    assert h.sends() == [(float(t), m) for t, m in sends]
    assert h.deliveries() == ["INVITE", *delivered]  # the INVITE itself exactly once
    assert [t.reason for t in h.terminated] == ([reason] if reason else [])
    assert all(s.dest == dest for s in h.sent)
    if state is S.TERMINATED:
        assert h.pending() == [] and tx.armed_timers == {}


def test_start_delivers_invite_and_arms_trying():
    tx = ServerInviteTransaction(make_request(), UDP)
    assert tx.start(5.0) == [Deliver(tx.request, tx.key), SetTimer(tx.key, "Trying", 5.2)]


def test_auto_trying_off():
    tx, h = start(auto_trying=False)
    h.run_all()
    assert h.sent == [] and tx.state is S.PROCEEDING


def test_auto_100_copies_request_headers():
    tx, h = start()
    h.run_until(1)
    (s,) = h.sent
    m = s.message
    assert isinstance(m, Response) and m.status == 100 and m.reason == "Trying"
    assert m.via == tx.request.via and m.call_id == tx.request.call_id and m.cseq == tx.request.cseq
    assert m.to.tag is None


def test_final_response_actions_udp():
    tx, _ = start()
    r = respond(tx.request, 486)
    assert tx.handle(UserRespond(r), 1.0) == [
        CancelTimer(tx.key, "Trying"),
        Send(r, UDP),
        SetTimer(tx.key, "G", 1.5),
        SetTimer(tx.key, "H", 33.0),
    ]


def test_timer_h_delivers_no_ack_with_request():
    tx, h = start()
    h.apply(tx.handle(UserRespond(respond(tx.request, 404)), 0.0))
    h.run_all()
    assert h.delivered[-1].event == NoAck(tx.request) and h.delivered[-1].at == 32.0


def test_ack_in_proceeding_is_ignored():
    tx, _h = start()
    ack = make_request("ACK", to_tag="x")
    assert tx.handle(RecvRequest(ack), 0.1) == [] and tx.state is S.PROCEEDING


@pytest.mark.parametrize(
    ("first", "second"),
    [(486, 486), (486, 200), (486, 180), (200, 180), (200, 486)],
    ids=["486-486", "486-200", "486-180", "200-180", "200-486"],
)
def test_tu_illegal_response_raises(first, second):
    tx, _ = start()
    tx.handle(UserRespond(respond(tx.request, first)), 0.0)
    with pytest.raises(LocalProtocolError):
        tx.handle(UserRespond(respond(tx.request, second)), 0.1)


def test_rejects_non_invite():
    with pytest.raises(LocalProtocolError):
        ServerInviteTransaction(make_request("BYE"), UDP)
