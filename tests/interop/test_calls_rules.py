"""Issue 4 acceptance, end to end: the rule groups and caller ID on real SIPp peers.

Directory changes go through the real `vidare` command line (or the store for settings the
command line does not offer) against the running server's database; the server picks them up
within a second, as SPEC 7 requires.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
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


def _store(server: CallServer, method: str, *args: Any) -> Any:
    """Call one ``Store`` method on the server's database (what the admin API would do)."""
    from policy.store import Store

    async def run() -> Any:
        store = await Store.open(f"sqlite+aiosqlite:///{server.data_dir / 'var' / 'vidare.db'}")
        try:
            return await getattr(store, method)(*args)
        finally:
            await store.close()

    return asyncio.run(run())


def _changed(server: CallServer) -> None:
    time.sleep(1.2)  # the server reloads the directory within a second


def _cli(server: CallServer, *args: str) -> None:
    r = server.cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    _changed(server)


def _debug(server: CallServer, *peers: Peer) -> str:
    return "\n".join(p.debug() for p in peers) + "\n--- server ---\n" + server.log_path.read_text()[-6000:]


def _call(
    server: CallServer,
    wd: Path,
    *,
    to: str = BOB_FIXED,
    hold: int = 500,
    port: int | None = None,
    caller: str = CALLER,
) -> Peer:
    return start_peer(
        "caller",
        "call_uac.xml",
        port or server.pstn,
        wd,
        server.address,
        keys={"caller": caller},
        service=to,
        subs={"hold": str(hold)},
    )


def _call_out(server: CallServer, wd: Path, user: str, password: str, to: str, hold: int = 500) -> Peer:
    return start_peer(
        f"{user}-phone-out",
        "call_uac_auth.xml",
        free_port(),
        wd,
        server.address,
        keys={"caller": user},
        service=to,
        subs={"hold": str(hold)},
        extra=[
            "-au",
            user,
            "-ap",
            password,
            # SIPp's digest uri is remote_ip:port unless told the Request-URI.
            "-auth_uri",
            f"{to}@127.0.0.1:{server.port}",
        ],
    )


def test_no_answer_after_20_seconds_goes_to_voicemail(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _cli(
            server,
            "user",
            "groups",
            "bob",
            "--remove",
            "no_answer.both.voicemail.30",
            "--add",
            "no_answer.fixed.voicemail.20",
        )
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        started = time.monotonic()
        caller = _call(server, wd)
        codes = [p.wait(40) for p in (caller, soft, mobile, media)]
        assert codes == [0, 0, 0, 0], _debug(server, caller, soft, mobile, media)
        (invite,) = media.received_requests("INVITE")
        ruri = invite.split()[1]
        assert ruri.startswith(f"sip:voicemail@127.0.0.1:{server.media};") and ";cause=408" in ruri
        assert 19.5 < time.monotonic() - started < 26
        decided = server.events("route.decided")[0]
        assert decided["plan"]["no_answer"]["decided_by"] == "no_answer.fixed.voicemail.20"


def test_activity_announcement_then_voicemail(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _cli(server, "activity", "bob", "meeting", "--until", "2030-01-02T14:30:00+01:00")
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = [p.wait(20) for p in (caller, media)]
        assert codes == [0, 0], _debug(server, caller, media)
        (invite,) = media.received_requests("INVITE")
        ruri = invite.split()[1]
        assert ruri.startswith(f"sip:announcement_voicemail@127.0.0.1:{server.media};")
        assert ";cause=302" in ruri
        assert unquote(ruri.split("target=")[1].split(";")[0]) == "sip:bob@demo.test"
        assert header(invite, "X-Vidare-Activity") == "meeting"
        assert header(invite, "X-Vidare-Return") == "2030-01-02T14:30:00+01:00"
        assert header(invite, "X-Vidare-Play-Activity") == "yes"
        assert header(invite, "History-Info")


def test_busy_without_call_waiting_second_call_goes_to_voicemail(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _cli(
            server,
            "user",
            "groups",
            "bob",
            "--remove",
            "busy.both.voicemail",
            "--add",
            "busy.fixed.voicemail_no_waiting",
        )
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "300"})
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        first = _call(server, wd, hold=5000)
        assert mobile.wait(10) == 0, _debug(server, first, soft, mobile)  # cancelled: bob answered
        # The second call comes in over the mobile trunk (a caller who is not one of our users).
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        second = start_peer(
            "caller2",
            "call_uac.xml",
            server.mobile,
            wd,
            server.address,
            keys={"caller": "+46899999999"},
            service=BOB_FIXED,
            subs={"hold": "300"},
        )
        codes = [p.wait(20) for p in (second, media, first, soft)]
        assert codes == [0, 0, 0, 0], _debug(server, first, second, soft, media)
        (invite,) = media.received_requests("INVITE")
        assert ";cause=486" in invite.split()[1]
        assert len(soft.received_requests("INVITE")) == 1  # the softphone did not ring again
        decided = server.events("route.decided")
        assert decided[-1]["decided_by"] == "busy.fixed.voicemail_no_waiting"


def test_outgoing_call_from_softphone_shows_fixed_number(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        phone = _call_out(server, wd, "bob", "bob-demo", "+4687654321")
        codes = [p.wait(20) for p in (phone, pstn)]
        assert codes == [0, 0], _debug(server, phone, pstn)
        (invite,) = pstn.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:+4687654321@127.0.0.1:{server.pstn} ")
        assert "<sip:+4681001002@demo.test>" in (header(invite, "From") or "")
        assert header(invite, "P-Asserted-Identity") == '"Bob Berg" <sip:+4681001002@demo.test>'
        assert header(invite, "Privacy") is None
        assert header(invite, "Proxy-Authorization") is None  # credentials never cross legs


def test_outgoing_hidden_caller_id(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _store(server, "set_caller_id_role", "bob", "hidden")
        _changed(server)
        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        phone = _call_out(server, wd, "bob", "bob-demo", "+4687654321")
        codes = [p.wait(20) for p in (phone, pstn)]
        assert codes == [0, 0], _debug(server, phone, pstn)
        (invite,) = pstn.received_requests("INVITE")
        assert "sip:anonymous@anonymous.invalid" in (header(invite, "From") or "")
        assert header(invite, "Privacy") == "id"
        assert header(invite, "P-Asserted-Identity") == "<sip:+4681001002@demo.test>"


def test_internal_call_alice_to_bob_under_bobs_rules(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "500"})
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        phone = _call_out(server, wd, "alice", "alice-demo", "1002")
        codes = [p.wait(20) for p in (phone, soft, mobile)]
        assert codes == [0, 0, 0], _debug(server, phone, soft, mobile)
        (invite,) = soft.received_requests("INVITE")
        assert "<sip:+4681001001@demo.test>" in (header(invite, "From") or "")
        assert header(invite, "P-Asserted-Identity") is None  # not toward an untrusted phone
        cdrs = _wait_cdrs(server)
        assert cdrs and cdrs[0].direction == "internal" and cdrs[0].outcome == "answered"


def _wait_cdrs(server: CallServer, timeout: float = 3.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _store(server, "list_cdrs")
        if rows:
            return list(rows)
        time.sleep(0.2)
    return []


def _activity_alt(server: CallServer, user: str) -> None:
    _cli(
        server,
        "user",
        "groups",
        user,
        "--remove",
        "activity.both.announcement_voicemail",
        "--add",
        "activity.fixed.alt_number",
    )
    _cli(server, "activity", user, "lunch")


def test_activity_forward_to_external_alternative_number_with_diversion(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _activity_alt(server, "bob")  # the company's alternative number +4681000000 is external
        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        # The caller comes over the mobile network trunk (the PSTN port is the reception's peer here).
        caller = start_peer(
            "caller",
            "call_uac.xml",
            server.mobile,
            wd,
            server.address,
            keys={"caller": CALLER},
            service=BOB_FIXED,
            subs={"hold": "300"},
        )
        codes = [p.wait(20) for p in (caller, pstn)]
        assert codes == [0, 0], _debug(server, caller, pstn)
        (invite,) = pstn.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:+4681000000@127.0.0.1:{server.pstn} ")
        assert header(invite, "Diversion") == "<sip:+4681001002@demo.test>;reason=unconditional;counter=1"
        assert "index=1.1" in (header(invite, "History-Info") or "")


def test_internal_alternative_number_and_forwarding_loop(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _activity_alt(server, "bob")
        _store(server, "set_alt_number", "user", "bob", "1003")
        _changed(server)
        # carol is available: the call becomes a call to carol under her rules (her mobile rings).
        mobile = start_peer("carol-mobile", "call_uas_answer.xml", server.mobile, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = [p.wait(20) for p in (caller, mobile)]
        assert codes == [0, 0], _debug(server, caller, mobile)
        (invite,) = mobile.received_requests("INVITE")
        assert invite.startswith(f"INVITE sip:+46701001003@127.0.0.1:{server.mobile} ")

        # Now carol forwards back to bob: the loop is broken at bob's voicemail.
        _activity_alt(server, "carol")
        _store(server, "set_alt_number", "user", "carol", "1002")
        _changed(server)
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = [p.wait(20) for p in (caller, media)]
        assert codes == [0, 0], _debug(server, caller, media)
        (invite,) = media.received_requests("INVITE")
        ruri = invite.split()[1]
        assert ruri.startswith(f"sip:voicemail@127.0.0.1:{server.media};")
        assert unquote(ruri.split("target=")[1].split(";")[0]) == "sip:bob@demo.test"
        assert server.events("call.loop")


def test_off_hours_voicemail(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _cli(server, "hours", "set", "--user", "bob", "mon-sun 00:00-00:01")  # set, and closed now
        _cli(server, "user", "groups", "bob", "--add", "off_hours.fixed.voicemail")
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = [p.wait(20) for p in (caller, media)]
        assert codes == [0, 0], _debug(server, caller, media)
        (invite,) = media.received_requests("INVITE")
        assert invite.split()[1].startswith(f"sip:voicemail@127.0.0.1:{server.media};")
        assert ";cause=302" in invite.split()[1]
        assert server.events("route.decided")[0]["decided_by"] == "off_hours.fixed.voicemail"


@pytest.mark.parametrize(
    ("group", "service", "play"),
    [("activity.fixed.announcement", "announcement", "yes"), ("activity.fixed.voicemail", "voicemail", "no")],
    ids=["announcement-only", "voicemail"],
)
def test_activity_other_actions(tmp_path: Path, group: str, service: str, play: str) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _cli(
            server,
            "user",
            "groups",
            "bob",
            "--remove",
            "activity.both.announcement_voicemail",
            "--add",
            group,
        )
        _cli(server, "activity", "bob", "vacation")
        media = start_peer("media", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = _call(server, wd)
        codes = [p.wait(20) for p in (caller, media)]
        assert codes == [0, 0], _debug(server, caller, media)
        (invite,) = media.received_requests("INVITE")
        assert invite.split()[1].startswith(f"sip:{service}@127.0.0.1:{server.media};")
        assert ";cause=302" in invite.split()[1]
        assert header(invite, "X-Vidare-Activity") == "vacation"
        assert header(invite, "X-Vidare-Play-Activity") == play
