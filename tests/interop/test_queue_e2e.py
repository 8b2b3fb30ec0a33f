"""Personal queue end to end (issue 5 point 7): ``vidare serve`` with the REAL media server, pjsua2
phones with real RTP, each in its own process with its own RTP ports.

bob's pjsua2 softphone (registered with digest) answers a first call (caller A, PSTN trunk) and
holds ``busy.fixed.queue``; caller B (mobile trunk's address) calls bob's fixed number, is sent to
``sip:queue@<media>`` and hears music; bob hangs up on A; bob's softphone rings with B (an INVITE
without SDP: the phone makes the offer), answers, and RTP flows both ways between B and bob (the
RTP counters of each end, the remote address of each stream, and the recordings show it). Then,
bob still busy with B, caller C (PSTN trunk) waits out ``media.queue_max_wait`` and leaves a
voicemail for bob; B hanging up meanwhile frees bob but must not ring him with C (C is recording).

Trunks are trusted by source address and port, so the callers bind the trunks' ports: A the
PSTN one, B the mobile one (after the SIPp "mobile" that A's call rang has gone), C the PSTN one
(after A's process has gone).
"""

from __future__ import annotations

import json
import math
import os
import queue
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interop.callpeers import CallServer, cli_ok, free_port, start_peer
from interop.harness import REPO

pytestmark = [
    pytest.mark.interop,
]

PHONE = REPO / "tests" / "media_phone.py"
BOB_FIXED = "+4681001002"
QUEUE_MAX_WAIT = 6
# media server: base .. base+999; the phones: 40 ports each above it; all below the ephemeral
# range (32768-), where free_port() finds the SIP ports
_RTP_BASE = 20000 + (os.getpid() % 90) * 120


def _tone(path: Path, hz: float, seconds: float = 2.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / 8000)))
                for i in range(int(seconds * 8000))
            )
        )
    return path


def _tone_share(path: Path, hz: float, skip: float = 0.5) -> tuple[float, float]:
    """(RMS, median share of the power at ``hz``) of a recording (Goertzel, after ``skip`` s)."""
    deadline = time.monotonic() + 5
    while True:  # a dropped recorder completes the RIFF header a few media clock ticks later
        try:
            with wave.open(str(path), "rb") as w:
                rate = w.getframerate()
                data = w.readframes(w.getnframes())
            if data or time.monotonic() > deadline:
                break
        except (wave.Error, EOFError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)
    n = len(data) // 2
    samples = struct.unpack(f"<{n}h", data[: n * 2])[int(skip * rate) :]
    if not samples:
        return 0.0, 0.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    coeff = 2 * math.cos(2 * math.pi * hz / rate)
    shares = []
    for start in range(0, len(samples) - rate // 2, rate // 2):  # half-second windows
        window = samples[start : start + rate // 2]
        s1 = s2 = 0.0
        for s in window:
            s1, s2 = s + coeff * s1 - s2, s1
        energy = sum(s * s for s in window)
        power = (s1 * s1 + s2 * s2 - coeff * s1 * s2) * 2 / len(window)
        shares.append(power / energy if energy else 0.0)
    return rms, (sorted(shares)[len(shares) // 2] if shares else 0.0)  # the median window


class PhoneProc:
    """``tests/media_phone.py`` in its own process: JSON events out, commands in."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._q: queue.Queue[dict[str, Any]] = queue.Queue()
        self._err = (log_dir / f"{name}.err").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(PHONE), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            cwd=REPO,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._q.put(json.loads(line))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_for(self, event: str, timeout: float, **match: Any) -> dict[str, Any]:
        def ok(e: dict[str, Any]) -> bool:
            return e["event"] == event and all(e.get(k) == v for k, v in match.items())

        for e in self.events:
            if ok(e):
                return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            self.events.append(e)
            if ok(e):
                return e
        raise AssertionError(f"{self.name}: no {event} {match} in {timeout} s; got {self.events}")

    def seen(self, event: str, **match: Any) -> bool:
        """Whether ``event`` has come (without waiting)."""
        while not self._q.empty():
            self.events.append(self._q.get_nowait())
        return any(e["event"] == event and all(e.get(k) == v for k, v in match.items()) for e in self.events)

    def stats(self, n: int) -> list[dict[str, Any]]:
        self.send("stats")
        calls: dict[str, list[dict[str, Any]]] = {}
        for _ in range(20):
            e = self.wait_for("stats", 5)
            self.events.remove(e)  # the next ask waits for a fresh one
            calls = e["calls"]
            if str(n) in calls:
                return calls[str(n)]
        raise AssertionError(f"{self.name}: call {n} not in {calls}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(8)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()


def _wait(pred: Callable[[], object], timeout: float, what: str, server: CallServer) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen\n{server.log_path.read_text()[-6000:]}")


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_queued_caller_hears_music_reaches_bob_with_rtp_and_a_timeout_goes_to_voicemail(
    tmp_path: Path,
) -> None:
    wd = tmp_path / "sipp"
    wd.mkdir()
    server = CallServer(
        free_port(),
        tmp_path / "data",
        tmp_path / "server.log",
        pstn=free_port(),
        mobile=free_port(),
        media=free_port(),
        extra=[
            "--set", "media.spawn=true",
            "--set", f"media.rtp_port_start={_RTP_BASE}",
            "--set", f"media.queue_max_wait={QUEUE_MAX_WAIT}",
            "--set", "media.max_message_seconds=20",
        ],
    )  # fmt: skip
    server.data_dir.mkdir(parents=True)
    phones: list[PhoneProc] = []

    def phone(name: str, sip_port: int, rtp_offset: int, *args: str) -> PhoneProc:
        p = PhoneProc(
            name,
            [
                "--sip-port",
                str(sip_port),
                "--rtp-port",
                str(_RTP_BASE + rtp_offset),
                "--timeout",
                "60",
                *args,
            ],
            tmp_path,
        )
        phones.append(p)
        return p

    def caller(name: str, sip_port: int, rtp_offset: int, number: str, *args: str) -> PhoneProc:
        return phone(
            name,
            sip_port,
            rtp_offset,
            "--call", f"sip:{BOB_FIXED}@{server.address}",
            "--id-uri", f"sip:{number}@127.0.0.1",
            *args,
        )  # fmt: skip

    bob_tone = _tone(tmp_path / "bob-1000hz.wav", 1000)
    caller_tone = _tone(tmp_path / "caller-440hz.wav", 440)
    server.start()
    try:
        _wait(lambda: server.events("media.started"), 20, "media.started", server)
        cli_ok(
            server, "user", "groups", "bob", "--remove", "busy.both.voicemail", "--add", "busy.fixed.queue"
        )
        bob_port = free_port()
        while bob_port in (server.pstn, server.mobile, server.media):
            bob_port = free_port()  # the trunk ports are reserved but not bound yet
        bob = phone(
            "bob",
            bob_port,
            1100,
            "--register", server.address, "--user", "bob", "--password", "bob-demo",
            "--play", str(bob_tone), "--record-dir", str(tmp_path / "bob"),
        )  # fmt: skip
        bob.wait_for("registered", 10)

        # 1. bob answers a first call (his mobile rings too and is cancelled)
        mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
        a = caller("caller-a", server.pstn, 1200, "+46812345678")
        a.wait_for("confirmed", 10, n=1)
        bob.wait_for("confirmed", 5, n=1)
        assert mobile.wait(10) == 0, mobile.debug()

        # 2. caller B is queued (bob is busy) and hears music
        b = caller(
            "caller-b",
            server.mobile,
            1300,
            "+46899999999",
            "--play",
            str(caller_tone),
            "--record-dir",
            str(tmp_path / "b"),
        )
        b.wait_for("confirmed", 10, n=1)
        _wait(lambda: server.events("queue.joined"), 5, "queue.joined", server)
        queued = [e for e in server.events("call.forwarded") if "queue@" in str(e.get("to"))]
        assert queued, server.log_path.read_text()[-4000:]
        time.sleep(3.0)

        # 3. bob hangs up; his softphone rings with B (no SDP: it offers), answers
        bob.send("hangup 1")
        a.wait_for("ended", 5, n=1)
        incoming = bob.wait_for("incoming", 10, n=2)
        assert incoming["has_sdp"] is False and "+46899999999" in incoming["remote"], incoming
        bob.wait_for("confirmed", 10, n=2)
        _wait(lambda: server.events("queue.handed_over"), 10, "queue.handed_over", server)
        moved = b.wait_for("media", 10, n=1, gen=2)  # the re-INVITE moved B's media to bob
        bob_media = bob.wait_for("media", 5, n=2)

        # 4. RTP both ways between B and bob
        time.sleep(3.0)
        (bob_gen,) = bob.stats(2)
        b_gens = b.stats(1)
        b_bob = b_gens[-1]
        assert _RTP_BASE + 1100 <= _port_of(moved["remote"]) < _RTP_BASE + 1140, moved  # bob's RTP
        assert _RTP_BASE + 1300 <= _port_of(bob_media["remote"]) < _RTP_BASE + 1340, bob_media  # B's
        assert bob_gen["rx"] >= 100, bob_gen  # 50 packets/s for 3 s: B's RTP arrives at bob
        assert b_bob["rx"] >= 100, b_gens  # and bob's at B
        (left,) = server.events("queue.left")  # the media server's leg was released
        (released,) = server.events("media.call.ended")
        assert left["call_id"] == released["call_id"]

        # 5. with bob busy (with B), caller C waits out the queue and leaves a voicemail; bob
        # becoming free meanwhile must not ring him with C (it would cut the message short)
        a.stop()  # frees the PSTN trunk's port
        c = caller("caller-c", server.pstn, 1200, "+46811111111", "--play", str(caller_tone))
        c.wait_for("confirmed", 10, n=1)
        _wait(lambda: server.events("queue.timeout"), QUEUE_MAX_WAIT + 6, "queue.timeout", server)
        _wait(lambda: server.events("voicemail.recording"), 20, "voicemail.recording", server)
        b.send("hangup")
        b.wait_for("ended", 5, n=1)
        bob.wait_for("ended", 5, n=2)
        time.sleep(2.0)
        c.send("hangup")
        c.wait_for("ended", 5, n=1)
        _wait(lambda: server.events("voicemail.deposited"), 10, "voicemail.deposited", server)
        assert not bob.seen("incoming", n=3), bob.events
        assert len(server.events("queue.handover_started")) == 1
        (deposit,) = server.events("voicemail.deposited")
        assert deposit["user"] == "bob" and deposit["caller"] == "sip:+46811111111@demo.test", deposit
        assert float(deposit["seconds"]) >= 1.5, deposit
        box = server.data_dir / "var" / "voicemail" / "bob"
        assert (box / str(deposit["file"])).is_file()
        ended = {e["call_id"]: e for e in server.events("call.ended")}
        assert ended[queued[0]["call_id"]]["cause"] == "caller hung up"  # B hung up on bob

        # the recordings: B heard music while queued, then bob's tone; bob heard B's tone
        b_music = Path(b_gens[0]["record"])
        music_rms, music_1k = _tone_share(b_music, 1000)
        assert music_rms >= 100 and music_1k < 0.5, f"B heard no queue music ({music_rms}, {music_1k})"
        rms, share = _tone_share(Path(b_bob["record"]), 1000)
        assert rms >= 100 and share > 0.5, (rms, share)  # bob's 1 kHz tone reached B
        rms, share = _tone_share(Path(bob_gen["record"]), 440)
        assert rms >= 100 and share > 0.5, (rms, share)  # B's 440 Hz tone reached bob
    finally:
        for p in phones:
            p.stop()
        server.stop()
