"""Message waiting through the B2BUA (issue 5 point 5, RFC 3842): a SIPp softphone subscribes to
bob's ``message-summary``, the media server's NOTIFY (built by ``media.mwi``, sent from a UDP
socket on the media host as the media server does) is relayed into the subscription dialog."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from interop.callpeers import CallServer, Peer, call_server, free_port, header, start_peer
from media.mwi import MessageSummary, build_notify

pytestmark = pytest.mark.interop


def _wait_for(peer: Peer, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in peer.messages:
            return
        if peer.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never arrived\n{peer.debug()}")


def media_notify(server: CallServer, new: int, old: int, user: str = "bob") -> str:
    """The media server's NOTIFY to the B2BUA; returns the status line of the answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        data = build_notify(
            MessageSummary(user, "demo.test", new, old),
            local=sock.getsockname(),
            remote=("127.0.0.1", server.port),
            branch=f"z9hG4bK-mwi-{time.monotonic_ns()}",
            call_id=f"mwi-{time.monotonic_ns()}@127.0.0.1",
            tag="mwi1",
        )
        sock.sendto(data, ("127.0.0.1", server.port))
        reply, _ = sock.recvfrom(65535)
    return reply.decode().split("\r\n", 1)[0]


def subscriber(server: CallServer, workdir: Path, user: str = "bob", password: str = "bob-demo") -> Peer:
    return start_peer(
        f"mwi-{user}",
        "subscribe_mwi.xml",
        free_port(),
        workdir,
        server.address,
        service=user,
        subs={"wait": "15000"},
        extra=["-au", user, "-ap", password, "-auth_uri", f"{user}@{server.address}"],
        timeout=30,
    )


def test_subscribed_softphone_gets_the_state_then_the_relayed_notify(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path) as server:
        phone = subscriber(server, wd)
        _wait_for(phone, "Messages-Waiting: no")
        assert media_notify(server, 1, 0) == "SIP/2.0 200 OK"
        assert phone.wait(20) == 0, phone.debug() + server.log_path.read_text()[-4000:]
        notifies = phone.received_requests("NOTIFY")
        assert len(notifies) == 3, notifies
        first, relayed, final = notifies
        assert "Messages-Waiting: no" in first
        assert header(first, "Subscription-State") == "active;expires=3600"
        assert header(relayed, "Event") == "message-summary"
        assert header(relayed, "Content-Type") == "application/simple-message-summary"
        assert "Messages-Waiting: yes" in relayed and "Voice-Message: 1/0" in relayed
        assert header(final, "Subscription-State") == "terminated;reason=timeout"
        # All three in the one subscription dialog.
        assert len({header(n, "Call-ID") for n in notifies}) == 1
        names = [e["event"] for e in server.log_events()]
        assert "mwi.subscribed" in names and "mwi.relayed" in names and "mwi.unsubscribed" in names


def test_notify_for_a_user_without_subscriptions_is_still_answered(tmp_path: Path) -> None:
    with call_server(tmp_path) as server:
        assert media_notify(server, 2, 1, user="alice") == "SIP/2.0 200 OK"
        assert media_notify(server, 0, 0, user="nobody") == "SIP/2.0 404 Not Found"
        (relayed,) = server.events("mwi.relayed")
        assert relayed["user"] == "alice" and relayed["subscriptions"] == 0


def test_unsolicited_mwi_reaches_the_registered_contact(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with call_server(tmp_path, ["--set", "media.unsolicited_mwi=true"]) as server:
        from interop.callpeers import register_phone

        port = free_port()
        register_phone(server, "bob", "bob-demo", port, wd)
        phone = start_peer("phone", "notify_uas.xml", port, wd, timeout=15)
        assert media_notify(server, 1, 0) == "SIP/2.0 200 OK"
        assert phone.wait(15) == 0, phone.debug()
        (notify,) = phone.received_requests("NOTIFY")
        assert notify.startswith(f"NOTIFY sip:bob@127.0.0.1:{port} ")
        assert "Messages-Waiting: yes" in notify and "Voice-Message: 1/0" in notify
