"""Voicemail in the admin: a user's messages (list, audio file, heard/unheard, delete) and MWI.

The media server owns the recordings: it writes ``var/voicemail/<username>/<file_name>`` and then a
row of ``voicemail_messages`` (the table of ``media/store.py``, created by the Alembic migration
``0003_voicemail``). The admin reads and changes the same rows on the store's async engine.

- A message is always looked up by its integer id *and* its owner, so one user's id never reaches
  another user's box; the file path comes from the row and must resolve inside
  ``var/voicemail/<username>/`` (no ``..``, no absolute names, no symlinks leading out).
- Delete removes the file first inside the transaction that deletes the row: the row goes only when
  the file is gone (removed now or already missing); if the removal fails the row stays.
- When heard/deleted state changes, an MWI NOTIFY (RFC 3842) goes to the B2BUA (``sip.listen``) like
  the media server's own (``media.mwi.build_notify``, pjsua2-free), sent from asyncio with the same
  retransmission rule (T1 doubling, four retransmissions at most, until any final response).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.audit import AuditLog
from media.mwi import MessageSummary, build_notify
from media.store import voicemail_messages

__all__ = [
    "FileRemovalError",
    "MwiNotifier",
    "UnsafePathError",
    "VoicemailAdmin",
    "VoicemailMessage",
    "message_view",
]

log = logging.getLogger("vidare.admin.voicemail")
_t = voicemail_messages


class UnsafePathError(Exception):
    """A row's file name does not resolve inside the user's voicemail directory."""


class FileRemovalError(Exception):
    """The message's file could not be removed (the row was kept)."""


@dataclass(frozen=True, slots=True)
class VoicemailMessage:
    id: int
    username: str
    caller: str
    received_at: datetime  # UTC, aware
    duration: float
    cause: str | None
    heard: bool
    file_name: str


def message_view(m: VoicemailMessage) -> dict[str, Any]:
    """The public shape (API and audit log): no file name."""
    return {
        "id": m.id,
        "caller": m.caller,
        "received_at": m.received_at,
        "duration": m.duration,
        "cause": m.cause,
        "heard": m.heard,
    }


def _aware(value: Any) -> datetime:
    when: datetime = value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _message(row: Any) -> VoicemailMessage:
    return VoicemailMessage(
        id=int(row["id"]),
        username=str(row["username"]),
        caller=str(row["caller"]),
        received_at=_aware(row["received_at"]),
        duration=float(row["duration"]),
        cause=row["cause"],
        heard=bool(row["heard"]),
        file_name=str(row["file_name"]),
    )


# ----------------------------------------------------------------------------------- MWI


class _NotifyProtocol(asyncio.DatagramProtocol):
    def __init__(self, branch: str) -> None:
        self.branch = branch
        self.final: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        text = data.decode("utf-8", "replace")
        head = text.split("\r\n", 1)[0]
        if not head.startswith("SIP/2.0 ") or not head[8:11].isdigit():
            return
        code = int(head[8:11])
        if code >= 200 and f"branch={self.branch}" in text and not self.final.done():
            self.final.set_result(code)

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: keep retransmitting
        pass


class MwiNotifier:
    """Sends one ``message-summary`` NOTIFY per change, in the background (never blocks a request)."""

    def __init__(
        self, remote: tuple[str, int], domain: str, *, t1: float = 0.5, max_retransmits: int = 4
    ) -> None:
        self.remote = remote
        self.domain = domain
        self.t1 = t1
        self.max_retransmits = max_retransmits
        self._tasks: set[asyncio.Task[None]] = set()

    def notify(self, username: str, new: int, old: int) -> None:
        summary = MessageSummary(username=username, domain=self.domain, new=new, old=old)
        task = asyncio.get_running_loop().create_task(self._send(summary))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for the NOTIFYs in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _send(self, summary: MessageSummary) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.remote[0] else socket.AF_INET
        branch = "z9hG4bK" + secrets.token_hex(8)
        try:
            # Connected to the B2BUA: the socket's own address is the one the route to it uses (Via).
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _NotifyProtocol(branch), remote_addr=self.remote, family=family
            )
        except OSError as e:
            log.warning("mwi.send_failed user=%s error=%s", summary.username, e)
            return
        try:
            host, port = transport.get_extra_info("sockname")[:2]
            data = build_notify(
                summary,
                local=(str(host), int(port)),
                remote=self.remote,
                branch=branch,
                call_id=f"{secrets.token_hex(12)}@vidare-admin",
                tag=secrets.token_hex(4),
            )
            interval = self.t1
            for attempt in range(self.max_retransmits + 1):
                transport.sendto(data)
                if attempt == 0:
                    log.info(
                        "mwi.sent user=%s new=%d old=%d to=%s:%d",
                        summary.username,
                        summary.new,
                        summary.old,
                        *self.remote,
                    )
                try:
                    code = await asyncio.wait_for(asyncio.shield(protocol.final), interval)
                except TimeoutError:
                    interval = min(interval * 2, 4.0)
                    continue
                if code >= 300:
                    log.warning("mwi.rejected user=%s status=%d", summary.username, code)
                return
            log.warning("mwi.timeout user=%s", summary.username)
        except OSError as e:
            log.warning("mwi.send_failed user=%s error=%s", summary.username, e)
        finally:
            transport.close()


def notifier_from_config(config: Any) -> MwiNotifier | None:
    """The B2BUA's address (``sip.listen``) and the SIP domain; None when they are not configured."""
    try:
        address = config.address("sip", "listen")
        domain = str(config.get("sip", "domain"))
        host = str(address.host)
        port = int(address.port)
    except Exception:
        return None
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return MwiNotifier((host, port), domain)


# ----------------------------------------------------------------------------------- the boxes


class VoicemailAdmin:
    def __init__(
        self, engine: AsyncEngine, var_dir: Path, audit: AuditLog, mwi: MwiNotifier | None = None
    ) -> None:
        self.engine = engine
        self.root = var_dir / "voicemail"
        self.audit = audit
        self.mwi = mwi

    async def messages(self, username: str) -> list[VoicemailMessage]:
        """Unheard first, then heard; newest first within each (the media server's IVR plays oldest first)."""
        query = (
            sa.select(_t)
            .where(_t.c.username == username)
            .order_by(_t.c.heard, _t.c.received_at.desc(), _t.c.id.desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_message(r) for r in rows]

    async def message(self, username: str, msg_id: int) -> VoicemailMessage | None:
        query = sa.select(_t).where(_t.c.id == msg_id, _t.c.username == username)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _message(row)

    def path(self, m: VoicemailMessage) -> Path:
        """The message's file, checked to lie inside ``var/voicemail/<username>/``."""
        root = self.root.resolve()
        box = (root / m.username).resolve()
        if box.parent != root or m.username in ("", ".", "..") or m.username.startswith("."):
            raise UnsafePathError(f"voicemail box {m.username!r} is outside {root}")
        name = m.file_name
        if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
            raise UnsafePathError(f"file name {name!r} of message {m.id} is not a plain name")
        candidate = box / name
        resolved = candidate.resolve()
        if resolved.parent != box:
            raise UnsafePathError(f"file of message {m.id} resolves outside {box}")
        return candidate

    async def counts(self, username: str) -> tuple[int, int]:
        query = sa.select(_t.c.heard, sa.func.count()).where(_t.c.username == username).group_by(_t.c.heard)
        async with self.engine.connect() as conn:
            got = {bool(heard): int(n) for heard, n in (await conn.execute(query)).all()}
        return got.get(False, 0), got.get(True, 0)

    async def _notify(self, username: str) -> None:
        if self.mwi is None:
            return
        try:
            new, old = await self.counts(username)
            self.mwi.notify(username, new, old)
        except Exception:  # MWI is best effort: the change itself is done
            log.exception("mwi.failed user=%s", username)

    async def set_heard(self, actor: str, username: str, msg_id: int, heard: bool) -> VoicemailMessage | None:
        before = await self.message(username, msg_id)
        if before is None:
            return None
        if before.heard != heard:
            async with self.engine.begin() as conn:
                await conn.execute(
                    sa.update(_t).where(_t.c.id == msg_id, _t.c.username == username).values(heard=heard)
                )
        after = await self.message(username, msg_id)
        if after is None:  # deleted meanwhile (the media server's IVR)
            return None
        if before.heard != after.heard:
            await self.audit.record(
                actor,
                "voicemail.heard",
                f"voicemail:{username}/{msg_id}",
                {"heard": before.heard},
                {"heard": after.heard},
            )
            await self._notify(username)
        return after

    async def delete(self, actor: str, username: str, msg_id: int) -> bool:
        """Remove the file, then the row, as one step; False when there is no such message.

        Raises ``UnsafePathError`` (nothing changed) or ``FileRemovalError`` (the row kept).
        """
        # DELETE first (a read-then-write transaction can dead-lock on SQLite), RETURNING the row.
        query = sa.delete(_t).where(_t.c.id == msg_id, _t.c.username == username).returning(*_t.c)
        async with self.engine.begin() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                return False
            msg = _message(row)
            path = self.path(msg)  # UnsafePathError: the transaction rolls back, nothing changed
            try:
                path.unlink(missing_ok=True)
            except OSError as e:  # the transaction rolls back: the row stays
                reason = e.strerror or str(e)
                raise FileRemovalError(f"cannot remove the file of message {msg_id}: {reason}") from e
        target = f"voicemail:{username}/{msg_id}"
        await self.audit.record(actor, "voicemail.delete", target, message_view(msg), None)
        await self._notify(username)
        return True
