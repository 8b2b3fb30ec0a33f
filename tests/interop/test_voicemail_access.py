"""Voicemail access and a dying media server, end to end (issue 5 points 6 and the media-death
acceptance): a real ``vidare serve``; SIPp phones, trunks and a SIPp UAS at the media address."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from interop.callpeers import CallServer, Peer, call_server, free_port, header, register_phone, start_peer

pytestmark = pytest.mark.interop

VOICEMAIL_NUMBER = "+4681009999"  # media.voicemail_number in the default configuration


def _debug(server: CallServer, *peers: Peer) -> str:
    return "\n".join(p.debug() for p in peers) + "\n--- server ---\n" + server.log_path.read_text()[-6000:]


def test_star98_from_the_softphone_reaches_voicemail_access_as_the_user(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        port = free_port()
        register_phone(server, "bob", "bob-demo", port, wd)
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        phone = start_peer(
            "bob-phone",
            "call_uac_auth.xml",
            port,
            wd,
            server.address,
            keys={"caller": "bob"},
            service="*98",
            subs={"hold": "300"},
            extra=["-au", "bob", "-ap", "bob-demo", "-auth_uri", f"*98@{server.address}"],
        )
        assert [phone.wait(20), media.wait(20)] == [0, 0], _debug(server, phone, media)
        (invite,) = media.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:voicemail-access@127.0.0.1:{server.media} SIP/2.0")
        assert header(invite, "X-Vidare-User") == "bob"
        assert header(invite, "To") == f"<sip:voicemail-access@127.0.0.1:{server.media}>"
        decided = server.events("route.decided")[0]
        assert decided["action"] == "voicemail_access" and decided["user"] == "bob"


def test_the_voicemail_number_from_the_pstn_reaches_voicemail_access_without_a_user(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = start_peer(
            "caller",
            "call_uac.xml",
            server.pstn,
            wd,
            server.address,
            keys={"caller": "+46812345678"},
            service=VOICEMAIL_NUMBER,
            subs={"hold": "300"},
        )
        assert [caller.wait(20), media.wait(20)] == [0, 0], _debug(server, caller, media)
        (invite,) = media.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:voicemail-access@127.0.0.1:{server.media} SIP/2.0")
        assert header(invite, "X-Vidare-User") is None


def test_star98_from_the_pstn_trunk_is_not_voicemail_access(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        caller = start_peer(
            "caller",
            "call_uac_reject.xml",
            server.pstn,
            wd,
            server.address,
            keys={"caller": "+46812345678"},
            service="*98",
            subs={"status": "404"},
        )
        assert caller.wait(15) == 0, _debug(server, caller)


def test_media_server_dying_mid_call_ends_the_call_with_bye_and_cdr(tmp_path: Path) -> None:
    """bob unreachable -> voicemail at the media server, which answers and dies: the keepalive
    (1 s here) finds it silent and the B2BUA hangs up on the caller."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path, ["--set", "media.keepalive_interval=1"]) as server:
        mobile = start_peer("mobile", "call_uas_reject.xml", server.mobile, wd, subs={"status": "480"})
        media = start_peer("media", "media_uas_answer_die.xml", server.media, wd)
        caller = start_peer(
            "caller",
            "call_uac_wait_bye.xml",
            server.pstn,
            wd,
            server.address,
            keys={"caller": "+46812345678"},
            service="+4681001002",
            subs={"wait": "10000"},
        )
        assert media.wait(10) == 0, _debug(server, caller, media)
        died = time.monotonic()
        assert caller.wait(15) == 0, _debug(server, caller, mobile, media)
        assert time.monotonic() - died < 6
        assert caller.received_requests("BYE")
        (lost,) = server.events("media.unreachable")
        assert lost["calls"] == 1
        ended = server.events("call.ended")[-1]
        assert "media server unreachable" in str(ended["cause"])
        mobile.wait(5)

        # The media server is back (vidare serve restarts it): the next call to voicemail works.
        media2 = start_peer("media2", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        mobile2 = start_peer("mobile2", "call_uas_reject.xml", server.mobile, wd, subs={"status": "480"})
        caller2 = start_peer(
            "caller2",
            "call_uac.xml",
            server.pstn,
            wd,
            server.address,
            keys={"caller": "+46812345678"},
            service="+4681001002",
            subs={"hold": "300"},
        )
        codes = [caller2.wait(20), media2.wait(20), mobile2.wait(10)]
        assert codes == [0, 0, 0], _debug(server, caller2, media2, mobile2)
