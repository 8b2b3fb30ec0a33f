"""Wire <-> message tests for sipcore's message layer (RFC 3261 7, 20, 25; RFC 5118)."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipcore._abnf import canonical_name, split_commas
from sipcore.builders import make_response, new_branch, new_call_id, new_tag
from sipcore.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.parser import StreamParser, parse_datagram
from sipcore.serializer import serialize
from sipcore.uas_checks import check_request


def wire(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


BASE = (
    "OPTIONS sip:bob@example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
    "From: <sip:alice@example.com>;tag=a1",
    "To: <sip:bob@example.com>",
    "Call-ID: c1@192.0.2.1",
    "CSeq: 1 OPTIONS",
    "Max-Forwards: 70",
)


def req(*extra: str, start: str | None = None, drop: tuple[str, ...] = (), body: bytes = b"") -> bytes:
    lines = [start or BASE[0]] + [h for h in BASE[1:] if h.split(":")[0] not in drop] + list(extra)
    if not any(x.lower().startswith(("content-length", "l:")) for x in extra):
        lines.append(f"Content-Length: {len(body)}")
    return wire(*lines, body=body)


def parse_req(data: bytes) -> Request:
    m = parse_datagram(data)
    assert isinstance(m, Request)
    return m


# --- valid features, table-driven --------------------------------------------------------------

VALID_CASES = [
    ("compact-names", req("m: <sip:a@h>", "k: timer", "c: text/plain").replace(
        b"Call-ID: ", b"i: "), lambda m: (m.call_id == "c1@192.0.2.1" and m.contact[0].uri.host == "h"
                                          and m.header("Supported") == "timer"
                                          and m.content_type == "text/plain")),
    ("multi-value-via", req("Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK2, SIP/2.0/UDP [2001:db8::1]:5062"),
     lambda m: [v.host for v in m.via] == ["192.0.2.1", "a.example.com", "[2001:db8::1]"]
     and m.via[2].port == 5062),
    ("multi-value-contact", req('Contact: "A, B" <sip:a@h1>;q=0.5, <sip:b@h2>'),
     lambda m: [c.uri.host for c in m.contact] == ["h1", "h2"] and m.contact[0].display == '"A, B"'),
    ("route-record-route", req("Route: <sip:p1;lr>, <sip:p2;lr>", "Record-Route: <sip:rr;lr>"),
     lambda m: [r.uri.host for r in m.route] == ["p1", "p2"]
     and m.record_route[0].uri.params == {"lr": None}),
    ("folding", req("Subject: first\r\n  second\r\n\tthird"),
     lambda m: m.header("Subject") == "first second third"),
    ("quoted-pair", req('Contact: "a \\"q\\" \\\\ b" <sip:x@h>'),
     lambda m: m.contact[0].display == '"a \\"q\\" \\\\ b"'),
    ("token-display", req("Contact: Alice  Smith <sip:x@h>"),
     lambda m: m.contact[0].display == "Alice  Smith"),
    ("ipv6-ruri", req(start="OPTIONS sip:[2001:db8::10]:5070;transport=tcp SIP/2.0"),
     lambda m: m.uri.host == "[2001:db8::10]" and m.uri.port == 5070 and m.uri.transport == "tcp"),
    ("received-brackets", req("Via: SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bK3"),
     lambda m: m.via[1].received == "[2001:db8::9:255]" and m.via[1].branch == "z9hG4bK3"),
    ("three-colons", req(start="OPTIONS sip:u@[2001:db8:::192.0.2.1] SIP/2.0"),
     lambda m: m.uri.host == "[2001:db8::192.0.2.1]"),
    ("addr-spec-params", req("Contact: sip:u@h;foo;expires=60"),
     lambda m: m.contact[0].uri.params == {} and m.contact[0].params == {"foo": None, "expires": "60"}),
    ("name-addr-uri-params", req("Contact: <sip:u@h;foo;transport=udp?Subject=x%20y>;expires=60"),
     lambda m: m.contact[0].uri.params == {"foo": None, "transport": "udp"}
     and m.contact[0].uri.headers == "Subject=x%20y" and m.contact[0].params == {"expires": "60"}),
    ("escapes-kept", req(start="OPTIONS sip:a%20b@h SIP/2.0"),
     lambda m: m.uri.user == "a%20b" and m.uri.user_unescaped == "a b"),
    ("star-contact", req("Contact: *", "Expires: 0"), lambda m: m.contact[0].star),
    ("lws-around-colon-and-params", req("Contact   :   <sip:u@h> ;  q = 0.3  "),
     lambda m: m.contact[0].params == {"q": "0.3"}),
    ("odd-case-names", req("CONTENT-TYPE: text/plain", "www-authenticate: Digest x"),
     lambda m: m.headers == [("Content-Type", "text/plain"), ("WWW-Authenticate", "Digest x")]),
    ("leading-crlf", b"\r\n\r\n" + req(), lambda m: m.method == "OPTIONS"),
    ("udp-no-content-length", wire(*BASE, body=b"hello"), lambda m: m.body == b"hello"),
    ("udp-trailing-octets", req("Content-Length: 2", body=b"hi") + b"junk", lambda m: m.body == b"hi"),
    ("sips-and-tel", req("Contact: <sips:u@h>, <tel:+4612345>"),
     lambda m: m.contact[0].uri.scheme == "sips" and m.contact[1].uri.opaque == "+4612345"),
    ("max-forwards-leading-zero", req().replace(b"Max-Forwards: 70", b"Max-Forwards: 007"),
     lambda m: m.max_forwards == 7),
    ("unknown-method-matching-cseq", req(start="FOO sip:h SIP/2.0").replace(b"1 OPTIONS", b"1 FOO"),
     lambda m: m.method == "FOO"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "check"), [c[1:] for c in VALID_CASES], ids=[c[0] for c in VALID_CASES])
def test_valid(data: bytes, check: object) -> None:
    m = parse_req(data)
    assert callable(check) and check(m)
    assert parse_datagram(serialize(m)) == m


# --- invalid requests: status hints ------------------------------------------------------------

INVALID_CASES = [
    ("version-505", req(start="OPTIONS sip:h SIP/3.0"), 505),
    ("version-garbage", req(start="OPTIONS sip:h HTTP/1.1"), 400),
    ("no-version", req(start="OPTIONS sip:h"), 400),
    ("missing-via", req(drop=("Via",)), 400),
    ("missing-from", req(drop=("From",)), 400),
    ("missing-to", req(drop=("To",)), 400),
    ("missing-call-id", req(drop=("Call-ID",)), 400),
    ("missing-cseq", req(drop=("CSeq",)), 400),
    ("two-from", req("From: <sip:x@h>;tag=2"), 400),
    ("two-to", req("t: <sip:x@h>"), 400),
    ("two-call-id", req("i: other"), 400),
    ("two-cseq", req("CSeq: 2 OPTIONS"), 400),
    ("two-max-forwards", req("Max-Forwards: 5"), 400),
    ("two-content-length", req("Content-Length: 0", "l: 0"), 400),
    ("cseq-overflow", req().replace(b"CSeq: 1 ", b"CSeq: 2147483648 "), 400),
    ("cseq-not-numeric", req().replace(b"CSeq: 1 ", b"CSeq: x1 "), 400),
    ("cseq-method-mismatch", req().replace(b"1 OPTIONS", b"1 INVITE"), 400),
    ("cseq-mismatch-unknown-method", req(start="FOO sip:h SIP/2.0"), 501),
    ("cl-negative", req("Content-Length: -1"), 400),
    ("cl-not-numeric", req("Content-Length: ten"), 400),
    ("cl-too-large", req("Content-Length: 99999999999"), 400),
    ("cl-beyond-datagram", req("Content-Length: 10", body=b"abc"), 400),
    ("ruri-lws", req(start="OPTIONS sip:h; lr SIP/2.0"), 400),
    ("ruri-angle", req(start="OPTIONS <sip:h> SIP/2.0"), 400),
    ("request-line-double-sp", req(start="OPTIONS  sip:h SIP/2.0"), 400),
    ("request-line-trailing-sp", req(start="OPTIONS sip:h SIP/2.0 "), 400),
    ("ruri-headers", req(start="OPTIONS sip:h?Route=x SIP/2.0"), 400),
    ("ipv6-without-brackets", req(start="OPTIONS sip:2001:db8::10 SIP/2.0"), 400),
    ("unterminated-quote", req('Contact: "abc <sip:x@h>'), 400),
    ("non-token-display", req("Contact: Bell, Alexander <sip:x@h>"), 400),
    ("empty-param", req("Contact: <sip:x@h>;;a"), 400),
    ("empty-via-param", req("Via: SIP/2.0/UDP h;;branch=z9hG4bK4"), 400),
    ("empty-list-element", req("Route: <sip:a>,,<sip:b>"), 400),
    ("addr-spec-with-headers", req("Contact: sip:x@h?Route=y"), 400),
    ("bad-max-forwards", req().replace(b"Max-Forwards: 70", b"Max-Forwards: seventy"), 400),
    ("bad-via", req("Via: HTTP/1.1/UDP h"), 400),
    ("bad-port", req(start="OPTIONS sip:h:99999 SIP/2.0"), 400),
    ("header-without-colon", req("Broken header line"), 400),
    ("unterminated-head", b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h", 400),
]


@pytest.mark.parametrize(("data", "code"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES])
def test_invalid_request(data: bytes, code: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_datagram(data)
    assert info.value.status_hint == code
    assert info.value.is_request is True


def test_error_carries_raw_headers_for_stateless_answer() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_datagram(req(start="OPTIONS sip:h SIP/7.0"))
    raw = dict(info.value.raw_headers)
    assert raw["Via"] == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"
    assert raw["Call-ID"] == "c1@192.0.2.1" and raw["CSeq"] == "1 OPTIONS"
    assert raw["From"] == "<sip:alice@example.com>;tag=a1" and "To" in raw


INVALID_RESPONSES = [
    ("status-4-digits", "SIP/2.0 4000 Bad"),
    ("status-letters", "SIP/2.0 2xx OK"),
    ("status-700", "SIP/2.0 700 Huh"),
]


@pytest.mark.parametrize("start", [c[1] for c in INVALID_RESPONSES], ids=[c[0] for c in INVALID_RESPONSES])
def test_invalid_response_is_dropped(start: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_datagram(req(start=start))
    assert info.value.is_request is False


def test_response_bad_cseq() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_datagram(req(start="SIP/2.0 200 OK").replace(b"CSeq: 1 ", b"CSeq: 99999999999 "))
    assert info.value.is_request is False


def test_response_parse() -> None:
    m = parse_datagram(req(start="SIP/2.0 180 Ringing now"))
    assert isinstance(m, Response) and m.status == 180 and m.reason == "Ringing now"


# --- serializer ---------------------------------------------------------------------------------


def test_serializer_writes_long_names_and_content_length() -> None:
    m = parse_req(req("m: <sip:a@h>", "k: timer", "l: 0"))
    m.body = b"abc"
    m.headers.append(("Via", "SIP/2.0/UDP ignored"))  # eager names are written from attributes only
    out = serialize(m)
    assert b"Content-Length: 3\r\n\r\nabc" in out and out.count(b"Content-Length") == 1
    assert b"\r\nm:" not in out and b"\r\nContact: <sip:a@h>" in out and b"Supported: timer" in out
    assert out.count(b"Via:") == 1


def test_serializer_order_and_ipv6() -> None:
    m = parse_req(req(start="OPTIONS sip:[::1]:5060 SIP/2.0"))
    out = serialize(m)
    assert out.startswith(
        b"OPTIONS sip:[::1]:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
    )


# --- stream framing -----------------------------------------------------------------------------

TWO = req(body=b"") + req("Subject: two", "Content-Length: 4", body=b"body")


def test_stream_several_messages_in_one_chunk() -> None:
    sp = StreamParser()
    sp.feed(b"\r\n\r\n" + TWO + b"\r\n")
    a, b = sp.next_message(), sp.next_message()
    assert a is not None and b is not None and b.body == b"body" and b.header("Subject") == "two"
    assert sp.next_message() is None


def test_stream_split_at_every_byte_boundary() -> None:
    expected = [parse_datagram(req()), parse_datagram(req("Subject: two", "Content-Length: 4", body=b"body"))]
    for cut in range(len(TWO) + 1):
        sp = StreamParser()
        got = []
        for chunk in (TWO[:cut], TWO[cut:]):
            sp.feed(chunk)
            while (m := sp.next_message()) is not None:
                got.append(m)
        assert got == expected, cut


def test_stream_byte_by_byte() -> None:
    sp = StreamParser()
    got = []
    for i in range(len(TWO)):
        sp.feed(TWO[i : i + 1])
        while (m := sp.next_message()) is not None:
            got.append(m)
    assert len(got) == 2


def test_stream_waits_for_body() -> None:
    sp = StreamParser()
    sp.feed(req("Content-Length: 9999", body=b"short"))
    assert sp.next_message() is None


def test_stream_requires_content_length() -> None:
    sp = StreamParser()
    sp.feed(wire(*BASE))
    with pytest.raises(RemoteProtocolError) as info:
        sp.next_message()
    assert info.value.status_hint == 400 and info.value.is_request is True
    with pytest.raises(RemoteProtocolError):
        sp.next_message()  # framing lost: stays failed


def test_stream_header_too_large() -> None:
    sp = StreamParser(max_header_size=100)
    sp.feed(b"OPTIONS sip:h SIP/2.0\r\n" + b"X: " + b"y" * 200)
    with pytest.raises(RemoteProtocolError) as info:
        sp.next_message()
    assert info.value.status_hint == 413


def test_stream_body_too_large() -> None:
    sp = StreamParser(max_body_size=10)
    sp.feed(req("Content-Length: 11"))
    with pytest.raises(RemoteProtocolError) as info:
        sp.next_message()
    assert info.value.status_hint == 413


def test_stream_continues_after_semantic_error() -> None:
    sp = StreamParser()
    sp.feed(req(drop=("From",)) + req())
    with pytest.raises(RemoteProtocolError):
        sp.next_message()
    assert sp.next_message() is not None


# --- grammar helpers, builders, UAS checks -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ('"x, y" <sip:a>, <sip:b;p=1,2>', ['"x, y" <sip:a>', "<sip:b;p=1,2>"]),
        ('"q \\", r" <sip:a>, b', ['"q \\", r" <sip:a>', "b"]),
        ("a,,b", ["a", "", "b"]),
        ("single", ["single"]),
    ],
)
def test_split_commas(value: str, parts: list[str]) -> None:
    assert split_commas(value) == parts


@pytest.mark.parametrize(
    ("name", "canon"),
    [("i", "Call-ID"), ("CALL-ID", "Call-ID"), ("cseq", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
     ("v", "Via"), ("l", "Content-Length"), ("x", "Session-Expires"), ("n", "Identity-Info"),
     ("X-Custom", "X-Custom"), ("max-forwards", "Max-Forwards"), ("o", "Event"), ("u", "Allow-Events")],
)  # fmt: skip
def test_canonical_name(name: str, canon: str) -> None:
    assert canonical_name(name) == canon


def test_error_hierarchy() -> None:
    with pytest.raises(TypeError):
        ProtocolError("abstract")
    assert issubclass(LocalProtocolError, ProtocolError) and issubclass(RemoteProtocolError, ProtocolError)
    e = RemoteProtocolError("x")
    assert e.status_hint == 400 and e.is_request is None and e.raw_headers == []


def test_make_response_copies_rfc3261_8_2_6() -> None:
    r = parse_req(req("Via: SIP/2.0/TCP second;branch=z9hG4bK2"))
    resp = make_response(r, 486, to_tag="tt", headers=[("Retry-After", "30")])
    assert resp.reason == "Busy Here" and resp.to.tag == "tt" and resp.from_ == r.from_
    assert resp.via == r.via and resp.via is not r.via and resp.call_id == r.call_id and resp.cseq == r.cseq
    assert resp.header("Retry-After") == "30" and r.to.tag is None
    tagged_req = parse_req(req().replace(b"To: <sip:bob@example.com>", b"To: <sip:b@h>;tag=x"))
    tagged = make_response(tagged_req, 200, to_tag="other")
    assert tagged.to.tag == "x" and tagged.reason == "OK"
    assert make_response(r, 299).reason == "OK"
    assert parse_datagram(serialize(resp)) == resp


def test_identifiers() -> None:
    assert new_branch().startswith("z9hG4bK") and new_branch() != new_branch()
    assert len(new_tag()) >= 8 and new_tag() != new_tag()
    assert new_call_id("h.example").endswith("@h.example")


ALLOWED = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER"})
INVITE_SDP = req(start="INVITE sip:bob@example.com SIP/2.0", body=b"v=0\r\n").replace(
    b"1 OPTIONS", b"1 INVITE"
)


def _uas(data: bytes) -> Response | None:
    return check_request(parse_req(data), allowed_methods=ALLOWED, supported=frozenset({"timer"}))


@pytest.mark.parametrize(
    ("data", "code", "header"),
    [
        (req(start="OPTIONS mailto:bob@example.com SIP/2.0"), 416, None),
        (req(start="FOO sip:h SIP/2.0").replace(b"1 OPTIONS", b"1 FOO"), 501, "Allow"),
        (req(start="SUBSCRIBE sip:h SIP/2.0").replace(b"1 OPTIONS", b"1 SUBSCRIBE"), 405, "Allow"),
        (req("Require: timer, foo"), 420, "Unsupported"),
        (req("Proxy-Require: bar"), 420, "Unsupported"),
        (INVITE_SDP.replace(b"Max-Forwards: 70", b"Content-Type: text/plain"), 415, "Accept"),
        (INVITE_SDP.replace(b"Max-Forwards: 70", b"Content-Type: application/sdp\r\nAccept: text/x"),
         406, "Accept"),
        (req("Accept: text/html"), 406, "Accept"),
        (req(start="REGISTER sip:h SIP/2.0").replace(b"1 OPTIONS", b"1 REGISTER").replace(
            b"To: <sip:bob@example.com>", b"To: <tel:+461>"), 400, None),
        (req().replace(b"Max-Forwards: 70", b"Max-Forwards: 0"), None, None),
        (INVITE_SDP.replace(b"Max-Forwards: 70", b"Content-Type: application/SDP; x=1\r\nAccept: */*"),
         None, None),
        (req(start="OPTIONS tel:+4612345 SIP/2.0", drop=()), None, None),
    ],
)  # fmt: skip
def test_check_request(data: bytes, code: int | None, header: str | None) -> None:
    resp = _uas(data)
    if code is None:
        assert resp is None
        return
    assert resp is not None and resp.status == code and resp.to.tag
    if header is not None:
        assert resp.header(header)


def test_check_request_unsupported_lists_tags() -> None:
    resp = _uas(req("Require: timer, foo, bar"))
    assert resp is not None and resp.header("Unsupported") == "foo, bar"


# --- properties ---------------------------------------------------------------------------------

_TOKEN = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=8)
_LOWER_TOKEN = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=8)
_LABEL = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_HOST = st.one_of(
    st.lists(_LABEL, min_size=1, max_size=3).map(".".join),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t))),
    st.sampled_from(["[2001:db8::1]", "[::1]", "[::ffff:192.0.2.1]", "[fe80::1:2:3]"]),
)
_PARAMS = st.dictionaries(_LOWER_TOKEN, st.one_of(st.none(), _TOKEN), max_size=3)
_USER = st.one_of(st.none(), st.text(string.ascii_letters + string.digits + "-_.!~*'()&=+$,", min_size=1,
                                     max_size=10), st.just("a%20b"))  # fmt: skip
_PORT = st.one_of(st.none(), st.integers(0, 65535))
_SIP_URI = st.builds(
    Uri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=_USER,
    host=_HOST,
    port=_PORT,
    params=_PARAMS,
    headers=st.one_of(st.none(), st.just("Subject=hi%20there")),
)
_URI = st.one_of(_SIP_URI, st.builds(Uri, scheme=st.just("tel"), opaque=st.just("+46123")))
_DISPLAY = st.one_of(
    st.none(),
    st.lists(_TOKEN, min_size=1, max_size=3).map(" ".join),
    st.text(string.ascii_letters + " ,;<>:@", max_size=12).map(lambda s: f'"{s}"'),
)
_NAME_ADDR = st.builds(NameAddr, uri=_URI, display=_DISPLAY, params=_PARAMS)
_VIA = st.builds(
    Via,
    transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]),
    host=_HOST,
    port=_PORT,
    params=_PARAMS,
)
_HEADER = st.tuples(
    st.one_of(st.sampled_from(["Subject", "User-Agent", "Allow", "Supported", "P-Asserted-Identity"]),
              _TOKEN.map(lambda t: "X-" + t)),
    st.text(string.ascii_letters + string.digits + " ,;=<>:@\"'", max_size=20).map(str.strip),
)  # fmt: skip
_METHOD = st.one_of(st.sampled_from(["INVITE", "OPTIONS", "BYE", "REGISTER"]), _TOKEN)
_COMMON: dict[str, st.SearchStrategy[Any]] = {
    "via": st.lists(_VIA, min_size=1, max_size=3),
    "from_": _NAME_ADDR,
    "to": _NAME_ADDR,
    "call_id": st.text(string.ascii_letters + string.digits + "@.-<>", min_size=1, max_size=20),
    "max_forwards": st.one_of(st.none(), st.integers(0, 255)),
    "contact": st.lists(_NAME_ADDR, max_size=2),
    "route": st.lists(_NAME_ADDR, max_size=2),
    "record_route": st.lists(_NAME_ADDR, max_size=2),
    "headers": st.lists(_HEADER, max_size=4),
    "body": st.binary(max_size=50),
}


@st.composite
def _requests(draw: st.DrawFn) -> Request:
    method = draw(_METHOD)
    kw: dict[str, Any] = {k: draw(v) for k, v in _COMMON.items()}
    return Request(method=method, uri=draw(_SIP_URI.filter(lambda u: u.headers is None)),
                   cseq=CSeq(draw(st.integers(0, 2**31 - 1)), method), **kw)  # fmt: skip


@st.composite
def _responses(draw: st.DrawFn) -> Response:
    kw: dict[str, Any] = {k: draw(v) for k, v in _COMMON.items()}
    reason = draw(st.text(string.printable.strip(), max_size=15))
    cseq = CSeq(draw(st.integers(0, 2**31 - 1)), draw(_METHOD))
    return Response(status=draw(st.integers(100, 699)), reason=reason, cseq=cseq, **kw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_requests(), _responses()))
def test_property_round_trip(msg: Request | Response) -> None:
    data = serialize(msg)
    assert parse_datagram(data) == msg
    sp = StreamParser()
    sp.feed(data)
    assert sp.next_message() == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_property_arbitrary_bytes_only_raise_remote_errors(data: bytes) -> None:
    for candidate in (
        data,
        b"INVITE sip:a@b SIP/2.0\r\n" + data,
        req() + data,
        req()[:40] + data + b"\r\n\r\n",
    ):
        try:
            parse_datagram(candidate)
        except RemoteProtocolError:
            pass
        sp = StreamParser()
        sp.feed(candidate)
        try:
            sp.next_message()
        except RemoteProtocolError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_property_mutated_messages_only_raise_remote_errors(data: st.DataObject) -> None:
    base = bytearray(req('Contact: "A" <sip:[2001:db8::1]:5060;lr>;q=1', "Route: <sip:p;lr>", body=b"x"))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.sampled_from(b' \t\r\n:;,<>"\\[]@=?%/0\x00\xff'))
    try:
        m = parse_datagram(bytes(base))
    except RemoteProtocolError:
        return
    assert parse_datagram(serialize(m)) == m
