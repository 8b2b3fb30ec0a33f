"""UDP and TCP transports on the running event loop (RFC 3261 section 18).

The transports only move bytes: UDP datagrams and TCP streams are handed to the owner as
``(data | message, Source)``; the owner parses, dispatches and answers. TCP connections are kept
in a table by peer address so that requests and responses to the same peer reuse them
(RFC 3261 18.1 / 18.2.2), and idle ones are closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sipcore.errors import RemoteProtocolError
from sipcore.message import Request, Response
from sipcore.parser import StreamParser

__all__ = ["Source", "TransportSet"]

MAX_TCP_CONNECTIONS = 4096


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: peer address and the transport it arrived on."""

    host: str
    port: int
    transport: str  # "UDP" | "TCP"


DatagramHandler = Callable[[bytes, Source], None]
StreamHandler = Callable[[Request | Response, Source], None]
StreamErrorHandler = Callable[[RemoteProtocolError, Source], bytes | None]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: TransportSet) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int] | tuple[str, int, int, int]) -> None:
        self._owner.on_datagram(data, Source(addr[0], addr[1], "UDP"))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: UDP has no connection to fail, the transaction
        # timers deal with the silence.
        pass


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: TransportSet) -> None:
        self._owner = owner
        self._parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.peer: Source | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Source(host, port, "TCP")
        self._owner.tcp_opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.tcp_closed(self)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.transport is not None
        self._parser.feed(data)
        while True:
            try:
                msg = self._parser.next_message()
            except RemoteProtocolError as e:
                # Framing is lost on a stream: answer if we can, then close (RFC 4475 ncl/mcl01).
                reply = self._owner.on_stream_error(e, self.peer)
                if reply is not None:
                    self.transport.write(reply)
                self.transport.close()
                return
            if msg is None:
                return
            self._owner.on_stream_message(msg, self.peer)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class TransportSet:
    """The UDP socket and the TCP listener of one address, plus outgoing TCP connections."""

    def __init__(
        self,
        on_datagram: DatagramHandler,
        on_stream_message: StreamHandler,
        on_stream_error: StreamErrorHandler,
    ) -> None:
        self.on_datagram = on_datagram
        self.on_stream_message = on_stream_message
        self.on_stream_error = on_stream_error
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.Server | None = None
        self._tcp: dict[tuple[str, int], _TcpConnection] = {}
        self._pending: dict[tuple[str, int], list[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.local_host = ""
        self.local_port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), local_addr=(host, port))
        self._udp = udp
        sock = udp.get_extra_info("socket")
        # Bursts of calls arrive faster than one loop turn; a larger buffer avoids drops.
        for opt in (8, 7):  # SO_RCVBUF, SO_SNDBUF
            try:
                sock.setsockopt(1, opt, 4 * 1024 * 1024)
            except OSError:
                pass
        self.local_host, self.local_port = udp.get_extra_info("sockname")[:2]
        self._tcp_server = await loop.create_server(
            lambda: _TcpConnection(self), host=self.local_host, port=self.local_port, reuse_address=True
        )

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
        for conn in list(self._tcp.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self._tcp_server is not None:
            await self._tcp_server.wait_closed()

    # -- connection table -------------------------------------------------------------------

    def tcp_opened(self, conn: _TcpConnection) -> None:
        assert conn.peer is not None
        if len(self._tcp) >= MAX_TCP_CONNECTIONS and conn.transport is not None:
            conn.transport.close()
            return
        self._tcp[(conn.peer.host, conn.peer.port)] = conn

    def tcp_closed(self, conn: _TcpConnection) -> None:
        if conn.peer is not None and self._tcp.get((conn.peer.host, conn.peer.port)) is conn:
            del self._tcp[(conn.peer.host, conn.peer.port)]

    # -- sending ------------------------------------------------------------------------------

    def send_udp(self, data: bytes, host: str, port: int) -> None:
        if self._udp is not None:
            self._udp.sendto(data, (host, port))

    def send_tcp(self, data: bytes, host: str, port: int) -> None:
        """Send over the open connection to host:port, opening one if there is none."""
        key = (host, port)
        conn = self._tcp.get(key)
        if conn is not None:
            conn.send(data)
            return
        queue = self._pending.get(key)
        if queue is not None:  # a connect is already under way
            queue.append(data)
            return
        self._pending[key] = [data]
        task = asyncio.get_running_loop().create_task(self._connect(host, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        key = (host, port)
        try:
            _, conn = await loop.create_connection(lambda: _TcpConnection(self), host, port)
        except OSError:
            # The transaction's timers report the failure (Timer B/F), as for a lost datagram.
            self._pending.pop(key, None)
            return
        self._tcp[key] = conn
        for data in self._pending.pop(key, []):
            conn.send(data)

    def send(self, data: bytes, host: str, port: int, transport: str) -> None:
        if transport == "TCP":
            self.send_tcp(data, host, port)
        else:
            self.send_udp(data, host, port)
