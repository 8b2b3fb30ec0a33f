"""TransactionLayer routing and the pure key functions, plus a lossy UAC <-> UAS pair."""

from __future__ import annotations

import pytest
from txharness import TCP, UDP, FakeClock, Harness, ack_for, make_request, respond

from sipcore.errors import LocalProtocolError
from sipcore.message import Request, Response
from sipcore.transaction import (
    CancelReceived,
    ClientInviteState,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    Destination,
    ServerInviteState,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionLayer,
    cancel_target_key,
    client_key,
    make_cancel,
    server_key,
)

PEER = Destination("198.51.100.7", 5062, "UDP")

# ------------------------------------------------------------------------------------------ keys

KEY_CASES = [
    ("retransmission-same-key", dict(), dict(), True),
    ("other-branch", dict(), dict(branch="z9hG4bK-other"), False),
    ("other-sent-by-host", dict(), dict(host="evil.example.com"), False),
    ("sent-by-host-case-insensitive", dict(), dict(host="CLIENT.example.com"), True),
    ("other-sent-by-port", dict(), dict(port=5070), False),
    ("other-method", dict(), dict(method="OPTIONS"), False),
    ("ack-matches-invite", dict(), dict(method="ACK", to_tag="t"), True),
    ("cancel-own-transaction", dict(), dict(method="CANCEL"), False),
    ("2543-retransmission", dict(branch=None), dict(branch=None), True),
    ("2543-ack-matches-invite", dict(branch=None), dict(branch=None, method="ACK", to_tag="t"), True),
    ("2543-other-call-id", dict(branch=None), dict(branch=None, call_id="x"), False),
    ("2543-other-cseq", dict(branch=None), dict(branch=None, cseq=2), False),
    ("2543-no-cookie-branch", dict(branch="abc"), dict(branch="abc"), True),
    ("2543-no-cookie-other-branch", dict(branch="abc"), dict(branch="abd"), False),
    ("badbranch-cookie-only-uses-2543", dict(branch="z9hG4bK"), dict(branch="z9hG4bK", call_id="y"), False),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "same"), [c[1:] for c in KEY_CASES], ids=[c[0] for c in KEY_CASES])
def test_server_key_matching(a, b, same):
    assert (server_key(make_request(**a)) == server_key(make_request(**b))) is same


def test_2543_non_invite_includes_to_tag():
    a = make_request("BYE", branch=None, to_tag="1")
    b = make_request("BYE", branch=None, to_tag="2")
    assert server_key(a) != server_key(b)
    assert server_key(a)[0] == "s2543"
    assert server_key(make_request(branch="z9hG4bK"))[0] == "s2543"  # RFC 4475 badbranch


def test_cancel_target_key_is_invite_key():
    inv = make_request()
    assert cancel_target_key(make_cancel(inv)) == server_key(inv)
    inv2543 = make_request(branch=None)
    assert cancel_target_key(make_cancel(inv2543)) == server_key(inv2543)


def test_client_key_matches_response_by_branch_and_method():
    req = make_request()
    assert client_key(respond(req, 180)) == client_key(req)
    assert client_key(respond(make_cancel(req), 200)) != client_key(req)


# ----------------------------------------------------------------------------------- server side


def new_layer():
    layer = TransactionLayer()
    return layer, Harness.for_layer(layer)


def test_new_invite_creates_server_tx_and_retransmission_is_absorbed():
    layer, h = new_layer()
    inv = make_request()
    tx, actions = layer.on_request(inv, PEER, 0.0)
    h.apply(actions)
    assert isinstance(tx, ServerInviteTransaction) and tx.dest == PEER
    assert actions[0] == Deliver(inv, tx.key) and tx.key in layer
    tx2, actions2 = layer.on_request(make_request(), PEER, 0.1)
    assert tx2 is tx and actions2 == []
    assert h.deliveries() == ["INVITE"] and len(layer) == 1


def test_non_invite_creates_server_non_invite_tx():
    layer, _ = new_layer()
    tx, actions = layer.on_request(make_request("OPTIONS"), PEER, 0.0)
    assert isinstance(tx, ServerNonInviteTransaction)
    assert [type(a) for a in actions] == [Deliver]


def test_ack_for_non_2xx_is_absorbed_by_invite_tx_and_tx_removed_after_timer_i():
    layer, h = new_layer()
    tx, actions = layer.on_request(make_request(), PEER, 0.0)
    h.apply(actions)
    assert tx is not None
    h.apply(layer.respond(tx.key, respond(tx.request, 486), 0.0))
    resp = h.sent[-1].message
    assert isinstance(resp, Response)
    tx2, actions = layer.on_request(ack_for(tx.request, resp), PEER, 0.3)
    h.apply(actions)
    assert tx2 is tx and tx.state is ServerInviteState.CONFIRMED and h.deliveries() == ["INVITE"]
    h.run_all()
    assert len(layer) == 0 and h.terminated[-1].reason == "timer_I"
    assert layer.handle_timer(tx.key, "I", 100.0) == []  # late fire for a gone tx


def test_ack_for_2xx_is_dialog_level():
    layer, h = new_layer()
    tx, actions = layer.on_request(make_request(), PEER, 0.0)
    assert tx is not None
    h.apply(layer.respond(tx.key, respond(tx.request, 200), 0.0))
    ack = ack_for(tx.request, tx.last_response, branch="z9hG4bK-ack-2xx")
    tx2, actions = layer.on_request(ack, PEER, 0.1)
    assert tx2 is None and actions == [Deliver(ack, None)]
    assert tx.state is ServerInviteState.ACCEPTED


def test_2543_ack_must_carry_our_to_tag():
    layer, h = new_layer()
    tx, _actions = layer.on_request(make_request(branch=None), PEER, 0.0)
    assert tx is not None
    h.apply(layer.respond(tx.key, respond(tx.request, 404, to_tag="ours"), 0.0))
    wrong = make_request("ACK", branch=None, to_tag="theirs")
    assert layer.on_request(wrong, PEER, 0.1) == (None, [Deliver(wrong, None)])
    right = make_request("ACK", branch=None, to_tag="ours")
    assert layer.on_request(right, PEER, 0.2)[0] is tx
    assert tx.state is ServerInviteState.CONFIRMED


def test_cancel_matches_invite_200_and_cancel_received():
    layer, h = new_layer()
    inv_tx, actions = layer.on_request(make_request(), PEER, 0.0)
    h.apply(actions)
    assert inv_tx is not None
    h.apply(layer.respond(inv_tx.key, respond(inv_tx.request, 180, to_tag="uas"), 0.0))
    cancel = make_cancel(make_request())
    h.run_until(1.0)
    ctx, actions = layer.on_request(cancel, PEER, 1.0)
    h.apply(actions)
    assert isinstance(ctx, ServerNonInviteTransaction) and ctx.key != inv_tx.key
    ok = h.sent[-1].message
    assert isinstance(ok, Response) and ok.status == 200 and ok.cseq.method == "CANCEL"
    assert ok.to.tag == "uas"  # 9.2: same To tag as the INVITE's response
    assert h.delivered[-1].event == CancelReceived(cancel) and h.delivered[-1].owner == inv_tx.key
    # A CANCEL retransmission is answered again by its own transaction, not re-delivered.
    h.run_until(1.5)
    _, again = layer.on_request(make_cancel(make_request()), PEER, 1.5)
    h.apply(again)
    assert h.sends()[-1] == (1.5, "200") and h.deliveries() == ["INVITE", "CancelReceived"]
    # The TU answers the INVITE with 487.
    h.apply(layer.respond(inv_tx.key, respond(inv_tx.request, 487, to_tag="uas"), 1.5))
    assert inv_tx.state is ServerInviteState.COMPLETED


def test_cancel_after_final_gets_200_but_no_cancel_received():
    layer, h = new_layer()
    inv_tx, _actions = layer.on_request(make_request(), PEER, 0.0)
    assert inv_tx is not None
    h.apply(layer.respond(inv_tx.key, respond(inv_tx.request, 200), 0.0))
    h.apply(layer.on_request(make_cancel(make_request()), PEER, 0.1)[1])
    assert h.sends()[-1] == (0.0, "200") and "CancelReceived" not in h.deliveries()


def test_cancel_without_invite_gets_481():
    layer, h = new_layer()
    cancel = make_cancel(make_request())
    ctx, actions = layer.on_request(cancel, PEER, 0.0)
    h.apply(actions)
    resp = h.sent[-1].message
    assert isinstance(resp, Response) and resp.status == 481 and resp.to.tag
    assert h.deliveries() == [] and ctx is not None and ctx.key in layer
    h.run_all()
    assert len(layer) == 0


def test_respond_to_unknown_key_raises():
    layer, _ = new_layer()
    with pytest.raises(LocalProtocolError):
        layer.respond(("s", "nope"), respond(make_request(), 200), 0.0)


# ----------------------------------------------------------------------------------- client side


def test_send_request_and_route_responses():
    layer, h = new_layer()
    inv = make_request(branch="z9hG4bK-out")
    tx, actions = layer.send_request(inv, UDP, 0.0)
    h.apply(actions)
    assert isinstance(tx, ClientInviteTransaction) and h.sends() == [(0.0, "INVITE")]
    got, actions = layer.on_response(respond(inv, 180), 0.1)
    h.apply(actions)
    assert got is tx and h.deliveries() == ["180"]
    h.apply(layer.on_response(respond(inv, 200), 0.2)[1])
    assert tx.state is ClientInviteState.ACCEPTED
    h.run_all()
    assert len(layer) == 0
    # After Timer M a 2xx retransmission is stray: handed to the TU (which re-ACKs it).
    late = respond(inv, 200)
    assert layer.on_response(late, 40.0) == (None, [Deliver(late, None)])


def test_non_invite_client_via_layer_and_tcp_cleanup():
    layer, h = new_layer()
    req = make_request("REGISTER", branch="z9hG4bK-reg")
    tx, actions = layer.send_request(req, TCP, 0.0)
    h.apply(actions)
    assert isinstance(tx, ClientNonInviteTransaction)
    h.run_until(0.5)
    h.apply(layer.on_response(respond(req, 200), 0.5)[1])
    h.run_until(0.5)  # Timer K is zero on TCP
    assert len(layer) == 0 and h.deliveries() == ["200"]


def test_transport_error_via_layer():
    layer, h = new_layer()
    req = make_request("OPTIONS", branch="z9hG4bK-o")
    tx, actions = layer.send_request(req, UDP, 0.0)
    h.apply(actions)
    h.apply(layer.transport_error(tx.key, 0.1, "unreachable"))
    assert h.deliveries() == ["503"] and len(layer) == 0 and h.pending() == []
    assert layer.transport_error(tx.key, 0.2) == []


def test_send_ack_or_duplicate_branch_raises():
    layer, _ = new_layer()
    with pytest.raises(LocalProtocolError):
        layer.send_request(make_request("ACK"), UDP, 0.0)
    layer.send_request(make_request(), UDP, 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(make_request(), UDP, 0.0)


def test_response_without_via_is_stray():
    layer, _ = new_layer()
    r = respond(make_request(), 200)
    r.via = []
    assert layer.on_response(r, 0.0)[0] is None


# ------------------------------------------------------------------- in-memory pair with losses


class Net:
    """UAC layer <-> UAS layer on one FakeClock; ``loss`` pops True to drop a message."""

    UAC = Destination("192.0.2.1", 5060, "UDP")
    UAS = Destination("192.0.2.2", 5060, "UDP")

    def __init__(self, loss_to_uas: list[bool], loss_to_uac: list[bool]) -> None:
        self.clock = FakeClock()
        self.uac, self.uas = TransactionLayer(), TransactionLayer()
        self.hc = Harness.for_layer(self.uac, self.clock)
        self.hs = Harness.for_layer(self.uas, self.clock)
        self.loss = {id(self.hc): loss_to_uas, id(self.hs): loss_to_uac}
        self.seen = {id(self.hc): 0, id(self.hs): 0}

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for src, dst_layer, dst_h in ((self.hc, self.uas, self.hs), (self.hs, self.uac, self.hc)):
                while self.seen[id(src)] < len(src.sent):
                    msg = src.sent[self.seen[id(src)]].message
                    self.seen[id(src)] += 1
                    moved = True
                    loss = self.loss[id(src)]
                    if loss and loss.pop(0):
                        continue
                    if isinstance(msg, Request):
                        dst_h.apply(dst_layer.on_request(msg, self.UAC, self.clock.now)[1])
                    else:
                        dst_h.apply(dst_layer.on_response(msg, self.clock.now)[1])

    def run_until(self, t: float) -> None:
        while True:
            deadlines = [(d, h) for h in (self.hc, self.hs) if (d := h.next_deadline()) is not None]
            if not deadlines or min(d for d, _ in deadlines) > t:
                break
            _, h = min(deadlines, key=lambda x: x[0])
            h.step()
            self.pump()
        self.clock.now = max(self.clock.now, t)


def test_lossy_pair_invite_486():
    # The first INVITE and the first 486 are lost; Timers A and G recover both.
    net = Net(loss_to_uas=[True], loss_to_uac=[True])
    inv = make_request(branch="z9hG4bK-pair")
    net.hc.apply(net.uac.send_request(inv, Net.UAS, 0.0)[1])
    net.pump()
    net.run_until(0.5)  # Timer A: the retransmission gets through
    assert net.hs.deliveries() == ["INVITE"]
    key = net.hs.delivered[0].owner
    assert key is not None
    net.hs.apply(net.uas.respond(key, respond(inv, 486), net.clock.now))
    net.pump()  # lost
    assert net.hc.deliveries() == []
    net.run_until(100)
    assert net.hc.deliveries() == ["486"]  # delivered once, although 486 arrived again
    assert net.hs.deliveries() == ["INVITE"]  # no NoAck: the ACK got through
    assert [s.label for s in net.hc.sent].count("ACK") >= 1
    assert len(net.uac) == 0 and len(net.uas) == 0


def test_lossy_pair_invite_200_and_bye():
    net = Net(loss_to_uas=[False, True], loss_to_uac=[])
    inv = make_request(branch="z9hG4bK-pair2")
    net.hc.apply(net.uac.send_request(inv, Net.UAS, 0.0)[1])
    net.pump()
    key = net.hs.delivered[0].owner
    assert key is not None
    net.hs.apply(net.uas.respond(key, respond(inv, 200), 0.0))
    net.pump()
    assert net.hc.deliveries() == ["200"]
    bye = make_request("BYE", branch="z9hG4bK-bye", cseq=2, to_tag="to-1")
    net.hc.apply(net.uac.send_request(bye, Net.UAS, 1.0)[1])
    net.pump()  # the first BYE is lost; Timer E resends it
    net.run_until(1.5)
    assert net.hs.deliveries() == ["INVITE", "BYE"]
    bye_key = net.hs.delivered[-1].owner
    assert bye_key is not None
    net.hs.apply(net.uas.respond(bye_key, respond(bye, 200), net.clock.now))
    net.pump()
    net.run_until(200)
    assert net.hc.deliveries() == ["200", "200"]
    assert len(net.uac) == 0 and len(net.uas) == 0


def test_transaction_package_is_sans_io():
    # STYLE items 2 and 26: no asyncio, no logging, no clock in the transaction core.
    import pathlib

    import sipcore.transaction as pkg

    for path in pathlib.Path(pkg.__file__).parent.glob("*.py"):
        text = path.read_text()
        for banned in ("import asyncio", "import logging", "structlog", "time.monotonic", "import time"):
            assert banned not in text, f"{path.name} uses {banned}"


def test_abort_proceeding_invite_after_cancel_timeout():
    # RFC 3261 9.1: no final response 64*T1 after the CANCEL -> the TU destroys the transaction.
    layer, h = new_layer()
    inv = make_request(branch="z9hG4bK-ab")
    tx, actions = layer.send_request(inv, UDP, 0.0)
    h.apply(actions)
    h.apply(layer.on_response(respond(inv, 180), 0.0)[1])
    assert h.pending() == [] and tx.state is ClientInviteState.PROCEEDING  # nothing would end it
    h.apply(layer.abort(tx.key, "cancel timeout", 32.0))
    assert tx.terminated and len(layer) == 0 and h.terminated[-1].reason == "cancel timeout"
    assert layer.abort(tx.key, "again", 33.0) == [] and tx.abort("again") == []


def test_abort_cancels_armed_timers():
    layer, h = new_layer()
    tx, actions = layer.on_request(make_request(), PEER, 0.0)
    h.apply(actions)
    assert tx is not None and h.pending() == ["Trying"]
    h.apply(layer.abort(tx.key, "tu gone", 0.1))
    assert h.pending() == [] and tx.armed_timers == {}


@pytest.mark.parametrize("branch", [None, "z9hG4bK", "old-style"], ids=["none", "badbranch", "no-cookie"])
def test_cancel_matches_rfc2543_invite(branch):
    layer, h = new_layer()
    inv_tx, actions = layer.on_request(make_request(branch=branch), PEER, 0.0)
    h.apply(actions)
    assert inv_tx is not None
    h.apply(layer.on_request(make_cancel(make_request(branch=branch)), PEER, 0.0)[1])
    assert h.sends()[-1] == (0.0, "200") and h.deliveries() == ["INVITE", "CancelReceived"]
    assert len(layer) == 2
