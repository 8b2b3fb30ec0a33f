"""A pjsua2 caller in its own process, for the media server's tests (null audio device).

    python tests/media_caller.py --uri 'sip:voicemail@127.0.0.1:5090;target=...;cause=486' \
        --header 'X-Vidare-Extension: 1002' --play speech.wav --play-at 3.2 --hangup-at 8.5 \
        --record heard.wav --dtmf 2.0:1002# --rtp-port 46000 --timeout 30

Times are seconds after the call is confirmed. Prints one JSON line: whether the call was confirmed,
who hung up ("remote" or "local"), the connected time and the recorded file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import pjsua2 as pj


class Caller(pj.Call):  # type: ignore[misc]
    def __init__(self, acc: Any) -> None:
        super().__init__(acc)
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.audio: Any = None
        self.status = 0

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.status = int(info.lastStatusCode)
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = time.monotonic()

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio = self.getAudioMedia(i)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--play", help="WAV to send into the call")
    ap.add_argument("--play-at", type=float, default=0.0)
    ap.add_argument("--hangup-at", type=float, help="hang up this long after confirm")
    ap.add_argument("--hangup-after-play", type=float, help="hang up this long after the WAV ends")
    ap.add_argument("--record", help="WAV to record what the caller hears")
    ap.add_argument("--dtmf", action="append", default=[], help="SECONDS:DIGITS (RFC 4733)")
    ap.add_argument("--rtp-port", type=int, default=46000)
    ap.add_argument("--sip-port", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--codecs", default="PCMA,PCMU", help="offered, in order (e.g. G722,PCMA)")
    args = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = int(os.environ.get("CALLER_PJ_LOG", "1"))
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
    offer = args.codecs.split(",")  # G.711 by default, as a trunk would send
    for codec in ep.codecEnum2():
        name = codec.codecId.split("/")[0]
        ep.codecSetPriority(codec.codecId, 200 - offer.index(name) if name in offer else 0)

    acfg = pj.AccountConfig()
    acfg.idUri = "sip:+46701234567@127.0.0.1"
    acfg.mediaConfig.transportConfig.port = args.rtp_port
    acfg.mediaConfig.transportConfig.portRange = 50
    acc = pj.Account()
    acc.create(acfg, True)

    call = Caller(acc)
    op = pj.CallOpParam(True)
    for h in args.header:
        name, _, value = h.partition(":")
        hdr = pj.SipHeader()
        hdr.hName = name.strip()
        hdr.hValue = value.strip()
        op.txOption.headers.append(hdr)
    uri = args.uri if args.uri.startswith("<") else f"<{args.uri}>"  # params belong to the URI
    call.makeCall(uri, op)

    player: Any = None
    recorder: Any = None
    play_len = 0.0
    played_at: float | None = None
    dtmf = sorted((float(t), d) for t, _, d in (x.partition(":") for x in args.dtmf))
    hung_locally = False
    feeding = False
    codec_used = ""
    started = time.monotonic()
    while time.monotonic() - started < args.timeout and call.disconnected_at is None:
        ep.libHandleEvents(10)
        now = time.monotonic()
        if call.confirmed_at is None or call.audio is None:
            continue
        t = now - call.confirmed_at
        if not codec_used:
            try:
                codec_used = str(call.getStreamInfo(0).codecName)
            except Exception:
                codec_used = "?"
        if not feeding:
            # Something must transmit into the call or pjmedia never encodes a frame for it, and
            # RFC 4733 digits ride on that path: feed it the (null) capture device.
            ep.audDevManager().getCaptureDevMedia().startTransmit(call.audio)
            feeding = True
        if args.record and recorder is None:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(args.record)
            call.audio.startTransmit(recorder)
        if args.play and player is None and t >= args.play_at:
            import wave

            with wave.open(args.play, "rb") as w:
                play_len = w.getnframes() / w.getframerate()
            player = pj.AudioMediaPlayer()
            player.createPlayer(args.play, pj.PJMEDIA_FILE_NO_LOOP)
            player.startTransmit(call.audio)
            played_at = now
        while dtmf and t >= dtmf[0][0]:
            call.dialDtmf(dtmf.pop(0)[1])
        hang = args.hangup_at is not None and t >= args.hangup_at
        if args.hangup_after_play is not None and played_at is not None:
            hang = hang or now - played_at >= play_len + args.hangup_after_play
        if hang and not hung_locally:
            hung_locally = True
            call.hangup(pj.CallOpParam())
    if call.disconnected_at is None and not hung_locally:
        hung_locally = True
        call.hangup(pj.CallOpParam())
    end = time.monotonic() + 1.0
    while time.monotonic() < end and call.disconnected_at is None:
        ep.libHandleEvents(10)
    if recorder is not None:
        # the call's port is gone (never stopTransmit on it: pjsua asserts); dropping the
        # recorder closes the WAV a few media clock ticks later
        del recorder
    if player is not None:
        del player
    result = {
        "codec": codec_used,
        "confirmed": call.confirmed_at is not None,
        "status": call.status,
        "hung_up_by": "local" if hung_locally else ("remote" if call.disconnected_at else "none"),
        "connected_seconds": round((call.disconnected_at or time.monotonic()) - call.confirmed_at, 3)
        if call.confirmed_at
        else 0.0,
        "record": args.record,
    }
    for _ in range(20):
        ep.libHandleEvents(10)
    del call
    acc.shutdown()
    del acc
    ep.libDestroy()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
