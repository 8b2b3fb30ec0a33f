"""One call through everything (issue 5): ``vidare serve`` spawns the REAL media server
(``media.spawn = true``); a pjsua2 caller on the PSTN trunk calls bob, who is unreachable (no
registration, the mobile network answers 480), so the B2BUA forwards to bob's voicemail; the
caller speaks (a tone) and hangs up; the media server stores the message and NOTIFYs the B2BUA,
which relays ``Messages-Waiting: yes`` to bob's subscribed SIPp softphone."""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from interop.callpeers import CallServer, Peer, free_port, header, start_peer
from interop.harness import REPO

pytestmark = [
    pytest.mark.interop,
]

CALLER = REPO / "tests" / "media_caller.py"
_RTP_BASE = 30000 + (os.getpid() % 300) * 60


def _tone(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                for i in range(int(seconds * 8000))
            )
        )
    return path


def _wait(pred: object, timeout: float, what: str, server: CallServer) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen\n{server.log_path.read_text()[-6000:]}")


def _spawning_server(tmp_path: Path, *extra: str) -> CallServer:
    """``vidare serve`` that spawns the real media server; the PSTN trunk is the pjsua2 caller."""
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
            "--set", "media.max_message_seconds=20",
            *extra,
        ],
    )  # fmt: skip
    server.data_dir.mkdir(parents=True)
    server.start()
    return server


def _caller(server: CallServer, *args: str) -> list[str]:
    return [
        sys.executable, str(CALLER),
        "--uri", f"sip:+4681001002@127.0.0.1:{server.port}",
        "--sip-port", str(server.pstn),
        "--rtp-port", str(_RTP_BASE + 1100),
        *args,
    ]  # fmt: skip


def test_pstn_caller_reaches_voicemail_and_the_subscriber_gets_mwi(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    server = _spawning_server(tmp_path)
    phone: Peer | None = None
    try:
        _wait(lambda: server.events("media.started"), 20, "media.started", server)
        phone = start_peer(
            "bob-mwi",
            "subscribe_mwi.xml",
            free_port(),
            wd,
            server.address,
            service="bob",
            subs={"wait": "45000"},
            extra=["-au", "bob", "-ap", "bob-demo", "-auth_uri", f"bob@{server.address}"],
            timeout=60,
        )
        _wait(lambda: "Messages-Waiting: no" in phone.messages, 10, "initial NOTIFY", server)  # type: ignore[union-attr]
        mobile = start_peer("mobile", "call_uas_reject.xml", server.mobile, wd, subs={"status": "480"})
        speech = _tone(tmp_path / "tone.wav", 4.0)
        proc = subprocess.run(
            _caller(
                server,
                "--play",
                str(speech),
                "--play-at",
                "7",
                "--hangup-after-play",
                "0.5",
                "--timeout",
                "40",
            ),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr[-3000:] + server.log_path.read_text()[-4000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["confirmed"], result
        assert mobile.wait(10) == 0, mobile.debug()
        assert phone.wait(30) == 0, phone.debug() + server.log_path.read_text()[-6000:]
        notifies = phone.received_requests("NOTIFY")
        assert len(notifies) == 3, notifies
        relayed = notifies[1]
        assert "Messages-Waiting: yes" in relayed and "Voice-Message: 1/0" in relayed, relayed
        assert header(relayed, "Event") == "message-summary"
        forwarded = [e for e in server.events("call.forwarded") if "voicemail@" in str(e.get("to"))]
        assert forwarded and ";cause=408" in str(forwarded[0]["to"])
        assert server.events("voicemail.deposited")
        (relay,) = server.events("mwi.relayed")
        assert relay["user"] == "bob" and relay["subscriptions"] == 1
    finally:
        if phone is not None:
            phone.stop()
        server.stop()


def test_killing_the_media_server_mid_call_ends_the_call_and_it_comes_back(tmp_path: Path) -> None:
    """SIGKILL the media process during a voicemail call: the B2BUA's keepalive (1 s here) hangs
    up on the caller, ``vidare serve`` restarts the media server, and the next call works."""
    wd = tmp_path / "sipp"
    server = _spawning_server(tmp_path, "--set", "media.keepalive_interval=1")
    try:
        _wait(lambda: server.events("media.started"), 20, "media.started", server)
        mobile = start_peer(
            "mobile",
            "call_uas_reject.xml",
            server.mobile,
            wd,
            subs={"status": "480"},
            extra=["-m", "2"],
            timeout=60,
        )
        proc = subprocess.Popen(
            _caller(server, "--hangup-at", "25", "--timeout", "30"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        _wait(lambda: server.events("media.call.answered"), 15, "media.call.answered", server)
        time.sleep(1.0)
        (spawned,) = server.events("media.spawned")
        os.kill(int(str(spawned["pid"])), signal.SIGKILL)
        killed = time.monotonic()
        out, err = proc.communicate(timeout=40)
        assert proc.returncode == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        assert result["confirmed"] and result["hung_up_by"] == "remote", result
        assert time.monotonic() - killed < 8
        (lost,) = server.events("media.unreachable")
        assert lost["calls"] == 1
        ended = [e for e in server.events("call.ended") if "media server unreachable" in str(e.get("cause"))]
        assert len(ended) == 1
        # The supervisor restarts it; the next call to voicemail is answered.
        _wait(lambda: len(server.events("media.started")) >= 2, 30, "media restart", server)
        assert server.events("media.exited")
        again = subprocess.run(
            _caller(server, "--hangup-at", "2", "--timeout", "20"),
            capture_output=True,
            text=True,
            timeout=40,
            cwd=REPO,
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout.strip().splitlines()[-1])["confirmed"]
        assert mobile.wait(10) == 0, mobile.debug()
    finally:
        server.stop()
