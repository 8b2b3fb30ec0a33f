"""CPU cost of one call through the whole server, in process: ``python -m bench.callpath``.

No sockets and no SIPp: a ``SipServer`` with the B2BUA (as ``vidare serve`` builds it) gets the
bytes a SIPp caller, softphone and mobile network would send, and its datagrams out are caught
and answered by those simulated peers. The clock is fake and moves 1/rate seconds per call, so
the lingering transactions and their timers (Timer B/J/K...) build up as at that call rate and
their firing is counted too. Only the server's own work is timed (``_on_datagram`` and timer
callbacks), so the figure is the server's CPU per call without the kernel's UDP cost.

It is the tool for finding where a call's time goes: ``--profile out.prof`` writes cProfile
output of the server's work only. ``bench.calls`` measures the real thing over UDP.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import heapq
import re
import tempfile
import time
from collections.abc import Callable, Hashable
from pathlib import Path

from policy.decide import decide
from policy.model import DirectorySnapshot
from sipcore.aio.logconfig import configure_logging
from sipcore.aio.server import SipServer, SipSettings
from sipcore.aio.transport import Source
from sipcore.b2bua import B2buaConfig
from sipcore.b2bua.events import CdrRecord
from sipcore.message import NameAddr, Uri
from sipcore.registrar import Added, Binding
from sipcore.registrar import Source as RegSource
from sipcore.transaction import TimerConfig
from vidare.serve import _tune_gc

HOST = "127.0.0.1"
SERVER, PSTN, MOBILE, MEDIA, PHONE = 5060, 5070, 5080, 5090, 6000
BOB_FIXED = "+4681001002"
BENCH_FIXED = "+4681001099"
SDP = (
    "v=0\r\no=caller 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class FakeTimers:
    """``TimerService``'s interface on a fake clock; ``advance`` fires what falls due, in order."""

    def __init__(self) -> None:
        self.t = 1000.0
        self._heap: list[tuple[float, int, tuple[Hashable, str]]] = []
        self._live: dict[tuple[Hashable, str], tuple[int, Callable[[Hashable, str], None]]] = {}
        self._seq = 0

    def now(self) -> float:
        return self.t

    def set(self, owner: Hashable, name: str, at: float, fire: Callable[[Hashable, str], None]) -> None:
        self._seq += 1
        key = (owner, name)
        self._live[key] = (self._seq, fire)
        heapq.heappush(self._heap, (at, self._seq, key))

    def cancel(self, owner: Hashable, name: str) -> None:
        self._live.pop((owner, name), None)

    def cancel_owner(self, owner: Hashable, names: tuple[str, ...]) -> None:
        for name in names:
            self.cancel(owner, name)

    def __len__(self) -> int:
        return len(self._live)

    def advance(self, to: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= to:
            at, seq, key = heapq.heappop(heap)
            live = self._live.get(key)
            if live is None or live[0] != seq:
                continue
            del self._live[key]
            self.t = at
            live[1](key[0], key[1])
        self.t = to


def _header(text: str, name: str) -> str:
    m = re.search(rf"^{name}:[ \t]*(.*?)\r$", text, re.M | re.I)
    assert m is not None, f"no {name} in\n{text}"
    return m.group(1)


def _headers(text: str, name: str) -> list[str]:
    return re.findall(rf"^{name}:[ \t]*(.*?)\r$", text, re.M | re.I)


def _response(req: str, status: str, to_tag: str | None, extra: str = "", body: str = "") -> bytes:
    lines = [f"SIP/2.0 {status}"]
    lines += [f"Via: {v}" for v in _headers(req, "Via")]
    to = _header(req, "To")
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines += [f"From: {_header(req, 'From')}", f"To: {to}", f"Call-ID: {_header(req, 'Call-ID')}"]
    lines += [f"CSeq: {_header(req, 'CSeq')}"]
    if extra:
        lines.append(extra)
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


class Peers:
    """SIPp's bench scenarios in a few lines: the caller, the softphone, the mobile network."""

    def __init__(self, server: SipServer, timers: FakeTimers) -> None:
        self.server = server
        self.timers = timers
        self.outbox: list[tuple[bytes, int]] = []
        self.done = 0
        self.server_seconds = 0.0
        self.profiler: cProfile.Profile | None = None
        self._pending_mobile = ""  # the INVITE the mobile network rings, until it is cancelled

    def capture(self, data: bytes, host: str, port: int, transport: str = "UDP") -> None:
        self.outbox.append((data, port))

    def feed(self, data: bytes, port: int) -> None:
        if self.profiler:
            self.profiler.enable()
        t0 = time.perf_counter()
        self.server._on_datagram(data, Source(HOST, port, "UDP"))
        self.server_seconds += time.perf_counter() - t0
        if self.profiler:
            self.profiler.disable()

    def advance(self, to: float) -> None:
        if self.profiler:
            self.profiler.enable()
        t0 = time.perf_counter()
        self.timers.advance(to)
        self.server_seconds += time.perf_counter() - t0
        if self.profiler:
            self.profiler.disable()
        self.pump()

    def invite(self, n: int, to: str) -> None:
        branch = f"z9hG4bK-{n}-1"
        head = [
            f"INVITE sip:{to}@{HOST}:{SERVER} SIP/2.0",
            f"Via: SIP/2.0/UDP {HOST}:{PSTN};branch={branch};rport",
            f"From: <sip:+46812345678@{HOST}:{PSTN}>;tag={n}SIPpTag00",
            f"To: <sip:{to}@{HOST}:{SERVER}>",
            f"Call-ID: {n}-bench@{HOST}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:+46812345678@{HOST}:{PSTN}>",
            "Max-Forwards: 70",
            "User-Agent: SIPp vidare-bench",
            "Content-Type: application/sdp",
            f"Content-Length: {len(SDP)}",
        ]
        self.feed(("\r\n".join(head) + "\r\n\r\n" + SDP).encode(), PSTN)
        self.pump()

    def pump(self) -> None:
        while self.outbox:
            data, port = self.outbox.pop(0)
            text = data.decode()
            if port == PSTN:
                self._caller(text)
            elif port == PHONE:
                self._phone(text)
            elif port == MOBILE:
                self._mobile(text)

    def _caller(self, text: str) -> None:
        if not text.startswith("SIP/2.0 "):
            return
        status = int(text[8:11])
        cseq = _header(text, "CSeq")
        if status != 200:
            return
        call_id = _header(text, "Call-ID")
        n = call_id.split("-", 1)[0]
        if cseq.endswith("BYE"):
            self.done += 1
            return
        target = _header(text, "Contact").strip("<>").split(">")[0]
        common = [
            f"From: <sip:+46812345678@{HOST}:{PSTN}>;tag={n}SIPpTag00",
            f"To: {_header(text, 'To')}",
            f"Call-ID: {call_id}",
        ]
        ack = [f"ACK {target} SIP/2.0", f"Via: SIP/2.0/UDP {HOST}:{PSTN};branch=z9hG4bK-{n}-2;rport"]
        ack += [*common, "CSeq: 1 ACK", "Max-Forwards: 70", "Content-Length: 0"]
        self.feed(("\r\n".join(ack) + "\r\n\r\n").encode(), PSTN)
        bye = [f"BYE {target} SIP/2.0", f"Via: SIP/2.0/UDP {HOST}:{PSTN};branch=z9hG4bK-{n}-3;rport"]
        bye += [*common, "CSeq: 2 BYE", "Max-Forwards: 70", "Content-Length: 0"]
        self.feed(("\r\n".join(bye) + "\r\n\r\n").encode(), PSTN)

    def _phone(self, text: str) -> None:
        method = text.split(" ", 1)[0]
        if method == "INVITE":
            contact = f"Contact: <sip:callee@{HOST}:{PHONE}>"
            self.feed(_response(text, "200 OK", "phone1", contact, SDP), PHONE)
        elif method == "BYE":
            self.feed(_response(text, "200 OK", None), PHONE)

    def _mobile(self, text: str) -> None:
        method = text.split(" ", 1)[0]
        if method == "INVITE":
            self.feed(_response(text, "180 Ringing", "mobile1", f"Contact: <sip:m@{HOST}:{MOBILE}>"), MOBILE)
            self._pending_mobile = text
        elif method == "CANCEL":
            self.feed(_response(text, "200 OK", "mobile1"), MOBILE)
            self.feed(_response(self._pending_mobile, "487 Request Terminated", "mobile1"), MOBILE)


def build(snapshot: DirectorySnapshot) -> tuple[SipServer, FakeTimers, Peers]:
    timers_cfg = TimerConfig()
    settings = SipSettings(host=HOST, port=SERVER, domain="demo.test", timers=timers_cfg)
    server = SipServer(settings, lambda: snapshot)
    cdrs: list[CdrRecord] = []

    def sink(record: CdrRecord) -> None:
        cdrs.append(record)
        if len(cdrs) > 1000:
            cdrs.clear()

    server.enable_b2bua(
        B2buaConfig(
            local_host=HOST,
            local_port=SERVER,
            domain="demo.test",
            pstn=(HOST, PSTN),
            mobile=(HOST, MOBILE),
            media=(HOST, MEDIA),
            timers=timers_cfg,
        ),
        decide,
        sink,
    )
    timers = FakeTimers()
    server._timers = timers
    peers = Peers(server, timers)
    server.transports.send = peers.capture  # type: ignore[method-assign]
    server.transports.send_udp = peers.capture  # type: ignore[method-assign]
    for user in ("bob", "bench"):
        binding = Binding(
            aor=f"sip:{user}@demo.test",
            contact=NameAddr(Uri(user=user, host=HOST, port=PHONE)),
            expires_at=time.time() + 86400,
            call_id=f"reg-{user}",
            cseq=1,
            source=RegSource(HOST, PHONE, "UDP"),
        )
        server.location.apply([Added(binding)])
    return server, timers, peers


def load_snapshot() -> DirectorySnapshot:
    from vidare.config import load_config
    from vidare.store import open_store

    data = Path(tempfile.mkdtemp(prefix="vidare-callpath-"))
    config = load_config(None, [], data)

    async def run() -> DirectorySnapshot:
        store = await open_store(config)
        try:
            await store.migrate()
            await store.ensure_demo("demo.test")
            await store.create_user(
                "bench", "Bench User", "1099", "bench-pw-1099", fixed=BENCH_FIXED, mobile=None
            )
            return await store.snapshot()
        finally:
            await store.close()

    return asyncio.run(run())


def run_case(snapshot: DirectorySnapshot, to: str, calls: int, rate: float, profile: Path | None) -> None:
    server, timers, peers = build(snapshot)
    _tune_gc()  # as vidare serve does after start-up
    prof = peers.profiler = cProfile.Profile() if profile else None
    step = 1.0 / rate
    cpu0 = time.process_time()
    for n in range(calls):
        peers.invite(n, to)
        peers.advance(timers.t + step)
    if prof:
        prof.dump_stats(str(profile))
    cpu = time.process_time() - cpu0
    assert peers.done == calls, f"{peers.done}/{calls} calls completed"
    per_call = peers.server_seconds / calls * 1e6
    print(
        f"{to}: {calls} calls, server work {per_call:.0f} us/call "
        f"(whole process incl. simulated peers {cpu / calls * 1e6:.0f} us/call), "
        f"{len(timers)} timers and {len(server.layer)} transactions live at the end"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.callpath", description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=1000.0, help="fake-clock calls per second")
    ap.add_argument("--only", choices=["plain", "forked"], action="append")
    ap.add_argument("--profile", type=Path, help="write cProfile output of the server's work here")
    ap.add_argument("--log-level", default="warning", help="as vidare serve's log.level (bench: warning)")
    args = ap.parse_args(argv)
    configure_logging("json", args.log_level)
    snapshot = load_snapshot()
    for case in args.only or ["plain", "forked"]:
        to = BENCH_FIXED if case == "plain" else BOB_FIXED
        prof = args.profile.with_suffix(f".{case}.prof") if args.profile else None
        run_case(snapshot, to, args.calls, args.rate, prof)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
