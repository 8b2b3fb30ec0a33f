"""The call state machine on a fake clock: forking, answers, busy, no answer, unreachable, CANCEL."""

from __future__ import annotations

from urllib.parse import unquote

from b2bua_harness import MEDIA, MOBILE, PSTN, SDP, SOFTPHONE, B2bua

from sipcore.b2bua.call import COMPLETED_ELSEWHERE
from sipcore.b2bua.events import SendRequest
from sipcore.message import CSeq, Request, Response, Via


def _forked() -> tuple[B2bua, object]:
    h = B2bua()
    h.register("bob")
    invite = h.invite("+4681001002")
    return h, invite


def _callee_bye(h: B2bua, soft: SendRequest, ok: Response, branch: str) -> Request:
    """The softphone that answered hangs up: its BYE, fed to the core."""
    bye = Request(
        method="BYE",
        uri=soft.request.contact[0].uri.copy(),
        via=[Via("UDP", SOFTPHONE.host, SOFTPHONE.port, {"branch": branch})],
        from_=ok.to.copy(),
        to=soft.request.from_.copy(),
        call_id=soft.request.call_id,
        cseq=CSeq(1, "BYE"),
    )
    h.run(h.mgr.on_request(bye, SOFTPHONE, h.now))
    return bye


def test_incoming_call_forks_to_softphone_and_mobile() -> None:
    h, _ = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))
    mobile = h.invites_to((MOBILE.host, MOBILE.port))
    assert len(soft) == 1 and len(mobile) == 1
    assert str(soft[0].request.uri) == "sip:bob@127.0.0.1:6000"
    assert str(mobile[0].request.uri) == "sip:+46701001002@127.0.0.1:5080"
    # SDP passes unchanged; a new Call-ID and From tag per leg; Max-Forwards decremented.
    for s in soft + mobile:
        assert s.request.body == SDP
        assert s.request.max_forwards == 69
        assert s.request.header("Content-Type") == "application/sdp"
    assert soft[0].request.call_id != mobile[0].request.call_id
    assert h.events("route.decided")[0]["action"] == "ring"
    assert ("c1", "ring") in h.timers  # the default group's 30 s no-answer timer
    assert h.timers[("c1", "ring")] == h.now + 30


def test_softphone_answers_first_2xx_wins_and_mobile_is_cancelled_with_reason() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(mobile, 180)
    h.answer(soft, 183, body=b"v=0 early")
    assert h.statuses_to(invite) == [180, 183]
    assert h.responses[-1].response.body == b"v=0 early"  # early media SDP relayed
    h.answer(soft, 200, body=b"v=0 answer")
    assert h.statuses_to(invite)[-1] == 200
    ok = h.responses[-1].response
    assert ok.body == b"v=0 answer" and ok.contact and ok.to.tag
    cancels = h.sent("CANCEL")
    assert len(cancels) == 1 and cancels[0].request.call_id == mobile.request.call_id
    assert cancels[0].request.header("Reason") == COMPLETED_ELSEWHERE
    assert h.mgr.busy["bob"] == 1
    assert "ring" not in {k[1] for k in h.timers}
    # The caller's ACK is relayed as the ACK of the softphone's 2xx.
    h.in_dialog(invite, "ACK")
    acks = h.sent("ACK")
    assert len(acks) == 1 and acks[0].request.call_id == soft.request.call_id and acks[0].owner is None


def test_cancel_is_owed_until_the_losing_leg_sends_a_provisional() -> None:
    h, _ = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(soft, 200, body=SDP)
    assert h.sent("CANCEL") == []  # RFC 3261 9.1: not before a provisional
    h.answer(mobile, 180)
    assert [c.request.call_id for c in h.sent("CANCEL")] == [mobile.request.call_id]


def test_answered_on_mobile_cancels_softphone() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(soft, 180)
    h.answer(mobile, 200, body=SDP)
    assert h.statuses_to(invite)[-1] == 200
    assert [c.request.call_id for c in h.sent("CANCEL")] == [soft.request.call_id]


def test_late_2xx_from_losing_leg_is_acked_and_byed() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(mobile, 180)
    h.answer(soft, 200, body=SDP)
    h.answer(mobile, 200, body=SDP)  # crossed our CANCEL
    assert h.statuses_to(invite).count(200) == 1
    ack = [a for a in h.sent("ACK") if a.request.call_id == mobile.request.call_id]
    bye = [b for b in h.sent("BYE") if b.request.call_id == mobile.request.call_id]
    assert len(ack) == 1 and len(bye) == 1
    assert bye[0].request.cseq.number == 2 and bye[0].request.to.tag


def test_all_legs_busy_go_to_voicemail_with_cause_486() -> None:
    h, invite = _forked()
    for s in h.invites_to():
        h.answer(s, 486)
    media = h.invites_to(MEDIA)
    assert len(media) == 1
    uri = media[0].request.uri
    assert uri.user == "voicemail" and uri.params["cause"] == "486"
    assert unquote(uri.params["target"] or "") == "sip:bob@demo.test"
    req = media[0].request
    assert req.header("X-Vidare-Name") == "Bob Berg"
    assert req.header("X-Vidare-Extension") == "1002"
    assert req.header("X-Vidare-Language") == "sv"
    assert req.header("X-Vidare-Play-Activity") == "no"
    assert "cause%3D486" in (req.header("History-Info") or "")
    assert req.body == SDP
    # The media server answers: the caller is connected to voicemail.
    h.answer(media[0], 200, body=b"v=0 vm")
    assert h.statuses_to(invite)[-1] == 200
    assert h.mgr.busy["bob"] == 0  # voicemail is not bob being busy


def test_no_answer_timer_cancels_legs_and_forwards_with_408() -> None:
    h, _ = _forked()
    for s in h.invites_to():
        h.answer(s, 180)
    h.advance(29.9)
    assert h.invites_to(MEDIA) == []
    h.advance(0.2)
    assert len(h.sent("CANCEL")) == 2
    assert all(c.request.header("Reason") is None for c in h.sent("CANCEL"))
    media = h.invites_to(MEDIA)
    assert len(media) == 1 and media[0].request.uri.params["cause"] == "408"
    assert h.events("call.situation")[0]["situation"] == "no_answer"


def test_unreachable_no_registration_and_mobile_480_forwards_at_once() -> None:
    h = B2bua()  # bob has no registered softphone
    h.invite("+4681001002")
    assert [s.dest.port for s in h.invites_to()] == [MOBILE.port]
    h.answer(h.invites_to()[0], 480)
    media = h.invites_to(MEDIA)
    assert len(media) == 1 and media[0].request.uri.params["cause"] == "408"
    assert h.now == 1000.0  # at once, no waiting for the timer
    assert ("c1", "ring") not in h.timers


def test_caller_cancel_propagates_and_gets_487() -> None:
    h, invite = _forked()
    for s in h.invites_to():
        h.answer(s, 180)
    h.in_dialog(invite, "CANCEL")
    assert len(h.sent("CANCEL")) == 2
    assert h.statuses_to(invite)[-1] == 487
    ended = h.events("call.ended")
    assert ended and ended[0]["outcome"] == "cancelled"
    assert h.cdrs[0].record.outcome == "cancelled"
    # The cancelled legs' 487s change nothing more.
    for s in h.invites_to():
        h.answer(s, 487)
    assert h.invites_to(MEDIA) == []


def test_bye_from_caller_ends_both_sides_and_writes_cdr() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    h.advance(12)
    bye = h.in_dialog(invite, "BYE")
    assert h.responses[-1].request is bye and h.responses[-1].response.status == 200
    byes = [b for b in h.sent("BYE") if b.request.call_id == soft.request.call_id]
    assert len(byes) == 1
    assert h.mgr.busy["bob"] == 0
    rec = h.cdrs[-1].record
    assert rec.outcome == "answered" and rec.duration == 12 and rec.user == "bob"
    assert h.events("call.ended")[0]["duration"] == 12


def test_unknown_number_gets_404() -> None:
    h = B2bua()
    invite = h.invite("+4681999999")
    assert h.statuses_to(invite) == [404]
    assert h.invites_to() == []


def test_2xx_is_retransmitted_until_the_caller_acks() -> None:
    h, invite = _forked()
    h.answer(h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0], 200, body=SDP)
    h.advance(0.5 + 1.0 + 0.1)
    assert h.statuses_to(invite).count(200) == 3
    h.in_dialog(invite, "ACK")
    h.advance(10)
    assert h.statuses_to(invite).count(200) == 3


def test_in_dialog_reinvite_is_relayed_and_its_ack_follows() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    reinvite = h.in_dialog(invite, "INVITE", cseq=2)
    relayed = [r for r in h.sent("INVITE") if r.request.call_id == soft.request.call_id and r.request.to.tag]
    assert len(relayed) == 1 and relayed[0].request.cseq.number == 2
    h.answer(relayed[0], 200, body=b"v=0 hold", tag=relayed[0].request.to.tag)
    assert h.responses[-1].request is reinvite and h.responses[-1].response.status == 200
    h.in_dialog(invite, "ACK", cseq=2)
    acks = [a for a in h.sent("ACK") if a.request.call_id == soft.request.call_id]
    assert [a.request.cseq.number for a in acks] == [1, 2]


def test_pstn_source_port_matters_for_trust() -> None:
    """A peer on the trunk's address but another port is not the trunk: it is challenged."""
    h = B2bua()
    invite = h.invite("+4681001002", source=type(PSTN)("127.0.0.1", 5071))
    assert h.statuses_to(invite) == [407]
    assert h.invites_to() == []


def test_without_a_no_answer_group_the_system_maximum_ends_with_480() -> None:
    from policy_fixtures import with_user

    h = B2bua()
    h.snap = with_user(h.snap, "bob", groups={"busy.both.voicemail"})
    h.register("bob")
    invite = h.invite("+4681001002")
    for s in h.invites_to():
        h.answer(s, 180)
    h.advance(119)
    assert h.statuses_to(invite)[-1] == 180
    h.advance(2)
    assert h.statuses_to(invite)[-1] == 480
    assert len(h.sent("CANCEL")) == 2
    assert h.invites_to(MEDIA) == []


def test_caller_cancel_before_any_provisional_cancels_once_the_leg_rings() -> None:
    h, invite = _forked()
    h.in_dialog(invite, "CANCEL")
    assert h.statuses_to(invite) == [487]
    assert h.sent("CANCEL") == []
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    h.answer(soft, 180)
    assert [c.request.call_id for c in h.sent("CANCEL")] == [soft.request.call_id]
    # The mobile leg answers although the caller is gone: ACK and BYE it.
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(mobile, 200, body=SDP)
    assert [b.request.call_id for b in h.sent("BYE")] == [mobile.request.call_id]
    assert h.statuses_to(invite) == [487]


def test_bye_from_callee_is_sent_to_the_caller() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    ok = h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    bye = _callee_bye(h, soft, ok, "z9hG4bKbye")
    assert h.responses[-1].request is bye and h.responses[-1].response.status == 200
    to_caller = [b for b in h.sent("BYE") if b.request.call_id == invite.call_id]
    assert len(to_caller) == 1
    assert to_caller[0].dest == PSTN
    assert to_caller[0].request.from_.tag == h.responses[0].response.to.tag
    assert h.events("call.ended")[0]["cause"] == "callee hung up"


def test_retransmitted_2xx_after_the_transaction_is_re_acked() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    ok = h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    h.run(h.mgr.on_response(ok, None, h.now))  # stray: the INVITE transaction is gone
    acks = [a for a in h.sent("ACK") if a.request.call_id == soft.request.call_id]
    assert len(acks) == 2 and acks[0].request is acks[1].request


def test_busy_queue_group_forwards_to_the_queue_service() -> None:
    from policy_fixtures import with_user

    h = B2bua()
    groups = {"activity.both.announcement_voicemail", "no_answer.both.voicemail.30", "busy.fixed.queue"}
    h.snap = with_user(h.snap, "bob", groups=groups)
    h.register("bob")
    invite = h.invite("+4681001002")
    h.answer(h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0], 200, body=SDP)
    h.in_dialog(invite, "ACK")
    before = len(h.invites_to())
    h.invite("+4681001002")
    (queued,) = h.invites_to()[before:]
    assert (queued.dest.host, queued.dest.port) == MEDIA
    assert queued.request.uri.user == "queue" and queued.request.uri.params["cause"] == "486"


def test_max_forwards_zero_gets_483() -> None:
    h = B2bua()
    invite = h.invite("+4681001002")
    invite.max_forwards = 0
    invite.from_.params["tag"] = "another-call"
    h.run(h.mgr.on_request(invite, PSTN, h.now))
    assert h.statuses_to(invite)[-1] == 483


def test_an_ended_call_still_handles_late_messages_until_it_is_forgotten() -> None:
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(mobile, 180)
    h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    h.in_dialog(invite, "BYE")
    assert h.cdrs and h.mgr.busy["bob"] == 0
    assert h.mgr._calls["c1"].plan is None  # nothing after the end needs the plan
    # The mobile's 2xx crossed our CANCEL and arrives after the call ended: ACK and BYE it.
    late = h.answer(mobile, 200, body=SDP)
    to_mobile = [r for r in h.requests if r.request.call_id == mobile.request.call_id]
    assert [r.request.method for r in to_mobile] == ["INVITE", "CANCEL", "ACK", "BYE"]
    assert to_mobile[3].request.header("Reason") == COMPLETED_ELSEWHERE
    # Its retransmission, once the INVITE transaction is gone (stray), is re-ACKed only.
    h.run(h.mgr.on_response(late, None, h.now))
    assert [r.request.method for r in h.requests[-1:]] == ["ACK"]
    assert h.requests[-1].request is to_mobile[2].request
    # A late BYE from the softphone leg, which the caller's BYE already ended, is answered.
    bye = h.sent("BYE")[0]
    assert bye.request.call_id == soft.request.call_id
    b_bye = Request(
        method="BYE",
        uri=bye.request.from_.uri.copy(),
        via=[Via("UDP", SOFTPHONE.host, SOFTPHONE.port, {"branch": "z9hG4bKlate"})],
        from_=bye.request.to.copy(),
        to=bye.request.from_.copy(),
        call_id=bye.request.call_id,
        cseq=CSeq(9, "BYE"),
        max_forwards=70,
    )
    h.run(h.mgr.on_request(b_bye, SOFTPHONE, h.now))
    assert [r.response.status for r in h.responses if r.request is b_bye] == [200]
    # After Timer B the call is forgotten: a 2xx then finds nothing, a BYE gets 481.
    h.advance(33)
    assert len(h.mgr) == 0
    before = len(h.requests)
    h.run(h.mgr.on_response(late, None, h.now))
    assert len(h.requests) == before
    again = Request(
        method="BYE",
        uri=b_bye.uri.copy(),
        via=[Via("UDP", SOFTPHONE.host, SOFTPHONE.port, {"branch": "z9hG4bKlater"})],
        from_=b_bye.from_.copy(),
        to=b_bye.to.copy(),
        call_id=b_bye.call_id,
        cseq=CSeq(10, "BYE"),
        max_forwards=70,
    )
    h.run(h.mgr.on_request(again, SOFTPHONE, h.now))
    assert [r.response.status for r in h.responses if r.request is again] == [481]


def test_bye_crossing_ours_after_the_caller_hung_up_is_answered_not_relayed() -> None:
    """Both sides hang up at once: the callee's BYE reaches us after the caller's BYE ended the
    call. It gets its 200, and the caller, whose dialog is gone, gets no BYE of ours."""
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    ok = h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    h.in_dialog(invite, "BYE")
    assert [b.dest for b in h.sent("BYE")] == [SOFTPHONE]  # ours to the callee
    bye = _callee_bye(h, soft, ok, "z9hG4bKcrossing")
    assert h.responses[-1].request is bye and h.responses[-1].response.status == 200
    assert [b.dest for b in h.sent("BYE")] == [SOFTPHONE]  # still only that one
    assert [e["cause"] for e in h.events("call.ended")] == ["caller hung up"]


def test_an_ended_call_whose_legs_all_answered_is_forgotten_after_t4_not_timer_b() -> None:
    """Once every leg has its final response nothing late can need the call (the transactions
    absorb retransmissions): it goes after T4. A leg still owing its answer keeps it Timer B."""
    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0]
    h.answer(mobile, 180)
    h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    h.answer(mobile, 487)  # the cancelled mobile leg's final answer
    h.in_dialog(invite, "BYE")
    h.advance(4.9)
    assert len(h.mgr) == 1
    h.advance(0.2)
    assert len(h.mgr) == 0

    h, invite = _forked()
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0]
    h.answer(h.invites_to((MOBILE.host, MOBILE.port))[0], 180)
    h.answer(soft, 200, body=SDP)
    h.in_dialog(invite, "ACK")
    h.in_dialog(invite, "BYE")  # the mobile leg has not answered our CANCEL yet
    h.advance(30)
    assert len(h.mgr) == 1
    h.advance(3)
    assert len(h.mgr) == 0
