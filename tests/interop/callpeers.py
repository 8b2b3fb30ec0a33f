"""Call peers for the B2BUA end-to-end tests: SIPp phones and trunks around a real `vidare serve`.

Every peer is a real SIPp process on a loopback port; what it received is read back from its
``-trace_msg`` file. ``call_server`` starts the real server with the trunks and the media server
pointed at ports the test owns, so a SIPp UAS can stand at each of them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interop.harness import REPO, SCENARIOS, Server, free_port, sipp_binary

__all__ = ["CallServer", "Peer", "call_server", "register_phone", "start_peer"]

_SEPARATOR = "----------------------------------------------- "


def _render(scenario: str, workdir: Path, subs: dict[str, str]) -> Path:
    """A copy of ``scenario`` with ``[name]`` placeholders that SIPp cannot fill (status codes)."""
    text = (SCENARIOS / scenario).read_text()
    if not subs:
        return SCENARIOS / scenario
    for k, v in subs.items():
        text = text.replace(f"[{k}]", v)
    out = workdir / f"{Path(scenario).stem}-{'-'.join(subs.values())}.xml"
    out.write_text(text)
    return out


@dataclass
class Peer:
    """One SIPp process (a UAS waiting for a call, or a UAC placing one)."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    msg_file: Path
    log_file: Path

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return -1

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    @property
    def messages(self) -> str:
        return self.msg_file.read_text(errors="replace") if self.msg_file.exists() else ""

    def received(self) -> list[str]:
        out = []
        for block in self.messages.split(_SEPARATOR)[1:]:
            # "<timestamp>\nUDP message received [N] bytes :\n\n<message>"
            _, _, rest = block.partition("\n")
            head, _, body = rest.partition("\n")
            if "message received" in head:
                out.append(body.strip())
        return out

    def received_requests(self, method: str) -> list[str]:
        return [m for m in self.received() if m.startswith(method + " ")]

    def received_statuses(self) -> list[int]:
        return [int(m.split()[1]) for m in self.received() if m.startswith("SIP/2.0 ")]

    def debug(self) -> str:
        log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return f"--- {self.name} (rc={self.process.poll()}) ---\n{log[-2000:]}\n{self.messages[-4000:]}"


def start_peer(
    name: str,
    scenario: str,
    port: int,
    workdir: Path,
    remote: str | None = None,
    *,
    keys: dict[str, str] | None = None,
    subs: dict[str, str] | None = None,
    service: str | None = None,
    timeout: float = 40.0,
    extra: list[str] | None = None,
) -> Peer:
    """Start SIPp in the background on ``127.0.0.1:port``; a UAC when ``remote`` is given."""
    workdir.mkdir(parents=True, exist_ok=True)
    msg_file = workdir / f"{name}-{time.monotonic_ns()}-messages.log"
    log_file = workdir / f"{name}.out"
    cmd = [
        sipp_binary(),
        "-sf",
        str(_render(scenario, workdir, subs or {})),
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mp",
        str(free_port()),
        "-m",
        "1",
        "-trace_msg",
        "-message_file",
        str(msg_file),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
    ]
    for k, v in (keys or {}).items():
        cmd += ["-key", k, v]
    if service is not None:
        cmd += ["-s", service]
    cmd += extra or []
    if remote is not None:
        cmd.append(remote)
    log = log_file.open("wb")
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
    peer = Peer(name, port, proc, msg_file, log_file)
    if remote is None:
        time.sleep(0.15)  # let a UAS bind before anyone calls it
    return peer


def register_phone(server: CallServer, user: str, password: str, port: int, workdir: Path) -> None:
    """Register ``user``'s softphone contact at 127.0.0.1:port (a real SIPp REGISTER with digest)."""
    peer = start_peer(
        f"register-{user}",
        "register.xml",
        port,
        workdir,
        server.address,
        keys={"expires": "3600"},
        service=user,
        extra=["-au", user, "-ap", password],
        timeout=10,
    )
    rc = peer.wait(15)
    assert rc == 0, peer.debug()


@dataclass
class CallServer(Server):
    """``vidare serve`` with the trunks and the media server at test-owned ports."""

    pstn: int = 0
    mobile: int = 0
    media: int = 0
    extra: list[str] = field(default_factory=list)

    def settings(self) -> list[str]:
        return [
            *super().settings(),
            f"trunks.pstn=127.0.0.1:{self.pstn}",
            f"trunks.mobile=127.0.0.1:{self.mobile}",
            f"media.address=127.0.0.1:{self.media}",
            "sip.digest_algorithms=MD5,SHA-256",  # SIPp 3.6 answers only an MD5 challenge
        ]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A `vidare` admin command against this server's data directory."""
        cmd = [sys.executable, "-m", "vidare", *args, "--data-dir", str(self.data_dir)]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.log_events() if e.get("event") == name]


@contextmanager
def call_server(tmp_path: Path, extra: list[str] | None = None) -> Iterator[CallServer]:
    server = CallServer(
        free_port(),
        tmp_path / "data",
        tmp_path / "server.log",
        pstn=free_port(),
        mobile=free_port(),
        media=free_port(),
        extra=extra or [],
    )
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def header(message: str, name: str) -> str | None:
    """The first value of header ``name`` in a traced message (case-insensitive)."""
    m = re.search(rf"^{re.escape(name)}\s*:\s*(.*?)\s*$", message, re.M | re.I)
    return m.group(1) if m else None


# ------------------------------------------------------------------ helpers for the rule tests
# (shared by test_calls_more.py and test_caller_id.py)

#: Short no-answer groups in an operator's extra catalogue (SPEC 3.1: the catalogue is data), so
#: the "after 20/30 s" rules can be tested in seconds; the real 20 and 30 s groups are tested once.
SHORT_NO_ANSWER = (2, 3)


def write_short_catalogue(path: Path) -> Path:
    """An extra catalogue with ``no_answer.{fixed,mobile}.{voicemail,alt_number}.{2,3}``."""
    lines = []
    for seconds in SHORT_NO_ANSWER:
        for number in ("fixed", "mobile"):
            for action in ("voicemail", "alt_number"):
                lines += [
                    "[[group]]",
                    f'id = "no_answer.{number}.{action}.{seconds}"',
                    f'name = "{seconds} sek {number} -> {action} (test)"',
                    'situation = "no_answer"',
                    f'number = "{number}"',
                    f'action = "{action}"',
                    f"seconds = {seconds}",
                    "",
                ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def store_call(server: CallServer, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call one ``policy.store.Store`` method on the server's database (what the admin API does)."""
    import asyncio

    from policy.store import Store

    async def run() -> Any:
        store = await Store.open(f"sqlite+aiosqlite:///{server.data_dir / 'var' / 'vidare.db'}")
        try:
            return await getattr(store, method)(*args, **kwargs)
        finally:
            await store.close()

    return asyncio.run(run())


def settle() -> None:
    """Wait until the running server has reloaded the directory (it polls every 0.5 s)."""
    time.sleep(1.1)


def cli_ok(server: CallServer, *args: str, wait: bool = True) -> str:
    """A `vidare` admin command that must succeed; by default waits for the server to see it."""
    r = server.cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    if wait:
        settle()
    return r.stdout


def debug_dump(server: CallServer, *peers: Peer) -> str:
    return "\n".join(p.debug() for p in peers) + "\n--- server ---\n" + server.log_path.read_text()[-6000:]


def place_call(
    server: CallServer,
    workdir: Path,
    to: str,
    *,
    port: int,
    caller: str,
    hold: int = 500,
    scenario: str = "call_uac.xml",
    name: str = "caller",
) -> Peer:
    """A trunk caller (bind ``port``: the PSTN or the mobile trunk's address) calling ``to``."""
    return start_peer(
        name,
        scenario,
        port,
        workdir,
        server.address,
        keys={"caller": caller},
        service=to,
        subs={"hold": str(hold)},
    )


def call_out(server: CallServer, workdir: Path, user: str, password: str, to: str, hold: int = 500) -> Peer:
    """``user``'s softphone calling ``to`` (answers the 407 challenge with its credentials)."""
    return start_peer(
        f"{user}-phone-out",
        "call_uac_auth.xml",
        free_port(),
        workdir,
        server.address,
        keys={"caller": user},
        service=to,
        subs={"hold": str(hold)},
        extra=["-au", user, "-ap", password, "-auth_uri", f"{to}@127.0.0.1:{server.port}"],
    )


def ruri(message: str) -> str:
    return message.split()[1]


def received_at(peer: Peer, start: str) -> list[float]:
    """Wall-clock times (epoch seconds) at which ``peer`` received messages starting with ``start``
    (``"INVITE "``, ``"SIP/2.0 200"``), read from SIPp's trace: immune to slow test machinery."""
    from datetime import datetime

    out = []
    for block in peer.messages.split(_SEPARATOR)[1:]:
        stamp, _, rest = block.partition("\n")
        head, _, body = rest.partition("\n")
        if "message received" in head and body.strip().startswith(start):
            out.append(datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return out
