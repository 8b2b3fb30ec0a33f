"""Message waiting (RFC 3842/6665), voicemail access routing and the media keepalive, on the
sans-IO core with the fake clock of ``b2bua_harness``."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import timedelta

from b2bua_harness import CONFIG, MEDIA, PSTN, SDP, T0, B2bua, authorize, with_credentials

from sipcore.b2bua import CallManager
from sipcore.b2bua.config import B2buaConfig
from sipcore.b2bua.events import SendRequest
from sipcore.builders import make_response, new_tag
from sipcore.digest import digest_response
from sipcore.message import CSeq, NameAddr, Request, Uri, Via
from sipcore.transaction.events import Destination

PHONE = Destination("127.0.0.1", 6100)
MEDIA_MWI = Destination(MEDIA[0], 41234)  # the media server's MWI sender: an ephemeral port
BODY_YES = b"Messages-Waiting: yes\r\nMessage-Account: sip:bob@demo.test\r\nVoice-Message: 1/0\r\n"


def _harness(**changes: object) -> B2bua:
    h = B2bua()
    h.snap = with_credentials(h.snap, {"bob": "bob-demo", "alice": "alice-demo"})
    if changes:
        cfg: B2buaConfig = dataclasses.replace(CONFIG, **changes)  # type: ignore[arg-type]
        h.mgr = CallManager(
            cfg,
            snapshot=lambda: h.snap,
            decide=h.mgr._decide,
            location=h.location,
            auth=h.auth,
            wall=lambda now: h.wall0 + timedelta(seconds=now - T0),
        )
    return h


def _subscribe(
    h: B2bua,
    box: str = "bob",
    *,
    user: str = "bob",
    password: str = "bob-demo",
    expires: int | None = 3600,
    event: str = "message-summary",
    source: Destination = PHONE,
) -> Request:
    """A SUBSCRIBE, challenged once and sent again with credentials; returns the second one."""

    def build(cseq: int) -> Request:
        headers = [("Event", event), ("Accept", "application/simple-message-summary")]
        if expires is not None:
            headers.append(("Expires", str(expires)))
        return Request(
            method="SUBSCRIBE",
            uri=Uri(user=box, host="demo.test"),
            via=[Via("UDP", source.host, source.port, {"branch": "z9hG4bK" + new_tag()})],
            from_=NameAddr(Uri(user=user, host="demo.test"), params={"tag": "ft-" + user}),
            to=NameAddr(Uri(user=box, host="demo.test")),
            call_id=f"sub-{user}-{box}",
            cseq=CSeq(cseq, "SUBSCRIBE"),
            max_forwards=70,
            contact=[NameAddr(Uri(user=user, host=source.host, port=source.port))],
            headers=headers,
        )

    first = build(1)
    h.run(h.mgr.on_request(first, source, h.now))
    challenge = h.responses[-1].response
    if challenge.status != 401:
        return first
    value = next(v for n, v in challenge.headers if n == "WWW-Authenticate" and "MD5" in v)
    nonce = re.search(r'nonce="([^"]+)"', value)
    opaque = re.search(r'opaque="([^"]+)"', value)
    assert nonce is not None and opaque is not None
    second = build(2)
    ha1 = hashlib.md5(f"{user}:demo.test:{password}".encode()).hexdigest()
    uri = str(second.uri)
    resp = digest_response(
        "MD5", ha1, nonce.group(1), "SUBSCRIBE", uri, qop="auth", nc="00000001", cnonce="c0"
    )
    second.headers.append(
        (
            "Authorization",
            f'Digest username="{user}", realm="demo.test", nonce="{nonce.group(1)}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0", '
            f'opaque="{opaque.group(1)}"',
        )
    )
    h.run(h.mgr.on_request(second, source, h.now))
    return second


def _in_dialog_subscribe(h: B2bua, sub: Request, expires: int, cseq: int = 3) -> Request:
    ok = next(r.response for r in h.responses if r.request is sub and r.response.status == 200)
    req = Request(
        method="SUBSCRIBE",
        uri=Uri(user="vidare", host="127.0.0.1", port=5060),
        via=[Via("UDP", PHONE.host, PHONE.port, {"branch": "z9hG4bK" + new_tag()})],
        from_=sub.from_.copy(),
        to=ok.to.copy(),
        call_id=sub.call_id,
        cseq=CSeq(cseq, "SUBSCRIBE"),
        max_forwards=70,
        headers=[("Event", "message-summary"), ("Expires", str(expires))],
    )
    h.run(h.mgr.on_request(req, PHONE, h.now))
    return req


def _media_notify(
    h: B2bua, body: bytes = BODY_YES, user: str = "bob", source: Destination = MEDIA_MWI
) -> Request:
    req = Request(
        method="NOTIFY",
        uri=Uri(user=user, host="demo.test"),
        via=[Via("UDP", source.host, source.port, {"branch": "z9hG4bK" + new_tag(), "rport": None})],
        from_=NameAddr(Uri(user="voicemail", host="demo.test"), params={"tag": new_tag()}),
        to=NameAddr(Uri(user=user, host="demo.test")),
        call_id=new_tag() + "@media",
        cseq=CSeq(1, "NOTIFY"),
        max_forwards=70,
        headers=[
            ("Event", "message-summary"),
            ("Subscription-State", "active"),
            ("Content-Type", "application/simple-message-summary"),
        ],
        body=body,
    )
    h.run(h.mgr.on_request(req, source, h.now))
    return req


def _notifies(h: B2bua) -> list[SendRequest]:
    return h.sent("NOTIFY")


def test_subscribe_is_challenged_then_accepted_with_an_immediate_notify() -> None:
    h = _harness()
    sub = _subscribe(h)
    statuses = [r.response.status for r in h.responses]
    assert statuses == [401, 200]
    ok = h.responses[-1].response
    assert ok.header("Expires") == "3600" and ok.to.tag
    (notify,) = _notifies(h)
    req = notify.request
    assert (notify.dest.host, notify.dest.port) == (PHONE.host, PHONE.port)
    assert req.call_id == sub.call_id and req.from_.tag == ok.to.tag and req.to.tag == "ft-bob"
    assert req.header("Event") == "message-summary"
    assert req.header("Subscription-State") == "active;expires=3600"
    assert req.header("Content-Type") == "application/simple-message-summary"
    assert req.body.startswith(b"Messages-Waiting: no\r\n")
    assert len(h.mgr.subs) == 1


def test_media_notify_is_answered_and_relayed_in_the_subscription_dialog() -> None:
    h = _harness()
    _subscribe(h)
    first = _notifies(h)[0].request
    media = _media_notify(h)
    assert h.responses[-1].request is media and h.responses[-1].response.status == 200
    relayed = _notifies(h)[-1].request
    assert relayed.call_id == first.call_id and relayed.cseq.number == first.cseq.number + 1
    assert relayed.body == BODY_YES
    assert b"Voice-Message: 1/0" in relayed.body
    assert h.events("mwi.relayed")[0]["subscriptions"] == 1
    # The state is remembered: a later subscriber learns it at once.
    h2_notify_count = len(_notifies(h))
    _subscribe(h, "alice", user="alice", password="alice-demo", source=Destination("127.0.0.1", 6200))
    assert len(_notifies(h)) == h2_notify_count + 1
    assert _notifies(h)[-1].request.body.startswith(b"Messages-Waiting: no")  # alice's box
    h.advance(10)
    _subscribe(h, source=Destination("127.0.0.1", 6300))
    assert _notifies(h)[-1].request.body == BODY_YES


def test_notify_from_anywhere_but_the_media_host_is_refused() -> None:
    h = _harness()
    _subscribe(h)
    before = len(_notifies(h))
    _media_notify(h, source=Destination("10.9.9.9", 5090))
    assert h.responses[-1].response.status == 403
    assert len(_notifies(h)) == before
    assert h.events("mwi.untrusted")


def test_subscribing_to_someone_elses_box_is_forbidden_and_other_events_are_refused() -> None:
    h = _harness()
    _subscribe(h, "alice")
    assert h.responses[-1].response.status == 403
    _subscribe(h, event="presence")
    assert h.responses[-1].response.status == 489
    assert h.responses[-1].response.header("Allow-Events") == "message-summary"
    _subscribe(h, "nobody")
    assert h.responses[-1].response.status == 404
    _subscribe(h, password="wrong")
    assert h.responses[-1].response.status == 401
    _subscribe(h, expires=10)
    assert h.responses[-1].response.status == 423
    assert len(h.mgr.subs) == 0 and not _notifies(h)


def test_refresh_renotifies_and_expires_zero_terminates() -> None:
    h = _harness()
    sub = _subscribe(h)
    h.advance(100)
    _in_dialog_subscribe(h, sub, 600)
    assert h.responses[-1].response.status == 200
    assert h.responses[-1].response.header("Expires") == "600"
    assert _notifies(h)[-1].request.header("Subscription-State") == "active;expires=600"
    assert h.timers[("mwi", "x:s1")] == h.now + 600
    _in_dialog_subscribe(h, sub, 0, cseq=4)
    assert h.responses[-1].response.status == 200
    assert _notifies(h)[-1].request.header("Subscription-State") == "terminated;reason=timeout"
    assert len(h.mgr.subs) == 0
    _in_dialog_subscribe(h, sub, 600, cseq=5)
    assert h.responses[-1].response.status == 481


def test_subscription_expires_on_the_clock_with_a_final_notify() -> None:
    h = _harness()
    _subscribe(h, expires=120)
    h.advance(119)
    assert len(h.mgr.subs) == 1
    h.advance(2)
    assert len(h.mgr.subs) == 0
    assert _notifies(h)[-1].request.header("Subscription-State") == "terminated;reason=timeout"
    count = len(_notifies(h))
    _media_notify(h)
    assert len(_notifies(h)) == count  # nobody to tell
    assert h.mgr.subs.state["bob"] == BODY_YES  # but it is remembered


def test_a_481_to_our_notify_ends_the_subscription() -> None:
    h = _harness()
    _subscribe(h)
    h.answer(_notifies(h)[-1], 481)
    assert len(h.mgr.subs) == 0
    assert h.events("mwi.subscription_ended")[0]["status"] == 481


def test_unsolicited_mwi_goes_to_registered_contacts_when_configured() -> None:
    h = _harness()
    h.register("bob", Destination("127.0.0.1", 6400))
    _media_notify(h)
    assert not _notifies(h)
    h = _harness(unsolicited_mwi=True)
    h.register("bob", Destination("127.0.0.1", 6400))
    _media_notify(h)
    (sent,) = _notifies(h)
    assert (sent.dest.host, sent.dest.port) == ("127.0.0.1", 6400)
    assert sent.request.to.tag is None and sent.request.body == BODY_YES
    assert str(sent.request.uri) == "sip:bob@127.0.0.1:6400"


# ---------------------------------------------------------------- voicemail access


def _softphone_call(h: B2bua, to: str) -> None:
    first = h.invite(to, caller="bob", source=PHONE)
    challenge = h.responses[-1].response
    assert challenge.status == 407
    first.via[0].params["branch"] = "z9hG4bK-second"
    first.cseq = CSeq(2, "INVITE")
    authorize(challenge, first, "bob", "bob-demo")
    h.run(h.mgr.on_request(first, PHONE, h.now))


def test_star98_from_the_softphone_reaches_voicemail_access_with_the_user() -> None:
    h = _harness()
    _softphone_call(h, "*98")
    (out,) = h.invites_to(MEDIA)
    assert str(out.request.uri) == f"sip:voicemail-access@{MEDIA[0]}:{MEDIA[1]}"
    assert out.request.header("X-Vidare-User") == "bob"
    assert out.request.to.uri.user == "voicemail-access"


def test_the_voicemail_number_reaches_voicemail_access_without_a_user() -> None:
    h = _harness(voicemail_number="+4681009999")
    h.invite("08-100 99 99", source=PSTN)
    (out,) = h.invites_to(MEDIA)
    assert out.request.uri.user == "voicemail-access"
    assert out.request.header("X-Vidare-User") is None
    h2 = _harness(voicemail_number="+4681009999")
    _softphone_call(h2, "+4681009999")
    (out2,) = h2.invites_to(MEDIA)
    assert out2.request.uri.user == "voicemail-access" and out2.request.header("X-Vidare-User") is None


def test_star98_from_a_trunk_is_not_voicemail_access() -> None:
    h = _harness()
    h.invite("*98", source=PSTN)
    assert not h.invites_to(MEDIA)
    assert h.responses[-1].response.status == 404


# ---------------------------------------------------------------- the media server dies


def _answered_media_call(h: B2bua) -> Request:
    a = h.invite("*98", caller="bob", source=PHONE)
    challenge = h.responses[-1].response
    a.via[0].params["branch"] = "z9hG4bK-second"
    a.cseq = CSeq(2, "INVITE")
    authorize(challenge, a, "bob", "bob-demo")
    h.run(h.mgr.on_request(a, PHONE, h.now))
    (out,) = h.invites_to(MEDIA)
    h.answer(out, 200, SDP)
    h.in_dialog(a, "ACK", source=PHONE)
    return a


def test_keepalive_unanswered_ends_media_calls_with_bye_and_cdr() -> None:
    h = _harness(media_keepalive=2.0, media_keepalive_misses=2)
    a = _answered_media_call(h)
    assert 200 in h.statuses_to(a)
    h.advance(2.1)
    (probe,) = h.sent("OPTIONS")
    assert (probe.dest.host, probe.dest.port) == MEDIA
    h.answer(probe, 200)
    h.advance(2)
    assert len(h.sent("OPTIONS")) == 2 and not h.sent("BYE")
    h.advance(2)  # the second probe unanswered: one miss
    assert not h.sent("BYE")
    h.advance(2)  # two misses
    (bye,) = h.sent("BYE")
    assert (bye.dest.host, bye.dest.port) == (PHONE.host, PHONE.port)
    assert bye.request.call_id == a.call_id
    (event,) = h.events("media.unreachable")
    assert event["calls"] == 1
    (cdr,) = h.cdrs
    assert cdr.record.cause is not None and "media server unreachable" in cdr.record.cause
    h.advance(20)
    assert len(h.sent("OPTIONS")) == 3  # no call left: probing stopped


def test_keepalive_transport_error_ends_calls_at_once() -> None:
    h = _harness(media_keepalive=2.0)
    _answered_media_call(h)
    h.advance(2.1)
    (probe,) = h.sent("OPTIONS")
    h.run(h.mgr.on_response(make_response(probe.request, 503), probe.owner, h.now))
    assert len(h.sent("BYE")) == 1


def test_an_in_dialog_request_to_the_media_server_timing_out_ends_the_call() -> None:
    h = _harness(media_keepalive=0)
    a = _answered_media_call(h)
    h.in_dialog(a, "INFO", source=PHONE, cseq=3)
    (info,) = h.sent("INFO")
    h.run(h.mgr.on_response(make_response(info.request, 408), info.owner, h.now))
    assert len(h.sent("BYE")) == 1
    assert not h.sent("OPTIONS")


# ---------------------------------------------------------------- personal queue hand-over (RFC 3725)


def _queued(h: B2bua) -> tuple[Request, Request, SendRequest]:
    """bob answers a first call on his softphone; a second caller lands in his queue."""
    from b2bua_harness import SOFTPHONE
    from policy_fixtures import with_user

    h.snap = with_user(
        h.snap,
        "bob",
        groups={"activity.both.announcement_voicemail", "no_answer.both.voicemail.30", "busy.fixed.queue"},
    )
    h.register("bob")
    first = h.invite()
    h.answer(h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[-1], 200, body=SDP)
    h.in_dialog(first, "ACK")
    assert h.mgr.busy["bob"] == 1
    second = h.invite(caller="+46899999999")
    (queue,) = h.invites_to(MEDIA)
    assert queue.request.uri.user == "queue"
    h.answer(queue, 200, body=b"v=0\r\no=media 1 1 IN IP4 127.0.0.1\r\n")
    h.in_dialog(second, "ACK")
    return first, second, queue


def test_queue_hand_over_rings_bob_reinvites_the_caller_and_releases_the_media_leg() -> None:
    from b2bua_harness import SOFTPHONE

    h = _harness(media_keepalive=0)  # no OPTIONS answers here
    first, second, queue = _queued(h)
    before = len(h.invites_to())
    h.in_dialog(first, "BYE", cseq=2)  # bob's first call ends
    assert "bob" not in h.mgr.busy
    (ring,) = h.invites_to()[before:]
    assert (ring.dest.host, ring.dest.port) == (SOFTPHONE.host, SOFTPHONE.port)
    assert ring.request.body == b"" and ring.request.from_.uri.user == "+46899999999"
    bob_sdp = b"v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\n"
    h.answer(ring, 200, body=bob_sdp)
    reinvite = [r for r in h.sent("INVITE") if r.request.call_id == second.call_id]
    assert len(reinvite) == 1 and reinvite[0].request.body == bob_sdp
    assert reinvite[0].request.to.tag == second.from_.tag
    assert not [r for r in h.sent("BYE") if r.request.call_id == queue.request.call_id]
    caller_sdp = b"v=0\r\no=caller 3 3 IN IP4 127.0.0.1\r\n"
    h.answer(reinvite[0], 200, body=caller_sdp)
    acks = h.sent("ACK")
    to_bob = [a for a in acks if a.request.call_id == ring.request.call_id]
    to_caller = [a for a in acks if a.request.call_id == second.call_id]
    assert to_bob and to_bob[-1].request.body == caller_sdp
    assert to_caller and to_caller[-1].request.cseq.number == reinvite[0].request.cseq.number
    (bye_media,) = [r for r in h.sent("BYE") if r.request.call_id == queue.request.call_id]
    assert (bye_media.dest.host, bye_media.dest.port) == MEDIA
    assert h.mgr.busy["bob"] == 1
    assert h.events("queue.handed_over")
    # The caller hangs up: bob's leg gets the BYE and the CDR says answered.
    h.in_dialog(second, "BYE", cseq=3)
    (bye_bob,) = [r for r in h.sent("BYE") if r.request.call_id == ring.request.call_id]
    assert (bye_bob.dest.host, bye_bob.dest.port) == (SOFTPHONE.host, SOFTPHONE.port)
    assert h.cdrs[-1].record.outcome == "answered"
    assert "bob" not in h.mgr.busy


def test_queue_hand_over_unanswered_leaves_the_caller_queued() -> None:
    h = _harness(media_keepalive=0)  # no OPTIONS answers here
    first, _second, queue = _queued(h)
    before = len(h.invites_to())
    h.in_dialog(first, "BYE", cseq=2)
    (ring,) = h.invites_to()[before:]
    h.answer(ring, 180)
    h.advance(31)
    assert h.sent("CANCEL")[-1].request.call_id == ring.request.call_id
    assert h.events("queue.handover_failed")
    assert not [r for r in h.sent("BYE") if r.request.call_id == queue.request.call_id]
    assert not h.cdrs[1:]  # the queued call is still up


def test_caller_hanging_up_during_hand_over_cancels_the_ringing() -> None:
    h = _harness(media_keepalive=0)  # no OPTIONS answers here
    first, second, _queue = _queued(h)
    before = len(h.invites_to())
    h.in_dialog(first, "BYE", cseq=2)
    (ring,) = h.invites_to()[before:]
    h.answer(ring, 180)
    h.in_dialog(second, "BYE", cseq=2)
    assert h.sent("CANCEL")[-1].request.call_id == ring.request.call_id
    assert h.events("queue.handover_failed")[-1]["why"] == "caller gone"
