"""Issue 4 acceptance, end to end (SPEC 4): which number the far end sees, on real SIPp peers.

bob calls out from his softphone (authenticated) or from his mobile through the mobile-network
trunk; a SIPp UAS on the PSTN trunk reads From, P-Asserted-Identity and Privacy. Each role, each
``caller_id.hours.*`` group inside and outside working hours, and ``caller_id.internal.mobile``
for an internal and an external call.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interop.callpeers import (
    CallServer,
    call_out,
    call_server,
    cli_ok,
    debug_dump,
    free_port,
    header,
    place_call,
    register_phone,
    ruri,
    settle,
    start_peer,
    store_call,
)

pytestmark = pytest.mark.interop

BOB_FIXED = "+4681001002"
BOB_MOBILE = "+46701001002"
RECEPTION = "+4681000000"
FAR_END = "+4687654321"
ANONYMOUS = "sip:anonymous@anonymous.invalid"


def _expect(number: str | None) -> tuple[str, str | None, str]:
    """(From must contain, Privacy, P-Asserted-Identity) toward the PSTN trunk for bob."""
    if number is None:
        return ANONYMOUS, "id", f"<sip:{BOB_FIXED}@demo.test>"
    return f'"Bob Berg" <sip:{number}@demo.test>', None, f'"Bob Berg" <sip:{number}@demo.test>'


def _call_pstn(server: CallServer, wd: Path, name: str) -> str:
    """bob's softphone calls the far end; the INVITE the PSTN trunk received."""
    pstn = start_peer(f"pstn-{name}", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "50"})
    phone = call_out(server, wd, "bob", "bob-demo", FAR_END, hold=100)
    codes = [p.wait(20) for p in (phone, pstn)]
    assert codes == [0, 0], debug_dump(server, phone, pstn)
    (invite,) = pstn.received_requests("INVITE")
    assert invite.startswith(f"INVITE sip:{FAR_END}@127.0.0.1:{server.pstn} ")
    return invite


def _check(invite: str, number: str | None, what: str) -> None:
    from_, privacy, pai = _expect(number)
    assert from_ in (header(invite, "From") or ""), (what, invite)
    assert header(invite, "Privacy") == privacy, (what, invite)
    assert re.findall(r"^P-Asserted-Identity\s*:\s*(.*?)\s*$", invite, re.M | re.I) == [pai], (what, invite)


def test_each_caller_id_role(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        for role, number in (
            ("fixed", BOB_FIXED),
            ("mobile", BOB_MOBILE),
            ("alt_number", RECEPTION),  # the company's alternative number
            ("hidden", None),
        ):
            store_call(server, "set_caller_id_role", "bob", role)
            settle()
            _check(_call_pstn(server, wd, role), number, role)
        # A user's own alternative number wins over the company's (the most specific one).
        store_call(server, "set_alt_number", "user", "bob", "+4687770000")
        store_call(server, "set_caller_id_role", "bob", "alt_number")
        settle()
        _check(_call_pstn(server, wd, "own-alt"), "+4687770000", "own alt number")


def _today_is_public_holiday() -> bool:
    from policy.hours import public_holidays_for

    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    return today in public_holidays_for("SE", [today.year])


@pytest.mark.parametrize("inside", [True, False], ids=["inside-hours", "outside-hours"])
def test_time_based_caller_id_groups(tmp_path: Path, inside: bool) -> None:
    """Role time_based with each ``caller_id.hours.*`` group: the group's number inside working
    hours, the mobile number outside them."""
    if inside and _today_is_public_holiday():
        pytest.skip("a public holiday is outside working hours whatever the hours say")
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        hours = "mon-sun 00:00-24:00" if inside else "mon-sun 00:00-00:01"
        cli_ok(server, "hours", "set", "--user", "bob", hours, wait=False)
        store_call(server, "set_caller_id_role", "bob", "time_based")
        previous: list[str] = []
        for action, number in (
            ("fixed", BOB_FIXED),
            ("alt_number", RECEPTION),
            ("mobile", BOB_MOBILE),
            ("hidden", None),
        ):
            group = f"caller_id.hours.{action}"
            store_call(server, "set_groups", "bob", [group], previous)
            settle()
            previous = [group]
            _check(_call_pstn(server, wd, action), number if inside else BOB_MOBILE, group)
            decided = server.events("route.decided")[-1]
            assert decided["plan"]["presentation"]["decided_by"] == group
            assert decided["plan"]["presentation"]["role"] == "time_based"
        # time_based without a caller_id.hours group shows the fixed number.
        cli_ok(server, "user", "groups", "bob", "--remove", previous[0])
        _check(_call_pstn(server, wd, "no-group"), BOB_FIXED, "time_based without a group")


def test_internal_mobile_group_for_internal_and_external_calls(tmp_path: Path) -> None:
    """``caller_id.internal.mobile``: a call to a colleague shows the caller's mobile number; a call
    outside the company follows the role (fixed)."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        cli_ok(server, "user", "groups", "alice", "--add", "caller_id.internal.mobile")
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        soft = start_peer("bob-softphone", "call_uas_answer.xml", phone_port, wd, subs={"ring": "100"})
        mobile = start_peer("bob-mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        phone = call_out(server, wd, "alice", "alice-demo", "1002", hold=200)
        codes = [p.wait(20) for p in (phone, soft, mobile)]
        assert codes == [0, 0, 0], debug_dump(server, phone, soft, mobile)
        for invite in (soft.received_requests("INVITE")[0], mobile.received_requests("INVITE")[0]):
            assert '"Alice Andersson" <sip:+46701001001@demo.test>' in (header(invite, "From") or "")
        assert server.events("route.decided")[0]["plan"]["presentation"]["decided_by"] == (
            "caller_id.internal.mobile"
        )

        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "50"})
        phone = call_out(server, wd, "alice", "alice-demo", FAR_END, hold=100)
        codes = [p.wait(20) for p in (phone, pstn)]
        assert codes == [0, 0], debug_dump(server, phone, pstn)
        (invite,) = pstn.received_requests("INVITE")
        assert '"Alice Andersson" <sip:+4681001001@demo.test>' in (header(invite, "From") or "")
        assert header(invite, "P-Asserted-Identity") == '"Alice Andersson" <sip:+4681001001@demo.test>'


# ---------------------------------------------------------------------------------- from the mobile


def test_call_from_users_mobile_to_pstn_shows_the_role_number(tmp_path: Path) -> None:
    """bob calls out from his mobile: the mobile network delivers it on the mobile trunk with its own
    P-Asserted-Identity; the PSTN sees bob's caller-ID role (fixed), asserted once, by Vidare."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "50"})
        caller = place_call(
            server, wd, FAR_END, port=server.mobile, caller=BOB_MOBILE, scenario="call_uac_pai.xml", hold=200
        )
        codes = [p.wait(20) for p in (caller, pstn)]
        assert codes == [0, 0], debug_dump(server, caller, pstn)
        (invite,) = pstn.received_requests("INVITE")
        _check(invite, BOB_FIXED, "from the mobile, role fixed")
        received = server.events("call.received")[0]
        assert received["direction"] == "outgoing" and received["caller_user"] == "bob"

        store_call(server, "set_caller_id_role", "bob", "hidden")
        settle()
        pstn = start_peer("pstn-hidden", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "50"})
        caller = place_call(
            server,
            wd,
            FAR_END,
            port=server.mobile,
            caller=BOB_MOBILE,
            scenario="call_uac_pai.xml",
            hold=200,
            name="caller-hidden",
        )
        codes = [p.wait(20) for p in (caller, pstn)]
        assert codes == [0, 0], debug_dump(server, caller, pstn)
        (invite,) = pstn.received_requests("INVITE")
        _check(invite, None, "from the mobile, hidden")


def test_call_from_users_mobile_to_internal_number_is_internal(tmp_path: Path) -> None:
    """bob's mobile dials carol's extension: an internal call under carol's rules (she is in a
    meeting: her announcement and voicemail), nothing goes out to the PSTN."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        cli_ok(server, "activity", "carol", "meeting")
        pstn = start_peer("pstn", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "50"}, timeout=8)
        for dialled in ("1003", "+4681001003", "081001003"):  # extension, E.164, national
            media = start_peer(
                f"media-{dialled}", "call_uas_answer.xml", server.media, wd, subs={"ring": "50"}
            )
            caller = place_call(
                server,
                wd,
                dialled,
                port=server.mobile,
                caller=BOB_MOBILE,
                hold=200,
                name=f"bob-mobile-{dialled}",
            )
            codes = [p.wait(20) for p in (caller, media)]
            assert codes == [0, 0], debug_dump(server, caller, media)
            (invite,) = media.received_requests("INVITE")
            assert ruri(invite).startswith(f"sip:announcement_voicemail@127.0.0.1:{server.media};")
            assert "target=sip%3Acarol%40demo.test" in ruri(invite)
            # Toward carol the caller is bob, shown with his fixed number (his role).
            assert f'"Bob Berg" <sip:{BOB_FIXED}@demo.test>' in (header(invite, "From") or "")
        pstn.wait(10)
        assert pstn.received() == []
        rows = store_call(server, "list_cdrs")
        assert rows and all(r.direction == "internal" for r in rows), rows
