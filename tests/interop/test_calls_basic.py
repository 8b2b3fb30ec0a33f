"""Issue 4 acceptance, end to end: a real `vidare serve` with SIPp phones, trunks and media server.

bob (fixed +4681001002, mobile +46701001002) is called from the PSTN trunk; his softphone is a
SIPp UAS that registered first, the mobile network is a SIPp UAS on ``trunks.mobile`` and the
media server a SIPp UAS on ``media.address``. The assertions read what each peer received.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from interop.callpeers import (
    CallServer,
    Peer,
    call_server,
    free_port,
    header,
    register_phone,
    start_peer,
)

pytestmark = pytest.mark.interop

BOB_FIXED = "+4681001002"
CALLER = "+46812345678"
COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


def _call(
    server: CallServer,
    workdir: Path,
    scenario: str = "call_uac.xml",
    *,
    to: str = BOB_FIXED,
    hold: int = 500,
    port: int | None = None,
    caller: str = CALLER,
    subs: dict[str, str] | None = None,
) -> Peer:
    return start_peer(
        "caller",
        scenario,
        port or server.pstn,
        workdir,
        server.address,
        keys={"caller": caller},
        service=to,
        subs={"hold": str(hold), **(subs or {})},
    )


def _done(*peers: Peer, timeout: float = 30.0) -> list[int]:
    codes = [p.wait(timeout) for p in peers]
    return codes


def _debug(server: CallServer, *peers: Peer) -> str:
    return "\n".join(p.debug() for p in peers) + "\n--- server ---\n" + server.log_path.read_text()[-6000:]


def test_answered_on_softphone_mobile_leg_cancelled_with_reason(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "1000"})
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        caller = _call(server, wd)
        codes = _done(caller, soft, mobile)
        assert codes == [0, 0, 0], _debug(server, caller, soft, mobile)
        (invite,) = mobile.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:+46701001002@127.0.0.1:{server.mobile}")
        (cancel,) = mobile.received_requests("CANCEL")
        assert header(cancel, "Reason") == COMPLETED_ELSEWHERE
        assert soft.received_requests("BYE"), _debug(server, soft)
        # The caller got the softphone's SDP answer unchanged.
        ok = next(m for m in caller.received() if m.startswith("SIP/2.0 200"))
        assert "o=callee" in ok
        names = [e["event"] for e in server.log_events()]
        for ev in (
            "call.received",
            "route.decided",
            "leg.ringing",
            "leg.answered",
            "leg.cancelled",
            "call.ended",
        ):
            assert ev in names, names
        decided = server.events("route.decided")[0]
        assert decided["explanation"] and decided["user"] == "bob"


def test_answered_on_mobile_softphone_cancelled(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd)
        mobile = start_peer("mobile", "call_uas_answer.xml", server.mobile, wd, subs={"ring": "1000"})
        caller = _call(server, wd)
        codes = _done(caller, soft, mobile)
        assert codes == [0, 0, 0], _debug(server, caller, soft, mobile)
        (cancel,) = soft.received_requests("CANCEL")
        assert header(cancel, "Reason") == COMPLETED_ELSEWHERE
        assert mobile.received_requests("BYE")


def test_busy_everywhere_goes_to_voicemail_with_cause_486(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_reject.xml", phone_port, wd, subs={"status": "486"})
        mobile = start_peer("mobile", "call_uas_reject.xml", server.mobile, wd, subs={"status": "486"})
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = _done(caller, soft, mobile, media)
        assert codes == [0, 0, 0, 0], _debug(server, caller, soft, mobile, media)
        (invite,) = media.received_requests("INVITE")
        ruri = invite.split()[1]
        assert ruri.startswith(f"sip:voicemail@127.0.0.1:{server.media};")
        assert ";cause=486" in ruri
        assert unquote(ruri.split("target=")[1].split(";")[0]) == "sip:bob@demo.test"
        assert header(invite, "X-Vidare-Name") == "Bob Berg"
        assert header(invite, "X-Vidare-Extension") == "1002"
        assert header(invite, "X-Vidare-Play-Activity") == "no"
        assert "cause%3D486" in (header(invite, "History-Info") or "")


def test_unreachable_no_registration_mobile_480_forwards_at_once(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        mobile = start_peer("mobile", "call_uas_reject.xml", server.mobile, wd, subs={"status": "480"})
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = _done(caller, mobile, media, timeout=15)
        assert codes == [0, 0, 0], _debug(server, caller, mobile, media)
        (invite,) = media.received_requests("INVITE")
        assert invite.split()[1].startswith(f"sip:voicemail@127.0.0.1:{server.media};")
        assert ";cause=408" in invite.split()[1]


def test_caller_cancel_while_forking(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        caller = _call(server, wd, "call_uac_cancel.xml", hold=1000)
        codes = _done(caller, soft, mobile)
        assert codes == [0, 0, 0], _debug(server, caller, soft, mobile)
        assert 487 in caller.received_statuses()
        assert soft.received_requests("CANCEL") and mobile.received_requests("CANCEL")
        ended = server.events("call.ended")
        assert ended and ended[0]["outcome"] == "cancelled"


def test_unauthenticated_invite_toward_pstn_gets_407_and_no_trunk_traffic(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"}, timeout=5)
        caller = _call(
            server,
            wd,
            "call_uac_reject.xml",
            to="+4687654321",
            port=free_port(),
            caller="bob",
            subs={"status": "407"},
        )
        assert caller.wait(15) == 0, _debug(server, caller)
        assert header(caller.received()[-1], "Proxy-Authenticate")
        pstn.wait(10)
        assert pstn.received() == []


def test_unknown_number_gets_404(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        caller = _call(server, wd, "call_uac_reject.xml", to="+4681999999", subs={"status": "404"})
        assert caller.wait(15) == 0, _debug(server, caller)
