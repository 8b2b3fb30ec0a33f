"""Every RFC 4475 / RFC 5118 torture message over UDP to a running server (issue 2 acceptance).

Each message gets the response the RFC names (or none, where the RFC says drop), nothing
escapes, and afterwards the server still answers OPTIONS.
"""

from __future__ import annotations

import socket

import pytest
from torture import CASES

from interop.harness import Server, options_ping, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    tmp = tmp_path_factory.mktemp("torture")
    with running_server(tmp) as srv:
        yield srv  # type: ignore[misc]


class _Peer:
    """One client socket for the whole corpus, acting as a UAC would.

    Several messages reuse a branch, and the server rightly answers a retransmission to the
    address the first copy came from, so every case is sent from this one socket. Like a real
    UAC it ACKs every final non-2xx answer to an INVITE, which stops the server's Timer G
    retransmissions. A case that reuses an earlier case's branch, sent-by and method (unkscm and
    novelsc, cparam01/02 and regescrt) is a retransmission by RFC 3261 17.2.3, and its answer is
    the earlier one, sent again.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        # Call-ID -> Request-URI of each INVITE sent: an ACK for a non-2xx must carry the
        # INVITE's Request-URI (RFC 3261 17.1.1.3), which matters when the branch is no cookie.
        self.invites: dict[str, str] = {}

    def _ack(self, reply: bytes, server: Server) -> None:
        head = reply.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), value.strip())
        cseq = fields.get("cseq", "").split()
        if status < 300 or len(cseq) != 2 or cseq[1] != "INVITE":
            return
        if not all(k in fields for k in ("via", "from", "to", "call-id")):
            return  # a stateless answer to a request too broken to have a transaction
        ruri = self.invites.get(fields.get("call-id", ""), f"sip:{server.address}")
        ack = (
            f"ACK {ruri} SIP/2.0\r\nVia: {fields['via']}\r\nMax-Forwards: 70\r\n"
            f"From: {fields['from']}\r\nTo: {fields['to']}\r\nCall-ID: {fields['call-id']}\r\n"
            f"CSeq: {cseq[0]} ACK\r\nContent-Length: 0\r\n\r\n"
        )
        self.sock.sendto(ack.encode(), ("127.0.0.1", server.port))

    def send(self, server: Server, data: bytes, wait: float) -> list[bytes]:
        self.sock.settimeout(0.3)
        try:
            while True:  # whatever earlier cases left behind: ACK it and forget it
                self._ack(self.sock.recv(65535), server)
        except TimeoutError:
            pass
        start = data.split(b"\r\n", 1)[0].decode("utf-8", "replace").split(" ")
        if start[0] == "INVITE" and len(start) > 1:
            for line in data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() in ("call-id", "i"):
                    self.invites[value.strip()] = start[1]
        self.sock.settimeout(wait)
        self.sock.sendto(data, ("127.0.0.1", server.port))
        out = []
        try:
            while True:
                reply = self.sock.recv(65535)
                self._ack(reply, server)
                out.append(reply)
                self.sock.settimeout(0.2)
        except TimeoutError:
            pass
        return out


_PEER = _Peer()


def _send(server: Server, data: bytes, wait: float) -> list[bytes]:
    return _PEER.send(server, data, wait)


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_torture_message_over_udp(server: Server, case) -> None:  # type: ignore[no-untyped-def]
    # The messages name hosts of their own (example.com ...); the server answers to the
    # packet's source address (RFC 3581 rport handling is not needed for that: received/Via).
    replies = _send(server, case.data, 0.5 if case.wire_action == "drop" else 1.5)
    finals = [r for r in replies if not r.startswith(b"SIP/2.0 1")]
    if case.wire_action == "drop":
        assert finals == [], f"{case.file}: expected no answer, got {finals[:1]}"
    elif case.wire_action == "reject":
        assert finals, f"{case.file}: no answer (expected {case.wire_code})"
        assert _status(finals[0]) in case.acceptable_codes, (
            f"{case.file}: got {finals[0].splitlines()[0]!r}, expected {sorted(case.acceptable_codes)}"
        )
    else:  # normal processing: some final answer, never a server error
        assert finals, f"{case.file}: no answer"
        code = _status(finals[0])
        assert code < 500, f"{case.file}: got {finals[0].splitlines()[0]!r}"
        if case.acceptable_codes:
            assert code in case.acceptable_codes, f"{case.file}: got {code}"
    assert server.process is not None and server.process.poll() is None


def test_server_still_answers_options_after_the_corpus(server: Server) -> None:
    for case in CASES:
        _send(server, case.data, 0.05)
    reply = options_ping(server.port, 2.0)
    assert reply is not None and reply.startswith(b"SIP/2.0 200"), reply
    assert server.process is not None and server.process.poll() is None
