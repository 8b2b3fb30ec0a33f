"""The SIP message model (RFC 3261 sections 7, 20 and 25).

Routing needs only a handful of headers, so they are first-class attributes (Via, From, To,
Call-ID, CSeq, Max-Forwards, Contact, Route, Record-Route; Content-Length is derived from the body
when serializing). Every other header stays as raw text in ``headers`` (canonical long name,
value) in the order it arrived, and is only interpreted on demand.

The routing attributes are the source of truth for their headers: the serializer writes them from
the attributes, never from ``headers``. On a parsed message the parser checks them all but builds
objects only for Call-ID, CSeq and Max-Forwards: ``via``, ``from_``, ``to``, ``contact``,
``route``, ``record_route`` and a request's ``uri`` hold the raw text until first read (sippy's
lazy ``getHFBody``), then the parsed value, cached. A value never read is serialized as the very
text that arrived; a value read once is serialized from its object (so reading and then changing
``msg.via[0].params`` or ``msg.to.params`` shows up on the wire, as it always did).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "MULTI_VALUE_HEADERS",
    "CSeq",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "Uri",
    "Via",
]

# Headers whose value is a comma-separated list (RFC 3261 section 7.3.1); only these are
# split on commas by ``Message.header_values``.
MULTI_VALUE_HEADERS = frozenset(
    {
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow",
        "Allow-Events",
        "Content-Encoding",
        "Contact",
        "In-Reply-To",
        "Proxy-Require",
        "Record-Route",
        "Require",
        "Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
        "History-Info",
        "Diversion",
        "P-Asserted-Identity",
        "Privacy",
        "Reason",
    }
)


def _params_str(params: dict[str, str | None]) -> str:
    if not params:
        return ""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(slots=True)
class Uri:
    """A SIP/SIPS URI, or an opaque URI of another scheme (``opaque`` set, ``host`` empty).

    ``host`` is kept as written; an IPv6 reference keeps its brackets (``[2001:db8::1]``).
    ``params`` keys are lower-case; a parameter without ``=`` maps to ``None``.
    ``headers`` is the raw part after ``?`` (without the ``?``), still %-escaped.
    ``user`` is kept %-escaped as received; use ``user_unescaped`` for comparisons.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    opaque: str | None = None

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def transport(self) -> str | None:
        t = self.params.get("transport")
        return t.lower() if t else None

    @property
    def user_unescaped(self) -> str | None:
        if self.user is None:
            return None
        from urllib.parse import unquote

        return unquote(self.user)

    @property
    def host_bare(self) -> str:
        """The host without IPv6 brackets, lower-cased (for sockets and comparisons)."""
        h = self.host
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        return h.lower()

    def aor(self) -> str:
        """The address-of-record form ``scheme:user@host`` (no port, params or headers)."""
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        user = self.user_unescaped
        return f"{self.scheme}:{user}@{self.host.lower()}" if user else f"{self.scheme}:{self.host.lower()}"

    def copy(self) -> Uri:
        return Uri(
            self.scheme,
            self.user,
            self.password,
            self.host,
            self.port,
            dict(self.params),
            self.headers,
            self.opaque,
        )

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":")
                out.append(self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(_params_str(self.params))
        if self.headers is not None:
            out.append("?")
            out.append(self.headers)
        return "".join(out)


@dataclass(slots=True)
class NameAddr:
    """A name-addr (``"Bob" <sip:bob@x>;tag=1``) or addr-spec (``sip:bob@x;tag=1``) value.

    ``display`` is the display name as written, including quotes if it was quoted.
    ``params`` are the header parameters after the URI (``tag``, ``expires``, ``q``, ...);
    keys lower-case. ``star`` is true only for the ``Contact: *`` of an unregister.
    """

    uri: Uri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    star: bool = False

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def copy(self) -> NameAddr:
        return NameAddr(self.uri.copy(), self.display, dict(self.params), self.star)

    def __str__(self) -> str:
        if self.star:
            return "*"
        disp = f"{self.display} " if self.display else ""
        return f"{disp}<{self.uri}>{_params_str(self.params)}"


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;received=...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value when filled in; ``None`` when absent or empty."""
        v = self.params.get("rport")
        return int(v) if v else None

    def copy(self) -> Via:
        return Via(self.transport, self.host, self.port, dict(self.params))

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{_params_str(self.params)}"


@dataclass(slots=True, frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def _parsers() -> Any:
    # The value parsers live in sipcore.parser, which imports this module; a lazily kept value
    # only exists on a message that parser built, so the import below is always a cache hit.
    from sipcore import parser

    return parser


class Message:
    """Fields common to requests and responses.

    Keyword-only constructor: ``via``, ``from_``, ``to``, ``call_id``, ``cseq``, ``max_forwards``,
    ``contact``, ``route``, ``record_route``, ``headers``, ``body``.

    On a parsed message the routing headers other than Call-ID, CSeq and Max-Forwards (``via``,
    ``from_``, ``to``, ``contact``, ``route``, ``record_route``, and a request's ``uri``) are kept
    as the raw header text (already validated) until the attribute is first read; the parsed
    value is then cached and is from that moment the source of truth. The serializer writes the
    raw text of a value nobody read, so an untouched relayed header goes out byte-identical.
    """

    __slots__ = (
        "_contact",
        "_contact_raw",
        "_from",
        "_from_raw",
        "_record_route",
        "_record_route_raw",
        "_route",
        "_route_raw",
        "_to",
        "_to_raw",
        "_via",
        "_via_raw",
        "body",
        "call_id",
        "cseq",
        "headers",
        "max_forwards",
    )

    # Parsed value, or None while only the raw text (``*_raw``: header line values) is held.
    _via: list[Via] | None
    _via_raw: list[str] | None
    _from: NameAddr | None
    _from_raw: str | None
    _to: NameAddr | None
    _to_raw: str | None
    _contact: list[NameAddr] | None
    _contact_raw: list[str] | None
    _route: list[NameAddr] | None
    _route_raw: list[str] | None
    _record_route: list[NameAddr] | None
    _record_route_raw: list[str] | None
    call_id: str
    cseq: CSeq
    max_forwards: int | None
    # Every other header: (canonical long name, raw value), in arrival order.
    headers: list[tuple[str, str]]
    body: bytes

    def __init__(
        self,
        *,
        via: list[Via] | None = None,
        from_: NameAddr,
        to: NameAddr,
        call_id: str,
        cseq: CSeq,
        max_forwards: int | None = None,
        contact: list[NameAddr] | None = None,
        route: list[NameAddr] | None = None,
        record_route: list[NameAddr] | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        self._via = [] if via is None else via
        self._via_raw = None
        self._from = from_
        self._from_raw = None
        self._to = to
        self._to_raw = None
        self.call_id = call_id
        self.cseq = cseq
        self.max_forwards = max_forwards
        self._contact = [] if contact is None else contact
        self._contact_raw = None
        self._route = [] if route is None else route
        self._route_raw = None
        self._record_route = [] if record_route is None else record_route
        self._record_route_raw = None
        self.headers = [] if headers is None else headers
        self.body = body

    # --- lazily parsed routing values ------------------------------------------------------

    @property
    def via(self) -> list[Via]:
        v = self._via
        if v is None:
            v = self._via = _parsers()._via_lines(self._via_raw)
            self._via_raw = None
        return v

    @via.setter
    def via(self, value: list[Via]) -> None:
        self._via = value
        self._via_raw = None

    @property
    def from_(self) -> NameAddr:
        v = self._from
        if v is None:
            v = self._from = _parsers()._name_addr_value(self._from_raw)
            self._from_raw = None
        return v

    @from_.setter
    def from_(self, value: NameAddr) -> None:
        self._from = value
        self._from_raw = None

    @property
    def to(self) -> NameAddr:
        v = self._to
        if v is None:
            v = self._to = _parsers()._name_addr_value(self._to_raw)
            self._to_raw = None
        return v

    @to.setter
    def to(self, value: NameAddr) -> None:
        self._to = value
        self._to_raw = None

    @property
    def contact(self) -> list[NameAddr]:
        v = self._contact
        if v is None:
            v = self._contact = _parsers()._name_addr_lines(self._contact_raw, True)
            self._contact_raw = None
        return v

    @contact.setter
    def contact(self, value: list[NameAddr]) -> None:
        self._contact = value
        self._contact_raw = None

    @property
    def route(self) -> list[NameAddr]:
        v = self._route
        if v is None:
            v = self._route = _parsers()._name_addr_lines(self._route_raw, False)
            self._route_raw = None
        return v

    @route.setter
    def route(self, value: list[NameAddr]) -> None:
        self._route = value
        self._route_raw = None

    @property
    def record_route(self) -> list[NameAddr]:
        v = self._record_route
        if v is None:
            v = self._record_route = _parsers()._name_addr_lines(self._record_route_raw, False)
            self._record_route_raw = None
        return v

    @record_route.setter
    def record_route(self, value: list[NameAddr]) -> None:
        self._record_route = value
        self._record_route_raw = None

    @property
    def from_tag(self) -> str | None:
        """``from_.tag`` without building the From value when it was never read."""
        raw = self._from_raw
        return self.from_.tag if raw is None else _tag_scan(raw)

    @property
    def to_tag(self) -> str | None:
        """``to.tag`` without building the To value when it was never read."""
        raw = self._to_raw
        return self.to.tag if raw is None else _tag_scan(raw)

    # --- value semantics (as the dataclass this used to be) --------------------------------

    _FIELDS: ClassVar[tuple[tuple[str, str | None], ...]] = (
        ("via", "_via_raw"),
        ("from_", "_from_raw"),
        ("to", "_to_raw"),
        ("call_id", None),
        ("cseq", None),
        ("max_forwards", None),
        ("contact", "_contact_raw"),
        ("route", "_route_raw"),
        ("record_route", "_record_route_raw"),
        ("headers", None),
        ("body", None),
    )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        for name, raw in self._FIELDS:
            if raw is not None:
                # Identical raw text parses identically: no need to build either side.
                a_raw = getattr(self, raw)
                if a_raw is not None and a_raw == getattr(other, raw):
                    continue
            if getattr(self, name) != getattr(other, name):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self._FIELDS)
        return f"{type(self).__name__}({fields})"

    # --- other headers ---------------------------------------------------------------------

    def header(self, name: str) -> str | None:
        """The first raw value of a non-eager header (canonical name, case-insensitive)."""
        lname = name.lower()
        for n, v in self.headers:
            if n.lower() == lname:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        """All values of a non-eager header; list-valued headers are split on top-level commas."""
        from sipcore._abnf import split_commas

        lname = name.lower()
        out: list[str] = []
        for n, v in self.headers:
            if n.lower() == lname:
                if n in MULTI_VALUE_HEADERS:
                    out.extend(split_commas(v))
                else:
                    out.append(v)
        return out

    def set_header(self, name: str, value: str) -> None:
        """Replace every value of ``name`` with one value (appended where it was absent)."""
        lname = name.lower()
        for i, (n, _) in enumerate(self.headers):
            if n.lower() == lname:
                self.headers[i] = (name, value)
                self.headers[i + 1 :] = [h for h in self.headers[i + 1 :] if h[0].lower() != lname]
                return
        self.headers.append((name, value))

    def add_header(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def remove_header(self, name: str) -> None:
        lname = name.lower()
        self.headers = [h for h in self.headers if h[0].lower() != lname]

    @property
    def content_type(self) -> str | None:
        return self.header("Content-Type")


def _tag_scan(raw: str) -> str | None:
    """The ``tag`` header parameter of a validated raw name-addr, without parsing it."""
    gt = raw.rfind(">")
    if gt < 0:
        # An addr-spec without <> (kept only when the full parser accepted it): parse it.
        value: NameAddr = _parsers()._name_addr_value(raw)
        return value.tag
    for p in raw[gt + 1 :].split(";")[1:]:
        name, eq, val = p.partition("=")
        if name.strip(" \t").lower() == "tag":
            return val.strip(" \t") if eq else None
    return None


class Request(Message):
    """A request; keyword-only ``method`` and ``uri`` besides the ``Message`` fields."""

    __slots__ = ("_uri", "_uri_raw", "method")

    _uri: Uri | None
    _uri_raw: str | None
    method: str

    _FIELDS = (*Message._FIELDS, ("method", None), ("uri", "_uri_raw"))

    def __init__(
        self,
        *,
        method: str,
        uri: Uri,
        via: list[Via] | None = None,
        from_: NameAddr,
        to: NameAddr,
        call_id: str,
        cseq: CSeq,
        max_forwards: int | None = None,
        contact: list[NameAddr] | None = None,
        route: list[NameAddr] | None = None,
        record_route: list[NameAddr] | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(
            via=via,
            from_=from_,
            to=to,
            call_id=call_id,
            cseq=cseq,
            max_forwards=max_forwards,
            contact=contact,
            route=route,
            record_route=record_route,
            headers=headers,
            body=body,
        )
        self.method = method
        self._uri = uri
        self._uri_raw = None

    @property
    def uri(self) -> Uri:
        v = self._uri
        if v is None:
            v = self._uri = _parsers()._uri_value(self._uri_raw)
            self._uri_raw = None
        return v

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self._uri_raw = None


class Response(Message):
    """A response; keyword-only ``status`` and ``reason`` besides the ``Message`` fields."""

    __slots__ = ("reason", "status")

    status: int
    reason: str

    _FIELDS = (*Message._FIELDS, ("status", None), ("reason", None))

    def __init__(
        self,
        *,
        status: int,
        reason: str = "",
        via: list[Via] | None = None,
        from_: NameAddr,
        to: NameAddr,
        call_id: str,
        cseq: CSeq,
        max_forwards: int | None = None,
        contact: list[NameAddr] | None = None,
        route: list[NameAddr] | None = None,
        record_route: list[NameAddr] | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(
            via=via,
            from_=from_,
            to=to,
            call_id=call_id,
            cseq=cseq,
            max_forwards=max_forwards,
            contact=contact,
            route=route,
            record_route=record_route,
            headers=headers,
            body=body,
        )
        self.status = status
        self.reason = reason
