"""Message waiting (RFC 3842): build the ``message-summary`` NOTIFY (pure) and send it over UDP.

The media server sends one NOTIFY per change of a user's box to the B2BUA (config ``sip.listen``)
with Request-URI ``sip:<username>@<domain>``; the B2BUA relays it to the user's subscribed
softphones. The sender is a tiny non-INVITE client transaction: it retransmits on T1 doubling
(RFC 3261 17.1.2) until any final response arrives or four retransmissions have gone.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field

import structlog

__all__ = ["MessageSummary", "MwiSender", "build_body", "build_notify"]

log = structlog.get_logger("media.mwi")


@dataclass(frozen=True, slots=True)
class MessageSummary:
    username: str
    domain: str
    new: int
    old: int

    @property
    def account(self) -> str:
        return f"sip:{self.username}@{self.domain}"


def build_body(summary: MessageSummary) -> str:
    """The ``application/simple-message-summary`` body."""
    waiting = "yes" if summary.new > 0 else "no"
    return (
        f"Messages-Waiting: {waiting}\r\n"
        f"Message-Account: {summary.account}\r\n"
        f"Voice-Message: {summary.new}/{summary.old}\r\n"
    )


def build_notify(
    summary: MessageSummary,
    *,
    local: tuple[str, int],
    remote: tuple[str, int],
    branch: str,
    call_id: str,
    tag: str,
    cseq: int = 1,
) -> bytes:
    """A complete NOTIFY request, ready for ``sendto``."""
    body = build_body(summary).encode()
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    lines = [
        f"NOTIFY {summary.account} SIP/2.0",
        f"Via: SIP/2.0/UDP {host}:{local[1]};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:voicemail@{summary.domain}>;tag={tag}",
        f"To: <{summary.account}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} NOTIFY",
        f"Contact: <sip:voicemail@{host}:{local[1]}>",
        "Event: message-summary",
        "Subscription-State: active",
        "Content-Type: application/simple-message-summary",
        "User-Agent: Vidare-media",
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


@dataclass(slots=True)
class _Pending:
    data: bytes
    summary: MessageSummary
    next_at: float
    interval: float
    tries: int = 0


@dataclass(slots=True)
class MwiSender:
    """Non-blocking UDP sender polled from the media server's loop (``tick``)."""

    remote: tuple[str, int]
    bind_host: str = "127.0.0.1"
    t1: float = 0.5
    max_retransmits: int = 4
    _sock: socket.socket = field(init=False)
    _pending: dict[str, _Pending] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.bind((self.bind_host, 0))
        self._sock.setblocking(False)

    @property
    def local(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def send(self, summary: MessageSummary) -> None:
        branch = "z9hG4bK" + secrets.token_hex(8)
        data = build_notify(
            summary,
            local=self.local,
            remote=self.remote,
            branch=branch,
            call_id=f"{secrets.token_hex(12)}@vidare-media",
            tag=secrets.token_hex(4),
        )
        self._pending[branch] = _Pending(data, summary, time.monotonic() + self.t1, self.t1)
        self._transmit(data)
        log.info(
            "mwi.sent",
            user=summary.username,
            account=summary.account,
            new=summary.new,
            old=summary.old,
            to=f"{self.remote[0]}:{self.remote[1]}",
        )

    def _transmit(self, data: bytes) -> None:
        try:
            self._sock.sendto(data, self.remote)
        except OSError as e:
            log.warning("mwi.send_failed", error=str(e))

    def tick(self, now: float | None = None) -> None:
        """Read responses, retransmit what is still unanswered."""
        while True:
            try:
                data = self._sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # ICMP port unreachable on Linux surfaces here; the retransmit timer handles it
            self._on_response(data)
        now = time.monotonic() if now is None else now
        for branch, p in list(self._pending.items()):
            if now < p.next_at:
                continue
            if p.tries >= self.max_retransmits:
                del self._pending[branch]
                log.warning("mwi.timeout", user=p.summary.username)
                continue
            p.tries += 1
            p.interval = min(p.interval * 2, 4.0)
            p.next_at = now + p.interval
            self._transmit(p.data)

    def _on_response(self, data: bytes) -> None:
        head = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        if not head.startswith("SIP/2.0 "):
            return
        code = head[8:11]
        for line in data.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith(("via:", "v:")) and "branch=" in line:
                branch = line.split("branch=", 1)[1].split(";", 1)[0].split(",", 1)[0].strip()
                if code.isdigit() and int(code) >= 200 and branch in self._pending:
                    p = self._pending.pop(branch)
                    if int(code) >= 300:
                        log.warning("mwi.rejected", user=p.summary.username, status=int(code))
                return

    def close(self) -> None:
        self._sock.close()
