"""media: the pure parts (INVITE parsing, the MWI NOTIFY, WAV helpers) and the voicemail store."""

from __future__ import annotations

import ast
import socket
import wave
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from media.audio import concat_wavs, wav_stats
from media.mwi import MessageSummary, MwiSender, build_body, build_notify
from media.request import CallRequest, parse_invite
from media.store import UserInfo, VoicemailStore, default_pin, migrate, sync_url, verify_pin
from prompts import prompt_path

ROOT = Path(__file__).resolve().parent.parent


def _invite(ruri: str, *headers: str) -> str:
    lines = [
        f"INVITE {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
        'f: "Carol" <sip:+46701234567@127.0.0.1>;tag=1',
        f"To: <{ruri}>",
        "Call-ID: abc@host",
        "CSeq: 1 INVITE",
        *headers,
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines)


INVITE_CASES = [
    ("voicemail-busy",
     _invite("sip:voicemail@127.0.0.1:5090;target=sip%3Abob%40demo.test;cause=486",
             "X-Vidare-Extension: 1002", "X-Vidare-Language: en", "X-Vidare-Play-Activity: yes",
             "X-Vidare-Activity: Meeting", "X-Vidare-Return: 2026-11-26T14:30+01:00",
             "X-Vidare-Name: Bob Berg"),
     CallRequest(service="voicemail", target="sip:bob@demo.test", username="bob", domain="demo.test",
                 cause="486", caller="sip:+46701234567@127.0.0.1", call_id="abc@host", activity="meeting",
                 returns="2026-11-26T14:30+01:00", name="Bob Berg", extension="1002", language="en",
                 play_activity=True)),
    ("unescaped-target",  # pjsip normalises %3A to ':' inside a URI parameter
     _invite("sip:announcement@127.0.0.1:5090;target=sip:bob%40demo.test;cause=302"),
     CallRequest(service="announcement", target="sip:bob@demo.test", username="bob", domain="demo.test",
                 cause="302", caller="sip:+46701234567@127.0.0.1", call_id="abc@host")),
    ("history-info-fallback",
     _invite("sip:queue@127.0.0.1:5090",
             "History-Info: <sip:carol@demo.test>;index=1,<sip:queue@127.0.0.1:5090;cause=486>;index=1.1"),
     CallRequest(service="queue", target="sip:carol@demo.test", username="carol", domain="demo.test",
                 cause=None, caller="sip:+46701234567@127.0.0.1", call_id="abc@host")),
    ("access-authenticated",
     _invite("sip:voicemail-access@127.0.0.1:5090", "X-Vidare-User: alice"),
     CallRequest(service="voicemail-access", target=None, username=None, domain=None, cause=None,
                 caller="sip:+46701234567@127.0.0.1", call_id="abc@host", vidare_user="alice")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in INVITE_CASES], ids=[c[0] for c in INVITE_CASES]
)
def test_parse_invite(text: str, expected: CallRequest) -> None:
    assert parse_invite(text) == expected


@pytest.mark.parametrize(
    "ruri",
    ["sip:bob@127.0.0.1:5090", "sip:127.0.0.1:5090", "tel:+4681001002"],
    ids=["user", "no-user", "tel"],
)
def test_parse_invite_refuses_unknown_services(ruri: str) -> None:
    assert parse_invite(_invite(ruri)) is None


def test_mwi_notify_is_rfc3842() -> None:
    summary = MessageSummary(username="bob", domain="demo.test", new=1, old=2)
    assert build_body(summary) == (
        "Messages-Waiting: yes\r\nMessage-Account: sip:bob@demo.test\r\nVoice-Message: 1/2\r\n"
    )
    assert "Messages-Waiting: no" in build_body(MessageSummary("bob", "demo.test", 0, 3))
    data = build_notify(
        summary,
        local=("127.0.0.1", 5090),
        remote=("127.0.0.1", 5060),
        branch="z9hG4bKx",
        call_id="c",
        tag="t",
    )
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "NOTIFY sip:bob@demo.test SIP/2.0"
    assert "Event: message-summary" in lines
    assert "Content-Type: application/simple-message-summary" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert body == build_body(summary).encode()


def test_mwi_sender_retransmits_until_answered() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b2bua:
        b2bua.bind(("127.0.0.1", 0))
        b2bua.settimeout(2)
        sender = MwiSender(remote=b2bua.getsockname(), t1=0.05)
        try:
            sender.send(MessageSummary("bob", "demo.test", 1, 0))
            first, _ = b2bua.recvfrom(65535)
            sender.tick(now=10**9)  # T1 passed: retransmit
            again, addr = b2bua.recvfrom(65535)
            assert again == first
            via = next(x for x in first.decode().split("\r\n") if x.startswith("Via:"))
            b2bua.sendto(f"SIP/2.0 200 OK\r\n{via}\r\nContent-Length: 0\r\n\r\n".encode(), addr)
            import time

            time.sleep(0.05)
            sender.tick(now=2 * 10**9)
            b2bua.settimeout(0.2)
            with pytest.raises(TimeoutError):
                b2bua.recvfrom(65535)
        finally:
            sender.close()


def _tone(path: Path, seconds: float, amplitude: int) -> Path:
    import math
    from array import array

    samples = array(
        "h", (int(amplitude * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(8000 * seconds)))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return path


def test_concat_and_stats(tmp_path: Path) -> None:
    a, b = _tone(tmp_path / "a.wav", 0.5, 1000), _tone(tmp_path / "b.wav", 0.25, 0)
    out = tmp_path / "out.wav"
    assert concat_wavs([a, b, prompt_path("en", "n1")], out) == pytest.approx(0.75 + 0.0 + _len("en", "n1"))
    duration, rms = wav_stats(a)
    assert duration == pytest.approx(0.5) and rms == pytest.approx(1000 / 2**0.5, rel=0.01)
    assert wav_stats(b)[1] == 0.0


def _len(language: str, fragment: str) -> float:
    return wav_stats(prompt_path(language, fragment))[0]


def test_store_round_trip_and_counts(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    migrate(url)
    store = VoicemailStore(url)
    try:
        t0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
        a = store.add(
            username="bob", caller="sip:x@y", received_at=t0, duration=5.0, cause="486", file_name="a.wav"
        )
        b = store.add(username="bob", caller="sip:x@y", received_at=t0 + timedelta(minutes=5), duration=3.0,
                      cause="408", file_name="b.wav")  # fmt: skip
        store.add(
            username="carol", caller="sip:x@y", received_at=t0, duration=2.0, cause=None, file_name="c.wav"
        )
        assert store.counts("bob") == (2, 0)
        assert store.mark_heard(a.id) and not store.mark_heard(a.id)
        assert store.counts("bob") == (1, 1)
        assert [m.id for m in store.messages("bob")] == [b.id, a.id]  # unheard first
        assert store.messages("bob")[1].received_at == t0
        assert store.delete(b.id) and not store.delete(b.id)
        assert store.counts("bob") == (0, 1) and store.counts("carol") == (1, 0)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("pin_hash", "pin", "ok"),
    [(None, "1002", True), (None, "0000", False), (None, "", False), ("plain", "plain", False)],
    ids=["default-ok", "default-wrong", "empty", "unknown-scheme"],
)
def test_verify_pin(pin_hash: str | None, pin: str, ok: bool) -> None:
    user = UserInfo("bob", "Bob Berg", "1002", "+4681001002", pin_hash, None)
    assert verify_pin(user, pin) is ok


def test_verify_pin_argon2() -> None:
    argon2 = pytest.importorskip("argon2")
    user = UserInfo("bob", "Bob Berg", "1002", None, argon2.PasswordHasher().hash("4711"), None)
    assert verify_pin(user, "4711") and not verify_pin(user, "1002")


def test_default_pin_and_sync_url() -> None:
    assert default_pin("1002") == "1002" and default_pin("201002") == "1002"
    assert sync_url("sqlite+aiosqlite:///var/vidare.db") == "sqlite:///var/vidare.db"


@pytest.mark.parametrize("package", ["sipcore", "policy"])
def test_no_pjsua2_outside_media(package: str) -> None:
    """STYLE 19: only media/ (and the test caller) may import pjsua2."""
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "pjsua2" for n in names), f"{path} imports pjsua2"


class FakePort:
    """Records what a service asked for; ``play`` returns the real duration of the files."""

    def __init__(self) -> None:
        self.played: list[list[str]] = []
        self.looping = False
        self.recording: Path | None = None
        self.hung_up = False

    def play(self, files: Sequence[Path], *, loop: bool = False) -> float:
        self.played.append([f.stem for f in files])
        self.looping = loop
        return 0.0 if loop else sum(wav_stats(f)[0] for f in files)

    def stop_playing(self) -> None:
        self.looping = False

    def record(self, path: Path) -> None:
        self.recording = path

    def stop_recording(self) -> None:
        self.recording = None

    def hangup(self) -> None:
        self.hung_up = True


def test_queue_positions_every_30_s_then_voicemail_at_max_wait(tmp_path: Path) -> None:
    from media.calls import Env, QueueCall

    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    migrate(url)
    env = Env(var_dir=tmp_path, store=VoicemailStore(url), mwi=None, domain="demo.test", queue_max_wait=70)
    req = parse_invite(
        _invite("sip:queue@127.0.0.1:5090;target=sip%3Abob%40demo.test", "X-Vidare-Extension: 1002")
    )
    assert req is not None
    first_port, second_port = FakePort(), FakePort()
    first, second = QueueCall(req, first_port, env), QueueCall(req, second_port, env)
    first.start(0.0)
    second.start(0.0)
    assert first_port.played[-1] == ["queue_position", "n1", "in_queue"]
    assert second_port.played[-1] == ["queue_position", "n2", "in_queue"]
    for t in range(0, 29):
        first.tick(float(t))
        second.tick(float(t))
    assert first_port.played[-1] == ["music"] and first_port.looping
    first.ended(29.0)  # the first caller leaves (handed over to bob, or hung up)
    second.tick(30.0)
    assert second_port.played[-1] == ["queue_position", "n1", "in_queue"]
    for t in range(31, 70):
        second.tick(float(t))
    assert second_port.played[-1] == ["music"] and second_port.recording is None
    second.tick(70.0)
    assert second_port.played[-1] == ["n1", "n0", "n0", "n2", "busy", "leave_message", "tone"]
    second.tick(80.0)
    assert second_port.recording is not None  # voicemail deposit, cause 486
    env.store.close()


def test_voicemail_access_menu_keys(tmp_path: Path) -> None:
    """1 replays, # moves on (heard), 7 deletes file and row, 0 records a greeting, 9 saves."""
    from media.calls import Env, VoicemailAccess

    url = f"sqlite+aiosqlite:///{tmp_path / 'v.db'}"
    migrate(url)
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, display_name, extension, ha1_md5, ha1_sha256,"
                " play_activity_message, caller_id_role, activity_kind)"
                " VALUES ('bob', 'Bob Berg', '1002', 'x', 'x', 1, 'fixed', 'available')"
            )
        )
    engine.dispose()
    env = Env(var_dir=tmp_path, store=VoicemailStore(url), mwi=None, domain="demo.test")
    box = env.box("bob")
    box.mkdir(parents=True)
    t0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    ids = []
    for i in range(3):
        _tone(box / f"m{i}.wav", 1.5, 3000)
        ids.append(
            env.store.add(
                username="bob",
                caller="sip:x@y",
                received_at=t0 + timedelta(minutes=i),
                duration=1.5,
                cause="408",
                file_name=f"m{i}.wav",
            ).id
        )
    req = parse_invite(
        _invite("sip:voicemail-access@127.0.0.1:5090", "X-Vidare-User: bob", "X-Vidare-Language: en")
    )
    assert req is not None
    port = FakePort()
    ivr = VoicemailAccess(req, port, env, trusted=True)
    ivr.start(0.0)
    assert port.played[-1] == ["you_have", "n3", "new_messages"]
    ivr.tick(100.0)
    assert port.played[-1][-1] == "m0" and port.played[-1][0] == "message_received"
    ivr.dtmf("1", 101.0)  # replay
    assert port.played[-1][-1] == "m0"
    ivr.dtmf("#", 102.0)  # next: m0 heard
    assert port.played[-1][-1] == "m1"
    assert env.store.counts("bob") == (2, 1)
    ivr.dtmf("7", 103.0)  # delete m1
    assert port.played[-1] == ["message_deleted"]
    assert not (box / "m1.wav").exists() and ids[1] not in [m.id for m in env.store.messages("bob")]
    ivr.tick(200.0)
    assert port.played[-1][-1] == "m2"
    ivr.dtmf("0", 201.0)  # record a greeting
    assert port.played[-1] == ["record_greeting", "tone"]
    ivr.tick(300.0)
    assert port.recording is not None
    _tone(port.recording, 2.0, 3000)  # what the "caller" said
    ivr.dtmf("#", 302.0)
    assert port.recording is None and (box / "greeting.wav").exists()
    assert port.played[-1] == ["greeting_saved"]
    ivr.tick(400.0)  # back to the current message
    assert port.played[-1][-1] == "m2"
    ivr.dtmf("9", 401.0)  # save
    assert port.played[-1] == ["message_kept"]
    assert env.store.counts("bob") == (0, 2)
    ivr.tick(500.0)
    assert port.played[-1] == ["no_messages"]
    ivr.tick(600.0)  # "no more messages" done: a few seconds for a last key
    assert not port.hung_up
    ivr.tick(700.0)
    assert port.played[-1] == ["goodbye"]
    ivr.tick(800.0)
    assert port.hung_up
    env.store.close()
