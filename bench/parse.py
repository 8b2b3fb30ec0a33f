"""Parse/serialize micro-benchmark: ``python -m bench.parse [N]``.

A typical ~900-byte INVITE from a trunk (SDP, 3 Vias, Record-Route, Contact, Allow, Supported,
User-Agent, P-Asserted-Identity); prints microseconds per operation, best of 5 runs. "relay" is
parse, read what a stateful hop reads, push a Via, serialize: the cost once lazy values are built.
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable

from sipcore.message import Via
from sipcore.parser import parse_datagram
from sipcore.serializer import serialize

_SDP = (
    b"v=0\r\n"
    b"o=- 39123 39123 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 8 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    b"INVITE sip:+46850001234@vidare.example.com;user=phone SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK7c2a9f01.1\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.5:5060;received=192.0.2.5;branch=z9hG4bKa1b2c3d4e5\r\n"
    b"Via: SIP/2.0/UDP 198.51.100.7:5060;rport=5060;branch=z9hG4bK-524287-1\r\n"
    b"Record-Route: <sip:192.0.2.1;lr;ftag=as4c7e1f22>\r\n"
    b"Max-Forwards: 68\r\n"
    b'From: "Anna Andersson" <sip:+46701234567@trunk.example.net>;tag=as4c7e1f22\r\n'
    b"To: <sip:+46850001234@vidare.example.com>\r\n"
    b"Call-ID: 3c2f1a7e5b9d4c8a@198.51.100.7\r\n"
    b"CSeq: 102 INVITE\r\n"
    b"Contact: <sip:+46701234567@198.51.100.7:5060;transport=udp>\r\n"
    b"P-Asserted-Identity: <sip:+46701234567@trunk.example.net>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer, 100rel\r\n"
    b"User-Agent: TrunkGateway/4.2.1\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(_SDP)).encode() + b"\r\n"
    b"\r\n" + _SDP
)


def _best(fn: Callable[[], object], number: int, timer: Callable[[], float] = time.process_time) -> float:
    # CPU time by default, not wall time: the machine is shared, and other processes' load would
    # otherwise dominate the figure (wall time is printed beside it for comparison).
    return min(timeit.repeat(fn, number=number, repeat=5, timer=timer)) / number * 1e6


def _relay() -> bytes:
    # What a stateful hop typically reads (top Via branch, tags, CSeq) and changes (a new top Via)
    # before sending on: the Vias get built, the rest stays raw.
    msg = parse_datagram(INVITE)
    _ = (msg.via[0].branch, msg.from_tag, msg.to_tag, msg.cseq.number, msg.call_id)
    msg.via.insert(0, Via("UDP", "192.0.2.200", 5060, {"branch": "z9hG4bKrelay1"}))
    return serialize(msg)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    msg = parse_datagram(INVITE)
    assert parse_datagram(serialize(msg)) == msg
    cases: list[tuple[str, Callable[[], object]]] = [
        ("parse", lambda: parse_datagram(INVITE)),
        ("serialize", lambda: serialize(msg)),
        ("parse+serialize", lambda: serialize(parse_datagram(INVITE))),
        ("relay (read+change)", _relay),
    ]
    print(f"message size: {len(INVITE)} bytes, N={n}, best of 5 (CPU time; wall time in brackets)")
    for name, fn in cases:
        cpu = _best(fn, n)
        wall = _best(fn, n, time.perf_counter)
        print(f"{name + ':':20} {cpu:6.2f} us   ({wall:6.2f} us wall)")


if __name__ == "__main__":
    main()
