"""Dialog state (RFC 3261 12): route sets, remote target, CSeq, in-dialog requests, matching."""

from __future__ import annotations

import pytest

from sipcore.builders import make_response
from sipcore.dialog import Dialog, DialogId, DialogMatcher, DialogState
from sipcore.message import CSeq, NameAddr, Request, Uri, Via

ME = NameAddr(Uri(user="vidare", host="10.0.0.1", port=5060))


def _na(text_host: str, *, lr: bool = True, user: str | None = None) -> NameAddr:
    return NameAddr(Uri(user=user, host=text_host, params={"lr": None} if lr else {}))


def _invite() -> Request:
    return Request(
        method="INVITE",
        uri=Uri(user="bob", host="b.example"),
        via=[Via("UDP", "10.0.0.1", 5060, {"branch": "z9hG4bK1"})],
        from_=NameAddr(Uri(user="alice", host="a.example"), params={"tag": "ftag"}),
        to=NameAddr(Uri(user="bob", host="b.example")),
        call_id="cid",
        cseq=CSeq(7, "INVITE"),
        max_forwards=70,
        contact=[NameAddr(Uri(user="alice", host="192.0.2.1", port=5062))],
        record_route=[_na("p1.example"), _na("p2.example")],
    )


def _via() -> Via:
    return Via("UDP", "10.0.0.1", 5060, {"branch": "z9hG4bKnew"})


def test_uac_dialog_reverses_record_route_and_takes_contact_as_target() -> None:
    inv = _invite()
    ok = make_response(inv, 200, to_tag="ttag")
    ok.contact = [NameAddr(Uri(user="bob", host="192.0.2.2", port=5070))]
    ok.record_route = [r.copy() for r in inv.record_route]  # proxies echo it (16.6, 12.1.1)
    d = Dialog.uac(inv, ok, ME)
    assert d.id == DialogId("cid", "ftag", "ttag")
    assert d.state is DialogState.CONFIRMED
    assert [r.uri.host for r in d.route_set] == ["p2.example", "p1.example"]
    assert str(d.remote_target) == "sip:bob@192.0.2.2:5070"
    bye = d.new_request("BYE", _via())
    assert bye.cseq == CSeq(8, "BYE")
    assert str(bye.uri) == "sip:bob@192.0.2.2:5070"
    assert [r.uri.host for r in bye.route] == ["p2.example", "p1.example"]
    assert bye.from_.tag == "ftag" and bye.to.tag == "ttag" and bye.call_id == "cid"
    ack = d.ack(7, _via())
    assert ack.cseq == CSeq(7, "ACK") and d.local_seq == 8


def test_uas_dialog_keeps_record_route_order_and_checks_cseq() -> None:
    inv = _invite()
    d = Dialog.uas(inv, "mytag", ME)
    assert d.id == DialogId("cid", "mytag", "ftag")
    assert d.state is DialogState.EARLY
    assert [r.uri.host for r in d.route_set] == ["p1.example", "p2.example"]
    assert d.next_hop().host == "p1.example"
    d.confirm()
    bye = Request(
        method="BYE",
        uri=Uri(host="10.0.0.1"),
        via=[_via()],
        from_=inv.from_.copy(),
        to=d.local.copy(),
        call_id="cid",
        cseq=CSeq(6, "BYE"),
    )
    assert d.receive_request(bye) == 500  # lower than the INVITE's CSeq (12.2.2)
    bye.cseq = CSeq(8, "BYE")
    assert d.receive_request(bye) is None and d.state is DialogState.TERMINATED


def test_target_refresh_by_reinvite() -> None:
    d = Dialog.uas(_invite(), "mytag", ME)
    re = _invite()
    re.cseq = CSeq(8, "INVITE")
    re.contact = [NameAddr(Uri(user="alice", host="192.0.2.9"))]
    assert d.receive_request(re) is None
    assert str(d.remote_target) == "sip:alice@192.0.2.9"


def test_strict_route_puts_first_route_in_request_uri() -> None:
    inv = _invite()
    inv.record_route = [_na("strict.example", lr=False)]
    d = Dialog.uas(inv, "t", ME)
    req = d.new_request("INFO", _via())
    assert req.uri.host == "strict.example"
    assert [str(r.uri) for r in req.route] == ["sip:alice@192.0.2.1:5062"]


def test_ack_requires_the_invite_cseq() -> None:
    from sipcore.errors import LocalProtocolError

    d = Dialog.uas(_invite(), "t", ME)
    with pytest.raises(LocalProtocolError):
        d.new_request("ACK", _via())


def test_matcher_finds_requests_and_responses() -> None:
    m: DialogMatcher[str] = DialogMatcher()
    inv = _invite()
    d = Dialog.uas(inv, "mytag", ME)
    m.add(d.id, "leg-a")
    req = Request(
        method="BYE",
        uri=Uri(host="x"),
        via=[_via()],
        from_=inv.from_.copy(),
        to=d.local.copy(),
        call_id="cid",
        cseq=CSeq(8, "BYE"),
    )
    assert m.match_request(req) == "leg-a"
    req.to.params.pop("tag")
    assert m.match_request(req) is None
    ok = make_response(inv, 200, to_tag="tt")
    m.add(DialogId("cid", "ftag", "tt"), "leg-b")
    assert m.match_response(ok) == "leg-b"
    m.remove(d.id)
    assert len(m) == 1
