"""Voicemail in the admin, over HTTP against the real app, with real WAV files and rows.

Messages are made as the media server makes them (``media.store.VoicemailStore.add`` after the WAV
is in ``var/voicemail/<user>/``); the admin lists them, serves the audio, marks them heard, deletes
file and row together, refuses paths outside the box, and sends an MWI NOTIFY on every change.
"""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from admin_server import (  # noqa: F401  (fixtures)
    AdminServer,
    add_voicemail,
    bearer_token,
    csrf_of,
    session_client,
    shared_admin_server,
    write_tone_wav,
)


@pytest.fixture(scope="module")
def api(shared_admin_server: AdminServer) -> Iterator[httpx.Client]:  # noqa: F811
    token = bearer_token(shared_admin_server)
    with shared_admin_server.client(headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _notify(server: AdminServer, wanted: str, timeout: float = 5.0) -> str:
    """The admin's MWI NOTIFY to sip.listen containing ``wanted``; every NOTIFY is answered 200."""
    sock = server.mwi_sock
    sock.settimeout(timeout)
    while True:
        data, addr = sock.recvfrom(65535)
        text = data.decode()
        if not text.startswith("NOTIFY "):
            continue
        head = text.partition("\r\n\r\n")[0].split("\r\n")
        keep = [
            line
            for line in head[1:]
            if line.lower().startswith(("via:", "from:", "to:", "call-id:", "cseq:"))
        ]
        sock.sendto("\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0", "", ""]).encode(), addr)
        if wanted in text:
            return text


def _drain_notifies(server: AdminServer) -> None:
    sock = server.mwi_sock
    sock.settimeout(0.05)
    try:
        while True:
            sock.recvfrom(65535)
    except OSError:
        pass


def _audit(api: httpx.Client, action: str) -> list[dict[str, Any]]:
    return [e for e in api.get("/api/v1/audit", params={"limit": 50}).json() if e["action"] == action]


def test_list_download_mark_heard_and_delete(api: httpx.Client, shared_admin_server: AdminServer) -> None:  # noqa: F811
    server = shared_admin_server
    _drain_notifies(server)
    older = datetime.now(UTC) - timedelta(hours=2)
    old_id, old_path = add_voicemail(server, "alice", caller="sip:+4681111111@demo.test", received_at=older)
    new_id, new_path = add_voicemail(server, "alice")

    listed = api.get("/api/v1/users/alice/voicemail")
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [r["id"] for r in rows] == [new_id, old_id]  # newest first
    first = rows[1]
    assert set(first) == {"id", "caller", "received_at", "duration", "cause", "heard"}
    assert first["caller"] == "sip:+4681111111@demo.test"
    assert first["duration"] == 1.0 and first["cause"] == "486" and first["heard"] is False
    assert datetime.fromisoformat(first["received_at"]) == older

    # The audio: the very WAV file, 1 s of 8 kHz mono 16-bit.
    audio = api.get(f"/api/v1/users/alice/voicemail/{old_id}/audio")
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content == old_path.read_bytes()
    with wave.open(io.BytesIO(audio.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (8000, 1, 2, 8000)
    # Range requests (what a browser's <audio> element asks for).
    part = api.get(f"/api/v1/users/alice/voicemail/{old_id}/audio", headers={"Range": "bytes=0-43"})
    assert part.status_code == 206 and part.content == old_path.read_bytes()[:44]

    # Heard: the row changes, the change is audited, and the phones get an MWI NOTIFY.
    patched = api.patch(f"/api/v1/users/alice/voicemail/{old_id}", json={"heard": True})
    assert patched.status_code == 200 and patched.json()["heard"] is True
    notify = _notify(server, "Voice-Message: 1/1")
    assert notify.startswith("NOTIFY sip:alice@demo.test SIP/2.0\r\n")
    assert "Event: message-summary" in notify and "Messages-Waiting: yes" in notify
    assert [r["id"] for r in api.get("/api/v1/users/alice/voicemail").json()] == [new_id, old_id]
    entry = _audit(api, "voicemail.heard")[0]
    assert entry["target"] == f"voicemail:alice/{old_id}"
    assert entry["before"] == {"heard": False} and entry["after"] == {"heard": True}
    # Marking it heard again changes nothing and sends nothing.
    assert api.patch(f"/api/v1/users/alice/voicemail/{old_id}", json={"heard": True}).status_code == 200
    assert len(_audit(api, "voicemail.heard")) == 1
    bad = api.patch(f"/api/v1/users/alice/voicemail/{old_id}", json={"heard": "maybe", "x": 1})
    assert bad.status_code == 422

    # Delete: file and row gone, audited, MWI.
    assert api.delete(f"/api/v1/users/alice/voicemail/{old_id}").status_code == 204
    assert not old_path.exists() and new_path.exists()
    assert [r["id"] for r in api.get("/api/v1/users/alice/voicemail").json()] == [new_id]
    assert "Message-Account: sip:alice@demo.test" in _notify(server, "Voice-Message: 1/0")
    entry = _audit(api, "voicemail.delete")[0]
    assert entry["before"]["id"] == old_id and entry["after"] is None
    assert api.get(f"/api/v1/users/alice/voicemail/{old_id}/audio").status_code == 404
    assert api.delete(f"/api/v1/users/alice/voicemail/{old_id}").status_code == 404
    assert api.patch(f"/api/v1/users/alice/voicemail/{old_id}", json={"heard": False}).status_code == 404

    # Unknown user, non-integer ids.
    assert api.get("/api/v1/users/nobody/voicemail").status_code == 404
    assert api.get("/api/v1/users/alice/voicemail/abc/audio").status_code == 422
    assert api.get("/api/v1/users/alice/voicemail/0/audio").status_code == 422
    # Another user's id through this user's path is not found.
    assert api.get(f"/api/v1/users/bob/voicemail/{new_id}/audio").status_code == 404
    assert api.delete(f"/api/v1/users/bob/voicemail/{new_id}").status_code == 404
    assert new_path.exists()


def test_delete_keeps_the_row_when_the_file_cannot_be_removed(
    api: httpx.Client,
    shared_admin_server: AdminServer,  # noqa: F811
) -> None:
    server = shared_admin_server
    msg_id, path = add_voicemail(server, "carol", write_file=False)
    path.mkdir(parents=True)  # a directory where the file should be: unlink fails
    answer = api.delete(f"/api/v1/users/carol/voicemail/{msg_id}")
    assert answer.status_code == 500 and "cannot remove" in answer.json()["detail"]
    assert msg_id in [r["id"] for r in api.get("/api/v1/users/carol/voicemail").json()]
    path.rmdir()
    # The file already gone: the row goes.
    assert api.delete(f"/api/v1/users/carol/voicemail/{msg_id}").status_code == 204
    assert msg_id not in [r["id"] for r in api.get("/api/v1/users/carol/voicemail").json()]
    _drain_notifies(server)


@pytest.mark.parametrize(
    "file_name", ["../alice/stolen.wav", "../../vidare.db", "/etc/passwd", "sub/dir.wav", "..", "link.wav"]
)
def test_a_row_naming_a_file_outside_the_box_is_refused(
    api: httpx.Client,
    shared_admin_server: AdminServer,  # noqa: F811
    file_name: str,
) -> None:
    server = shared_admin_server
    victim = server.var_dir / "voicemail" / "alice" / "stolen.wav"
    write_tone_wav(victim)
    if file_name == "link.wav":
        box = server.var_dir / "voicemail" / "carol"
        box.mkdir(parents=True, exist_ok=True)
        link = box / "link.wav"
        if not link.is_symlink():
            os.symlink(victim, link)
    msg_id, _ = add_voicemail(server, "carol", file_name=file_name, write_file=False)
    assert api.get(f"/api/v1/users/carol/voicemail/{msg_id}/audio").status_code == 409
    assert api.delete(f"/api/v1/users/carol/voicemail/{msg_id}").status_code == 409
    assert victim.exists() and (server.var_dir / "vidare.db").exists()
    assert msg_id in [r["id"] for r in api.get("/api/v1/users/carol/voicemail").json()]


def test_user_page_lists_plays_marks_and_deletes(shared_admin_server: AdminServer) -> None:  # noqa: F811
    server = shared_admin_server
    msg_id, path = add_voicemail(server, "bob", caller="sip:+46709998877@demo.test")
    bob, _ = session_client(server, "bob", "bob-demo")
    with closing(bob):
        page = bob.get("/users/bob")
        assert page.status_code == 200
        src = f"/api/v1/users/bob/voicemail/{msg_id}/audio"
        assert f'<audio controls preload="metadata" src="{src}"' in page.text
        assert "sip:+46709998877@demo.test" in page.text
        # The session cookie is enough to fetch the audio (a GET: no CSRF header needed).
        assert bob.get(src).content == path.read_bytes()
        # The API with the session cookie needs the CSRF header for changes.
        assert bob.patch(f"/api/v1/users/bob/voicemail/{msg_id}", json={"heard": True}).status_code == 403
        assert bob.delete(f"/api/v1/users/bob/voicemail/{msg_id}").status_code == 403
        form_csrf = csrf_of(page.text)
        # Forms: heard, then delete; without the CSRF token nothing happens.
        action = f"/users/bob/voicemail/{msg_id}"
        assert bob.post(f"{action}/heard", data={"heard": "1"}).status_code == 403
        assert bob.post(f"{action}/delete", data={}).status_code == 403
        marked = bob.post(f"{action}/heard", data={"csrf": form_csrf, "heard": "1"}, follow_redirects=False)
        assert marked.status_code == 303
        row = next(r for r in bob.get("/api/v1/users/bob/voicemail").json() if r["id"] == msg_id)
        assert row["heard"] is True
        gone = bob.post(f"{action}/delete", data={"csrf": form_csrf}, follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].endswith("#voicemail")
        assert not path.exists()
        assert msg_id not in [r["id"] for r in bob.get("/api/v1/users/bob/voicemail").json()]
        assert bob.post(f"{action}/delete", data={"csrf": form_csrf}).status_code == 404
        assert bob.post("/users/bob/voicemail/x/delete", data={"csrf": form_csrf}).status_code == 404
        assert src not in bob.get("/users/bob").text
    _drain_notifies(server)


def test_admin_sees_a_users_voicemail_on_the_users_page(shared_admin_server: AdminServer) -> None:  # noqa: F811
    server = shared_admin_server
    msg_id, _ = add_voicemail(server, "carol", caller="sip:+4687776655@demo.test")
    admin, _ = session_client(server, "admin", "admin-demo")
    with closing(admin):
        page = admin.get("/users/carol")
        assert f'src="/api/v1/users/carol/voicemail/{msg_id}/audio"' in page.text
        assert "sip:+4687776655@demo.test" in page.text
        assert admin.get(f"/api/v1/users/carol/voicemail/{msg_id}/audio").status_code == 200


def test_audio_byte_ranges(api: httpx.Client, shared_admin_server: AdminServer) -> None:  # noqa: F811
    msg_id, path = add_voicemail(shared_admin_server, "carol")
    data = path.read_bytes()
    url = f"/api/v1/users/carol/voicemail/{msg_id}/audio"
    whole = api.get(url)
    assert whole.headers["accept-ranges"] == "bytes" and whole.content == data
    tail = api.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
    rest = api.get(url, headers={"Range": "bytes=16000-"})
    assert rest.status_code == 206 and rest.content == data[16000:]
    beyond = api.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    # Several or malformed ranges: the whole file.
    for header in ("bytes=0-1,5-9", "items=0-1", "bytes=9-1"):
        answer = api.get(url, headers={"Range": header})
        assert answer.status_code == 200 and answer.content == data, header


def test_byte_range_parser() -> None:
    from admin.api import _byte_range

    assert _byte_range(None, 100) is None
    assert _byte_range("bytes=0-9", 100) == (0, 9)
    assert _byte_range("bytes=90-200", 100) == (90, 99)
    assert _byte_range("bytes=-10", 100) == (90, 99)
    assert _byte_range("bytes=-500", 100) == (0, 99)
    assert _byte_range("bytes=100-", 100) == "unsatisfiable"
    assert _byte_range("bytes=-0", 100) == "unsatisfiable"
    assert _byte_range("bytes=-", 100) is None
    assert _byte_range("bytes=5-1", 100) is None
