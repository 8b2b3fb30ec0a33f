"""Messages to bytes (RFC 3261 section 7).

The eager attributes are written from the attributes (never from ``headers``), long header names
only, and Content-Length is always computed from the body.
"""

from __future__ import annotations

from sipcore.message import NameAddr, Request, Response, Uri, Via

__all__ = ["serialize", "uri_str"]

# Names the serializer writes from attributes; copies of them in ``headers`` are ignored so a
# stray add_header("Via", ...) cannot duplicate or contradict the routing attributes.
_FROM_ATTRIBUTES = frozenset(
    {"via", "from", "to", "call-id", "cseq", "max-forwards", "contact", "route", "record-route",
     "content-length", "v", "f", "t", "i", "m", "l"}
)  # fmt: skip


def _params(params: dict[str, str | None]) -> str:
    if not params:
        return ""
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params.items()])


def uri_str(u: Uri) -> str:
    """Same text as ``str(u)``, written without the intermediate list (hot path)."""
    if u.opaque is not None:
        return f"{u.scheme}:{u.opaque}"
    s = u.scheme + ":"
    if u.user is not None:
        s += u.user if u.password is None else f"{u.user}:{u.password}"
        s += "@"
    s += u.host
    if u.port is not None:
        s += f":{u.port}"
    if u.params:
        s += _params(u.params)
    if u.headers is not None:
        s += "?" + u.headers
    return s


def _name_addr(a: NameAddr) -> str:
    if a.star:
        return "*"
    if a.display:
        return f"{a.display} <{uri_str(a.uri)}>{_params(a.params)}"
    return f"<{uri_str(a.uri)}>{_params(a.params)}"


def _via(v: Via) -> str:
    if v.port is None:
        return f"Via: SIP/2.0/{v.transport} {v.host}{_params(v.params)}"
    return f"Via: SIP/2.0/{v.transport} {v.host}:{v.port}{_params(v.params)}"


def serialize(msg: Request | Response) -> bytes:
    """The wire form of ``msg`` (CRLF line ends, UTF-8; surrogate escapes map back to raw octets)."""
    if isinstance(msg, Request):
        lines = [f"{msg.method} {uri_str(msg.uri)} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {msg.status} {msg.reason}"]
    lines += [_via(v) for v in msg.via]
    if msg.max_forwards is not None:
        lines.append(f"Max-Forwards: {msg.max_forwards}")
    if msg.route:
        lines += ["Route: " + _name_addr(a) for a in msg.route]
    if msg.record_route:
        lines += ["Record-Route: " + _name_addr(a) for a in msg.record_route]
    lines.append("From: " + _name_addr(msg.from_))
    lines.append("To: " + _name_addr(msg.to))
    lines.append("Call-ID: " + msg.call_id)
    lines.append(f"CSeq: {msg.cseq.number} {msg.cseq.method}")
    if msg.contact:
        lines += ["Contact: " + _name_addr(a) for a in msg.contact]
    skip = _FROM_ATTRIBUTES
    for name, value in msg.headers:
        if name.lower() not in skip:
            lines.append(f"{name}: {value}")
    body = msg.body
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body
