"""Forwarding chains end to end (SPEC 3.1 off hours on the mobile number, SPEC 3.3 alternative
numbers, chains and their bound) and a BYE that crosses the caller's BYE, on real SIPp peers.

The setup is the one of ``test_calls_more.py``: a real `vidare serve`, the PSTN trunk a SIPp UAS on
``trunks.pstn`` (where external alternative numbers go), the mobile network a SIPp UAS on
``trunks.mobile``, the media server a SIPp UAS on ``media.address``. A caller must come from a
trunk's address, so it takes whichever trunk port no peer of the test needs.

Every chain here acts at once (activity, or working hours that are closed now): no ring timers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from interop.callpeers import (
    CallServer,
    Peer,
    call_server,
    cli_ok,
    debug_dump,
    header,
    place_call,
    ruri,
    settle,
    start_peer,
    store_call,
)

pytestmark = pytest.mark.interop

BOB_FIXED = "+4681001002"
BOB_MOBILE = "+46701001002"
CAROL_MOBILE = "+46701001003"
RECEPTION = "+4681000000"  # the demo company's alternative number (external)
CALLER = "+46812345678"
FAR_END = "+4687777777"  # an external alternative number at the end of a chain
CLOSED_NOW = "mon-sun 00:00-00:01"  # working hours that are closed at (almost) any time

#: How each demo user may appear in a Diversion or History-Info entry: a number, extension or name.
ALICE = frozenset({"+4681001001", "+46701001001", "1001", "alice"})
BOB = frozenset({BOB_FIXED, BOB_MOBILE, "1002", "bob"})
CAROL = frozenset({"+4681001003", CAROL_MOBILE, "1003", "carol"})


# ------------------------------------------------------------------------------------ helpers


def _add_user(server: CallServer, username: str, extension: str) -> frozenset[str]:
    """A new user (fixed number ``+46810010<ext>``, no mobile) who forwards on any activity."""
    fixed = f"+468100{extension}"
    store_call(
        server,
        "create_user",
        username,
        username.capitalize(),
        extension,
        f"{username}-secret",
        fixed=fixed,
        groups=["activity.fixed.alt_number", "no_answer.both.voicemail.30", "busy.both.voicemail"],
    )
    return frozenset({fixed, extension, username})


def _forward_on_activity(server: CallServer, user: str, to: str, *, demo: bool = True) -> None:
    """``user`` is at lunch and their activity group forwards to ``to`` (extension or E.164)."""
    if demo:
        cli_ok(
            server,
            "user",
            "groups",
            user,
            "--remove",
            "activity.both.announcement_voicemail",
            "--add",
            "activity.fixed.alt_number",
            wait=False,
        )
    cli_ok(server, "activity", user, "lunch", wait=False)
    store_call(server, "set_alt_number", "user", user, to)


def _forward_off_hours(server: CallServer, user: str, to: str, number: str = "fixed") -> None:
    """``user``'s working hours are closed now and their off-hours group forwards to ``to``."""
    cli_ok(server, "hours", "set", "--user", user, CLOSED_NOW, wait=False)
    cli_ok(server, "user", "groups", user, "--add", f"off_hours.{number}.alt_number", wait=False)
    store_call(server, "set_alt_number", "user", user, to)


def _split(value: str) -> list[str]:
    """A header value's comma-separated entries (commas inside <...> or quotes do not split)."""
    out: list[str] = []
    cur, depth, quoted = "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def _values(message: str, name: str) -> list[str]:
    """Every entry of header ``name`` in a traced message, over all its header lines, in order."""
    head = message.split("\n\n", 1)[0]
    out: list[str] = []
    for line in head.splitlines()[1:]:
        n, sep, v = line.partition(":")
        if sep and n.strip().lower() == name.lower():
            out += _split(v.strip())
    return out


@dataclass(frozen=True)
class _Entry:
    """One Diversion (RFC 5806) or History-Info (RFC 7044) entry."""

    text: str
    uri: str  # without the ?headers part
    user: str  # the URI's user part
    headers: str  # the ?headers part, unescaped ("Reason=SIP;cause=302")
    params: dict[str, str]

    def names(self, who: frozenset[str]) -> bool:
        return self.user in who


def _entries(message: str, name: str) -> list[_Entry]:
    out = []
    for text in _values(message, name):
        m = re.fullmatch(r'(?:"[^"]*"\s*)?<([^>]*)>(.*)', text)
        assert m, f"{name} entry not a name-addr: {text!r}"
        uri, _, hdrs = m.group(1).partition("?")
        params = {}
        for p in m.group(2).split(";"):
            if p.strip():
                k, _, v = p.strip().partition("=")
                params[k.lower()] = v
        user = uri.split(":", 1)[-1].split("@", 1)[0] if "@" in uri else ""
        out.append(_Entry(text, uri, unquote(user), unquote(hdrs), params))
    return out


def _assert_diversions(invite: str, chain: list[frozenset[str]], reason: str = "unconditional") -> None:
    """RFC 5806: one Diversion entry per diverting party, the most recent first; the counters add up
    to the number of diversions. ``chain`` lists the diverting parties in call order."""
    got = _entries(invite, "Diversion")
    assert len(got) == len(chain), f"{len(chain)} diversion entries expected:\n{invite}"
    for entry, who in zip(got, reversed(chain), strict=True):
        assert entry.names(who), f"{entry.text!r} should name one of {sorted(who)}:\n{invite}"
        assert entry.params.get("reason") == reason, entry.text
    assert sum(int(e.params.get("counter", "1")) for e in got) == len(chain), invite


def _assert_history(invite: str, chain: list[frozenset[str]], cause: int = 302) -> None:
    """RFC 7044: one History-Info entry per target the call was sent to, in order (index 1, 1.1,
    1.1.1, ...), each retargeted entry with the Reason that made us retarget, each later entry
    pointing at its parent (mp or rc), and the last one the Request-URI."""
    got = _entries(invite, "History-Info")
    want = len(chain) + 1
    assert [e.params.get("index") for e in got] == [".".join(["1"] * i) for i in range(1, want + 1)], (
        f"{want} History-Info entries expected:\n{invite}"
    )
    for entry, who in zip(got, chain, strict=False):
        assert entry.names(who), f"{entry.text!r} should name one of {sorted(who)}:\n{invite}"
        assert f"cause={cause}" in entry.headers, entry.text
    for parent, entry in pairwise(got):
        assert parent.params["index"] in (entry.params.get("mp"), entry.params.get("rc")), entry.text
    assert got[-1].uri == ruri(invite), invite


def _call_id(peer: Peer) -> str:
    """The Call-ID of the first message a UAC sent (its INVITE)."""
    m = re.search(r"^Call-ID:\s*(\S+)", peer.messages, re.M | re.I)
    assert m, peer.debug()
    return m.group(1)


def _answered_call(
    server: CallServer, wd: Path, peer: str, peer_port: int, dialled: str, trunk: int, name: str = "caller"
) -> tuple[str, str]:
    """A SIPp UAS named ``peer`` answers at ``peer_port``; a caller on ``trunk`` dials ``dialled``.
    Both must succeed; returns the one INVITE the peer received and the caller's Call-ID."""
    uas = start_peer(peer, "call_uas_answer.xml", peer_port, wd, subs={"ring": "100"})
    caller = place_call(server, wd, dialled, port=trunk, caller=CALLER, hold=300, name=name)
    codes = [p.wait(20) for p in (caller, uas)]
    assert codes == [0, 0], debug_dump(server, caller, uas)
    (invite,) = uas.received_requests("INVITE")
    return invite, _call_id(caller)


def _events(server: CallServer, name: str, call_id: str) -> list[dict[str, Any]]:
    return [e for e in server.events(name) if e.get("call_id") == call_id]


def _target(uri: str) -> str:
    return unquote(uri.split("target=")[1].split(";")[0])


# ------------------------------------------------------------------- off hours, mobile number


def test_off_hours_mobile_alt_number_external(tmp_path: Path) -> None:
    """``off_hours.mobile.alt_number``: a call to bob's mobile number while bob is off hours goes
    to the company's (external) alternative number; his fixed number stays open (slot empty)."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        cli_ok(server, "hours", "set", "--user", "bob", CLOSED_NOW, wait=False)
        cli_ok(server, "user", "groups", "bob", "--add", "off_hours.mobile.alt_number")
        invite, call_id = _answered_call(server, wd, "reception", server.pstn, BOB_MOBILE, server.mobile)
        assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} "), invite
        # The dialled (mobile) number diverted, once, unconditionally (SPEC 3.3: cause 302).
        assert header(invite, "Diversion") == f"<sip:{BOB_MOBILE}@demo.test>;reason=unconditional;counter=1"
        _assert_diversions(invite, [BOB])
        (first, second) = _entries(invite, "History-Info")
        assert first.uri == f"sip:{BOB_MOBILE}@demo.test" and first.params["index"] == "1", invite
        assert first.headers == "Reason=SIP;cause=302", invite
        assert second.uri == ruri(invite) and second.params["index"] == "1.1", invite
        assert second.params.get("mp") == "1", invite
        (decided,) = _events(server, "route.decided", call_id)
        assert decided["decided_by"] == "off_hours.mobile.alt_number"
        assert decided["action"] == "alt_number" and decided["user"] == "bob"
        (forwarded,) = _events(server, "call.forwarded", call_id)
        assert forwarded["internal"] is False and forwarded["cause"] == 302

        # The mobile group does not fill the fixed slot: a call to the fixed number rings bob.
        m_invite, call_id = _answered_call(
            server, wd, "bob-mobile", server.mobile, BOB_FIXED, server.pstn, name="caller-fixed"
        )
        assert ruri(m_invite).startswith(f"sip:{BOB_MOBILE}@"), m_invite
        assert _values(m_invite, "Diversion") == [], m_invite
        (decided,) = _events(server, "route.decided", call_id)
        assert decided["action"] == "ring" and decided["decided_by"] is None


def test_off_hours_mobile_alt_number_internal(tmp_path: Path) -> None:
    """The same with an internal alternative number (carol's extension): the call becomes a call
    to carol under her rules (she is available: her mobile rings), and the leg that reaches her
    says who diverted it (RFC 5806 Diversion, RFC 7044 History-Info), as an external forward does.
    SPEC 3.3 names these headers for the media server and the PSTN only; the expectation that an
    internal forward's ring legs carry them too is the RFCs' (the last four assertions)."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _forward_off_hours(server, "bob", "1003", number="mobile")
        settle()
        invite, call_id = _answered_call(server, wd, "carol-mobile", server.mobile, BOB_MOBILE, server.pstn)
        assert invite.startswith(f"INVITE sip:{CAROL_MOBILE}@127.0.0.1:{server.mobile} "), invite
        decided = _events(server, "route.decided", call_id)
        assert [(d["user"], d["action"], d["decided_by"]) for d in decided] == [
            ("bob", "alt_number", "off_hours.mobile.alt_number"),
            ("carol", "ring", None),
        ]
        (forwarded,) = _events(server, "call.forwarded", call_id)
        assert forwarded["to"] == "carol" and forwarded["internal"] is True and forwarded["cause"] == 302
        ended = _events(server, "call.ended", call_id)
        assert [e["outcome"] for e in ended] == ["answered"]
        # What carol's mobile got: bob's mobile number diverted the call (evidence in the message).
        _assert_diversions(invite, [BOB])
        assert _entries(invite, "Diversion")[0].user == BOB_MOBILE, invite
        _assert_history(invite, [BOB])
        assert _entries(invite, "History-Info")[0].user == BOB_MOBILE, invite


# ---------------------------------------------------------------------------------- chains


@dataclass
class _ChainCall:
    server: CallServer
    invite: str  # what the PSTN trunk received
    decided: list[dict[str, Any]]
    forwarded: list[dict[str, Any]]


def _three_hop_chain(tmp_path: Path) -> _ChainCall:
    """bob (lunch, activity -> carol 1003) -> carol (off hours -> alice 1001) -> alice (lunch,
    activity -> an external number): a caller on the mobile trunk dials bob's fixed number."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _forward_on_activity(server, "bob", "1003")
        _forward_off_hours(server, "carol", "1001")
        _forward_on_activity(server, "alice", FAR_END)
        settle()
        invite, call_id = _answered_call(server, wd, "far-end", server.pstn, BOB_FIXED, server.mobile)
        return _ChainCall(
            server,
            invite,
            _events(server, "route.decided", call_id),
            _events(server, "call.forwarded", call_id),
        )


def test_chain_of_three_diversions_reaches_external_number(tmp_path: Path) -> None:
    """SPEC 3.3: an internal alternative number is a new call to that user under their own rules;
    the chain bob -> carol -> alice -> external ends at the PSTN trunk with three diversions."""
    chain = _three_hop_chain(tmp_path)
    invite = chain.invite
    assert invite.startswith(f"INVITE sip:{FAR_END}@127.0.0.1:{chain.server.pstn} "), invite
    assert [(d["user"], d["action"], d["decided_by"]) for d in chain.decided] == [
        ("bob", "alt_number", "activity.fixed.alt_number"),
        ("carol", "alt_number", "off_hours.fixed.alt_number"),
        ("alice", "alt_number", "activity.fixed.alt_number"),
    ]
    assert [(f["to"], f["internal"], f["cause"]) for f in chain.forwarded] == [
        ("carol", True, 302),
        ("alice", True, 302),
        (ruri(invite), False, 302),
    ]
    diversions = _entries(invite, "Diversion")
    # The latest diverting party is alice; three diversions in all.
    assert diversions and diversions[0].names(ALICE), invite
    assert sum(int(e.params.get("counter", "1")) for e in diversions) == 3, invite
    assert f"<sip:{FAR_END}@127.0.0.1:{chain.server.pstn}>" in (header(invite, "History-Info") or ""), invite


def test_chain_headers_name_every_diverting_user_in_order(tmp_path: Path) -> None:
    """The same chain: the INVITE at the PSTN trunk carries the whole chain, one Diversion entry
    per diversion (alice, carol, bob: the most recent first) and one History-Info entry per target
    (bob 1, carol 1.1, alice 1.1.1, the far end 1.1.1.1)."""
    invite = _three_hop_chain(tmp_path).invite
    _assert_diversions(invite, [BOB, CAROL, ALICE])
    assert _entries(invite, "Diversion")[-1].user == BOB_FIXED, invite  # the number dialled
    _assert_history(invite, [BOB, CAROL, ALICE])
    assert _entries(invite, "History-Info")[0].user == BOB_FIXED, invite


def test_fifth_diversion_is_the_last(tmp_path: Path) -> None:
    """SPEC 3.3: at most 5 diversions. bob -> carol -> alice -> dave -> erin -> external is 5 and
    reaches the PSTN; one more hop (erin -> frank -> external, or frank -> gina) is a 6th: the
    chain stops at the first user's (bob's) voicemail and nothing reaches the 6th target."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        _add_user(server, "dave", "1004")
        erin = _add_user(server, "erin", "1005")
        _add_user(server, "frank", "1006")
        _add_user(server, "gina", "1007")  # available: her own rules would ring / voicemail her
        _forward_on_activity(server, "bob", "1003")
        _forward_on_activity(server, "carol", "1001")
        _forward_on_activity(server, "alice", "1004")
        _forward_on_activity(server, "dave", "1005", demo=False)
        _forward_on_activity(server, "erin", FAR_END, demo=False)
        _forward_on_activity(server, "frank", FAR_END, demo=False)
        settle()

        # Five diversions: allowed.
        invite, call_id = _answered_call(server, wd, "far-end", server.pstn, BOB_FIXED, server.mobile)
        assert invite.startswith(f"INVITE sip:{FAR_END}@127.0.0.1:{server.pstn} "), invite
        diversions = _entries(invite, "Diversion")
        assert diversions and diversions[0].names(erin), invite
        assert sum(int(e.params.get("counter", "1")) for e in diversions) == 5, invite
        assert [d["user"] for d in _events(server, "route.decided", call_id)] == [
            "bob",
            "carol",
            "alice",
            "dave",
            "erin",
        ]
        assert [f["internal"] for f in _events(server, "call.forwarded", call_id)] == [True] * 4 + [False]

        # A 6th diversion, external (frank -> the far end): bob's voicemail, the PSTN sees nothing.
        store_call(server, "set_alt_number", "user", "erin", "1006")
        settle()
        pstn = start_peer("far-end-6", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
        media = start_peer("media-6", "call_uas_answer.xml", server.media, wd, subs={"ring": "100"})
        caller = place_call(server, wd, BOB_FIXED, port=server.mobile, caller=CALLER, hold=300, name="c6")
        codes = [p.wait(20) for p in (caller, media)]
        pstn.stop()
        assert codes == [0, 0], debug_dump(server, caller, media, pstn)
        assert pstn.received_requests("INVITE") == [], pstn.debug()
        (vm,) = media.received_requests("INVITE")
        assert ruri(vm).startswith(f"sip:voicemail@127.0.0.1:{server.media};"), vm
        assert _target(ruri(vm)) == "sip:bob@demo.test", vm
        assert header(vm, "X-Vidare-Name") == "Bob Berg", vm
        call_id = _call_id(caller)
        assert [d["user"] for d in _events(server, "route.decided", call_id)] == [
            "bob",
            "carol",
            "alice",
            "dave",
            "erin",
            "frank",
        ]
        forwarded = _events(server, "call.forwarded", call_id)
        assert [f["to"] for f in forwarded[:5]] == ["carol", "alice", "dave", "erin", "frank"]
        assert forwarded[5]["service"] == "voicemail" and len(forwarded) == 6
        (stopped,) = _events(server, "call.diversion_limit", call_id)
        assert stopped["to"] == FAR_END and stopped["diversions"] == 6

        # A 6th diversion, internal (frank -> gina 1007): the same end; gina is never tried.
        store_call(server, "set_alt_number", "user", "frank", "1007")
        settle()
        vm, call_id = _answered_call(server, wd, "media-7", server.media, BOB_FIXED, server.pstn, name="c7")
        assert _target(ruri(vm)) == "sip:bob@demo.test", vm  # not gina's voicemail
        assert "gina" not in [d["user"] for d in _events(server, "route.decided", call_id)]
        (stopped,) = _events(server, "call.diversion_limit", call_id)
        assert stopped["to"] == "gina" and stopped["diversions"] == 6
        assert _events(server, "call.loop", call_id) == []  # a limit, not a loop


# ---------------------------------------------------------------------------------- crossing BYEs


def test_crossing_bye_caller_gets_no_second_bye(tmp_path: Path) -> None:
    """Caller and callee hang up at the same moment: the caller's BYE ends the call (and goes on
    to bob's mobile), and the mobile's own BYE, sent before the B2BUA's BYE reached it, arrives
    after that. The caller must see exactly one end of the call: the 200 to its own BYE. A BYE
    from the B2BUA to a caller who already hung up is wrong (RFC 3261 15: the dialog is gone)."""
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        mobile = start_peer(
            "bob-mobile", "call_uas_answer_bye_crossing.xml", server.mobile, wd, subs={"listen": "2000"}
        )
        caller = start_peer(
            "caller",
            "call_uac_bye_listen.xml",
            server.pstn,
            wd,
            server.address,
            keys={"caller": CALLER},
            service=BOB_MOBILE,
            subs={"hold": "500", "listen": "2000"},
        )
        codes = [p.wait(20) for p in (caller, mobile)]
        assert codes == [0, 0], debug_dump(server, caller, mobile)
        # The crossing happened: the mobile got the B2BUA's BYE and sent its own.
        assert len(mobile.received_requests("BYE")) == 1, mobile.debug()
        bye_answers = [m for m in caller.received() if (header(m, "CSeq") or "").endswith(" BYE")]
        assert [m.split("\n", 1)[0] for m in bye_answers if m.startswith("SIP/2.0")] == ["SIP/2.0 200 OK"]
        late = caller.received_requests("BYE")
        assert late == [], "the caller hung up, yet the B2BUA sent it a BYE:\n" + "\n\n".join(late)
        ended = _events(server, "call.ended", _call_id(caller))
        assert [(e["outcome"], e["cause"]) for e in ended] == [("answered", "caller hung up")]
        # The mobile's own BYE was answered (200 or 481: either is fine for a crossed BYE).
        answered = [
            m for m in mobile.received() if m.startswith("SIP/2.0 ") and "BYE" in (header(m, "CSeq") or "")
        ]
        assert [int(m.split()[1]) for m in answered] in ([200], [481]), mobile.debug()
