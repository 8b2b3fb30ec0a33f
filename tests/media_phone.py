"""A pjsua2 phone in its own process, for the end-to-end queue tests (null audio device).

Registers as a user with digest auth and auto-answers every INVITE (an INVITE without SDP too:
pjsua2 then makes the offer in its 200 and takes the answer from the ACK), or places one call
(``--call``). It plays a WAV (looped) into every call, records each call's audio per media
"generation" (a re-INVITE that moves the media starts a new one) and samples the RTP counters.

    python tests/media_phone.py --sip-port 5070 --rtp-port 46000 --register 127.0.0.1:5060 \
        --user bob --password bob-demo --play tone.wav --record-dir out/

Events are JSON lines on stdout (``registered``, ``incoming``, ``confirmed``, ``media``,
``stats``, ``ended``); commands are lines on stdin: ``hangup [N]``, ``stats``, ``quit``.
In ``ended`` and ``stats``, each call lists its generations: remote RTP address, packets received
and sent since the generation began, and the recording.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from pathlib import Path
from typing import Any

import pjsua2 as pj


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}), flush=True)


class Phone:
    """What the calls share: the player, the recording directory, the call list."""

    def __init__(self, ep: Any, player: Any, record_dir: Path | None) -> None:
        self.ep = ep
        self.player = player
        self.record_dir = record_dir
        self.calls: list[PhoneCall] = []
        self.to_answer: list[tuple[float, PhoneCall]] = []


class PhoneCall(pj.Call):  # type: ignore[misc]
    def __init__(self, acc: Any, phone: Phone, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.phone = phone
        self.n = len(phone.calls) + 1
        phone.calls.append(self)
        self.confirmed = False
        self.ended = False
        self.audio: Any = None
        self.recorder: Any = None
        self.gens: list[dict[str, Any]] = []
        self.status = 0

    # -- pjsua2 callbacks
    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.status = int(info.lastStatusCode)
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            emit("confirmed", n=self.n)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.ended:
            self.ended = True
            self.audio = None
            emit("ended", n=self.n, status=self.status, reason=str(info.lastReason), gens=self.report())

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            self.audio = self.getAudioMedia(i)
            remote = ""
            try:
                remote = str(self.getStreamInfo(i).remoteRtpAddress)
            except pj.Error:
                pass
            rx, tx = self._counters(i)
            self.recorder = None  # closes the previous generation's WAV (a few ticks later)
            path = ""
            if self.phone.record_dir is not None:
                path = str(self.phone.record_dir / f"call{self.n}-gen{len(self.gens) + 1}.wav")
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(path)
                self.audio.startTransmit(self.recorder)
            if self.phone.player is not None:
                self.phone.player.startTransmit(self.audio)
            else:
                self.phone.ep.audDevManager().getCaptureDevMedia().startTransmit(self.audio)
            self.gens.append(
                {"idx": i, "remote": remote, "rx0": rx, "tx0": tx, "rx": rx, "tx": tx, "record": path}
            )
            emit("media", n=self.n, gen=len(self.gens), remote=remote)
            return

    # -- helpers
    def _counters(self, idx: int) -> tuple[int, int]:
        try:
            st = self.getStreamStat(idx)
            return int(st.rtcp.rxStat.pkt), int(st.rtcp.txStat.pkt)
        except pj.Error:
            return 0, 0

    def sample(self) -> None:
        if self.ended:
            self.recorder = None  # closes the WAV (outside pjsua2's callbacks)
            return
        if not self.gens:
            return
        g = self.gens[-1]
        rx, tx = self._counters(int(g["idx"]))
        g["rx"], g["tx"] = rx, tx

    def report(self) -> list[dict[str, Any]]:
        out = []
        for g in self.gens:
            # a re-INVITE may recreate the stream (counters restart from zero)
            rx = g["rx"] - g["rx0"] if g["rx"] >= g["rx0"] else g["rx"]
            tx = g["tx"] - g["tx0"] if g["tx"] >= g["tx0"] else g["tx"]
            out.append({"remote": g["remote"], "rx": rx, "tx": tx, "record": g["record"]})
        return out


class PhoneAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: Phone, answer: bool, answer_delay: float) -> None:
        super().__init__()
        self.phone = phone
        self.answer = answer
        self.answer_delay = answer_delay

    def onRegState(self, prm: Any) -> None:
        emit("registered" if int(prm.code) // 100 == 2 else "register_failed", code=int(prm.code))

    def onIncomingCall(self, prm: Any) -> None:
        call = PhoneCall(self, self.phone, prm.callId)
        msg = str(prm.rdata.wholeMsg)
        remote = str(call.getInfo().remoteUri)
        emit("incoming", n=call.n, src=str(prm.rdata.srcAddress), has_sdp="\nv=0" in msg, remote=remote)
        op = pj.CallOpParam()
        op.statusCode = 180 if self.answer else 486
        call.answer(op)
        if self.answer:
            self.phone.to_answer.append((time.monotonic() + self.answer_delay, call))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sip-port", type=int, required=True)
    ap.add_argument("--rtp-port", type=int, required=True)
    ap.add_argument("--register", help="registrar host:port (answers incoming calls)")
    ap.add_argument("--user", default="bob")
    ap.add_argument("--password", default="")
    ap.add_argument("--domain", default="demo.test")
    ap.add_argument("--id-uri", help="From URI when calling (default sip:<user>@<domain>)")
    ap.add_argument("--call", help="URI to call")
    ap.add_argument("--answer-delay", type=float, default=0.3)
    ap.add_argument("--play", help="WAV played (looped) into every call")
    ap.add_argument("--record-dir", help="record each call's audio here")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = int(os.environ.get("PHONE_PJ_LOG", "1"))
    cfg.logConfig.consoleLevel = cfg.logConfig.level
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.port = args.sip_port
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    for codec in ep.codecEnum2():
        name = codec.codecId.split("/")[0]
        ep.codecSetPriority(codec.codecId, {"PCMA": 200, "PCMU": 199}.get(name, 0))

    _session(ep, args)
    import gc

    gc.collect()
    ep.libDestroy()
    emit("exit")
    return 0


def _session(ep: Any, args: argparse.Namespace) -> None:
    """Everything that holds pjsua2 objects: they are all gone when this returns (a Call that
    outlives ``libDestroy`` aborts in its destructor)."""
    player: Any = None
    if args.play:
        player = pj.AudioMediaPlayer()
        player.createPlayer(args.play, 0)  # looped
    record_dir = Path(args.record_dir) if args.record_dir else None
    if record_dir is not None:
        record_dir.mkdir(parents=True, exist_ok=True)
    phone = Phone(ep, player, record_dir)

    acfg = pj.AccountConfig()
    acfg.idUri = args.id_uri or f"sip:{args.user}@{args.domain}"
    acfg.mediaConfig.transportConfig.port = args.rtp_port
    acfg.mediaConfig.transportConfig.portRange = 40
    acfg.natConfig.contactRewriteUse = 0
    acfg.natConfig.viaRewriteUse = 0
    acfg.natConfig.sdpNatRewriteUse = 0
    if args.register:
        acfg.regConfig.registrarUri = f"sip:{args.register}"
        acfg.regConfig.timeoutSec = 300
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.user, 0, args.password))
    acc = PhoneAccount(phone, answer=bool(args.register), answer_delay=args.answer_delay)
    acc.create(acfg, True)
    if args.call:
        out = PhoneCall(acc, phone)
        uri = args.call if args.call.startswith("<") else f"<{args.call}>"
        out.makeCall(uri, pj.CallOpParam(True))
        emit("calling", n=out.n, uri=args.call)
        del out
    try:
        _loop(ep, phone, args.timeout)
        _hangup_all(ep, phone)
    finally:
        for c in phone.calls:
            c.recorder = None
            c.audio = None
            c.phone = None  # type: ignore[assignment]
        phone.calls.clear()
        phone.to_answer.clear()
        phone.player = None
        del player
        for _ in range(20):
            ep.libHandleEvents(10)
        acc.shutdown()
        del acc


def _loop(ep: Any, phone: Phone, timeout: float) -> None:
    started = time.monotonic()
    next_sample = 0.0
    while time.monotonic() - started < timeout:
        ep.libHandleEvents(10)
        now = time.monotonic()
        for due, call in list(phone.to_answer):
            if now >= due:
                phone.to_answer.remove((due, call))
                if not call.ended:
                    op = pj.CallOpParam()
                    op.statusCode = 200
                    call.answer(op)
        if now >= next_sample:
            next_sample = now + 0.2
            for c in phone.calls:
                c.sample()
        while select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line:
                return
            cmd, *rest = line.split() or [""]
            if cmd == "quit":
                return
            if cmd == "stats":
                emit("stats", calls={c.n: c.report() for c in phone.calls if not c.ended})
            elif cmd == "hangup":
                for c in phone.calls:
                    if not c.ended and (not rest or c.n == int(rest[0])):
                        c.hangup(pj.CallOpParam())


def _hangup_all(ep: Any, phone: Phone) -> None:
    for c in phone.calls:
        if not c.ended:
            c.hangup(pj.CallOpParam())
    end = time.monotonic() + 1.5
    while time.monotonic() < end and not all(c.ended for c in phone.calls):
        ep.libHandleEvents(10)


if __name__ == "__main__":
    sys.exit(main())
