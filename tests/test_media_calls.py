"""The media server answering real calls: pjsua2 callers in their own processes, real RTP.

One media server process (``python -m media``) serves the module; every caller is
``tests/media_caller.py`` in its own process with its own RTP ports. MWI NOTIFYs go to a UDP
catcher in this process (``sip.listen`` points at it). Nothing is mocked: the assertions read the
WAVs that were recorded on either side, the voicemail table and the NOTIFYs that arrived.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from media import sentences
from media.audio import wav_duration, wav_stats
from media.store import VoicemailStore, migrate, sync_url
from prompts import prompt_path

ROOT = Path(__file__).resolve().parent.parent
CALLER = ROOT / "tests" / "media_caller.py"
MAX_MESSAGE = 6  # media.max_message_seconds for this module's server
QUEUE_WAIT = 4  # media.queue_max_wait
# Ports of our own, away from other processes on a shared machine: each run takes a block by pid.
_BASE = 20000 + (os.getpid() % 400) * 40


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NotifyCatcher:
    """A stand-in for the B2BUA: collects NOTIFYs, answers 200 OK."""

    sock: socket.socket
    received: list[tuple[float, str]] = field(default_factory=list)
    stop: bool = False

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            msg = data.decode()
            self.received.append((time.monotonic(), msg))
            head, _, _ = msg.partition("\r\n\r\n")
            lines = head.split("\r\n")
            keep = [
                h for h in lines[1:] if h.split(":", 1)[0].lower() in ("via", "from", "to", "call-id", "cseq")
            ]
            self.sock.sendto(
                ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n").encode(), addr
            )

    def wait_for(self, user: str, since: float, deadline: float) -> list[tuple[float, str]]:
        while time.monotonic() < deadline:
            got = [(t, m) for t, m in self.received if t >= since and f"sip:{user}@demo.test" in m]
            if got:
                return got
            time.sleep(0.05)
        return []


@dataclass
class Media:
    data_dir: Path
    port: int
    log_path: Path
    catcher: NotifyCatcher
    store: VoicemailStore
    speech: Path  # 5.0 s of espeak speech, 8 kHz mono
    speech9: Path  # 9.0 s
    _rtp: int = _BASE + 1000

    @property
    def var(self) -> Path:
        return self.data_dir / "var"

    def uri(self, service: str, user: str | None = None, cause: str | None = None) -> str:
        uri = f"sip:{service}@127.0.0.1:{self.port}"
        if user:
            uri += f";target=sip%3A{user}%40demo.test"
        if cause:
            uri += f";cause={cause}"
        return uri

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    out.append(event)
        return out

    def caller_cmd(self, uri: str, *args: str) -> list[str]:
        self._rtp += 60
        return [sys.executable, str(CALLER), "--uri", uri, "--rtp-port", str(self._rtp), *args]

    def call(self, uri: str, *args: str, timeout: float = 40) -> dict[str, Any]:
        return self.finish(self.start_call(uri, *args), timeout)

    def start_call(self, uri: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.caller_cmd(uri, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def finish(self, proc: subprocess.Popen[str], timeout: float = 40) -> dict[str, Any]:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-2000:]
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result

    def box(self, user: str) -> list[Path]:
        d = self.var / "voicemail" / user
        return sorted(p for p in d.glob("*.wav") if p.name not in ("greeting.wav", "name.wav"))


def _speech(out: Path, seconds: float, words: str) -> Path:
    """espeak-ng speech cut to exactly ``seconds`` (the words must take longer than that)."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(raw), words], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out), "trim", "0", str(seconds)],
        check=True,
    )
    assert wav_duration(out) == pytest.approx(seconds, abs=0.01)
    return out


def _add_users(url: str) -> None:
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        for i, name in enumerate(("alice", "bob", "carol"), start=1):
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, extension, fixed, mobile, ha1_md5,"
                    " ha1_sha256, play_activity_message, caller_id_role, activity_kind)"
                    " VALUES (:u, :d, :e, :f, :m, 'x', 'x', 1, 'fixed', 'available')"
                ),
                {"u": name, "d": name.title(), "e": f"100{i}", "f": f"+468100100{i}", "m": f"+467010010{i}"},
            )
    engine.dispose()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Media]:
    data_dir = tmp_path_factory.mktemp("media")
    (data_dir / "var").mkdir()
    url = f"sqlite+aiosqlite:///{data_dir / 'var' / 'vidare.db'}"
    migrate(url)
    _add_users(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    catcher = NotifyCatcher(sock)
    thread = threading.Thread(target=catcher.run, daemon=True)
    thread.start()
    port = _free_udp_port()
    log_path = data_dir / "media.log"
    cmd = [
        sys.executable, "-m", "media", "--data-dir", str(data_dir),
        "--set", f"media.address=127.0.0.1:{port}",
        "--set", f"sip.listen=127.0.0.1:{catcher.port}",
        "--set", f"media.rtp_port_start={_BASE}",
        "--set", f"media.max_message_seconds={MAX_MESSAGE}",
        "--set", f"media.queue_max_wait={QUEUE_WAIT}",
        "--set", "log.format=json", "--set", f"log.level={os.environ.get('MEDIA_LOG_LEVEL', 'info')}",
    ]  # fmt: skip
    with log_path.open("w") as log, (data_dir / "media.err").open("w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=err)
    m = Media(
        data_dir=data_dir,
        port=port,
        log_path=log_path,
        catcher=catcher,
        store=VoicemailStore(url),
        speech=_speech(
            data_dir / "speech5.wav",
            5.0,
            "Hello Bob, this is Carol from sales. Please call me "
            "back about the order for next week. Thank you, goodbye.",
        ),
        speech9=_speech(
            data_dir / "speech9.wav",
            9.0,
            "Hello, this is a long message about the delivery. "
            "The parcels arrive on Monday, the invoices on Tuesday, and the rest on Friday. "
            "Call me when you can.",
        ),
    )
    deadline = time.monotonic() + 15
    while not m.events("media.started"):
        assert proc.poll() is None, (data_dir / "media.err").read_text()[-2000:]
        assert time.monotonic() < deadline, "media server did not start"
        time.sleep(0.05)
    try:
        yield m
    finally:
        proc.terminate()
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        catcher.stop = True
        thread.join(timeout=2)
        sock.close()
        m.store.close()
        stderr = (data_dir / "media.err").read_text()
        assert rc == 0, stderr[-2000:]
        assert "Assertion" not in stderr, stderr[-2000:]


def _seconds(language: str, fragments: list[sentences.Fragment]) -> float:
    return sum(wav_duration(f if isinstance(f, Path) else prompt_path(language, f)) for f in fragments)


def _greeting_seconds(language: str, extension: str, cause: str) -> float:
    return _seconds(language, sentences.greeting_sentence(sentences.name_fragments(extension, None), cause))


def _segment_rms(path: Path, start: float, end: float) -> float:
    import wave
    from array import array

    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        w.setpos(int(start * rate))
        data = w.readframes(int((end - start) * rate))
    samples = array("h", data)
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


# -- voicemail deposit --------------------------------------------------------------------------


def test_five_second_message_is_stored_unheard_and_mwi_says_yes(media: Media) -> None:
    greeting = _greeting_seconds("sv", "1002", "486")
    since = time.monotonic()
    result = media.call(
        media.uri("voicemail", "bob", "486"),
        "--header", "X-Vidare-Extension: 1002",
        "--header", "X-Vidare-Language: sv",
        "--header", "History-Info: <sip:bob@demo.test>;index=1",
        "--play", str(media.speech), "--play-at", f"{greeting + 0.05:.2f}", "--hangup-after-play", "0.05",
    )  # fmt: skip
    ended = time.monotonic()
    assert result["confirmed"] and result["hung_up_by"] == "local"

    files = media.box("bob")
    assert len(files) == 1
    duration, rms = wav_stats(files[0])
    print(f"stored message: {duration:.2f} s, RMS {rms:.0f}")
    assert 4.5 <= duration <= 5.5
    assert rms > 500
    rows = media.store.messages("bob")
    assert [(r.heard, r.cause, r.file_name, r.caller) for r in rows] == [
        (False, "486", files[0].name, "sip:+46701234567@127.0.0.1")
    ]
    assert not list((media.var / "voicemail" / ".incoming").iterdir())

    notifies = media.catcher.wait_for("bob", since, ended + 2.0)
    assert notifies, "no NOTIFY within 2 s of the deposit"
    body = notifies[-1][1]
    assert body.startswith("NOTIFY sip:bob@demo.test SIP/2.0\r\n")
    assert "Event: message-summary" in body
    assert "Content-Type: application/simple-message-summary" in body
    assert "Messages-Waiting: yes" in body
    assert "Message-Account: sip:bob@demo.test" in body
    assert "Voice-Message: 1/0" in body
    deposited = media.events("voicemail.deposited")[-1]
    sent = [e for e in media.events("mwi.sent") if e["user"] == "bob"][-1]
    gap = datetime.fromisoformat(sent["timestamp"]) - datetime.fromisoformat(deposited["timestamp"])
    assert gap < timedelta(seconds=2)


def test_hash_ends_recording_silence_and_short_are_discarded(media: Media) -> None:
    """Three callers at once: '#' ends the recording; silence and < 1 s are discarded."""
    g = _greeting_seconds("en", "2001", "408") + 0.05
    common = ("--header", "X-Vidare-Language: en", "--header", "X-Vidare-Extension: 2001")
    hash_call = media.start_call(
        media.uri("voicemail", "hash", "408"), *common,
        "--play", str(media.speech), "--play-at", f"{g:.2f}", "--dtmf", f"{g + 3.0:.2f}:#", "--timeout", "25",
    )  # fmt: skip
    silent_call = media.start_call(
        media.uri("voicemail", "silent", "408"), *common, "--hangup-at", f"{g + 3:.2f}"
    )
    short_call = media.start_call(
        media.uri("voicemail", "short", "408"), *common, "--hangup-at", f"{g + 0.6:.2f}"
    )
    hashed, silent, short = (media.finish(p) for p in (hash_call, silent_call, short_call))

    assert hashed["hung_up_by"] == "remote"  # "your message has been saved", then the server hangs up
    (hash_file,) = media.box("hash")
    duration, rms = wav_stats(hash_file)
    print(f"'#' after 3 s: {duration:.2f} s, RMS {rms:.0f}")
    assert 2.5 <= duration <= 3.6 and rms > 500

    assert silent["hung_up_by"] == "local" and short["hung_up_by"] == "local"
    assert media.box("silent") == [] and media.box("short") == []
    assert media.store.messages("silent") == [] and media.store.messages("short") == []
    reasons = {e["user"]: e["reason"] for e in media.events("voicemail.discarded")}
    assert reasons["silent"] == "silence" and reasons["short"] == "too_short"

    assert not list((media.var / "voicemail" / ".incoming").iterdir())


def test_maximum_length_cuts_a_long_message(media: Media) -> None:
    g = _greeting_seconds("en", "2001", "408") + 0.05
    long_ = media.call(
        media.uri("voicemail", "long", "408"),
        "--header", "X-Vidare-Language: en", "--header", "X-Vidare-Extension: 2001",
        "--play", str(media.speech9), "--play-at", f"{g:.2f}", "--timeout", "30",
    )  # fmt: skip
    assert long_["hung_up_by"] == "remote"
    (long_file,) = media.box("long")
    duration, rms = wav_stats(long_file)
    print(f"9 s message, limit {MAX_MESSAGE} s: stored {duration:.2f} s, RMS {rms:.0f}")
    assert rms > 500
    assert MAX_MESSAGE - 0.3 <= duration <= MAX_MESSAGE + 0.3
    assert [e["user"] for e in media.events("voicemail.max_length")] == ["long"]
    assert not list((media.var / "voicemail" / ".incoming").iterdir())


# -- announcements --------------------------------------------------------------------------------


def _meeting_until_1430() -> tuple[str, datetime]:
    """A return time of 14:30 later today, in an offset where it is still before 14:00 now."""
    now = datetime.now(UTC)
    for hours in range(-12, 15):
        local = now.astimezone(timezone(timedelta(hours=hours)))
        if local.hour < 14:
            back = local.replace(hour=14, minute=30, second=0, microsecond=0)
            return back.isoformat(timespec="minutes"), back
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("language", "codec"), [("sv", "PCMA"), ("en", "G722")], ids=["swedish-pcma", "english-g722"]
)
def test_announcement_only_plays_the_activity_sentence_and_hangs_up(
    media: Media, language: str, codec: str
) -> None:
    user = f"ann{language}"
    returns, _ = _meeting_until_1430()
    expected = ["n1", "n0", "n0", "n2", "act_meeting", "back_at", "n14", "n30", "cannot_leave_message"]
    heard = media.data_dir / f"announcement-{language}.wav"
    result = media.call(
        media.uri("announcement", user, "302"),
        "--header", "X-Vidare-Activity: meeting",
        "--header", f"X-Vidare-Return: {returns}",
        "--header", "X-Vidare-Extension: 1002",
        "--header", "X-Vidare-Name: Bob Berg",
        "--header", f"X-Vidare-Language: {language}",
        "--record", str(heard), "--timeout", "25", "--codecs", f"{codec},PCMU",
    )  # fmt: skip
    assert result["confirmed"] and result["hung_up_by"] == "remote"
    assert result["codec"] == codec
    played = [e for e in media.events("announcement.playing") if e["user"] == user]
    assert played[-1]["fragments"] == expected
    want = _seconds(language, list(expected))
    duration, rms = wav_stats(heard)
    print(f"{language}: heard {duration:.2f} s, fragments sum {want:.2f} s, RMS {rms:.0f}")
    assert abs(duration - want) <= 0.1 * want
    assert rms > 300
    assert media.box(user) == [] and media.store.messages(user) == []
    assert not any(e["user"] == user for e in media.events("voicemail.recording"))


def test_queue_plays_music_then_goes_to_voicemail(media: Media) -> None:
    position = _seconds("sv", sentences.queue_position_sentence(1))
    greeting = _greeting_seconds("sv", "1003", "486")
    start_speaking = QUEUE_WAIT + greeting + 0.1
    heard = media.data_dir / "queue.wav"
    result = media.call(
        media.uri("queue", "queued"),
        "--header", "X-Vidare-Extension: 1003",
        "--header", "X-Vidare-Language: sv",
        "--record", str(heard),
        "--play", str(media.speech), "--play-at", f"{start_speaking:.2f}", "--hangup-at",
        f"{start_speaking + 3.0:.2f}", "--timeout", "30",
    )  # fmt: skip
    assert result["confirmed"]
    music = _segment_rms(heard, position + 0.3, QUEUE_WAIT - 0.2)
    print(f"queue: position prompt {position:.2f} s, music RMS {music:.0f}")
    assert music > 200
    assert [e["user"] for e in media.events("queue.joined")][-1] == "queued"
    assert [e["user"] for e in media.events("queue.timeout")][-1] == "queued"
    (message,) = media.store.messages("queued")
    assert message.cause == "486" and 2.3 <= message.duration <= 3.5


# -- voicemail access -----------------------------------------------------------------------------


def _leave(media: Media, user: str, when: datetime, source: Path) -> None:
    box = media.var / "voicemail" / user
    box.mkdir(parents=True, exist_ok=True)
    name = f"{when:%Y%m%dT%H%M%SZ}-test.wav"
    shutil.copy(source, box / name)
    media.store.add(
        username=user,
        caller="sip:+4681234567@pstn",
        received_at=when,
        duration=5.0,
        cause="408",
        file_name=name,
    )


def test_voicemail_access_saves_one_deletes_the_other_and_mwi_goes_to_no(media: Media) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _leave(media, "carol", now - timedelta(hours=2), media.speech)
    _leave(media, "carol", now - timedelta(hours=1), media.speech)
    first, second = media.store.messages("carol")
    intro = _seconds("en", sentences.count_sentence(2))
    kept = _seconds("en", ["message_kept"])
    t_save = intro + 1.0  # barge in while the first message plays
    t_delete = t_save + kept + 1.0  # while the second message's date is read
    since = time.monotonic()
    result = media.call(
        media.uri("voicemail-access"),
        "--header", "X-Vidare-User: carol",
        "--header", "X-Vidare-Language: en",
        "--dtmf", f"{t_save:.2f}:9", "--dtmf", f"{t_delete:.2f}:7",
        "--hangup-at", f"{t_delete + 2.5:.2f}", "--timeout", "25",
    )  # fmt: skip
    assert result["confirmed"]
    rows = media.store.messages("carol")
    assert [(r.id, r.heard) for r in rows] == [(first.id, True)]
    assert (media.var / "voicemail" / "carol" / first.file_name).exists()
    assert not (media.var / "voicemail" / "carol" / second.file_name).exists()
    assert [e["message_id"] for e in media.events("voicemail.deleted")] == [second.id]
    notifies = media.catcher.wait_for("carol", since, time.monotonic() + 2)
    bodies = [m for _, m in notifies]
    assert "Voice-Message: 1/1" in bodies[0]  # after 9: one new, one old
    assert "Messages-Waiting: no" in bodies[-1] and "Voice-Message: 0/1" in bodies[-1]


def test_voicemail_access_by_pin_three_wrong_pins_and_greeting(media: Media) -> None:
    """From the voicemail number (no X-Vidare-User): mailbox + PIN. alice has no PIN set, so the
    demo default applies (the last four digits of her extension, 1001). One caller fails three
    times and is hung up; another logs in and records a greeting with 0 ... #."""
    wrong = media.start_call(
        media.uri("voicemail-access"), "--header", "X-Vidare-Language: en",
        "--dtmf", "0.8:1001#", "--dtmf", "3.0:0000#", "--dtmf", "5.2:1234#", "--dtmf", "7.4:9999#",
        "--timeout", "25",
    )  # fmt: skip
    record_at = 5.5 + _seconds("en", ["record_greeting", "tone"])
    right = media.start_call(
        media.uri("voicemail-access"), "--header", "X-Vidare-Language: en",
        "--dtmf", "0.8:1001#", "--dtmf", "3.0:1001#", "--dtmf", "5.5:0",
        "--play", str(media.speech), "--play-at", f"{record_at + 0.1:.2f}",
        "--dtmf", f"{record_at + 2.6:.2f}:#", "--hangup-at", f"{record_at + 4.5:.2f}", "--timeout", "30",
    )  # fmt: skip
    denied, granted = media.finish(wrong), media.finish(right)
    assert denied["hung_up_by"] == "remote"
    assert granted["hung_up_by"] == "local"
    wrongs = media.events("voicemail.pin_wrong")
    assert [e["attempt"] for e in wrongs] == [1, 2, 3]
    assert all(e["mailbox"] == "1001" and e["known"] for e in wrongs)
    (locked,) = media.events("voicemail.access_denied")
    assert locked["attempts"] == 3 and locked["level"] == "warning"
    assert [(e["user"], e["how"]) for e in media.events("voicemail.access_granted")][-1] == ("alice", "pin")
    greeting = media.var / "voicemail" / "alice" / "greeting.wav"
    duration, rms = wav_stats(greeting)
    print(f"greeting: {duration:.2f} s, RMS {rms:.0f}")
    assert 2.0 <= duration <= 3.2 and rms > 500
    assert [e["user"] for e in media.events("voicemail.greeting_saved")] == ["alice"]


def test_unknown_service_is_refused_with_404(media: Media) -> None:
    result = media.call(f"sip:nobody@127.0.0.1:{media.port}", "--timeout", "5")
    assert not result["confirmed"] and result["status"] == 404
