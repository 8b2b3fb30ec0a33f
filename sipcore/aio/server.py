"""The SIP server glue: datagrams and streams in, transaction layer, registrar, actions out.

This is the thin asyncio layer of STYLE item 10: it parses, hands messages to the sans-IO
transaction layer, runs the returned actions in order (send, timers, deliver) and answers the
requests this server handles itself (REGISTER, OPTIONS). Everything that decides lives in the
sans-IO modules; nothing here blocks, and nothing logs per packet unless ``trace`` is on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from policy.model import DirectorySnapshot, SipCredentials
from sipcore.b2bua import B2buaConfig, CallManager
from sipcore.b2bua.driver import B2BUA_METHODS, TIMER_OWNER, B2buaDriver, DriverOutput
from sipcore.b2bua.events import CdrRecord, Log, WriteCdr
from sipcore.b2bua.manager import Decide
from sipcore.builders import make_response, new_tag
from sipcore.digest import DigestAuthenticator
from sipcore.errors import LocalProtocolError, RemoteProtocolError
from sipcore.message import Request, Response
from sipcore.parser import parse_datagram
from sipcore.registrar import LocationService, Registrar
from sipcore.serializer import serialize
from sipcore.transaction import (
    CancelReceived,
    CancelTimer,
    Deliver,
    Destination,
    Send,
    SetTimer,
    Terminated,
    TimerConfig,
    TransactionLayer,
    TxKey,
)
from sipcore.uas_checks import check_request

from .timers import Timers, TimerService
from .transport import Source, TransportSet

__all__ = ["SipServer", "SipSettings", "stateless_error"]

# Methods this server answers itself; the B2BUA adds its own when it is installed.
_OWN_METHODS = frozenset({"REGISTER", "OPTIONS", "ACK", "CANCEL"})
_STATELESS_COPY = ("via", "from", "to", "call-id", "cseq")


@dataclass(frozen=True, slots=True)
class SipSettings:
    host: str
    port: int
    domain: str
    timers: TimerConfig
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    nonce_lifetime: float = 300.0
    digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5")
    udp_mtu_threshold: int = 1300
    trace: bool = False
    user_agent: str = "Vidare"


def stateless_error(e: RemoteProtocolError) -> bytes | None:
    """The stateless answer to a request that failed to parse, or None when it must be dropped.

    Copies Via, From, To, Call-ID and CSeq as received (RFC 3261 8.2.6.2) from the header lines
    the parser could still split; without a Via there is nowhere to answer.
    """
    if e.is_request is not True:
        return None
    lines: list[str] = []
    has_via = False
    for name, value in e.raw_headers:
        lname = name.lower()
        if lname in _STATELESS_COPY:
            if lname == "via":
                has_via = True
            elif lname == "to" and ";tag=" not in value.replace(" ", ""):
                value = f"{value};tag={new_tag()}"
            lines.append(f"{name}: {value}")
    if not has_via:
        return None
    from sipcore.builders import REASON_PHRASES

    status = e.status_hint
    reason = REASON_PHRASES.get(status, "Bad Request")
    if status == 400 and str(e):
        # The reason phrase tells the peer what was wrong; keep it one printable line.
        detail = "".join(c for c in str(e) if 32 <= ord(c) < 127)[:80]
        reason = f"Bad Request ({detail})"
    head = "\r\n".join([f"SIP/2.0 {status} {reason}", *lines, "Content-Length: 0"])
    return (head + "\r\n\r\n").encode("utf-8", "replace")


class SipServer:
    """One listening address: UDP + TCP transports, a transaction layer and the registrar."""

    def __init__(
        self,
        settings: SipSettings,
        snapshot: Callable[[], DirectorySnapshot],
        on_bindings_changed: Callable[[str], None] = lambda aor: None,
    ) -> None:
        self.settings = settings
        self._snapshot = snapshot
        self.on_bindings_changed = on_bindings_changed
        self.log = structlog.get_logger("vidare.sip")
        self.transports = TransportSet(self._on_datagram, self._on_message, self._on_stream_error)
        self.layer = TransactionLayer(settings.timers)
        self.location = LocationService()
        self.authenticator = DigestAuthenticator(
            settings.domain, nonce_lifetime=settings.nonce_lifetime, algorithms=settings.digest_algorithms
        )
        self.registrar = Registrar(
            self._domain_names,
            self.authenticator,
            self._credentials,
            self.location,
            min_expires=settings.min_expires,
            max_expires=settings.max_expires,
            default_expires=settings.default_expires,
            aor_domain=settings.domain,
        )
        self._timers: Timers | None = None
        # Where each live server transaction's request came from (for logs and the registrar).
        self._sources: dict[TxKey, Source] = {}
        self.allowed_methods = _OWN_METHODS
        self.b2bua: B2buaDriver | None = None
        self._cdr_sink: Callable[[CdrRecord], None] = lambda record: None
        self._msg_source = Destination("", 0)  # source of the message being processed

    def enable_b2bua(
        self, config: B2buaConfig, decide: Decide, cdr_sink: Callable[[CdrRecord], None]
    ) -> None:
        """Hand calls (INVITE and everything in their dialogs) to the B2BUA.

        ``cdr_sink`` gets each finished call's record; it must not block (queue it for the store).
        """
        manager = CallManager(
            config,
            snapshot=self._snapshot,
            decide=decide,
            location=self.location,
            auth=self.authenticator,
            wall=lambda now: datetime.now(UTC),
        )
        self.b2bua = B2buaDriver(manager, self.layer)
        self._cdr_sink = cdr_sink
        self.allowed_methods = _OWN_METHODS | B2BUA_METHODS

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._timers = TimerService(asyncio.get_running_loop())
        await self.transports.start(self.settings.host, self.settings.port)
        self.log.info(
            "sip.listening",
            address=f"{self.transports.local_host}:{self.transports.local_port}",
            transports=["UDP", "TCP"],
            domain=self.settings.domain,
        )

    async def close(self) -> None:
        await self.transports.close()

    def _domain_names(self) -> frozenset[str]:
        host = self.transports.local_host or self.settings.host
        port = self.transports.local_port or self.settings.port
        return frozenset({self.settings.domain, host, f"{host}:{port}"})

    def _credentials(self, username: str) -> SipCredentials | None:
        return self._snapshot().credentials.get(username)

    def now(self) -> float:
        assert self._timers is not None
        return self._timers.now()

    # -- network in -----------------------------------------------------------------------------

    def _on_datagram(self, data: bytes, source: Source) -> None:
        if len(data) < 4 and not data.strip():
            return  # keepalive (RFC 5626 CRLF ping)
        try:
            msg = parse_datagram(data)
        except RemoteProtocolError as e:
            reply = stateless_error(e)
            self.log.info(
                "sip.malformed",
                peer=f"{source.host}:{source.port}",
                reason=str(e),
                status=e.status_hint if reply else None,
            )
            if reply is not None:
                self.transports.send_udp(reply, source.host, source.port)
            return
        self._on_message(msg, source)

    def _on_stream_error(self, e: RemoteProtocolError, source: Source) -> bytes | None:
        self.log.info("sip.malformed", peer=f"{source.host}:{source.port}", transport="TCP", reason=str(e))
        return stateless_error(e)

    def _on_message(self, msg: Request | Response, source: Source) -> None:
        if self.settings.trace:
            self.log.debug("sip.recv", peer=f"{source.host}:{source.port}", start=_start_line(msg))
        now = self.now()
        if isinstance(msg, Request):
            _stamp_via(msg, source)
            self._msg_source = Destination(source.host, source.port, source.transport)
            tx, actions = self.layer.on_request(msg, self._msg_source, now)
            if tx is not None and tx.key not in self._sources:
                self._sources[tx.key] = source
        else:
            _, actions = self.layer.on_response(msg, now)
        self._execute(actions)

    def _on_timer(self, owner: Hashable, name: str) -> None:
        if self.b2bua is not None and isinstance(owner, tuple) and owner[0] == TIMER_OWNER:
            self._execute(self.b2bua.on_timer(owner, name, self.now()))
            return
        self._execute(self.layer.handle_timer(owner, name, self.now()))  # type: ignore[arg-type]

    # -- actions out --------------------------------------------------------------------------

    def _execute(self, actions: Sequence[DriverOutput]) -> None:
        for action in actions:
            kind = type(action)
            if kind is Send:
                assert isinstance(action, Send)
                self.send_message(action.message, action.dest)
            elif kind is SetTimer:
                assert isinstance(action, SetTimer) and self._timers is not None
                self._timers.set(action.owner, action.name, action.at, self._on_timer)
            elif kind is CancelTimer:
                assert isinstance(action, CancelTimer) and self._timers is not None
                self._timers.cancel(action.owner, action.name)
            elif kind is Deliver:
                assert isinstance(action, Deliver)
                self._deliver(action)
            elif kind is Terminated:
                assert isinstance(action, Terminated)
                self._sources.pop(action.owner, None)
                if self.b2bua is not None:
                    self.b2bua.forget(action.owner)
            elif kind is Log:
                assert isinstance(action, Log)
                self.log.info(action.event, **action.fields)
            elif kind is WriteCdr:
                assert isinstance(action, WriteCdr)
                self._cdr_sink(action.record)

    def send_message(self, message: Request | Response, dest: Destination) -> None:
        data = serialize(message)
        transport = dest.transport.upper()
        # RFC 3261 18.1.1: a request that would come close to the path MTU goes over TCP.
        if (
            transport == "UDP"
            and isinstance(message, Request)
            and len(data) > self.settings.udp_mtu_threshold
        ):
            message.via[0].transport = "TCP"
            data = serialize(message)
            transport = "TCP"
        if self.settings.trace:
            self.log.debug("sip.send", peer=f"{dest.host}:{dest.port}", start=_start_line(message))
        self.transports.send(data, dest.host, dest.port, transport)

    def respond(self, key: TxKey, response: Response) -> None:
        try:
            self._execute(self.layer.respond(key, response, self.now()))
        except LocalProtocolError as e:
            # The transaction ended under us (e.g. it timed out): nothing left to answer.
            self.log.warning("sip.respond_failed", reason=str(e), status=response.status)

    # -- the requests this server answers -------------------------------------------------------

    def _deliver(self, action: Deliver) -> None:
        event = action.event
        if isinstance(event, Request) and action.owner is not None:
            self._on_new_request(event, action.owner)
            return
        # B2BUA-HOOK: dialog-level ACKs, the B2BUA's responses, and CANCELs of its INVITEs.
        if self.b2bua is None:
            return
        if isinstance(event, Request):
            self._execute(self.b2bua.on_request(event, self._msg_source, self.now()))
        elif isinstance(event, Response):
            self._execute(self.b2bua.on_response(event, action.owner, self.now()))
        elif isinstance(event, CancelReceived):
            self._execute(self.b2bua.on_request(event.cancel, self._msg_source, self.now()))

    def _on_new_request(self, req: Request, key: TxKey) -> None:
        problem = check_request(req, allowed_methods=self.allowed_methods, supported=frozenset())
        if problem is not None:
            self.respond(key, problem)
            return
        if self.b2bua is not None and req.method in B2BUA_METHODS:
            source = self._sources.get(key)
            dest = Destination(source.host, source.port, source.transport) if source else self._msg_source
            self._execute(self.b2bua.on_request(req, dest, self.now()))
        elif req.method == "REGISTER":
            self._on_register(req, key)
        elif req.method == "OPTIONS":
            self.respond(key, self._options_response(req))

    def _options_response(self, req: Request) -> Response:
        return make_response(
            req,
            200,
            to_tag=req.to.tag or new_tag(),
            headers=[
                ("Allow", ", ".join(sorted(self.allowed_methods))),
                ("Accept", "application/sdp"),
                ("Accept-Language", "en, sv"),
                ("Server", self.settings.user_agent),
            ],
        )

    def _on_register(self, req: Request, key: TxKey) -> None:
        source = self._sources.get(key)
        src = (source.host, source.port, source.transport) if source else ("", 0, "UDP")
        result = self.registrar.handle_register(req, src, time.time())
        self.respond(key, result.response)
        status = result.response.status
        if result.changes and result.aor is not None:
            self.on_bindings_changed(result.aor)
            self.log.info(
                "register.bound",
                user=result.auth.username if result.auth else None,
                aor=result.aor,
                contacts=[str(b.contact.uri) for b in self.location.lookup(result.aor, time.time())],
            )
        elif status >= 300 and status != 401:
            self.log.info(
                "register.refused",
                status=status,
                user=result.auth.claimed_username if result.auth else None,
                reason=result.auth.reason if result.auth else result.response.reason,
            )
        elif status == 401 and result.auth is not None and result.auth.claimed_username:
            # A failed attempt with credentials (not the first challenge): worth an event.
            self.log.info(
                "register.auth_failed",
                user=result.auth.claimed_username,
                reason=result.auth.reason,
                peer=f"{src[0]}:{src[1]}",
            )


def _stamp_via(req: Request, source: Source) -> None:
    """RFC 3261 18.2.1 and RFC 3581: note where the request really came from on the top Via."""
    if not req.via:
        return
    top = req.via[0]
    if "rport" in top.params:
        top.params["rport"] = str(source.port)
        top.params["received"] = source.host
    elif top.host.strip("[]").lower() != source.host.lower():
        top.params["received"] = source.host


def _start_line(msg: Request | Response) -> str:
    if isinstance(msg, Request):
        return f"{msg.method} {msg.uri}"
    return f"{msg.status} {msg.reason}"
