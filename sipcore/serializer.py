"""Messages to bytes (RFC 3261 section 7).

The routing attributes are written from the attributes (never from ``headers``), long header names
only, and Content-Length is always computed from the body. A routing value still held as raw text
(parsed, never read: see ``sipcore.message``) is written as that text, byte-identical.
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
    """The wire form of ``msg`` (CRLF line ends, UTF-8; surrogate escapes map back to raw octets).

    A routing value that was never read since parsing is written from its raw text (byte-identical
    to what arrived); one that was read is written from the object, so any change shows.
    """
    if isinstance(msg, Request):
        u = msg._uri
        lines = [f"{msg.method} {msg._uri_raw if u is None else uri_str(u)} SIP/2.0"]
    else:
        lines = [f"SIP/2.0 {msg.status} {msg.reason}"]
    add = lines.append
    raw = msg._via_raw
    if raw is not None:
        add("Via: " + "\r\nVia: ".join(raw))
    else:
        lines += [_via(v) for v in msg.via]
    if msg.max_forwards is not None:
        add(f"Max-Forwards: {msg.max_forwards}")
    raw = msg._route_raw
    if raw is not None:
        add("Route: " + "\r\nRoute: ".join(raw))
    elif msg._route:
        lines += ["Route: " + _name_addr(a) for a in msg.route]
    raw = msg._record_route_raw
    if raw is not None:
        add("Record-Route: " + "\r\nRecord-Route: ".join(raw))
    elif msg._record_route:
        lines += ["Record-Route: " + _name_addr(a) for a in msg.record_route]
    a = msg._from
    add("From: " + (_name_addr(a) if a is not None else msg._from_raw or ""))
    a = msg._to
    add("To: " + (_name_addr(a) if a is not None else msg._to_raw or ""))
    add("Call-ID: " + msg.call_id)
    cseq = msg.cseq
    add(f"CSeq: {cseq.number} {cseq.method}")
    raw = msg._contact_raw
    if raw is not None:
        add("Contact: " + "\r\nContact: ".join(raw))
    elif msg._contact:
        lines += ["Contact: " + _name_addr(a) for a in msg.contact]
    skip = _FROM_ATTRIBUTES
    lines += [f"{name}: {value}" for name, value in msg.headers if name.lower() not in skip]
    body = msg.body
    add(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body
