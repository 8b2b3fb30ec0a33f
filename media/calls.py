"""One class per service: announcement, voicemail deposit, voicemail access (IVR), personal queue.

Each is a small state machine driven by the server's pjsua2 callbacks (``start`` when media is up,
``dtmf``, ``ended``) and by ``tick(now)`` from its polling loop; ``now`` is ``time.monotonic()``.
They never touch pjsua2: they act through a ``MediaPort`` (play, record, hang up) that the server
implements per call, so their logic stays plain Python.
"""

from __future__ import annotations

import secrets
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog

from media import sentences
from media.audio import SILENCE_RMS, wav_stats
from media.mwi import MessageSummary, MwiSender
from media.request import CallRequest
from media.sentences import Fragment
from media.store import Message, UserInfo, VoicemailStore, verify_pin
from prompts import prompt_path

__all__ = [
    "Announcement",
    "Env",
    "MediaPort",
    "QueueBook",
    "QueueCall",
    "Service",
    "VoicemailAccess",
    "VoicemailDeposit",
    "make_service",
]

MIN_MESSAGE_SECONDS = 1.0
MAX_GREETING_SECONDS = 60.0
MAX_PIN_FAILURES = 3
INPUT_TIMEOUT = 10.0
QUEUE_ANNOUNCE_INTERVAL = 30.0


class MediaPort(Protocol):
    """What a service may do to its call (implemented by the server with pjsua2)."""

    def play(self, files: Sequence[Path], *, loop: bool = False) -> float:
        """Replace what the caller hears; returns the duration of one pass in seconds."""

    def stop_playing(self) -> None: ...

    def record(self, path: Path) -> None:
        """Record what the caller says into ``path`` (a WAV) until ``stop_recording``."""

    def stop_recording(self) -> None:
        """Stop and close the file (its header complete) before returning."""

    def hangup(self) -> None: ...


class QueueBook:
    """The personal queues of this media server: per target user, callers in arrival order."""

    def __init__(self) -> None:
        self._queues: dict[str, list[object]] = {}

    def join(self, user: str, member: object) -> int:
        self._queues.setdefault(user, []).append(member)
        return len(self._queues[user])

    def position(self, user: str, member: object) -> int:
        queue = self._queues.get(user, [])
        return queue.index(member) + 1 if member in queue else 0

    def leave(self, user: str, member: object) -> None:
        queue = self._queues.get(user, [])
        if member in queue:
            queue.remove(member)
        if not queue:
            self._queues.pop(user, None)


@dataclass
class Env:
    """What services share: directories, the store, the MWI sender and the configuration."""

    var_dir: Path
    store: VoicemailStore
    mwi: MwiSender | None
    domain: str
    max_message_seconds: float = 180.0
    queue_max_wait: float = 120.0
    timezone: str = "Europe/Stockholm"
    queue: QueueBook = field(default_factory=QueueBook)
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def voicemail_root(self) -> Path:
        return self.var_dir / "voicemail"

    @property
    def incoming_dir(self) -> Path:
        """Recordings in progress; emptied at start, so a crash never leaves a counted half file."""
        return self.voicemail_root / ".incoming"

    def box(self, username: str) -> Path:
        return self.voicemail_root / username

    def recorded_name(self, username: str | None) -> Path | None:
        if not username:
            return None
        path = self.box(username) / "name.wav"
        return path if path.is_file() else None

    def greeting(self, username: str | None) -> Path | None:
        if not username:
            return None
        path = self.box(username) / "greeting.wav"
        return path if path.is_file() else None

    def notify(self, username: str) -> None:
        if self.mwi is None:
            return
        new, old = self.store.counts(username)
        self.mwi.send(MessageSummary(username=username, domain=self.domain, new=new, old=old))

    def new_recording_path(self) -> Path:
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        return self.incoming_dir / f"{secrets.token_hex(8)}.wav"


def _resolve(language: str, fragments: Sequence[Fragment]) -> list[Path]:
    return [f if isinstance(f, Path) else prompt_path(language, f) for f in fragments]


class Service:
    """Base: a timeline of plays and waits, each followed by a continuation."""

    kind = "service"

    def __init__(self, req: CallRequest, port: MediaPort, env: Env) -> None:
        self.req = req
        self.port = port
        self.env = env
        self.language = sentences.normalise_language(req.language)
        self.log: Any = structlog.get_logger("media.call").bind(
            call_id=req.call_id, service=req.service, user=req.username
        )
        self._deadline: float | None = None
        self._then: Callable[[float], None] | None = None
        self.hung_up = False
        self.done = False

    # -- events from the server -----------------------------------------------------------------

    def start(self, now: float) -> None:
        raise NotImplementedError

    def dtmf(self, digit: str, now: float) -> None:
        self.log.debug("media.call.dtmf", digit=digit)

    def tick(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline and self._then is not None:
            then, self._deadline, self._then = self._then, None, None
            then(now)

    def ended(self, now: float) -> None:
        """The call is gone (either side hung up): finish whatever is in progress."""
        self.done = True
        self._deadline, self._then = None, None

    # -- helpers --------------------------------------------------------------------------------

    def play(self, fragments: Sequence[Fragment], now: float, then: Callable[[float], None]) -> float:
        duration = self.port.play(_resolve(self.language, fragments))
        self.at(now + duration, then)
        return duration

    def at(self, when: float, then: Callable[[float], None]) -> None:
        self._deadline, self._then = when, then

    def hangup(self, now: float) -> None:
        if not self.hung_up and not self.done:
            self.hung_up = True
            self.log.info("media.call.hangup")
            self.port.stop_playing()
            self.port.hangup()

    def name(self) -> list[Fragment]:
        return sentences.name_fragments(self.req.extension, self.env.recorded_name(self.req.username))

    def activity(self) -> list[Fragment]:
        return sentences.activity_sentence(
            self.language,
            self.name(),
            self.req.activity,
            sentences.parse_return(self.req.returns),
            self.env.wall_clock(),
        )


class Announcement(Service):
    """``announcement``: why the user is unavailable and when back, "you cannot leave a message",
    hang up. No recording is ever made."""

    kind = "announcement"

    def start(self, now: float) -> None:
        fragments = [*self.activity(), "cannot_leave_message"]
        duration = self.play(fragments, now, self.hangup)
        self.log.info(
            "announcement.playing", fragments=[str(f) for f in fragments], seconds=round(duration, 2)
        )


class VoicemailDeposit(Service):
    """``voicemail`` / ``announcement_voicemail``: intro, tone, record until hang-up, ``#`` or the
    maximum length. The file is recorded under ``.incoming/`` and renamed into the user's box only
    when complete; silence-only or shorter than 1 s is discarded."""

    kind = "voicemail"

    def __init__(self, req: CallRequest, port: MediaPort, env: Env, *, cause: str | None = None) -> None:
        super().__init__(req, port, env)
        self.cause = cause or req.cause
        self._recording: Path | None = None
        self._received_at: datetime | None = None
        self.kept: Message | None = None

    def intro(self) -> list[Fragment]:
        if self.req.service == "announcement_voicemail":
            return [*self.activity(), "leave_message", "tone"]
        parts: list[Fragment] = []
        if self.req.play_activity and self.req.activity:
            parts += self.activity()
        greeting = self.env.greeting(self.req.username)
        if greeting is not None:
            parts += [greeting, "tone"]
        else:
            parts += sentences.greeting_sentence(self.name(), self.cause)
        return parts

    def start(self, now: float) -> None:
        if not self.req.username:
            self.log.warning("voicemail.no_target")
            self.play(["goodbye"], now, self.hangup)
            return
        self.play(self.intro(), now, self._start_recording)

    def _start_recording(self, now: float) -> None:
        self._recording = self.env.new_recording_path()
        self._received_at = self.env.wall_clock()
        self.port.stop_playing()
        self.port.record(self._recording)
        self.log.info("voicemail.recording", max_seconds=self.env.max_message_seconds)
        self.at(now + self.env.max_message_seconds, self._limit_reached)

    def _limit_reached(self, now: float) -> None:
        self.log.info("voicemail.max_length", seconds=self.env.max_message_seconds)
        self._close_and_say(now)

    def dtmf(self, digit: str, now: float) -> None:
        super().dtmf(digit, now)
        if digit == "#" and self._recording is not None:
            self._close_and_say(now)

    def _close_and_say(self, now: float) -> None:
        kept = self._finish()
        self.play(["message_saved"] if kept else ["goodbye"], now, self.hangup)

    def ended(self, now: float) -> None:
        if self._recording is not None:
            self._finish()
        super().ended(now)

    def _finish(self) -> bool:
        """Close the recording; keep it (rename, row, MWI) or discard it. True when kept."""
        path, self._recording = self._recording, None
        if path is None:
            return False
        self.port.stop_recording()
        username = self.req.username
        assert username is not None and self._received_at is not None
        try:
            duration, rms = wav_stats(path)
        except (OSError, EOFError, ValueError, wave.Error) as e:
            self.log.warning("voicemail.discarded", reason="unreadable", error=str(e))
            path.unlink(missing_ok=True)
            return False
        if duration < MIN_MESSAGE_SECONDS or rms < SILENCE_RMS:
            reason = "too_short" if duration < MIN_MESSAGE_SECONDS else "silence"
            self.log.info("voicemail.discarded", reason=reason, seconds=round(duration, 2), rms=round(rms, 1))
            path.unlink(missing_ok=True)
            return False
        box = self.env.box(username)
        box.mkdir(parents=True, exist_ok=True)
        stamp = self._received_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        final = box / f"{stamp}-{path.stem}.wav"
        path.rename(final)  # same file system: atomic; only now is it a message
        self.kept = self.env.store.add(
            username=username,
            caller=self.req.caller,
            received_at=self._received_at,
            duration=duration,
            cause=self.cause,
            file_name=final.name,
        )
        self.log.info(
            "voicemail.deposited",
            message_id=self.kept.id,
            file=final.name,
            seconds=round(duration, 2),
            rms=round(rms, 1),
            caller=self.req.caller,
            cause=self.cause,
        )
        self.env.notify(username)
        return True


class QueueCall(Service):
    """``queue``: the caller's place, then hold music; the place again every 30 s; after the
    maximum wait the caller goes to voicemail (cause 486). Handing the caller to the user when the
    user's call ends is the B2BUA's (it re-INVITEs / REFERs the caller away; we just see BYE)."""

    kind = "queue"

    def __init__(self, req: CallRequest, port: MediaPort, env: Env) -> None:
        super().__init__(req, port, env)
        self._key = req.username or req.target or "?"
        self._entered = 0.0
        self._next_announce = 0.0
        self._voicemail: VoicemailDeposit | None = None

    def start(self, now: float) -> None:
        self._entered = now
        position = self.env.queue.join(self._key, self)
        self.log.info("queue.joined", position=position, max_wait=self.env.queue_max_wait)
        self._announce(now)

    def _announce(self, now: float) -> None:
        position = self.env.queue.position(self._key, self)
        self._next_announce = now + QUEUE_ANNOUNCE_INTERVAL
        self.log.info("queue.position", position=position)
        self.play(sentences.queue_position_sentence(position), now, self._music)

    def _music(self, now: float) -> None:
        self.port.play([prompt_path(self.language, "music")], loop=True)
        self.at(min(self._next_announce, self._entered + self.env.queue_max_wait), self._wake)

    def _wake(self, now: float) -> None:
        if now >= self._entered + self.env.queue_max_wait:
            self.env.queue.leave(self._key, self)
            self.log.info("queue.timeout", waited=round(now - self._entered, 1))
            self.port.stop_playing()
            self._voicemail = VoicemailDeposit(self.req, self.port, self.env, cause=self.req.cause or "486")
            self._voicemail.start(now)
        else:
            self._announce(now)

    def tick(self, now: float) -> None:
        if self._voicemail is not None:
            self._voicemail.tick(now)
        else:
            super().tick(now)

    def dtmf(self, digit: str, now: float) -> None:
        if self._voicemail is not None:
            self._voicemail.dtmf(digit, now)

    def ended(self, now: float) -> None:
        self.env.queue.leave(self._key, self)
        if self._voicemail is not None:
            self._voicemail.ended(now)
        else:
            self.log.info("queue.left", waited=round(now - self._entered, 1))
        super().ended(now)


class VoicemailAccess(Service):
    """``voicemail-access``: log in (trusted ``X-Vidare-User`` or mailbox number + PIN), "you have
    N new messages", then each message with its date and time; 1 replay, 7 delete, 9 save,
    # next, 0 record a personal greeting. Digits barge in: a key stops the prompt playing."""

    kind = "voicemail-access"

    def __init__(self, req: CallRequest, port: MediaPort, env: Env, *, trusted: bool) -> None:
        super().__init__(req, port, env)
        self.trusted = trusted
        self.user: UserInfo | None = None
        self.messages: list[Message] = []
        self.index = 0
        self.failures = 0
        self._mode = "idle"  # collect | message | menu | end | greeting | bye
        self._digits = ""
        self._collect_then: Callable[[str, float], None] | None = None
        self._candidate: UserInfo | None = None
        self._greeting_tmp: Path | None = None
        self._mailbox_digits = ""

    # -- login ------------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        if self.trusted and self.req.vidare_user:
            user = self.env.store.user(self.req.vidare_user)
            if user is not None:
                self.log.info("voicemail.access_granted", user=user.username, how="authenticated")
                self._login(user, now)
                return
            self.log.warning("voicemail.access_unknown_user", vidare_user=self.req.vidare_user)
        self._ask_mailbox(now)

    def _collect(self, fragments: Sequence[Fragment], now: float, then: Callable[[str, float], None]) -> None:
        self._mode, self._digits, self._collect_then = "collect", "", then
        self.play(fragments, now, self._collect_wait)

    def _collect_wait(self, now: float) -> None:
        self.at(now + INPUT_TIMEOUT, self._collect_done)

    def _collect_done(self, now: float) -> None:
        then, digits = self._collect_then, self._digits
        self._collect_then, self._digits, self._mode = None, "", "idle"
        if then is not None:
            then(digits, now)

    def _ask_mailbox(self, now: float) -> None:
        self._collect(["enter_mailbox"], now, self._got_mailbox)

    def _got_mailbox(self, digits: str, now: float) -> None:
        self._candidate = self.env.store.user_by_number(digits) if digits else None
        self._mailbox_digits = digits
        self._collect(["enter_pin"], now, self._got_pin)

    def _got_pin(self, digits: str, now: float) -> None:
        user = self._candidate
        if user is not None and verify_pin(user, digits):
            self.log.info("voicemail.access_granted", user=user.username, how="pin")
            self._login(user, now)
            return
        self.failures += 1
        self.log.warning(
            "voicemail.pin_wrong",
            mailbox=self._mailbox_digits,
            known=user is not None,
            attempt=self.failures,
        )
        if self.failures >= MAX_PIN_FAILURES:
            self.log.warning("voicemail.access_denied", mailbox=self._mailbox_digits, attempts=self.failures)
            self._mode = "bye"
            self.play(["wrong_pin", "goodbye"], now, self.hangup)
        else:
            self._collect(["wrong_pin", "enter_pin"], now, self._got_pin)

    def _login(self, user: UserInfo, now: float) -> None:
        self.user = user
        if self.req.language is None and user.language:
            self.language = sentences.normalise_language(user.language)
        self.log = self.log.bind(user=user.username)
        self.messages = self.env.store.messages(user.username)
        new = sum(1 for m in self.messages if not m.heard)
        self.index = 0
        self._mode = "intro"
        intro = sentences.count_sentence(new) if new else ["you_have", "n0", "new_messages"]
        self.play(intro, now, self._present)

    # -- messages ---------------------------------------------------------------------------------

    def _local(self, when: datetime) -> datetime:
        try:
            return when.astimezone(ZoneInfo(self.env.timezone))
        except (KeyError, ValueError):
            return when

    def _present(self, now: float) -> None:
        assert self.user is not None
        if self.index >= len(self.messages):
            self._mode = "end"
            self.play(["no_messages"], now, lambda t: self.at(t + INPUT_TIMEOUT / 2, self._bye))
            return
        msg = self.messages[self.index]
        path = self.env.box(self.user.username) / msg.file_name
        fragments = [
            *sentences.received_sentence(
                self.language, self._local(msg.received_at), self._local(self.env.wall_clock())
            ),
            path,
        ]
        self._mode = "message"
        self.log.info("voicemail.playing", message_id=msg.id)
        self.play(fragments, now, self._after_message)

    def _after_message(self, now: float) -> None:
        self._heard()
        self._mode = "menu"
        self.play(["menu"], now, lambda t: self.at(t + INPUT_TIMEOUT, self._bye))

    def _heard(self) -> None:
        assert self.user is not None
        if self.index < len(self.messages) and self.env.store.mark_heard(self.messages[self.index].id):
            self.log.info("voicemail.heard", message_id=self.messages[self.index].id)
            self.env.notify(self.user.username)

    def _delete(self, now: float) -> None:
        assert self.user is not None
        msg = self.messages.pop(self.index)
        (self.env.box(self.user.username) / msg.file_name).unlink(missing_ok=True)
        self.env.store.delete(msg.id)
        self.log.info("voicemail.deleted", message_id=msg.id, file=msg.file_name)
        self.env.notify(self.user.username)
        self.play(["message_deleted"], now, self._present)

    def _bye(self, now: float) -> None:
        self._mode = "bye"
        self.play(["goodbye"], now, self.hangup)

    # -- greeting ---------------------------------------------------------------------------------

    def _record_greeting(self, now: float) -> None:
        self._mode = "greeting_prompt"
        self.play(["record_greeting", "tone"], now, self._greeting_start)

    def _greeting_start(self, now: float) -> None:
        self._mode = "greeting"
        self._greeting_tmp = self.env.new_recording_path()
        self.port.stop_playing()
        self.port.record(self._greeting_tmp)
        self.at(now + MAX_GREETING_SECONDS, self._greeting_stop)

    def _greeting_stop(self, now: float) -> None:
        saved = self._greeting_close()
        self.play(["greeting_saved"] if saved else ["goodbye"], now, self._present)

    def _greeting_close(self) -> bool:
        path, self._greeting_tmp = self._greeting_tmp, None
        if path is None or self.user is None:
            return False
        self.port.stop_recording()
        try:
            duration, rms = wav_stats(path)
        except (OSError, EOFError, ValueError, wave.Error):
            duration, rms = 0.0, 0.0
        if duration < MIN_MESSAGE_SECONDS or rms < SILENCE_RMS:
            self.log.info("voicemail.greeting_discarded", seconds=round(duration, 2), rms=round(rms, 1))
            path.unlink(missing_ok=True)
            return False
        box = self.env.box(self.user.username)
        box.mkdir(parents=True, exist_ok=True)
        path.replace(box / "greeting.wav")
        self.log.info("voicemail.greeting_saved", seconds=round(duration, 2))
        return True

    # -- keys -------------------------------------------------------------------------------------

    def dtmf(self, digit: str, now: float) -> None:
        super().dtmf(digit, now)
        mode = self._mode
        if mode == "collect":
            self.port.stop_playing()  # barge-in
            if digit == "#":
                self._collect_done(now)
            else:
                self._digits += digit
                self.at(now + INPUT_TIMEOUT, self._collect_done)
        elif mode == "greeting":
            if digit == "#":
                self._greeting_stop(now)
        elif mode in ("intro", "message", "menu", "end"):
            self._menu_key(digit, mode, now)

    def _menu_key(self, digit: str, mode: str, now: float) -> None:
        if digit == "0":
            self._record_greeting(now)
        elif mode == "end" or mode == "intro":
            if mode == "intro" and digit == "#":
                self._present(now)
            return
        elif digit == "1":
            self._present(now)
        elif digit == "7":
            self._delete(now)
        elif digit == "9":
            self._heard()
            self.index += 1
            self.play(["message_kept"], now, self._present)
        elif digit == "#":
            self._heard()
            self.index += 1
            self._present(now)

    def ended(self, now: float) -> None:
        if self._greeting_tmp is not None:
            self._greeting_close()
        super().ended(now)


def make_service(req: CallRequest, port: MediaPort, env: Env, *, trusted_source: bool) -> Service:
    if req.service == "announcement":
        return Announcement(req, port, env)
    if req.service == "queue":
        return QueueCall(req, port, env)
    if req.service == "voicemail-access":
        return VoicemailAccess(req, port, env, trusted=trusted_source)
    return VoicemailDeposit(req, port, env)
