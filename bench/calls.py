"""End-to-end call benchmark of `vidare serve` with SIPp peers: ``python -m bench.calls [--quick]``.

Issue 4 point 8. Not a test; it gates nothing. Everything runs on 127.0.0.1 and every process it
starts is stopped by PID at the end.

Set-up (one fresh server per case, its own data directory under a temp dir):

* ``vidare serve --set admin.enabled=false --set media.spawn=false --set log.level=warning`` with
  the PSTN and mobile trunks and the media server at free loopback ports.
* Before the server starts, the bench creates the demo company (``Store.ensure_demo``) and one
  extra user, ``bench`` (fixed +4681001099, **no mobile number**, catalogue default groups),
  through ``policy.store.Store.create_user``. The demo users are untouched.
* A SIPp UAS registers (digest) as the softphone of ``bob`` and of ``bench`` (same contact) and
  answers every INVITE with 200 at once, then waits for the BYE (``scenarios/uas_answer.xml``).
* A second SIPp UAS stands as the mobile trunk: 180, never answers, so the B2BUA CANCELs it
  (``scenarios/uas_ring_cancel.xml``).
* A SIPp UAC on the PSTN trunk port calls with ``-d 0 -rp 1000 -buff_size 1048576``
  (``scenarios/uac.xml``); setup time is its INVITE->200 round trip (``-trace_rtt``).

Cases: **plain** calls ``bench``'s fixed number (softphone only); **forked** calls bob's fixed
number (softphone answers, the mobile leg rings and is cancelled).

Rate search: short probe runs step the rate up until one fails (or the UAC cannot keep the
rate); then the highest clean probe rate must pass two confirmation runs in a row (25 s each; 8 s
with ``--quick``) with 0 failed calls, else the rate steps down 10 % and is confirmed again. The
setup-time median and p99 are reported at the held rate and at half of it. Server CPU is
utime+stime from /proc/<pid>/stat over the confirmation runs; peak RSS is VmHWM.

Memory per call: a third server; calls to ``bench`` are held (long ``-d``) at N = 1,000 then
5,000 concurrent calls (1,000 and 2,000 with ``--quick``); (VmRSS - VmRSS before) / N.

Set ``VIDARE_BENCH_PROFILE=1`` to run the server under cProfile (output path printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
HZ = os.sysconf("SC_CLK_TCK")

BOB_FIXED = "+4681001002"
BENCH_USER = "bench"
BENCH_FIXED = "+4681001099"
BENCH_PASSWORD = "bench-password-1099"
BOB_PASSWORD = "bob-demo"

_started: list[subprocess.Popen[bytes]] = []


# ---------------------------------------------------------------------------------- processes


def free_port() -> int:
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


def spawn(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 8.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in _started:
        _started.remove(proc)


def stop_all() -> None:
    for proc in list(_started):
        stop(proc)


def sipp(scenario: str, port: int, *args: str) -> list[str]:
    exe = shutil.which("sipp")
    if exe is None:
        raise SystemExit("bench.calls: sipp is not installed")
    return [exe, "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), "-nostdin", *args]


def options_ping(port: int, timeout: float = 0.3) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        branch = f"z9hG4bK-bench-{time.monotonic_ns()}"
        msg = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:ping@127.0.0.1>;tag=p{lport}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: ping-{branch}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", port))
        try:
            s.recvfrom(65535)
        except TimeoutError:
            return False
        return True


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime, stime (fields 14, 15)


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------------- the server


@dataclass
class Bench:
    root: Path
    name: str
    port: int = field(default_factory=free_port)
    pstn: int = field(default_factory=free_port)
    mobile: int = field(default_factory=free_port)
    media: int = field(default_factory=free_port)
    phone: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    peers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    profile: Path | None = None

    @property
    def dir(self) -> Path:
        return self.root / self.name

    def overrides(self) -> list[str]:
        return [
            f"sip.listen=127.0.0.1:{self.port}",
            f"trunks.pstn=127.0.0.1:{self.pstn}",
            f"trunks.mobile=127.0.0.1:{self.mobile}",
            f"media.address=127.0.0.1:{self.media}",
            "admin.enabled=false",
            "media.spawn=false",
            "log.level=warning",
            "sip.digest_algorithms=MD5,SHA-256",  # SIPp 3.6 answers only an MD5 challenge
        ]

    def prepare(self) -> None:
        """The demo company plus the ``bench`` user (no mobile number), before the server starts."""
        from vidare.config import load_config
        from vidare.store import open_store

        config = load_config(None, self.overrides(), self.dir / "data")

        async def run() -> None:
            store = await open_store(config)
            try:
                await store.migrate()
                await store.ensure_demo(str(config.get("sip", "domain")))
                await store.create_user(
                    BENCH_USER, "Bench User", "1099", BENCH_PASSWORD, fixed=BENCH_FIXED, mobile=None
                )
            finally:
                await store.close()

        asyncio.run(run())

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        cmd = [sys.executable]
        if os.environ.get("VIDARE_BENCH_PROFILE"):
            self.profile = self.dir / "server.prof"
            cmd += ["-m", "cProfile", "-o", str(self.profile)]
        cmd += ["-m", "vidare", "serve", "--data-dir", str(self.dir / "data")]
        for o in self.overrides():
            cmd += ["--set", o]
        self.server = spawn(cmd, REPO, self.dir / "server.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"vidare serve exited:\n{(self.dir / 'server.log').read_text()[-3000:]}")
            if options_ping(self.port):
                break
        else:
            raise RuntimeError("vidare serve did not answer OPTIONS")
        for user, password in ((BENCH_USER, BENCH_PASSWORD), ("bob", BOB_PASSWORD)):
            reg = spawn(
                sipp(
                    "register.xml",
                    self.phone,
                    "-m",
                    "1",
                    "-s",
                    user,
                    "-au",
                    user,
                    "-ap",
                    password,
                    "-key",
                    "expires",
                    "3600",
                    "-timeout",
                    "10s",
                    "-timeout_error",
                    f"127.0.0.1:{self.port}",
                ),
                self.dir,
                self.dir / "register.log",
            )
            if reg.wait(15) != 0:
                raise RuntimeError(f"registering {user} failed: see {self.dir / 'register.log'}")
            _started.remove(reg)
        common = ["-buff_size", "1048576", "-mp", str(free_port()), "-max_recv_loops", "10000"]
        self.peers.append(
            spawn(sipp("uas_answer.xml", self.phone, *common), self.dir, self.dir / "softphone.log")
        )
        common[3] = str(free_port())
        self.peers.append(
            spawn(sipp("uas_ring_cancel.xml", self.mobile, *common), self.dir, self.dir / "mobile.log")
        )
        time.sleep(0.3)

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def close(self) -> int:
        """Stop the peers and the server; returns the server's peak RSS (VmHWM, kB)."""
        hwm = status_kb(self.pid, "VmHWM") if self.server and self.server.poll() is None else 0
        for p in self.peers:
            stop(p)
        if self.server is not None:
            t0 = time.monotonic()
            stop(self.server, signal.SIGINT, 60.0)  # a clean stop, so that cProfile writes its output
            print(f"  server stopped in {time.monotonic() - t0:.1f} s", flush=True)
        if self.profile is not None:
            print(f"  profile: {self.profile}", flush=True)
        return hwm


# ---------------------------------------------------------------------------------- one run


@dataclass
class Run:
    rate: int
    seconds: float
    calls: int
    ok: int
    failed: int
    setup_ms: list[float]
    cpu: float  # server CPU seconds over the run
    wall: float
    rc: int

    @property
    def clean(self) -> bool:
        return self.failed == 0 and self.ok == self.calls and self.rc == 0

    def pct(self, q: float) -> float:
        if not self.setup_ms:
            return float("nan")
        s = sorted(self.setup_ms)
        return s[min(len(s) - 1, int(q * len(s)))]

    def line(self) -> str:
        return (
            f"  {self.rate:5d} cps x {self.seconds:4.0f}s: {self.ok}/{self.calls} ok, {self.failed} failed, "
            f"setup median {self.pct(0.5):.1f} ms p99 {self.pct(0.99):.1f} ms, "
            f"server CPU {100 * self.cpu / self.wall:.0f}%"
        )


def _read_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def _read_rtt(workdir: Path) -> list[float]:
    out: list[float] = []
    for p in workdir.glob("uac_*_rtt.csv"):
        for line in p.read_text().splitlines()[1:]:
            parts = line.split(";")
            with contextlib.suppress(ValueError, IndexError):
                out.append(float(parts[1]))
    return out


def run_calls(b: Bench, to: str, rate: int, seconds: float, *, hold_ms: int = 0, tag: str = "") -> Run:
    """SIPp UAC on the PSTN trunk port: ``rate`` calls/s for ``seconds``; waits until all end."""
    calls = max(1, int(rate * seconds))
    work = b.dir / f"run-{tag or rate}-{time.monotonic_ns()}"
    work.mkdir(parents=True)
    cmd = sipp(
        "uac.xml",
        b.pstn,
        "-s",
        to,
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(calls),
        "-d",
        str(hold_ms),
        "-buff_size",
        "1048576",
        "-mp",
        str(free_port()),
        "-l",
        str(max(calls, 100)),
        "-trace_rtt",
        "-rtt_freq",
        "50",
        "-trace_stat",
        "-stf",
        str(work / "stat.csv"),
        "-fd",
        "1",
        "-timeout",
        f"{int(seconds + hold_ms / 1000 + 30)}s",
        "-max_recv_loops",
        "10000",
        "-trace_err",
        "-error_file",
        str(work / "errors.log"),
        f"127.0.0.1:{b.port}",
    )
    cpu0, t0 = cpu_seconds(b.pid), time.monotonic()
    proc = spawn(cmd, work, work / "sipp.out")
    try:
        rc = proc.wait(seconds + hold_ms / 1000 + 45)
    except subprocess.TimeoutExpired:
        stop(proc)
        rc = -1
    _started.remove(proc) if proc in _started else None
    cpu, wall = cpu_seconds(b.pid) - cpu0, time.monotonic() - t0
    st = _read_stats(work / "stat.csv")
    ok = int(st.get("SuccessfulCall(C)", 0) or 0)
    failed = int(st.get("FailedCall(C)", 0) or 0)
    total = int(st.get("TotalCallCreated", 0) or 0)
    if total < calls:  # calls never placed (SIPp stopped early) count as failed
        failed += calls - total
    return Run(rate, seconds, calls, ok, failed, _read_rtt(work), cpu, wall, rc)


# ---------------------------------------------------------------------------------- the cases


@dataclass
class CaseResult:
    name: str
    held: int = 0
    held_runs: list[Run] = field(default_factory=list)
    half: Run | None = None
    peak_rss_kb: int = 0
    probes: list[Run] = field(default_factory=list)


def rate_search(b: Bench, to: str, name: str, quick: bool, deadline: float) -> CaseResult:
    res = CaseResult(name)
    probe_s = 3.0 if quick else 5.0
    confirm_s = 8.0 if quick else 25.0
    rate, step = 100, 100
    best = 0
    print(f"[{name}] probing (runs of {probe_s:.0f} s)", flush=True)
    while time.monotonic() < deadline:
        r = run_calls(b, to, rate, probe_s, tag=f"probe{rate}")
        res.probes.append(r)
        print(r.line(), flush=True)
        if not r.clean or r.pct(0.99) > 1000:
            break
        best = rate
        if r.cpu / r.wall > 0.7:
            step = 50
        rate += step
        time.sleep(1)
    if best == 0:
        best = 50
    rate = best
    print(f"[{name}] confirming: two runs of {confirm_s:.0f} s in a row with 0 failed calls", flush=True)
    while rate >= 10 and time.monotonic() < deadline:
        runs: list[Run] = []
        for _ in range(2):
            r = run_calls(b, to, rate, confirm_s, tag=f"confirm{rate}")
            print(r.line(), flush=True)
            runs.append(r)
            if not r.clean:
                break
            time.sleep(1)
        if len(runs) == 2 and all(r.clean for r in runs):
            res.held, res.held_runs = rate, runs
            break
        rate = int(rate * 0.9) // 10 * 10
    if res.held:
        # Let the calls of the held runs finish lingering (Timer B/M/L, 32 s) first: the
        # half-rate figure is for a server at that rate, not one still digesting the last one.
        time.sleep(5 if quick else 35)
        half = max(10, res.held // 2)
        r = run_calls(b, to, half, confirm_s, tag=f"half{half}")
        print(f"[{name}] half rate" + r.line(), flush=True)
        res.half = r
    return res


@dataclass
class MemResult:
    points: list[tuple[int, int, int]] = field(default_factory=list)  # (calls, rss delta kB, established)
    peak_rss_kb: int = 0


def _control(port: int, command: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(command, ("127.0.0.1", port))


def memory_per_call(b: Bench, steps: list[int], rate: int) -> MemResult:
    """Hold calls open to ``bench`` and read the server's RSS at each step."""
    res = MemResult()
    run_calls(b, BENCH_FIXED, 20, 1.0, tag="warmup")  # first-call allocations (few: they linger 32 s)
    time.sleep(1)
    base = status_kb(b.pid, "VmRSS")
    print(f"[memory] server VmRSS before: {base / 1024:.1f} MB; holding calls at {rate} cps", flush=True)
    work = b.dir / "hold"
    work.mkdir(parents=True)
    total = max(steps)
    control = free_port()
    cmd = sipp(
        "uac.xml",
        b.pstn,
        "-s",
        BENCH_FIXED,
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(total),
        "-d",
        "600000",
        "-buff_size",
        "1048576",
        "-mp",
        str(free_port()),
        "-l",
        str(total + 10),
        "-trace_stat",
        "-stf",
        str(work / "stat.csv"),
        "-fd",
        "1",
        "-timeout",
        "700s",
        "-max_recv_loops",
        "10000",
        "-cp",
        str(control),
        f"127.0.0.1:{b.port}",
    )
    procs = [spawn(cmd, work, work / "sipp.out")]
    # One UAC places all max(steps) calls; RSS is sampled when each step's count is established.
    target_steps = list(steps)
    t0 = time.monotonic()
    limit = max(steps) / rate + 60
    while target_steps and time.monotonic() - t0 < limit:
        st = _read_stats(work / "stat.csv")
        cur = int(st.get("CurrentCall", 0) or 0)
        ok = int(st.get("SuccessfulCall(C)", 0) or 0)
        fail = int(st.get("FailedCall(C)", 0) or 0)
        if fail:
            print(f"[memory] {fail} calls failed while building up; stopping at {cur}", flush=True)
            break
        if cur >= target_steps[0] and ok == 0:
            _control(control, b"p")  # pause new calls (SIPp control socket), let the last ones settle
            time.sleep(2.5)
            rss = status_kb(b.pid, "VmRSS")
            st = _read_stats(work / "stat.csv")
            n = int(st.get("CurrentCall", 0) or 0)
            target_steps.pop(0)
            res.points.append((n, rss - base, n))
            print(
                f"  {n} concurrent calls: VmRSS {rss / 1024:.1f} MB, {(rss - base) / n:.1f} KB/call",
                flush=True,
            )
            _control(control, b"p")  # resume
        time.sleep(0.2)
    res.peak_rss_kb = status_kb(b.pid, "VmHWM")
    for p in procs:
        stop(p)
    return res


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a ~2 minute smoke version (shorter runs)")
    ap.add_argument("--only", choices=["plain", "forked", "memory"], action="append")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SIPp traces)")
    ap.add_argument("--rate", type=int, help="no search: one run per case at this rate (for profiling)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the --rate run")
    args = ap.parse_args(argv)
    cases = args.only or ["plain", "forked", "memory"]
    budget = 60 if args.quick else 300  # seconds of rate search per case
    root = Path(tempfile.mkdtemp(prefix="vidare-bench-calls-"))
    results: list[CaseResult] = []
    mem: MemResult | None = None
    start = time.monotonic()
    try:
        for case in cases:
            b = Bench(root, case)
            b.start()
            try:
                if args.rate and case != "memory":
                    to = BENCH_FIXED if case == "plain" else BOB_FIXED
                    print(f"[{case}]" + run_calls(b, to, args.rate, args.seconds).line(), flush=True)
                elif case == "memory":
                    steps = [500, 1000] if args.quick else [1000, 5000]
                    mem = memory_per_call(b, steps, 250 if args.quick else 400)
                else:
                    to = BENCH_FIXED if case == "plain" else BOB_FIXED
                    res = rate_search(b, to, case, args.quick, time.monotonic() + budget)
                    res.peak_rss_kb = status_kb(b.pid, "VmHWM")
                    results.append(res)
            finally:
                b.close()
    finally:
        stop_all()
        if args.keep:
            print(f"logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print_table(results, mem, args.quick, time.monotonic() - start)
    return 0


def print_table(results: list[CaseResult], mem: MemResult | None, quick: bool, elapsed: float) -> None:
    confirm = "8 s" if quick else "25 s"
    print()
    print(
        f"vidare serve, SIPp on the same {os.cpu_count()}-core machine; rate held = two {confirm} runs "
        f"in a row with 0 failed calls{' (QUICK: short runs)' if quick else ''}"
    )
    head = (
        f"{'case':8} {'CPS held':>8} {'setup med':>9} {'p99':>7} {'@half med':>9} {'p99':>7} "
        f"{'CPU':>5} {'peak RSS':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        runs = r.held_runs
        setup = [x for run in runs for x in run.setup_ms]
        med = statistics.median(setup) if setup else float("nan")
        p99 = sorted(setup)[int(0.99 * len(setup))] if setup else float("nan")
        cpu = sum(x.cpu for x in runs) / sum(x.wall for x in runs) if runs else float("nan")
        hm = r.half.pct(0.5) if r.half else float("nan")
        hp = r.half.pct(0.99) if r.half else float("nan")
        print(
            f"{r.name:8} {r.held:8d} {med:7.1f}ms {p99:5.1f}ms {hm:7.1f}ms {hp:5.1f}ms "
            f"{100 * cpu:4.0f}% {r.peak_rss_kb / 1024:7.1f}MB"
        )
    if mem is not None:
        for n, delta, cur in mem.points:
            print(
                f"memory   {n:5d} concurrent calls held: {delta / n:.1f} KB RSS per call "
                f"(RSS +{delta / 1024:.1f} MB; SIPp CurrentCall {cur}); "
                f"peak RSS {mem.peak_rss_kb / 1024:.1f} MB"
            )
    print(f"(CPU = server utime+stime / wall over the held runs; 100% = one core; took {elapsed:.0f} s)")
    print(
        f"(load average at the end: {Path('/proc/loadavg').read_text().split()[0]}; other load skews these)"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
