"""The media server process: a pjsua2 endpoint answering the B2BUA's RFC 4458 INVITEs.

pjsua2 runs with ``threadCnt = 0`` and ``mainThreadOnly = True`` and is polled by
``libHandleEvents`` from this module's loop (STYLE item 19), with the null audio device, one UDP
transport on ``media.address`` and RTP ports from ``media.rtp_port_start``. Codecs: PCMA, PCMU,
G.722; DTMF arrives as RFC 4733 events (``onDtmfDigit``).

Lifetime rules (ARCHITECTURE, pjsua2 pitfalls): every ``Call``, player and recorder stays referenced
here until the library is done with it; pjsua2 callbacks only queue work, which the loop does after
``libHandleEvents`` returns; a disconnected call is kept for a grace period before it is dropped,
and the library is destroyed last.
"""

from __future__ import annotations

import gc
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pjsua2 as pj
import structlog

from media.audio import concat_wavs, wav_duration
from media.calls import Env, Service, make_service
from media.mwi import MwiSender
from media.request import CallRequest, parse_invite
from media.store import VoicemailStore, migrate

__all__ = ["MediaServer", "MediaSettings"]

log = structlog.get_logger("media.server")

_CODECS = {"PCMA/8000/1": 250, "PCMU/8000/1": 249, "G722/16000/1": 248}
_GRACE_SECONDS = 5.0  # a disconnected call's objects are kept this long before they are dropped
_RETIRE_SECONDS = 1.0  # a stopped player likewise (pjsua has 32 player slots: do not hoard them)
_POLL_MS = 10


@dataclass(frozen=True, slots=True)
class MediaSettings:
    host: str
    port: int
    rtp_port_start: int
    var_dir: Path
    database_url: str
    domain: str
    b2bua: tuple[str, int]  # where MWI NOTIFYs go (sip.listen)
    max_message_seconds: float = 180.0
    queue_max_wait: float = 120.0
    pj_log_level: int = 1  # pjsip's own log on stderr (VIDARE_MEDIA_PJ_LOG=5 to debug)


class _Port:
    """The MediaPort of one call: a player and a recorder wired to the call's audio media."""

    def __init__(self, server: MediaServer, tmp: Path) -> None:
        self.server = server
        self.tmp = tmp
        self.audio: Any = None
        self.player: Any = None
        self.recorder: Any = None
        self.recording_path: Path | None = None
        self.media_gone = False  # the call's conference port is gone: never stopTransmit on it
        self.hangup_requested = False
        self._n = 0

    def play(self, files: Sequence[Path], *, loop: bool = False) -> float:
        self.stop_playing()
        if len(files) == 1 and loop:
            path, duration = files[0], wav_duration(files[0])
        else:
            self._n += 1
            path = self.tmp / f"play{self._n}.wav"
            duration = concat_wavs(files, path)
        if self.audio is None or duration <= 0:
            return duration
        player = pj.AudioMediaPlayer()
        player.createPlayer(str(path), 0 if loop else pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(self.audio)
        self.player = player
        return duration

    def stop_playing(self) -> None:
        player, self.player = self.player, None
        if player is None:
            return
        if not self.media_gone and self.audio is not None:
            try:
                player.stopTransmit(self.audio)
            except Exception as e:  # pj.Error
                log.debug("media.port.stop_failed", error=str(e))
        self.server.retire(player)

    def record(self, path: Path) -> None:
        self.stop_recording()
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        if self.audio is not None:
            self.audio.startTransmit(recorder)
        self.recorder = recorder
        self.recording_path = path

    def stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        path, self.recording_path = self.recording_path, None
        if recorder is None:
            return
        if not self.media_gone and self.audio is not None:
            try:
                self.audio.stopTransmit(recorder)
            except Exception as e:  # pj.Error
                log.debug("media.port.stop_failed", error=str(e))
        # Dropping the recorder closes the WAV, but pjmedia does it a few clock ticks later (the
        # conference removes the port asynchronously): wait until the header is complete, since
        # the caller reads the file right after.
        del recorder
        if path is not None:
            self.server.wait_wav_closed(path)

    def hangup(self) -> None:
        self.hangup_requested = True  # done by the loop, outside any callback

    def reattach(self, audio: Any) -> None:
        """New audio media after a re-INVITE: wire the player and recorder to it."""
        self.audio = audio
        audio.startTransmit(self.server.playback_sink())
        if self.player is not None:
            self.player.startTransmit(audio)
        if self.recorder is not None:
            audio.startTransmit(self.recorder)

    def release(self) -> None:
        self.media_gone = True
        self.stop_playing()
        self.stop_recording()
        self.audio = None
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass(eq=False)
class _Entry:
    call: Any
    req: CallRequest | None
    port: _Port | None = None
    service: Service | None = None
    trusted: bool = False
    started: bool = False
    hung: bool = False
    answered_at: float = 0.0
    ended_at: float | None = None


class _Call(pj.Call):  # type: ignore[misc]
    def __init__(self, server: MediaServer, account: Any, call_id: int) -> None:
        super().__init__(account, call_id)
        self.server = server
        self.entry: _Entry | None = None

    def onCallState(self, prm: Any) -> None:
        if self.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED and self.entry is not None:
            self.server.events.append(("ended", self.entry, None))

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                if self.entry is not None:
                    self.server.events.append(("media", self.entry, self.getAudioMedia(i)))
                return

    def onDtmfDigit(self, prm: Any) -> None:
        if self.entry is not None:
            self.server.events.append(("dtmf", self.entry, str(prm.digit)))


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, server: MediaServer) -> None:
        super().__init__()
        self.server = server

    def onIncomingCall(self, prm: Any) -> None:
        self.server.incoming(self, prm)


@dataclass
class MediaServer:
    settings: MediaSettings
    events: deque[tuple[str, _Entry, Any]] = field(default_factory=deque)
    _entries: list[_Entry] = field(default_factory=list)
    _retired: list[tuple[float, Any]] = field(default_factory=list)
    _stop: bool = False

    # -- called from pjsua2 callbacks (main thread, inside libHandleEvents) ----------------------

    def incoming(self, account: Any, prm: Any) -> None:
        call = _Call(self, account, prm.callId)
        text = str(prm.rdata.wholeMsg)
        source = str(prm.rdata.srcAddress)
        req = parse_invite(text)
        entry = _Entry(call=call, req=req)
        call.entry = entry
        self._entries.append(entry)
        op = pj.CallOpParam()
        if req is None:
            first = text.split("\r\n", 1)[0]
            log.warning("media.call.rejected", request=first, source=source, status=404)
            op.statusCode = 404
            call.answer(op)
            return
        entry.trusted = source.rpartition(":")[0].strip("[]") == self.settings.b2bua[0]
        entry.port = _Port(self, Path(tempfile.mkdtemp(prefix="call-", dir=self._tmp)))
        entry.answered_at = time.monotonic()
        op.statusCode = 200
        call.answer(op)
        log.info(
            "media.call.answered",
            call_id=req.call_id,
            service=req.service,
            user=req.username,
            cause=req.cause,
            caller=req.caller,
            activity=req.activity,
            language=req.language,
            source=source,
        )

    def wait_wav_closed(self, path: Path, timeout: float = 1.0) -> None:
        """Pump the library until pjmedia has closed ``path`` (RIFF size matches the file)."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            try:
                with path.open("rb") as f:
                    head = f.read(8)
                size = path.stat().st_size
            except OSError:
                head, size = b"", 0
            if len(head) == 8 and head[:4] == b"RIFF" and int.from_bytes(head[4:], "little") == size - 8:
                return
            self._ep.libHandleEvents(5)  # callbacks only queue events: safe to pump here
        log.warning("media.recording.not_closed", path=str(path))

    def playback_sink(self) -> Any:
        return self._ep.audDevManager().getPlaybackDevMedia()

    def retire(self, obj: Any) -> None:
        """Keep a pjsua2 object alive a little longer; it is dropped from the loop later."""
        self._retired.append((time.monotonic(), obj))

    # -- the loop ---------------------------------------------------------------------------------

    def _handle(self, kind: str, entry: _Entry, arg: Any, now: float) -> None:
        port, service = entry.port, entry.service
        if kind == "media" and port is not None and entry.req is not None and entry.ended_at is None:
            if not entry.started:
                port.audio = arg
                # pjmedia hands over RFC 4733 digits when the bridge pulls the call's frames, which
                # it does only for a port that transmits somewhere: always to the (null) device.
                arg.startTransmit(self.playback_sink())
                entry.started = True
                entry.service = make_service(entry.req, port, self._env, trusted_source=entry.trusted)
                entry.service.start(now)
            else:
                port.reattach(arg)
        elif kind == "dtmf" and service is not None and entry.ended_at is None:
            service.dtmf(arg, now)
        elif kind == "ended" and entry.ended_at is None:
            entry.ended_at = now
            if port is not None:
                port.media_gone = True
            if service is not None:
                service.ended(now)
            if port is not None:
                port.release()
            req = entry.req
            log.info(
                "media.call.ended",
                call_id=req.call_id if req else None,
                service=req.service if req else None,
                seconds=round(now - entry.answered_at, 2) if entry.answered_at else 0.0,
                by="media" if port is not None and port.hangup_requested else "caller",
            )

    def _tick(self, now: float) -> None:
        while self.events:
            kind, entry, arg = self.events.popleft()
            try:
                self._handle(kind, entry, arg, now)
            except Exception:
                log.exception("media.call.error", during=kind)
                self._fail(entry)
        for entry in self._entries:
            if entry.ended_at is not None:
                continue
            if entry.service is not None:
                try:
                    entry.service.tick(now)
                except Exception:
                    log.exception("media.call.error", during="tick")
                    self._fail(entry)
            port = entry.port
            if port is not None and port.hangup_requested and not entry.hung:
                entry.hung = True
                try:
                    entry.call.hangup(pj.CallOpParam())
                except Exception as e:  # pj.Error: already disconnecting
                    log.debug("media.call.hangup_failed", error=str(e))
        keep = [e for e in self._entries if e.ended_at is None or now - e.ended_at < _GRACE_SECONDS]
        if len(keep) != len(self._entries):
            for gone in self._entries:
                if gone not in keep:
                    gone.call.entry = None  # no cycle: the Call goes now, on this thread
            self._entries = keep
        if self._retired and now - self._retired[0][0] > _RETIRE_SECONDS:
            self._retired = [(t, o) for t, o in self._retired if now - t <= _RETIRE_SECONDS]
        self._mwi.tick(now)

    def _fail(self, entry: _Entry) -> None:
        """A service raised: hang the call up rather than leave the caller in silence."""
        if entry.port is not None and entry.ended_at is None:
            entry.port.hangup_requested = True

    def _end_all(self) -> None:
        for entry in [e for e in self._entries if e.ended_at is None]:
            self._handle("ended", entry, None, time.monotonic())

    def _drop_calls(self) -> None:
        """Release every call's media and drop every Call object, before the library goes.

        A ``Call`` that outlives ``libDestroy`` aborts the process in its destructor
        (``pjsua_call_set_user_data`` assertion), so no reference may survive, not even a loop
        variable: this is its own function so that its locals die when it returns.
        """
        self.events.clear()
        for entry in self._entries:
            if entry.port is not None:
                entry.port.release()
            entry.call.entry = None
        self._entries.clear()
        gc.collect()

    def stop(self, *_: Any) -> None:
        self._stop = True

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop = True

    def run(self) -> int:
        s = self.settings
        voicemail_root = s.var_dir / "voicemail"
        incoming = voicemail_root / ".incoming"
        shutil.rmtree(incoming, ignore_errors=True)  # a crash mid-recording leaves only this
        incoming.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="vidare-media-"))

        store = VoicemailStore(s.database_url)
        if not store.has_table():
            log.info("media.store.migrating", url=s.database_url)
            migrate(s.database_url)
        self._mwi = MwiSender(remote=s.b2bua, bind_host=s.host)
        self._env = Env(
            var_dir=s.var_dir,
            store=store,
            mwi=self._mwi,
            domain=s.domain,
            max_message_seconds=s.max_message_seconds,
            queue_max_wait=s.queue_max_wait,
        )

        ep = pj.Endpoint()
        self._ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 32
        cfg.uaConfig.userAgent = "Vidare-media"
        cfg.logConfig.level = s.pj_log_level
        cfg.logConfig.consoleLevel = s.pj_log_level
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        tcfg = pj.TransportConfig()
        tcfg.port = s.port
        tcfg.boundAddress = s.host
        tcfg.publicAddress = s.host
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.libStart()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, _CODECS.get(codec.codecId, 0))

        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:media@{s.host}:{s.port}"
        acfg.mediaConfig.transportConfig.port = s.rtp_port_start
        acfg.mediaConfig.transportConfig.portRange = 1000
        acfg.mediaConfig.transportConfig.boundAddress = s.host
        account = _Account(self)
        account.create(acfg, True)

        previous = {sig: signal.signal(sig, self._signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        log.info(
            "media.started",
            address=f"{s.host}:{s.port}",
            rtp_port_start=s.rtp_port_start,
            mwi_to=f"{s.b2bua[0]}:{s.b2bua[1]}",
            var_dir=str(s.var_dir),
        )
        try:
            while not self._stop:
                ep.libHandleEvents(_POLL_MS)
                self._tick(time.monotonic())
            log.info("media.stopping", calls=sum(1 for e in self._entries if e.ended_at is None))
            ep.hangupAllCalls()
            until = time.monotonic() + 1.0
            while time.monotonic() < until and any(e.ended_at is None for e in self._entries if e.req):
                ep.libHandleEvents(_POLL_MS)
                self._tick(time.monotonic())
            self._end_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._drop_calls()
            self._retired.clear()  # players and recorders go before the library
            account.shutdown()
            del account
            ep.libDestroy()
            self._mwi.close()
            store.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            log.info("media.stopped")
        return 0
