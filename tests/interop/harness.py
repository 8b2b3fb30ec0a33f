"""Real peers for interop tests: a `vidare serve` process and SIPp processes on loopback.

Nothing here is mocked: the server is the real command in a subprocess on a free port with its
own data directory (a real SQLite file), and SIPp is Debian's `sipp` binary.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def options_ping(port: int, timeout: float = 0.5, host: str = "127.0.0.1") -> bytes | None:
    """Send one OPTIONS over UDP and return the response bytes, or None on silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        branch = f"z9hG4bK-ping-{time.monotonic_ns()}"
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:ping@127.0.0.1>;tag=p{lport}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: ping-{branch}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65535)
        except TimeoutError:
            return None
        return data


@dataclass
class Server:
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self) -> list[str]:
        """The ``--set`` overrides this server runs with (subclasses add their own)."""
        return [
            f"sip.listen=127.0.0.1:{self.port}",
            "admin.enabled=false",
            "media.spawn=false",
            "log.format=json",
        ]

    def start(self, timeout: float = 20.0) -> None:
        args = [sys.executable, "-m", "vidare", "serve", "--data-dir", str(self.data_dir)]
        for item in self.settings():
            args += ["--set", item]
        args += self.extra  # later --set flags win over the ones above
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vidare serve exited early:\n{self.log_path.read_text()}")
            if options_ping(self.port, 0.2) is not None:
                return
        raise RuntimeError(f"vidare serve did not answer OPTIONS:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def log_events(self) -> list[dict[str, object]]:
        import json

        out = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


@contextmanager
def running_server(tmp_path: Path, extra: list[str] | None = None) -> Iterator[Server]:
    server = Server(free_port(), tmp_path / "data", tmp_path / "server.log", extra=extra or [])
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SippResult:
    returncode: int
    messages: str  # the -trace_msg log: every message SIPp sent and received
    stdout: str

    def _messages(self, direction: str) -> list[str]:
        out = []
        for block in re.split(r"^-{20,} \S+ \S+\n", self.messages, flags=re.M)[1:]:
            head, _, body = block.partition("\n")
            if direction in head:
                out.append(body.replace("\r\n", "\n").strip())
        return out

    def received(self) -> list[str]:
        """The messages SIPp received, in order (from its message trace), LF line ends."""
        return self._messages("message received")

    def sent(self) -> list[str]:
        """The messages SIPp sent, in order."""
        return self._messages("message sent")


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is not installed: install Debian's sip-tester (.ci/run does)")
    return path


def run_sipp(
    scenario: str,
    remote: str,
    workdir: Path,
    *args: str,
    timeout: float = 30.0,
    calls: int = 1,
) -> SippResult:
    """Run one SIPp client scenario to completion and return its exit code and message trace."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = Path(scenario).stem
    msg_file = workdir / f"{name}-{time.monotonic_ns()}-messages.log"
    cmd = [
        sipp_binary(),
        "-sf",
        str(SCENARIOS / scenario),
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-m",
        str(calls),
        "-trace_msg",
        "-trace_err",
        "-message_file",
        str(msg_file),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        *args,
        remote,
    ]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, timeout=timeout + 15, env=os.environ)
    messages = msg_file.read_text(errors="replace") if msg_file.exists() else ""
    output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    for err in workdir.glob(f"{name}_*_errors.log"):
        output += err.read_text(errors="replace")
        err.unlink()
    return SippResult(proc.returncode, messages, output)
