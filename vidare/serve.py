"""``vidare serve``: the composition root. It opens the store, builds the directory snapshot,
starts the SIP server (and the admin web when present), and keeps the snapshot fresh.

How a change reaches the next call: every directory change bumps ``meta.directory_version`` in
its own transaction; ``watch_directory`` reads that counter every ``store.reload_interval``
seconds and swaps in a rebuilt immutable snapshot when it moved. Calls in progress keep theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import sys
import time
from datetime import UTC, datetime
from typing import Any

import structlog

from policy.decide import decide
from policy.model import DirectorySnapshot
from policy.store import Store
from policy.store.store import Binding as StoredBinding
from sipcore.aio.logconfig import configure_logging
from sipcore.aio.runtime import run_until_signalled
from sipcore.aio.server import SipServer, SipSettings
from sipcore.b2bua import B2buaConfig
from sipcore.b2bua.events import CdrRecord
from sipcore.errors import RemoteProtocolError
from sipcore.parser import parse_name_addr
from sipcore.registrar import Binding, Source
from sipcore.transaction import TimerConfig
from vidare.config import Config, ConfigError
from vidare.store import open_store

__all__ = ["BindingWriter", "DirectoryHolder", "run"]

log = structlog.get_logger("vidare")


class DirectoryHolder:
    """The current snapshot; replaced whole, never mutated."""

    def __init__(self, snapshot: DirectorySnapshot) -> None:
        self.snapshot = snapshot

    def get(self) -> DirectorySnapshot:
        return self.snapshot


async def watch_directory(store: Store, holder: DirectoryHolder, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            version = await store.version()
            if version != holder.snapshot.version:
                holder.snapshot = await store.snapshot()
                log.info(
                    "directory.reloaded", version=holder.snapshot.version, users=len(holder.snapshot.users)
                )
        except Exception as e:  # the database may be briefly locked or gone; try again next time
            log.warning("directory.reload_failed", error=str(e))


def _to_stored(b: Binding) -> StoredBinding:
    src = b.source or Source("", 0, "UDP")
    return StoredBinding(
        aor=b.aor,
        contact=str(b.contact),
        expires_at=datetime.fromtimestamp(b.expires_at, UTC),
        call_id=b.call_id,
        cseq=b.cseq,
        source_host=src.host,
        source_port=src.port,
        transport=src.transport.lower(),
        q=b.q,
        instance_id=b.instance,
        reg_id=b.reg_id,
        user_agent=b.user_agent,
    )


def _from_stored(b: StoredBinding) -> Binding | None:
    try:
        contact = parse_name_addr(b.contact)
    except RemoteProtocolError:
        log.warning("register.unreadable_binding", aor=b.aor, contact=b.contact)
        return None
    return Binding(
        aor=b.aor,
        contact=contact,
        expires_at=b.expires_at.timestamp(),
        call_id=b.call_id,
        cseq=b.cseq,
        q=b.q,
        instance=b.instance_id,
        reg_id=b.reg_id,
        source=Source(b.source_host, b.source_port, b.transport.upper()),
        user_agent=b.user_agent,
    )


class BindingWriter:
    """Writes changed AORs to the store off the SIP path: REGISTER never waits for the disk.

    The registrar's in-memory location service is the truth; a dirty AOR is written whole.
    """

    def __init__(self, store: Store, server: SipServer) -> None:
        self._store = store
        self._server = server
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()

    def mark(self, aor: str) -> None:
        self._dirty.add(aor)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await self.flush()

    async def flush(self) -> None:
        self._wake.clear()
        while self._dirty:
            aor = self._dirty.pop()
            live = self._server.location.lookup(aor, time.time())
            try:
                await self._store.replace_bindings(aor, [_to_stored(b) for b in live])
            except Exception as e:
                log.error("register.persist_failed", aor=aor, error=str(e))


class CdrWriter:
    """Writes call detail records off the call path: whatever ended since the last write goes
    into one transaction, so the database costs per batch, not per call."""

    MAX_BATCH = 1000
    GATHER = 0.25  # seconds a CDR may wait for others to share its transaction

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: asyncio.Queue[CdrRecord] = asyncio.Queue()

    def put(self, record: CdrRecord) -> None:
        self._queue.put_nowait(record)

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(self.GATHER)
            await self._write(batch)

    async def flush(self) -> None:
        await self._write([])

    async def _write(self, batch: list[CdrRecord]) -> None:
        while True:
            while len(batch) < self.MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if not batch:
                return
            try:
                await self._store.add_cdrs(batch)
            except Exception as e:
                log.error("cdr.write_failed", calls=len(batch), call_id=batch[0].call_id, error=str(e))
            batch = []


async def sweep_bindings(server: SipServer, writer: BindingWriter, every: float = 30.0) -> None:
    while True:
        await asyncio.sleep(every)
        for b in server.location.expire(time.time()):
            log.info("register.expired", aor=b.aor, contact=str(b.contact.uri))
            writer.mark(b.aor)


class MediaSupervisor:
    """Runs the media server (pjsua2, its own process and threads) and restarts it if it dies.

    The child gets this process's whole configuration as ``--set`` overrides, so both read the
    same values whatever file or flags they came from. Restarts back off from 1 s to 30 s; a
    child that ran for a minute resets the back-off.
    """

    def __init__(self, config: Config) -> None:
        args = ["--data-dir", str(config.data_dir)]
        for section, values in config.raw.items():
            for key, value in values.items():
                text = str(value).lower() if isinstance(value, bool) else str(value)
                args += ["--set", f"{section}.{key}={text}"]
        self._argv = [sys.executable, "-m", "vidare", "media", *args]
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False

    async def run(self) -> None:
        backoff = 1.0
        while not self._stopping:
            started = time.monotonic()
            self._process = await asyncio.create_subprocess_exec(*self._argv)
            log.info("media.spawned", pid=self._process.pid)
            code = await self._process.wait()
            if self._stopping:
                break
            ran = time.monotonic() - started
            backoff = 1.0 if ran > 60 else min(backoff * 2, 30.0)
            log.error("media.exited", code=code, ran_seconds=round(ran, 1), restart_in=backoff)
            await asyncio.sleep(backoff)

    async def stop(self) -> None:
        self._stopping = True
        proc = self._process
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class _AdminServer:
    """uvicorn on our loop, without its own signal handling (we own SIGINT/SIGTERM)."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        import uvicorn

        class _Server(uvicorn.Server):
            def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
                return contextlib.nullcontext()

        self.server = _Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        )

    async def run(self) -> None:
        await self.server.serve()

    def stop(self) -> None:
        self.server.should_exit = True


async def _main(config: Config, stop: asyncio.Event) -> int:
    sip_addr = config.address("sip", "listen")
    admin_addr = config.address("admin", "listen")
    domain = str(config.get("sip", "domain"))
    store = await open_store(config)
    try:
        await store.migrate()
        if config.get("demo", "enabled") and await store.ensure_demo(domain):
            log.info("demo.created", company="Demo AB", users=["alice", "bob", "carol"], domain=domain)
        exposed = [a for a in (sip_addr, admin_addr) if not a.is_loopback]
        if exposed and (weak := await _demo_passwords(store)):
            raise ConfigError(
                f"refusing to listen on {exposed[0]}: demo passwords unchanged for {', '.join(weak)}"
            )
        holder = DirectoryHolder(await store.snapshot())
        settings = SipSettings(
            host=sip_addr.host,
            port=sip_addr.port,
            domain=domain,
            timers=TimerConfig(
                t1=float(config.get("sip", "t1")),
                t2=float(config.get("sip", "t2")),
                t4=float(config.get("sip", "t4")),
            ),
            min_expires=int(config.get("sip", "min_expires")),
            max_expires=int(config.get("sip", "max_expires")),
            default_expires=int(config.get("sip", "default_expires")),
            nonce_lifetime=float(config.get("sip", "nonce_lifetime")),
            digest_algorithms=_algorithms(str(config.get("sip", "digest_algorithms"))),
            udp_mtu_threshold=int(config.get("sip", "udp_mtu_threshold")),
            trace=bool(config.get("sip", "trace")),
        )
        server = SipServer(settings, holder.get)
        writer = BindingWriter(store, server)
        server.on_bindings_changed = writer.mark
        cdrs = CdrWriter(store)
        max_ring = int(config.get("sip", "max_ring_seconds"))
        server.enable_b2bua(
            B2buaConfig(
                local_host=settings.host,
                local_port=settings.port,
                domain=domain,
                pstn=_pair(config, "trunks", "pstn"),
                mobile=_pair(config, "trunks", "mobile"),
                media=_pair(config, "media", "address"),
                max_ring_seconds=float(max_ring),
                max_diversions=int(config.get("sip", "max_diversions")),
                timers=settings.timers,
                voicemail_number=str(config.get("media", "voicemail_number")) or None,
                unsolicited_mwi=bool(config.get("media", "unsolicited_mwi")),
                subscribe_min_expires=int(config.get("sip", "min_expires")),
                subscribe_max_expires=int(config.get("sip", "max_expires")),
                media_keepalive=float(config.get("media", "keepalive_interval")),
                queue_max_wait=float(config.get("media", "queue_max_wait")),
            ),
            functools.partial(decide, max_ring_seconds=max_ring),
            cdrs.put,
        )
        stored = [b for b in (_from_stored(s) for s in await store.load_bindings(datetime.now(UTC))) if b]
        kept = server.location.load(stored, time.time())
        try:
            await server.start()
        except OSError as e:
            raise ConfigError(f"cannot listen on {sip_addr}: {e.strerror or e}") from None
        log.info(
            "vidare.started", sip=str(sip_addr), bindings=kept, directory_version=holder.snapshot.version
        )
        _tune_gc()

        tasks = [
            asyncio.create_task(
                watch_directory(store, holder, float(config.get("store", "reload_interval")))
            ),
            asyncio.create_task(writer.run()),
            asyncio.create_task(sweep_bindings(server, writer)),
            asyncio.create_task(cdrs.run()),
        ]
        admin: _AdminServer | None = None
        admin_task: asyncio.Task[None] | None = None
        if config.get("admin", "enabled"):
            admin = _start_admin(store, config, admin_addr.host, admin_addr.port)
            if admin is not None:
                admin_task = asyncio.create_task(admin.run())
        media: MediaSupervisor | None = None
        if config.get("media", "spawn"):
            media = MediaSupervisor(config)
            tasks.append(asyncio.create_task(media.run()))
        await stop.wait()
        log.info("vidare.stopping")
        if media is not None:
            await media.stop()
        if admin is not None and admin_task is not None:
            # Let uvicorn finish its lifespan shutdown instead of cancelling it mid-way.
            admin.stop()
            try:
                await asyncio.wait_for(admin_task, 10)
            except (TimeoutError, asyncio.CancelledError):
                pass
        await writer.flush()
        await cdrs.flush()
        await server.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return 0
    finally:
        await store.close()


def _pair(config: Config, section: str, key: str) -> tuple[str, int]:
    address = config.address(section, key)
    return (address.host, address.port)


async def _demo_passwords(store: Store) -> list[str]:
    """Accounts (SIP or web) still on a demo password: loopback only while there are any."""
    weak = list(await store.demo_passwords_unchanged())
    try:
        from admin.app import demo_web_passwords_unchanged
    except ImportError:
        return weak
    return weak + [f"web:{u}" for u in await demo_web_passwords_unchanged(store.engine)]


def _algorithms(text: str) -> tuple[str, ...]:
    from sipcore.digest import ALGORITHMS

    algs = tuple(a.strip().upper() for a in text.split(",") if a.strip())
    bad = [a for a in algs if a not in ALGORITHMS]
    if not algs or bad:
        raise ConfigError(f"sip.digest_algorithms: {text!r} (choose from {', '.join(ALGORITHMS)})")
    return algs


def _tune_gc() -> None:
    """Keep the cyclic collector off the call path (issue 4 point 8).

    Calls and transactions are freed by reference counting (they form no cycles), yet every
    ended call lingers ~32 s for late responses, so a full collection would walk hundreds of
    thousands of live objects: 0.2-0.5 s pauses. Everything alive now (modules, the directory
    snapshot, the catalogue) is permanent: ``freeze`` takes it out of every collection. The
    young generations still run often and stay small (pauses of a few ms); a full collection
    waits for 10,000 second-generation ones instead of 10, so under load it is rare rather
    than every few seconds (12,000 lingering calls, simulated: no full collection, GC time
    18 % -> 3 %, longest pause 0.7 s -> 4 ms).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(2000, 10, 10_000)


def _start_admin(store: Store, config: Config, host: str, port: int) -> _AdminServer | None:
    try:
        from admin.app import create_app
    except ImportError as e:  # the web extra is not installed: SIP still runs
        log.warning("admin.unavailable", reason=str(e))
        return None
    return _AdminServer(create_app(store, config), host, port)


def run(config: Config) -> int:
    configure_logging(config.get("log", "format"), str(config.get("log", "level")))

    async def main(stop: asyncio.Event) -> int:
        return await _main(config, stop)

    return run_until_signalled(main)
