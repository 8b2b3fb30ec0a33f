"""Issue 4 acceptance, end to end (the rest of SPEC 3): no answer, activity on the mobile number,
off hours, busy with each action, late answers and in-dialog relaying, on real SIPp peers.

The setup is the same as in ``test_calls_basic.py``: a real `vidare serve`, bob's softphone a SIPp
UAS that registered first, the mobile network a SIPp UAS on ``trunks.mobile``, the media server a
SIPp UAS on ``media.address``, the PSTN a SIPp UAS on ``trunks.pstn``. A caller must come from a
trunk's address (trust is by address and port), so when both trunk ports are taken by peers the
caller is alice's softphone (an authenticated internal call to bob, under bob's rules).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest

from interop.callpeers import (
    CallServer,
    Peer,
    call_out,
    call_server,
    cli_ok,
    debug_dump,
    free_port,
    header,
    place_call,
    received_at,
    register_phone,
    ruri,
    settle,
    start_peer,
    store_call,
    write_short_catalogue,
)

pytestmark = pytest.mark.interop

BOB_FIXED = "+4681001002"
BOB_MOBILE = "+46701001002"
RECEPTION = "+4681000000"  # the demo company's alternative number (external)
CALLER = "+46812345678"
COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


def _target(uri: str) -> str:
    return unquote(uri.split("target=")[1].split(";")[0])


def _groups(server: CallServer, user: str, *, add: str, remove: str, extra: list[str] | None = None) -> None:
    """Swap one group for another: with the CLI when the group is in an operator's extra
    catalogue (the path an operator takes), else through the store (what the admin API does)."""
    if extra:
        cli_ok(server, "user", "groups", user, "--remove", remove, "--add", add, *extra)
    else:
        store_call(server, "set_groups", user, [add], [remove])
        settle()


def _answered_by_soft(server: CallServer, wd: Path, hold: int = 6000) -> tuple[Peer, Peer, Peer]:
    """alice calls bob (internal); bob's softphone answers, his mobile is cancelled; bob is busy."""
    phone_port = free_port()
    register_phone(server, "bob", "bob-demo", phone_port, wd)
    soft = start_peer("softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "200"})
    mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
    first = call_out(server, wd, "alice", "alice-demo", BOB_FIXED, hold=hold)
    assert mobile.wait(10) == 0, debug_dump(server, first, soft, mobile)
    return first, soft, mobile


# ---------------------------------------------------------------------------------- no answer


@pytest.mark.parametrize(
    ("number", "action", "seconds"),
    [
        ("fixed", "voicemail", 2),
        ("fixed", "alt_number", 3),
        ("mobile", "voicemail", 3),
        ("mobile", "alt_number", 2),
    ],
    ids=["fixed-voicemail", "fixed-alt", "mobile-voicemail", "mobile-alt-internal"],
)
def test_no_answer_short_group_from_extra_catalogue(
    tmp_path: Path, number: str, action: str, seconds: int
) -> None:
    """The 20/30 s rules with an operator's short variant (``policy.extra_catalogue``)."""
    wd = tmp_path / "sipp"
    cat = write_short_catalogue(tmp_path / "extra-catalogue.toml")
    extra = ["--set", f"policy.extra_catalogue={cat}"]
    with call_server(tmp_path, extra) as server:
        gid = f"no_answer.{number}.{action}.{seconds}"
        _groups(server, "bob", add=gid, remove="no_answer.both.voicemail.30", extra=extra)
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        dialled = BOB_FIXED if number == "fixed" else BOB_MOBILE
        if action == "alt_number" and number == "mobile":
            # An internal alternative number: carol, who is in a meeting (her default activity group
            # sends the call to her announcement and voicemail).
            cli_ok(server, "activity", "carol", "meeting", wait=False)
            store_call(server, "set_alt_number", "user", "bob", "1003")
            settle()
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        if action == "alt_number" and number == "fixed":
            target = start_peer("reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
            caller = call_out(server, wd, "alice", "alice-demo", dialled)
        else:
            target = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
            caller = place_call(server, wd, dialled, port=server.pstn, caller=CALLER)
        codes = [p.wait(30) for p in (caller, soft, mobile, target)]
        assert codes == [0, 0, 0, 0], debug_dump(server, caller, soft, mobile, target)
        (invite,) = target.received_requests("INVITE")
        # From the moment bob's mobile rang to the moment the forward target was called.
        elapsed = received_at(target, "INVITE ")[0] - received_at(mobile, "INVITE ")[0]
        assert seconds - 0.1 < elapsed < seconds + 1.5, elapsed
        (m_invite,) = mobile.received_requests("INVITE")
        assert ruri(m_invite).startswith(f"sip:{BOB_MOBILE}@")
        assert mobile.received_requests("CANCEL") and soft.received_requests("CANCEL")
        decided = next(e for e in server.events("route.decided") if e["plan"].get("no_answer"))
        assert decided["plan"]["no_answer"]["decided_by"] == gid
        if action == "voicemail":
            assert ruri(invite).startswith(f"sip:voicemail@127.0.0.1:{server.media};")
            assert ";cause=408" in ruri(invite)
            assert _target(ruri(invite)) == "sip:bob@demo.test"
            assert "cause%3D408" in (header(invite, "History-Info") or "")
        elif number == "fixed":
            assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} ")
            assert header(invite, "Diversion") == f"<sip:{BOB_FIXED}@demo.test>;reason=no-answer;counter=1"
            hi = header(invite, "History-Info") or ""
            assert f"<sip:{BOB_FIXED}@demo.test?Reason=SIP%3Bcause%3D408>;index=1" in hi, hi
        else:
            assert ruri(invite).startswith(f"sip:announcement_voicemail@127.0.0.1:{server.media};")
            assert _target(ruri(invite)) == "sip:carol@demo.test"
            assert header(invite, "X-Vidare-Name") == "Carol Carlsson"
            assert next(e["to"] for e in server.events("call.forwarded")) == "carol"


def test_no_answer_real_30_seconds_to_voicemail_and_to_alternative_number(tmp_path: Path) -> None:
    """The real 30 s groups, two servers side by side (one 30 s wait for both): the default
    ``no_answer.both.voicemail.30`` on a call to the mobile number, and
    ``no_answer.fixed.alt_number.30`` to the reception."""
    results: dict[str, str] = {}

    def voicemail(server: CallServer, wd: Path) -> tuple[list[Peer], Peer, Peer]:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd, timeout=60)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd, timeout=60)
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"}, timeout=60)
        caller = place_call(server, wd, BOB_MOBILE, port=server.pstn, caller=CALLER)
        return [caller, soft, mobile, media], media, mobile

    def alt(server: CallServer, wd: Path) -> tuple[list[Peer], Peer, Peer]:
        _groups(server, "bob", add="no_answer.fixed.alt_number.30", remove="no_answer.both.voicemail.30")
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd, timeout=60)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd, timeout=60)
        pstn = start_peer(
            "reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"}, timeout=60
        )
        caller = call_out(server, wd, "alice", "alice-demo", BOB_FIXED)
        return [caller, soft, mobile, pstn], pstn, mobile

    def run(name: str, setup: Callable[[CallServer, Path], tuple[list[Peer], Peer, Peer]]) -> None:
        base = tmp_path / name
        try:
            with call_server(base) as server:
                peers, target, mobile = setup(server, base / "sipp")
                codes = [p.wait(45) for p in peers]
                if codes != [0] * len(peers):
                    results[name] = "peers failed:\n" + debug_dump(server, *peers)
                    return
                (invite,) = target.received_requests("INVITE")
                elapsed = received_at(target, "INVITE ")[0] - received_at(mobile, "INVITE ")[0]
                results[name] = f"ok {elapsed:.1f}\n{invite}"
        except Exception as exc:  # reported by the main thread
            results[name] = f"error: {exc!r}"

    threads = [
        threading.Thread(target=run, args=("voicemail", voicemail)),
        threading.Thread(target=run, args=("alt", alt)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for name in ("voicemail", "alt"):
        res = results.get(name, "no result")
        assert res.startswith("ok "), res
        elapsed = float(res.split()[1])
        assert 29.9 < elapsed < 31.5, (name, elapsed)
    vm_invite = results["voicemail"].split("\n", 1)[1]
    assert ruri(vm_invite).startswith("sip:voicemail@") and ";cause=408" in ruri(vm_invite)
    alt_invite = results["alt"].split("\n", 1)[1]
    assert ruri(alt_invite).startswith(f"sip:{RECEPTION}@")
    assert header(alt_invite, "Diversion") == f"<sip:{BOB_FIXED}@demo.test>;reason=no-answer;counter=1"


# ---------------------------------------------------------------------------------- activity


def test_activity_groups_for_the_mobile_number(tmp_path: Path) -> None:
    """Each ``activity.mobile.*`` group on a call to the mobile number; the fixed number still rings."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        cli_ok(server, "activity", "bob", "lunch", "--until", "2030-01-02T13:00:00+01:00", wait=False)
        current = "activity.both.announcement_voicemail"
        for group, service in (
            ("activity.mobile.announcement_voicemail", "announcement_voicemail"),
            ("activity.mobile.voicemail", "voicemail"),
            ("activity.mobile.announcement", "announcement"),
        ):
            _groups(server, "bob", add=group, remove=current)
            current = group
            media = start_peer(
                f"media-{service}", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"}
            )
            caller = place_call(
                server, wd, BOB_MOBILE, port=server.pstn, caller=CALLER, name=f"caller-{service}"
            )
            codes = [p.wait(20) for p in (caller, media)]
            assert codes == [0, 0], debug_dump(server, caller, media)
            (invite,) = media.received_requests("INVITE")
            assert ruri(invite).startswith(f"sip:{service}@127.0.0.1:{server.media};"), invite
            assert ";cause=302" in ruri(invite)
            assert _target(ruri(invite)) == "sip:bob@demo.test"
            assert header(invite, "X-Vidare-Activity") == "lunch"
            assert header(invite, "X-Vidare-Return") == "2030-01-02T13:00:00+01:00"
            assert server.events("route.decided")[-1]["decided_by"] == group

        _groups(server, "bob", add="activity.mobile.alt_number", remove=current)
        # The caller comes over the mobile trunk; the reception answers at the PSTN trunk.
        pstn = start_peer("reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        caller = place_call(server, wd, BOB_MOBILE, port=server.mobile, caller=CALLER, name="caller-alt")
        codes = [p.wait(20) for p in (caller, pstn)]
        assert codes == [0, 0], debug_dump(server, caller, pstn)
        (invite,) = pstn.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} ")
        # The dialled (mobile) number is the one that diverted; RFC 5806 reason for 302.
        assert header(invite, "Diversion") == f"<sip:{BOB_MOBILE}@demo.test>;reason=unconditional;counter=1"
        assert "cause%3D302" in (header(invite, "History-Info") or "")
        assert server.events("route.decided")[-1]["decided_by"] == "activity.mobile.alt_number"

        # A call to the fixed number: no activity group fills that slot now, so bob's mobile rings.
        mobile = start_peer("mobile", "call_uas_answer.xml", server.mobile, wd, subs={"ring": "100"})
        caller = place_call(server, wd, BOB_FIXED, port=server.pstn, caller=CALLER, name="caller-fixed")
        codes = [p.wait(20) for p in (caller, mobile)]
        assert codes == [0, 0], debug_dump(server, caller, mobile)
        assert server.events("route.decided")[-1]["action"] == "ring"


# ---------------------------------------------------------------------------------- off hours


def test_off_hours_alternative_number_and_mobile_voicemail(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        cli_ok(server, "hours", "set", "--user", "bob", "mon-sun 00:00-00:01", wait=False)  # closed now
        cli_ok(
            server,
            "user",
            "groups",
            "bob",
            "--add",
            "off_hours.fixed.alt_number",
            "--add",
            "off_hours.mobile.voicemail",
        )
        pstn = start_peer("reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        caller = place_call(server, wd, BOB_FIXED, port=server.mobile, caller=CALLER)
        codes = [p.wait(20) for p in (caller, pstn)]
        assert codes == [0, 0], debug_dump(server, caller, pstn)
        (invite,) = pstn.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} ")
        assert header(invite, "Diversion") == f"<sip:{BOB_FIXED}@demo.test>;reason=unconditional;counter=1"
        assert header(invite, "P-Asserted-Identity") is None  # the caller sent none
        assert server.events("route.decided")[0]["decided_by"] == "off_hours.fixed.alt_number"

        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = place_call(server, wd, BOB_MOBILE, port=server.pstn, caller=CALLER, name="caller-mobile")
        codes = [p.wait(20) for p in (caller, media)]
        assert codes == [0, 0], debug_dump(server, caller, media)
        (invite,) = media.received_requests("INVITE")
        assert ruri(invite).startswith(f"sip:voicemail@127.0.0.1:{server.media};")
        assert ";cause=302" in ruri(invite)
        assert server.events("route.decided")[-1]["decided_by"] == "off_hours.mobile.voicemail"


# ---------------------------------------------------------------------------------- busy


def test_busy_with_call_waiting_rings_softphone_then_voicemail_486(tmp_path: Path) -> None:
    """The default ``busy.both.voicemail``: a second call while bob talks still rings his softphone
    (call waiting); the softphone answers 486 and the mobile too, so the caller gets voicemail."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer(
            "softphone",
            "call_uas_answer_second_busy.xml",
            phone_port,
            wd,
            subs={"ring": "200"},
            extra=["-m", "2"],
        )
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        first = call_out(server, wd, "alice", "alice-demo", BOB_FIXED, hold=5000)
        assert mobile.wait(10) == 0, debug_dump(server, first, soft, mobile)
        mobile2 = start_peer("mobile-busy", "call_uas_reject.xml", server.mobile, wd, subs={"status": "486"})
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        second = place_call(server, wd, BOB_FIXED, port=server.pstn, caller=CALLER, hold=300)
        codes = [p.wait(20) for p in (second, media, mobile2, first, soft)]
        assert codes == [0, 0, 0, 0, 0], debug_dump(server, first, second, soft, mobile2, media)
        assert len(soft.received_requests("INVITE")) == 2  # call waiting: it rang again
        (invite,) = media.received_requests("INVITE")
        assert ruri(invite).startswith(f"sip:voicemail@127.0.0.1:{server.media};")
        assert ";cause=486" in ruri(invite)
        assert _target(ruri(invite)) == "sip:bob@demo.test"
        decided = server.events("route.decided")[-1]
        assert decided["plan"]["busy"]["decided_by"] == "busy.both.voicemail"
        assert decided["action"] == "ring"


@pytest.mark.parametrize("action", ["alt_number", "queue"])
def test_busy_second_call_does_not_ring(tmp_path: Path, action: str) -> None:
    """``busy.fixed.alt_number`` and ``busy.fixed.queue``: while bob talks a new call goes straight
    to the reception / his personal queue; his softphone does not ring."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _groups(server, "bob", add=f"busy.fixed.{action}", remove="busy.both.voicemail")
        first, soft, _mobile = _answered_by_soft(server, wd, hold=4000)
        if action == "alt_number":
            target = start_peer("reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
            second = place_call(server, wd, BOB_FIXED, port=server.mobile, caller=CALLER, hold=300)
        else:
            target = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
            second = place_call(server, wd, BOB_FIXED, port=server.pstn, caller=CALLER, hold=300)
        codes = [p.wait(20) for p in (second, target, first, soft)]
        assert codes == [0, 0, 0, 0], debug_dump(server, first, second, soft, target)
        assert len(soft.received_requests("INVITE")) == 1
        (invite,) = target.received_requests("INVITE")
        if action == "alt_number":
            assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} ")
            assert header(invite, "Diversion") == f"<sip:{BOB_FIXED}@demo.test>;reason=user-busy;counter=1"
            assert "cause%3D486" in (header(invite, "History-Info") or "")
        else:
            assert ruri(invite).startswith(f"sip:queue@127.0.0.1:{server.media};")
            assert ";cause=486" in ruri(invite)
            assert _target(ruri(invite)) == "sip:bob@demo.test"
        assert server.events("route.decided")[-1]["decided_by"] == f"busy.fixed.{action}"


# ---------------------------------------------------------------------------------- answering


def test_call_to_mobile_number_answered_on_mobile_while_softphone_rings(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd)
        mobile = start_peer("mobile", "call_uas_answer.xml", server.mobile, wd, subs={"ring": "600"})
        caller = place_call(server, wd, BOB_MOBILE, port=server.pstn, caller=CALLER)
        codes = [p.wait(20) for p in (caller, soft, mobile)]
        assert codes == [0, 0, 0], debug_dump(server, caller, soft, mobile)
        assert soft.received_requests("INVITE")  # the softphone did ring
        (cancel,) = soft.received_requests("CANCEL")
        assert header(cancel, "Reason") == COMPLETED_ELSEWHERE
        (invite,) = mobile.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:{BOB_MOBILE}@127.0.0.1:{server.mobile} ")
        assert f"<sip:{CALLER}@demo.test>" in (header(invite, "From") or "")
        assert mobile.received_requests("BYE")
        ok = next(m for m in caller.received() if m.startswith("SIP/2.0 200"))
        assert "o=callee" in ok
        assert server.events("call.ended")[0]["outcome"] == "answered"


@pytest.mark.parametrize(
    "scenario", ["call_uas_answer_now.xml", "call_uas_answer_race.xml"], ids=["no-provisional", "after-180"]
)
def test_late_2xx_from_second_leg_is_acked_and_byed(tmp_path: Path, scenario: str) -> None:
    """Softphone and mobile both answer 200 at once: one wins, the other's 2xx is ACKed and BYEd
    (after a 180 the B2BUA's CANCEL may cross that 2xx: the BYE still follows)."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", scenario, phone_port, wd)
        mobile = start_peer("mobile", scenario, server.mobile, wd)
        caller = place_call(server, wd, BOB_FIXED, port=server.pstn, caller=CALLER, hold=800)
        codes = [p.wait(20) for p in (caller, soft, mobile)]
        assert codes == [0, 0, 0], debug_dump(server, caller, soft, mobile)
        byes = {p.name: p.received_requests("BYE") for p in (soft, mobile)}
        assert all(len(b) == 1 for b in byes.values()), byes
        losers = [n for n, b in byes.items() if header(b[0], "Reason") == COMPLETED_ELSEWHERE]
        assert len(losers) == 1, byes
        for p in (soft, mobile):
            assert len(p.received_requests("ACK")) == 1
            if scenario == "call_uas_answer_now.xml" or p.name not in losers:
                assert not p.received_requests("CANCEL"), p.name
        late = server.events("leg.late_answer")
        assert len(late) == 1
        # The caller saw one answer, from one dialog.
        oks = [
            m
            for m in caller.received()
            if m.startswith("SIP/2.0 200") and "INVITE" in (header(m, "CSeq") or "")
        ]
        assert len({header(m, "To") for m in oks}) == 1
        assert server.events("call.ended")[0]["outcome"] == "answered"


def test_reinvite_both_ways_and_bye_relayed_within_established_call(tmp_path: Path) -> None:
    """The caller re-INVITEs (sendonly, SDP version 2); bob's phone answers it, re-INVITEs the
    other way (inactive, version 3), and hangs up: each crosses to the other dialog."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_reinvite_bye.xml", phone_port, wd)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        caller = place_call(
            server, wd, BOB_FIXED, port=server.pstn, caller=CALLER, scenario="call_uac_reinvite.xml"
        )
        codes = [p.wait(20) for p in (caller, soft, mobile)]
        assert codes == [0, 0, 0], debug_dump(server, caller, soft, mobile)
        # A -> B: the caller's re-INVITE reaches the phone in the B dialog, with its own CSeq.
        first, reinvite = soft.received_requests("INVITE")
        assert header(reinvite, "Call-ID") == header(first, "Call-ID")
        assert ";tag=" in (header(reinvite, "To") or "")
        assert header(reinvite, "CSeq") == "2 INVITE"
        assert "o=caller 53655765 2 " in reinvite and "a=sendonly" in reinvite
        oks = [
            m for m in caller.received() if m.startswith("SIP/2.0 200") and header(m, "CSeq") == "2 INVITE"
        ]
        assert oks and "a=recvonly" in oks[0] and "o=callee 53655765 2 " in oks[0]
        # B -> A: the phone's re-INVITE reaches the caller in the A dialog (tags swapped).
        (back,) = caller.received_requests("INVITE")
        caller_invite_call_id = header(caller.received()[0], "Call-ID")
        assert header(back, "Call-ID") == caller_invite_call_id
        assert "SIPpTag00" in (header(back, "To") or "")  # the caller's own tag
        assert "o=callee 53655765 3 " in back and "a=inactive" in back
        b_oks = [
            m for m in soft.received() if m.startswith("SIP/2.0 200") and header(m, "CSeq") == "1 INVITE"
        ]
        assert b_oks and "o=caller 53655765 3 " in b_oks[0]
        # Every 2xx was ACKed on the far side with that side's CSeq.
        assert [header(a, "CSeq") for a in soft.received_requests("ACK")] == ["1 ACK", "2 ACK"]
        (ack_back,) = caller.received_requests("ACK")
        assert header(ack_back, "CSeq") == (header(back, "CSeq") or "").replace("INVITE", "ACK")
        # bob hung up: the caller got a BYE in its own dialog.
        (bye,) = caller.received_requests("BYE")
        assert header(bye, "Call-ID") == caller_invite_call_id
        ended = server.events("call.ended")[0]
        assert ended["outcome"] == "answered" and ended["cause"] == "callee hung up"


def test_busy_no_waiting_while_user_talks_on_the_mobile(tmp_path: Path) -> None:
    """SPEC 3.1 ``Ej Samtal väntat``: while bob talks on his mobile (a call out through the mobile
    trunk), a new call goes straight to voicemail and his softphone does not ring."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _groups(server, "bob", add="busy.fixed.voicemail_no_waiting", remove="busy.both.voicemail")
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "100"}, timeout=8)
        far_end = start_peer("far-end", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        talk = place_call(server, wd, "+4687654321", port=server.mobile, caller=BOB_MOBILE, hold=4000)
        deadline = time.monotonic() + 10
        while not received_at(far_end, "ACK ") and time.monotonic() < deadline:
            time.sleep(0.1)  # bob's call out is established
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        second = call_out(server, wd, "alice", "alice-demo", BOB_FIXED, hold=300)
        codes = [p.wait(20) for p in (second, media, talk, far_end)]
        assert codes == [0, 0, 0, 0], debug_dump(server, talk, far_end, second, media)
        (invite,) = media.received_requests("INVITE")
        assert ruri(invite).startswith(f"sip:voicemail@127.0.0.1:{server.media};") and ";cause=486" in ruri(
            invite
        )
        soft.wait(10)
        assert soft.received_requests("INVITE") == []
        assert server.events("route.decided")[-1]["decided_by"] == "busy.fixed.voicemail_no_waiting"


@pytest.mark.parametrize("action", ["alt_number", "queue"])
def test_all_devices_busy_follows_the_busy_group(tmp_path: Path, action: str) -> None:
    """SPEC 3.2 step 4: every leg answers 486 -> the busy group's action (not only voicemail)."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _groups(server, "bob", add=f"busy.fixed.{action}", remove="busy.both.voicemail")
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_reject.xml", phone_port, wd, subs={"status": "486"})
        mobile = start_peer("mobile", "call_uas_reject.xml", server.mobile, wd, subs={"status": "486"})
        if action == "alt_number":
            target = start_peer("reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
            caller = call_out(server, wd, "alice", "alice-demo", BOB_FIXED, hold=300)
        else:
            target = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
            caller = place_call(server, wd, BOB_FIXED, port=server.pstn, caller=CALLER, hold=300)
        codes = [p.wait(20) for p in (caller, soft, mobile, target)]
        assert codes == [0, 0, 0, 0], debug_dump(server, caller, soft, mobile, target)
        (invite,) = target.received_requests("INVITE")
        if action == "alt_number":
            assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} ")
            assert header(invite, "Diversion") == f"<sip:{BOB_FIXED}@demo.test>;reason=user-busy;counter=1"
        else:
            assert ruri(invite).startswith(f"sip:queue@127.0.0.1:{server.media};") and ";cause=486" in ruri(
                invite
            )
        situation = server.events("call.situation")[-1]
        assert situation["situation"] == "busy"
