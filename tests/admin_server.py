"""A real admin server for tests: the app under uvicorn on a free loopback port, a fresh SQLite file.

The server runs in a thread with its own event loop (the store's engine lives in that loop); tests
talk to it over HTTP and may open a second ``Store`` on the same file to check what was written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from policy.store import Store
from vidare.config import load_config

__all__ = ["AdminServer", "add_voicemail", "admin_server", "login", "run_store", "write_tone_wav"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class AdminServer:
    url: str
    db_url: str
    data_dir: Path
    server: uvicorn.Server
    thread: threading.Thread
    mwi_sock: socket.socket  # bound on the config's sip.listen: receives the admin's MWI NOTIFYs

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    @property
    def var_dir(self) -> Path:
        return self.data_dir / "var"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.mwi_sock.close()


def run_store(db_url: str, coro_fn: Any) -> Any:
    """Run ``await coro_fn(store)`` on a second Store opened on the same database (for checks)."""

    async def main() -> Any:
        store = await Store.open(db_url)
        try:
            return await coro_fn(store)
        finally:
            await store.close()

    # In a thread of its own: the caller may be inside a running loop (Playwright's sync API).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def start_admin_server(data_dir: Path) -> AdminServer:
    from admin.app import create_app

    port = _free_port()
    # MWI NOTIFYs from the admin go to sip.listen: a UDP socket of the test's own, never port 5060.
    mwi_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mwi_sock.bind(("127.0.0.1", 0))
    mwi_port = int(mwi_sock.getsockname()[1])
    config = load_config(
        None, [f"admin.listen=127.0.0.1:{port}", f"sip.listen=127.0.0.1:{mwi_port}"], data_dir
    )
    db_url = config.database_url
    holder: dict[str, Any] = {}
    ready = threading.Event()

    async def serve() -> None:
        store = await Store.open(db_url)
        await store.migrate()
        await store.ensure_demo(str(config.get("sip", "domain")))
        app = create_app(store, config)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", workers=1)
        )
        holder["server"] = server
        ready.set()
        try:
            await server.serve()
        finally:
            await store.close()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as e:  # pragma: no cover - reported by the wait below
            holder["error"] = e
            ready.set()

    thread = threading.Thread(target=run, name=f"admin-server-{port}", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in holder:
        raise RuntimeError(f"admin server failed to start: {holder['error']!r}")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if "error" in holder:
            raise RuntimeError(f"admin server failed: {holder['error']!r}")
        try:
            if (
                holder["server"].started
                and httpx.get(f"{url}/api/v1/openapi.json", timeout=2).status_code == 200
            ):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("admin server did not come up within 30 s")
        time.sleep(0.05)
    return AdminServer(url, db_url, data_dir, holder["server"], thread, mwi_sock)


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[AdminServer]:
    server = start_admin_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in through the real login form (pre-session CSRF cookie included); returns the POST answer."""
    page = client.get("/login")
    import re

    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": match.group(1), "next": "/"},
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    import re

    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


@pytest.fixture(scope="module")
def shared_admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminServer]:
    """One server for a module's tests that do not disturb each other (starting one costs ~2-4 s)."""
    server = start_admin_server(tmp_path_factory.mktemp("admin"))
    try:
        yield server
    finally:
        server.stop()


def session_client(server: AdminServer, username: str, password: str) -> tuple[httpx.Client, str]:
    """A client logged in through the form, and its session's CSRF token (from /api/v1/me)."""
    client = server.client()
    answer = login(client, username, password)
    assert answer.status_code == 303, answer.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    return client, str(me.json()["csrf"])


def bearer_token(server: AdminServer, username: str | None = None) -> str:
    """An API token made by the demo admin (acting as ``username`` when given)."""
    client, csrf = session_client(server, "admin", "admin-demo")
    try:
        body: dict[str, Any] = {"name": f"test-{username or 'admin'}-{time.monotonic_ns()}"}
        if username is not None:
            body["username"] = username
        answer = client.post("/api/v1/tokens", json=body, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])
    finally:
        client.close()


def write_tone_wav(path: Path, seconds: float = 1.0, freq: float = 440.0, rate: int = 8000) -> None:
    """A real WAV file: a sine tone, 8 kHz mono 16-bit (what the media server records)."""
    import math
    import struct
    import wave

    frames = int(seconds * rate)
    samples = (int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(frames))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", v) for v in samples))


def add_voicemail(
    server: AdminServer,
    username: str,
    *,
    caller: str = "sip:+46701234567@demo.test",
    file_name: str | None = None,
    write_file: bool = True,
    received_at: Any = None,
) -> tuple[int, Path]:
    """A message as the media server leaves it: the WAV in ``var/voicemail/<user>/``, then the row."""
    from datetime import UTC, datetime

    from media.store import VoicemailStore

    name = file_name or f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{time.monotonic_ns():x}.wav"
    path = server.var_dir / "voicemail" / username / name
    if write_file:
        write_tone_wav(path)
    store = VoicemailStore(server.db_url)
    try:
        msg = store.add(
            username=username,
            caller=caller,
            received_at=received_at or datetime.now(UTC),
            duration=1.0,
            cause="486",
            file_name=name,
        )
    finally:
        store.close()
    return msg.id, path
