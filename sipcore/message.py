"""The SIP message model (RFC 3261 sections 7, 20 and 25).

Routing needs only a handful of headers, so they are first-class attributes that are parsed
eagerly (Via, From, To, Call-ID, CSeq, Max-Forwards, Contact, Route, Record-Route; Content-Length
is derived from the body when serializing). Every other header stays as raw text in ``headers``
(canonical long name, value) in the order it arrived, and is only interpreted on demand.

The eager attributes are the source of truth for their headers: the serializer writes them from
the attributes, never from ``headers``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(slots=True, kw_only=True)
class Message:
    """Fields common to requests and responses."""

    via: list[Via] = field(default_factory=list)
    from_: NameAddr
    to: NameAddr
    call_id: str
    cseq: CSeq
    max_forwards: int | None = None
    contact: list[NameAddr] = field(default_factory=list)
    route: list[NameAddr] = field(default_factory=list)
    record_route: list[NameAddr] = field(default_factory=list)
    # Every other header: (canonical long name, raw value), in arrival order.
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

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


@dataclass(slots=True, kw_only=True)
class Request(Message):
    method: str
    uri: Uri


@dataclass(slots=True, kw_only=True)
class Response(Message):
    status: int
    reason: str = ""
