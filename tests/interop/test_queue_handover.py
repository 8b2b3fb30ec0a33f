"""Personal queue hand-over through the B2BUA (issue 5 point 7, RFC 3725 flow I), SIPp peers:
bob is in a call; a second caller waits in his queue (a SIPp UAS at the media address answers
``sip:queue@...``); bob hangs up... here the first caller does, which frees bob; bob's softphone
rings with the queued caller (an INVITE without SDP), answers, and the B2BUA re-INVITEs the
caller with bob's SDP, ACKs bob with the caller's answer and releases the media leg."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.callpeers import CallServer, Peer, call_server, free_port, header, register_phone, start_peer

pytestmark = pytest.mark.interop

BOB_FIXED = "+4681001002"


def _debug(server: CallServer, *peers: Peer) -> str:
    return "\n".join(p.debug() for p in peers) + "\n--- server ---\n" + server.log_path.read_text()[-6000:]


def test_queued_caller_is_handed_over_to_bob_when_his_call_ends(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        r = server.cli(
            "user", "groups", "bob", "--remove", "busy.both.voicemail", "--add", "busy.fixed.queue"
        )
        assert r.returncode == 0, r.stderr
        phone_port = free_port()
        while phone_port in (server.pstn, server.mobile, server.media):
            phone_port = free_port()  # the trunk ports are reserved but not bound yet
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        # bob's softphone takes both calls: the first, then the hand-over (-m 2).
        soft = start_peer(
            "softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "200"}, extra=["-m", "2"]
        )
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        first = start_peer(
            "caller1",
            "call_uac.xml",
            server.pstn,
            wd,
            server.address,
            keys={"caller": "+46812345678"},
            service=BOB_FIXED,
            subs={"hold": "4000"},
        )
        assert mobile.wait(10) == 0, _debug(server, first, soft, mobile)  # bob answered
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        queued = start_peer(
            "caller2",
            "call_uac_queued.xml",
            server.mobile,
            wd,
            server.address,
            keys={"caller": "+46899999999"},
            service=BOB_FIXED,
            subs={"hold": "1000", "wait": "15000"},
        )
        codes = [p.wait(30) for p in (first, queued, media, soft)]
        assert codes == [0, 0, 0, 0], _debug(server, first, queued, soft, media)
        (to_queue,) = media.received_requests("INVITE")
        assert to_queue.split()[1].startswith(f"sip:queue@127.0.0.1:{server.media}")
        assert media.received_requests("BYE")  # the media server's leg was released
        invites = soft.received_requests("INVITE")
        assert len(invites) == 2
        assert header(invites[1], "Content-Length") == "0"  # offerless: bob makes the offer
        assert "+46899999999" in (header(invites[1], "From") or "")
        acks = soft.received_requests("ACK")
        assert any("o=caller2" in a for a in acks), acks  # the caller's answer reached bob
        reinvites = queued.received_requests("INVITE")
        assert len(reinvites) == 1 and "o=callee" in reinvites[0]  # bob's SDP reached the caller
        assert soft.received_requests("BYE")  # the caller hung up: bob's leg got the BYE
        assert server.events("queue.handed_over")
