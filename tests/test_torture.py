"""RFC 4475 / RFC 5118 torture corpus: every manifest expectation, table-driven over CASES."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from torture import CASES, TortureCase

from sipcore.errors import RemoteProtocolError
from sipcore.message import Request, Response
from sipcore.parser import StreamParser, parse_datagram
from sipcore.serializer import serialize, uri_str
from sipcore.uas_checks import check_request

ALLOWED = frozenset(
    {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "NOTIFY", "SUBSCRIBE", "REFER", "INFO",
     "UPDATE", "PRACK", "MESSAGE"}
)  # fmt: skip
SUPPORTED = frozenset({"replaces", "timer", "100rel", "path", "outbound"})

IDS = [c.file for c in CASES]


def _check(req: Request) -> int | None:
    resp = check_request(req, allowed_methods=ALLOWED, supported=SUPPORTED, to_tag="t1")
    return resp.status if resp is not None else None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_parse_expectation(case: TortureCase) -> None:
    if not case.parses:
        with pytest.raises(RemoteProtocolError) as info:
            parse_datagram(case.data)
        err = info.value
        if case.wire_action == "drop":
            # A broken response, or a request without a Via to route an answer by: drop it.
            assert err.is_request is False or "Via" not in {n for n, _ in err.raw_headers}
        else:
            assert err.is_request is True
            assert err.status_hint == case.status_hint
            names = {n for n, _ in err.raw_headers}
            assert "Via" in names or "Call-ID" in names  # enough to answer statelessly
        return
    msg = parse_datagram(case.data)
    if case.wire_action == "drop":
        assert isinstance(msg, Response)
        return
    assert isinstance(msg, Request)
    assert _check(msg) == case.uas_code
    if case.wire_action == "reject":
        assert case.wire_code in case.acceptable_codes


@pytest.mark.parametrize("case", [c for c in CASES if c.parses], ids=[c.file for c in CASES if c.parses])
def test_round_trip(case: TortureCase) -> None:
    msg = parse_datagram(case.data)
    assert parse_datagram(serialize(msg)) == msg


def test_table_is_complete() -> None:
    assert len(CASES) == 62
    kinds = {c.kind for c in CASES}
    assert kinds == {"valid", "invalid", "unusual-but-valid", "unreferenced"}
    for c in CASES:
        if c.wire_action == "reject":
            assert c.wire_code in c.acceptable_codes
        else:
            assert c.wire_code is None
        if c.file.startswith("rfc5118/"):
            assert b"\r\n\r\n" in c.data and b"\n" not in c.data.replace(b"\r\n", b"")


# --- the fields the manifest names, per valid file -------------------------------------------


def _req(name: str) -> Request:
    case = next(c for c in CASES if c.file.endswith(name))
    msg = parse_datagram(case.data)
    assert isinstance(msg, Request)
    return msg


def _resp(name: str) -> Response:
    case = next(c for c in CASES if c.file.endswith(name))
    msg = parse_datagram(case.data)
    assert isinstance(msg, Response)
    return msg


def t_wsinv() -> None:
    m = _req("/wsinv.dat")
    assert uri_str(m.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.header("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.header("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.header("Subject") == ""
    assert m.max_forwards == 68 and m.cseq.number == 9 and m.cseq.method == "INVITE"
    assert [v.transport for v in m.via] == ["UDP", "TCP", "UDP"]
    assert [v.branch for v in m.via] == ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]
    assert m.to.tag == "1918181833n" and m.from_.tag == "98asjd8"
    assert m.from_.display == '"J Rosenberg \\\\\\""'
    assert m.contact[0].display == '"Quoted string \\"\\""'
    assert m.contact[0].params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert m.route[0].uri.params == {"lr": None, "unknownwith": "value", "unknown-no-value": None}
    assert len(m.body) == 150


def t_intmeth() -> None:
    m = _req("/intmeth.dat")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to.display is not None and "\\\x00" in m.to.display and "\\\x7f" in m.to.display
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert m.header("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def t_esc01() -> None:
    m = _req("/esc01.dat")
    assert m.uri.user == "sips%3Auser%40example.com" and m.uri.user_unescaped == "sips:user@example.com"
    assert m.to.uri.user_unescaped == "user"
    assert m.contact[0].uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}
    assert m.content_type == "application/sdp"


def t_escnull() -> None:
    m = _req("/escnull.dat")
    assert [c.uri.user for c in m.contact] == ["%00", "%00%00"]
    assert m.to.uri.user_unescaped == "null-\x00-null"


def t_esc02() -> None:
    m = _req("/esc02.dat")
    assert m.method == "RE%47IST%45R" and m.method != "REGISTER"
    assert m.to.display == '"%Z%45"'
    assert [c.uri.host for c in m.contact] == ["host1.example.com", "host3.example.com"]
    assert m.header("C%6Fntact") == "<sip:alias2@host2.example.com>"


def t_lwsdisp() -> None:
    m = _req("/lwsdisp.dat")
    assert m.from_.display == "caller" and m.from_.tag == "323"


def t_longreq() -> None:
    m = _req("/longreq.dat")
    assert len(m.via) == 34 and len(m.from_.tag or "") > 100 and m.to.uri.port == 6000


def t_dblreq() -> None:
    m = _req("/dblreq.dat")
    assert m.method == "REGISTER" and m.body == b""
    assert b"INVITE" in next(c for c in CASES if c.file.endswith("/dblreq.dat")).data


def t_semiuri() -> None:
    m = _req("/semiuri.dat")
    assert m.uri.user == "user;par=u%40example.net" and m.uri.host == "example.com"
    assert m.header_values("Accept")[-1] == "message/sipfrag"


def t_transports() -> None:
    m = _req("/transports.dat")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def t_mpart01() -> None:
    m = _req("/mpart01.dat")
    assert b"\x00" in m.body and m.content_type is not None and "multipart/mixed" in m.content_type
    assert len(m.body) == int((m.body and 0) or len(m.body))


def t_unreason() -> None:
    m = _resp("/unreason.dat")
    raw = next(c for c in CASES if c.file.endswith("/unreason.dat")).data
    assert m.status == 200
    assert b"SIP/2.0 200 " + m.reason.encode("utf-8", "surrogateescape") + b"\r\n" in raw
    assert m.reason.startswith("= 2**3 * 5**2")


def t_noreason() -> None:
    m = _resp("/noreason.dat")
    assert m.status == 100 and m.reason == ""


def t_badbranch() -> None:
    assert _req("/badbranch.dat").via[0].branch == "z9hG4bK"


def t_unkscm() -> None:
    m = _req("/unkscm.dat")
    assert m.uri.scheme == "nobodyknowsthisscheme" and m.uri.opaque == "totallyopaquecontent"


def t_novelsc() -> None:
    assert _req("/novelsc.dat").uri.scheme == "soap.beep"


def t_unksm2() -> None:
    m = _req("/unksm2.dat")
    assert m.to.uri.scheme == "isbn" and m.from_.uri.scheme == "http" and m.contact[0].uri.scheme == "name"


def t_bext01() -> None:
    m = _req("/bext01.dat")
    resp = check_request(m, allowed_methods=ALLOWED, supported=SUPPORTED, to_tag="x")
    assert resp is not None and resp.status == 420
    assert resp.header("Unsupported") is not None
    assert "nothingSupportsThis" in (resp.header("Unsupported") or "")


def t_invut() -> None:
    resp = check_request(_req("/invut.dat"), allowed_methods=ALLOWED, supported=SUPPORTED)
    assert resp is not None and resp.status == 415 and resp.header("Accept") == "application/sdp"


def t_regaut01() -> None:
    assert _req("/regaut01.dat").header("Authorization") is not None


def t_bcast() -> None:
    m = _resp("/bcast.dat")
    assert m.via[1].host == "255.255.255.255"


def t_zeromf() -> None:
    m = _req("/zeromf.dat")
    assert m.max_forwards == 0 and _check(m) is None


def t_cparam01() -> None:
    c = _req("/cparam01.dat").contact[0]
    assert c.uri.params == {} and c.params == {"unknownparam": None}


def t_cparam02() -> None:
    c = _req("/cparam02.dat").contact[0]
    assert "unknownparam" in c.uri.params and "unknownparam" not in c.params


def t_regescrt() -> None:
    c = _req("/regescrt.dat").contact[0]
    assert c.uri.headers == "Route=%3Csip:sip.example.com%3E"


def t_inv2543() -> None:
    m = _req("/inv2543.dat")
    assert m.via[0].branch is None and m.from_.tag is None and m.max_forwards is None
    assert m.body.startswith(b"v=0")


def t_ipv6_good() -> None:
    m = _req("/ipv6-good.dat")
    assert m.uri.host == "[2001:db8::10]" and m.via[0].host == "[2001:db8::9:1]"
    assert m.contact[0].uri.host == "[2001:db8::1]"


def t_port_ambiguous() -> None:
    m = _req("/port-ambiguous.dat")
    assert m.uri.host == "[2001:db8::10:5070]" and m.uri.port is None


def t_port_unambiguous() -> None:
    m = _req("/port-unambiguous.dat")
    assert m.uri.host == "[2001:db8::10]" and m.uri.port == 5070


def t_received_delim() -> None:
    m = _req("/via-received-param-with-delim.dat")
    assert m.via[0].received == "[2001:db8::9:255]" and m.via[0].branch == "z9hG4bKas3-111"


def t_received_no_delim() -> None:
    m = _req("/via-received-param-no-delim.dat")
    assert m.via[0].received == "2001:db8::9:255" and m.via[0].branch == "z9hG4bKas3"


def t_mult_ip_in_header() -> None:
    m = _req("/mult-ip-in-header.dat")
    assert [(v.host, v.port) for v in m.via] == [
        ("[2001:db8::9:1]", 6050),
        ("192.0.2.1", None),
        ("[2001:db8::9:255]", None),
    ]
    assert m.via[2].received == "192.0.2.200"


def t_sdp_bodies() -> None:
    for name in ("/ipv6-in-sdp.dat", "/mult-ip-in-sdp.dat", "/ipv4-mapped-ipv6.dat"):
        m = _req(name)
        assert m.body.startswith(b"v=0") and b"IP6" in m.body
    assert b"c=IN IP4 192.0.2.1" in _req("/mult-ip-in-sdp.dat").body


def t_ipv4_mapped() -> None:
    m = _req("/ipv4-mapped-ipv6.dat")
    assert m.via[0].host == "[::ffff:192.0.2.10]" and m.via[0].port == 19823
    assert m.contact[0].uri.host == "[::ffff:192.0.2.2]"


def t_three_colons() -> None:
    m = _req("/ipv6-bug-abnf-3-colons.dat")
    assert m.uri.host == "[2001:db8::192.0.2.1]" and m.to.uri.host == "[2001:db8::192.0.2.1]"


def t_two_colons() -> None:
    assert _req("/ipv6-correct-abnf-2-colons.dat").uri.host == "[2001:db8::192.0.2.1]"


FIELD_CHECKS: list[Callable[[], None]] = [f for n, f in sorted(globals().items()) if n.startswith("t_")]


@pytest.mark.parametrize("check", FIELD_CHECKS, ids=[f.__name__[2:] for f in FIELD_CHECKS])
def test_fields(check: Callable[[], None]) -> None:
    check()


@pytest.mark.parametrize("case", [c for c in CASES if c.parses], ids=[c.file for c in CASES if c.parses])
def test_stream_framing_of_valid_cases(case: TortureCase) -> None:
    msg = parse_datagram(case.data)
    if "Content-Length" not in serialize(msg).decode("utf-8", "surrogateescape"):
        pytest.fail("serializer must always write Content-Length")
    sp = StreamParser()
    sp.feed(serialize(msg))
    assert sp.next_message() == msg
