"""Bytes to messages: one datagram (UDP) or a byte stream (TCP/TLS), RFC 3261 sections 7 and 18.3.

Only the headers routing and matching need are looked at (Via, From, To, Call-ID, CSeq,
Max-Forwards, Contact, Route, Record-Route, Content-Length); every other header is kept raw. Of
those, all are validated here, but only Call-ID, CSeq and Max-Forwards become objects now: the
others (and the Request-URI) stay raw text that sipcore.message parses on first read. Validation
is a fast-pattern check (``*_VALID`` in _abnf) and, when that says no, the full value parser, so
every error still surfaces at parse time. ``parse_datagram`` first tries ``_parse_fast``, one pass
that handles the well-formed common case and bails out on anything else to the reference path
(``_split_head`` + ``_content_length`` + ``_build``); tests/test_message_lazy.py checks both agree.
Anything malformed raises ``RemoteProtocolError`` carrying ``is_request`` and the header lines
that could be split, so the caller can answer statelessly (requests) or drop (responses).
"""

from __future__ import annotations

import re

from sipcore._abnf import (
    CSEQ_RE,
    DISPLAY_TOKENS_RE,
    HEADER_NAMES,
    HOSTNAME_RE,
    IPV6_REFERENCE_RE,
    KNOWN_METHODS,
    NAME_ADDR_FAST_RE,
    NAME_ADDR_LIST_VALID,
    NAME_ADDR_VALID,
    PARAMS_FAST_RE,
    QUOTED_STRING_RE,
    SCHEME_RE,
    SIP_URI_FAST_RE,
    SIP_URI_VALID,
    SIP_VERSION_RE,
    STATUS_CODE_RE,
    TOKEN_RE,
    VIA_FAST_RE,
    VIA_LIST_VALID,
    VIA_RE,
    canonical_name,
    split_commas,
)
from sipcore.errors import RemoteProtocolError
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via

__all__ = ["StreamParser", "parse_datagram", "parse_name_addr", "parse_uri"]

_FOLD_RE = re.compile(r"\r\n[ \t]+")
# Characters that can never appear inside a URI (RFC 3261 25.1 + RFC 3986).
_URI_BAD_RE = re.compile(r'[\s<>"]')
_WS_RE = re.compile(r"\s")
_HOST_END_RE = re.compile(r"[:;?]")
_DIGITS_RE = re.compile(r"[0-9]+")
# A 32-bit CSeq must stay below 2**31 (RFC 3261 8.1.1.5); longer digit strings are rejected
# before int() so a huge value cannot trip Python's int-conversion limit.
_MAX_CSEQ = 2**31
_EAGER = frozenset(
    {"Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Route", "Record-Route",
     "Content-Length"}
)  # fmt: skip
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length")
# Every wire spelling of a routing header -> its bucket in ``_parse_fast`` (order matters there).
_EAGER_ORDER = ("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Route", "Record-Route",
                "Content-Length")  # fmt: skip
_EAGER_KIND = {w: _EAGER_ORDER.index(c) for w, c in HEADER_NAMES.items() if c in _EAGER_ORDER}

Message = Request | Response


def _bad(reason: str, status: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(reason, status)


# --- header section --------------------------------------------------------------------------


def _split_head(head: str) -> tuple[str, list[tuple[str, str]], str | None]:
    """Start line, (canonical name, value) pairs, and the first malformed line's complaint."""
    if "\r\n " in head or "\r\n\t" in head:
        # LWS folding: a continuation line is the same header; RFC 3261 7.3.1 says it means SP.
        head = _FOLD_RE.sub(" ", head)
    lines = head.split("\r\n")
    raw: list[tuple[str, str]] = []
    bad: str | None = None
    names = HEADER_NAMES
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            bad = bad or f"header line without a colon: {line[:40]!r}"
            continue
        canon = names.get(name)
        if canon is None:
            name = name.rstrip(" \t")
            canon = canonical_name(name)
            if canon is name and not TOKEN_RE.fullmatch(name):
                bad = bad or f"header name is not a token: {name[:40]!r}"
                continue
        raw.append((canon, value.strip(" \t")))
    return lines[0], raw, bad


def _content_length(raw: list[tuple[str, str]]) -> int | None:
    found: int | None = None
    for name, value in raw:
        if name == "Content-Length":
            if found is not None:
                raise _bad("more than one Content-Length")
            if not (value.isascii() and value.isdigit()) or len(value) > 10:
                raise _bad(f"invalid Content-Length {value[:20]!r}")
            found = int(value)
    return found


def _start_kind(start: str) -> bool | None:
    if start[:4].upper() == "SIP/":
        return False
    sp = start.find(" ")
    if sp > 0 and TOKEN_RE.fullmatch(start, 0, sp):
        return True
    return None


# --- values ----------------------------------------------------------------------------------


def _split_semis(s: str) -> list[str]:
    """Split on ';' outside quoted strings (header param values may be quoted)."""
    if '"' not in s:
        return s.split(";")
    out: list[str] = []
    start = 0
    in_quote = False
    i = 0
    while i < len(s):
        ch = s[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == ";":
            out.append(s[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise _bad("unterminated quoted string in parameter")
    out.append(s[start:])
    return out


def _fast_params(s: str) -> dict[str, str | None]:
    """Params already matched by a fast-path regex: no LWS, no quotes, names are tokens."""
    out: dict[str, str | None] = {}
    for p in s[1:].split(";"):
        name, eq, val = p.partition("=")
        out[name.lower()] = val if eq else None
    return out


def _parse_params(s: str) -> dict[str, str | None]:
    """``;name[=value]`` list (header or Via params); LWS around ';' and '=' is allowed."""
    if PARAMS_FAST_RE.fullmatch(s):
        return _fast_params(s)
    s = s.strip(" \t")
    if not s:
        return {}
    if s[0] != ";":
        raise _bad(f"unexpected text after value: {s[:40]!r}")
    out: dict[str, str | None] = {}
    for p in _split_semis(s[1:]):
        name, eq, val = p.partition("=")
        name = name.strip(" \t")
        if not name or not TOKEN_RE.fullmatch(name):
            raise _bad(f"empty or malformed parameter {p[:40]!r}")
        out[name.lower()] = val.strip(" \t") if eq else None
    return out


def _parse_uri(s: str) -> Uri:
    m = SIP_URI_FAST_RE.fullmatch(s)
    if m is not None:
        scheme, user, host, port_s, params_s = m.groups()
        if ":::" not in host and (port_s is None or int(port_s) <= 65535):
            params = _fast_params(params_s) if params_s else {}
            return Uri(scheme, user, None, host, None if port_s is None else int(port_s), params)
    return _parse_uri_general(s)


def _parse_uri_general(s: str) -> Uri:
    if _URI_BAD_RE.search(s):
        raise _bad(f"URI contains whitespace or delimiters: {s[:60]!r}")
    colon = s.find(":")
    if colon <= 0 or not SCHEME_RE.fullmatch(s, 0, colon):
        raise _bad(f"URI without a scheme: {s[:60]!r}")
    scheme = s[:colon].lower()
    rest = s[colon + 1 :]
    if scheme != "sip" and scheme != "sips":
        if not rest:
            raise _bad("empty URI")
        return Uri(scheme=scheme, opaque=rest)
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        # userinfo may hold ';', '?' and ',' (RFC 4475 intmeth/semiuri) but never a raw '@'.
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user, sep, pw = userinfo.partition(":")
        if sep:
            password = pw
        if not user:
            raise _bad("empty user part in SIP URI")
    if rest.startswith("["):
        end = rest.find("]")
        host = rest[: end + 1]
        if end < 0 or not IPV6_REFERENCE_RE.fullmatch(host):
            raise _bad(f"malformed IPv6 reference {rest[:60]!r}")
        if ":::" in host:
            # RFC 5118 4.10: RFC 3261's ABNF admits the three-colon form; treat it as '::'.
            host = host.replace(":::", "::")
        rest = rest[end + 1 :]
    else:
        m = _HOST_END_RE.search(rest)
        end = m.start() if m else len(rest)
        host = rest[:end]
        rest = rest[end:]
        if not HOSTNAME_RE.fullmatch(host):
            raise _bad(f"malformed host {host[:60]!r}")
    port: int | None = None
    if rest.startswith(":"):
        m = _DIGITS_RE.match(rest, 1)
        if m is None or m.end() - 1 > 5:
            # Also what an IPv6 address without [] ends up as (RFC 5118 4.2).
            raise _bad(f"malformed port in {s[:60]!r}")
        port = int(m.group())
        if port > 65535:
            raise _bad("port out of range")
        rest = rest[m.end() :]
    headers: str | None = None
    q = rest.find("?")
    if q >= 0:
        headers = rest[q + 1 :]
        rest = rest[:q]
    params: dict[str, str | None] = {}
    if rest:
        if rest[0] != ";":
            raise _bad(f"unexpected text after host in {s[:60]!r}")
        for p in rest[1:].split(";"):
            name, eq, val = p.partition("=")
            if not name:
                raise _bad(f"empty URI parameter in {s[:60]!r}")
            params[name.lower()] = val if eq else None
    return Uri(scheme, user, password, host, port, params, headers)


_STAR = "*"


def parse_name_addr(value: str) -> NameAddr:
    """One name-addr or addr-spec value (a stored Contact, a From) outside of a message."""
    return _parse_name_addr(value.strip())


def parse_uri(value: str) -> Uri:
    """One URI outside of a message (a configured target, a stored contact URI)."""
    return _parse_uri(value.strip())


def _parse_name_addr(v: str, *, allow_star: bool = False) -> NameAddr:
    m = NAME_ADDR_FAST_RE.fullmatch(v)
    if m is not None:
        quoted, tokens, scheme, user, host, port_s, uparams, hparams = m.groups()
        if ":::" not in host and (port_s is None or int(port_s) <= 65535):
            uri = Uri(
                scheme,
                user,
                None,
                host,
                None if port_s is None else int(port_s),
                _fast_params(uparams) if uparams else {},
            )
            return NameAddr(uri, quoted or tokens, _fast_params(hparams) if hparams else {})
    if not v:
        raise _bad("empty address")
    c = v[0]
    display: str | None = None
    if c == "<":
        rest = v
    elif c == '"':
        m = QUOTED_STRING_RE.match(v)
        if m is None:
            raise _bad("unterminated quoted display name")
        display = m.group()
        rest = v[m.end() :].lstrip(" \t")
        if not rest.startswith("<"):
            raise _bad("quoted display name without <URI>")
    else:
        if allow_star and v == _STAR:
            return NameAddr(Uri(), star=True)
        lt = v.find("<")
        if lt < 0:
            return _parse_addr_spec(v)
        display = v[:lt].rstrip(" \t")
        # No LWS before '<' (lwsdisp) is a known RFC 3261 grammar bug: accepted.
        if not DISPLAY_TOKENS_RE.fullmatch(display):
            raise _bad(f"display name is neither tokens nor quoted: {display[:40]!r}")
        rest = v[lt:]
    gt = rest.find(">")
    if gt < 0:
        raise _bad("'<' without '>'")
    return NameAddr(_parse_uri(rest[1:gt]), display, _parse_params(rest[gt + 1 :]))


def _parse_addr_spec(v: str) -> NameAddr:
    # RFC 3261 20.10: without <>, everything after the URI's first ';' are header params, and
    # the URI may not carry ',', '?' or ';' of its own (cparam01, regbadct).
    at = v.find("@")
    semi = v.find(";", at + 1 if at >= 0 else 0)
    uri_s = (v[:semi] if semi >= 0 else v).rstrip(" \t")
    if "?" in uri_s[at + 1 :] or "," in uri_s[at + 1 :]:
        raise _bad(f"URI with headers or commas must be enclosed in <>: {uri_s[:60]!r}")
    params = _parse_params(v[semi:]) if semi >= 0 else {}
    return NameAddr(_parse_uri(uri_s), None, params)


def _parse_via(part: str) -> Via:
    m = VIA_FAST_RE.fullmatch(part)
    if m is not None:
        transport, host, port_s, params_s = m.groups()
        port = None if port_s is None else int(port_s)
        if port is None or port <= 65535:
            return Via(transport.upper(), host, port, _fast_params(params_s) if params_s else {})
    m = VIA_RE.fullmatch(part)
    if m is None:
        raise _bad(f"malformed Via {part[:60]!r}")
    version, transport, host, port_s, params_s = m.groups()
    if version != "2.0" or part[:3].upper() != "SIP":
        raise _bad(f"Via protocol is not SIP/2.0: {part[:40]!r}")
    if host.startswith("["):
        if not IPV6_REFERENCE_RE.fullmatch(host):
            raise _bad(f"malformed IPv6 reference in Via {host[:60]!r}")
    elif not HOSTNAME_RE.fullmatch(host):
        raise _bad(f"malformed Via host {host[:60]!r}")
    port = None
    if port_s is not None:
        if len(port_s) > 5 or int(port_s) > 65535:
            raise _bad("Via port out of range")
        port = int(port_s)
    return Via(transport.upper(), host, port, _parse_params(params_s) if params_s else {})


def _parse_cseq(value: str) -> CSeq:
    num_s, sp, method = value.partition(" ")
    if sp and method in KNOWN_METHODS and num_s.isascii() and num_s.isdigit() and len(num_s) <= 10:
        num = int(num_s)
        if num < _MAX_CSEQ:
            return CSeq(num, method)
    m = CSEQ_RE.fullmatch(value)
    if m is None:
        raise _bad(f"malformed CSeq {value[:40]!r}")
    num_s, method = m.groups()
    if len(num_s) > 10 or int(num_s) >= _MAX_CSEQ:
        raise _bad("CSeq number out of range (must be < 2**31)")
    return CSeq(int(num_s), method)


# --- lazily kept values (called by sipcore.message on first access) -------------------------


def _via_lines(lines: list[str] | None) -> list[Via]:
    return [_parse_via(p) for line in lines or () for p in split_commas(line)]


def _name_addr_lines(lines: list[str] | None, allow_star: bool) -> list[NameAddr]:
    return [_parse_name_addr(p, allow_star=allow_star) for line in lines or () for p in split_commas(line)]


def _name_addr_value(value: str | None) -> NameAddr:
    return _parse_name_addr(value or "")


def _uri_value(value: str | None) -> Uri:
    return _parse_uri(value or "")


def _check_via_line(value: str) -> None:
    for p in split_commas(value):
        _parse_via(p)


def _check_name_addr_line(value: str, allow_star: bool) -> None:
    for p in split_commas(value):
        _parse_name_addr(p, allow_star=allow_star)


def _validate_routing(
    via: list[str], from_: str, to: str, contact: list[str], route: list[str], record_route: list[str]
) -> None:
    """Check the raw routing values will parse, with as few regex calls as the common case allows.

    All Via lines are checked as one comma-joined list, and From, To, Contact, Route and
    Record-Route as one list of name-addrs (From and To only when they hold no comma, so a
    list cannot pass for a single value). Anything the fast patterns reject is parsed in full,
    value by value, which raises the precise error (all of these are 400s).
    """
    if not VIA_LIST_VALID(via[0] if len(via) == 1 else ", ".join(via)):
        for v in via:
            _check_via_line(v)
    if "," in from_ or "," in to:
        for v in (from_, to):
            if not NAME_ADDR_VALID(v):
                _parse_name_addr(v)
        addrs = [*contact, *route, *record_route]
    else:
        addrs = [from_, to, *contact, *route, *record_route]
    if addrs and not NAME_ADDR_LIST_VALID(", ".join(addrs)):
        if len(addrs) != len(contact) + len(route) + len(record_route):
            _parse_name_addr(from_)
            _parse_name_addr(to)
        for v in contact:
            _check_name_addr_line(v, True)
        for v in route:
            _check_name_addr_line(v, False)
        for v in record_route:
            _check_name_addr_line(v, False)


# --- whole message ---------------------------------------------------------------------------


def _build(start: str, raw: list[tuple[str, str]], bad: str | None, body: bytes) -> Message:
    """Validate and assemble; routing values are checked here but kept raw (see message.py)."""
    is_request = not start[:4].upper() == "SIP/"
    if is_request:
        parts = start.split(" ")
        if len(parts) != 3:
            raise _bad("Request-Line must be 'Method SP Request-URI SP SIP-Version' (single SP)")
        method, uri_s, version = parts
        if version != "SIP/2.0" and version.upper() != "SIP/2.0":
            if SIP_VERSION_RE.fullmatch(version):
                raise _bad(f"unsupported SIP version {version[:20]!r}", 505)
            raise _bad(f"malformed SIP-Version {version[:20]!r}")
        if not TOKEN_RE.fullmatch(method):
            raise _bad("method is not a token")
        if not SIP_URI_VALID(uri_s) and _parse_uri(uri_s).headers is not None:
            # RFC 3261 19.1.1: headers are not allowed in a Request-URI (escruri).
            raise _bad("Request-URI carries ?headers")
    else:
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0].upper() != "SIP/2.0" or not STATUS_CODE_RE.fullmatch(parts[1]):
            raise _bad(f"malformed Status-Line {start[:40]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) == 3 else ""
    if bad is not None:
        raise _bad(bad)

    via: list[str] = []
    contact: list[str] = []
    route: list[str] = []
    record_route: list[str] = []
    headers: list[tuple[str, str]] = []
    from_: str | None = None
    to: str | None = None
    call_id: str | None = None
    cseq: CSeq | None = None
    max_forwards: int | None = None
    seen_mf = False
    eager = _EAGER
    for pair in raw:
        name, value = pair
        if name not in eager:
            headers.append(pair)
        elif name == "Via":
            via.append(value)
        elif name == "From" or name == "To":
            if (from_ if name == "From" else to) is not None:
                raise _bad(f"more than one {name}")
            if name == "From":
                from_ = value
            else:
                to = value
        elif name == "Call-ID":
            if call_id is not None:
                raise _bad("more than one Call-ID")
            # Call-ID = word ["@" word]: word admits <>"/[]?{} (intmeth), so only LWS is wrong.
            if not value or _WS_RE.search(value):
                raise _bad("malformed Call-ID")
            call_id = value
        elif name == "CSeq":
            if cseq is not None:
                raise _bad("more than one CSeq")
            cseq = _parse_cseq(value)
        elif name == "Contact" or name == "Route" or name == "Record-Route":
            (contact if name == "Contact" else route if name == "Route" else record_route).append(value)
        elif name == "Max-Forwards":
            if seen_mf:
                raise _bad("more than one Max-Forwards")
            seen_mf = True
            if not (value.isascii() and value.isdigit()) or len(value) > 10:
                raise _bad("malformed Max-Forwards")
            max_forwards = int(value)
        # Content-Length was checked by the framing and is derived from the body from now on.

    if not via or from_ is None or to is None or call_id is None or cseq is None:
        present = (("Via", via or None), ("From", from_), ("To", to), ("Call-ID", call_id), ("CSeq", cseq))
        missing = [n for n, v in present if v is None]
        raise _bad(f"missing mandatory header(s): {', '.join(missing)}")
    _validate_routing(via, from_, to, contact, route, record_route)
    if is_request:
        if cseq.method != method:
            # mismatch02: an unknown method with a mismatching CSeq gets 501 (RFC 4475 3.1.2.18).
            raise _bad("CSeq method does not match the Request-Line", 400 if method in KNOWN_METHODS else 501)
        req = _new_request(method)
        req._uri = None
        req._uri_raw = uri_s
        msg: Message = req
    else:
        msg = _new_response(status, reason)
    _fill(msg, via, from_, to, call_id, cseq, max_forwards, contact, route, record_route, headers, body)
    return msg


def _fill(
    msg: Message,
    via: list[str],
    from_: str,
    to: str,
    call_id: str,
    cseq: CSeq,
    max_forwards: int | None,
    contact: list[str],
    route: list[str],
    record_route: list[str],
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    """Set a new message's slots directly (no __init__): None in a parsed-value slot means
    "the raw text beside it is the value" (see sipcore.message)."""
    msg._via = None
    msg._via_raw = via
    msg._from = None
    msg._from_raw = from_
    msg._to = None
    msg._to_raw = to
    msg.call_id = call_id
    msg.cseq = cseq
    msg.max_forwards = max_forwards
    if contact:
        msg._contact = None
        msg._contact_raw = contact
    else:
        msg._contact = []
        msg._contact_raw = None
    if route:
        msg._route = None
        msg._route_raw = route
    else:
        msg._route = []
        msg._route_raw = None
    if record_route:
        msg._record_route = None
        msg._record_route_raw = record_route
    else:
        msg._record_route = []
        msg._record_route_raw = None
    msg.headers = headers
    msg.body = body


# The parser builds messages through their constructors with placeholders, then ``_fill`` sets
# every routing slot to its raw text: classes compiled by mypyc have no bare ``__new__``.
_PLACEHOLDER = NameAddr(Uri())
_PLACEHOLDER_CSEQ = CSeq(1, "ACK")


def _new_request(method: str) -> Request:
    return Request(
        method=method,
        uri=_PLACEHOLDER.uri,
        from_=_PLACEHOLDER,
        to=_PLACEHOLDER,
        call_id="",
        cseq=_PLACEHOLDER_CSEQ,
    )


def _new_response(status: int, reason: str) -> Response:
    return Response(
        status=status, reason=reason, from_=_PLACEHOLDER, to=_PLACEHOLDER, call_id="", cseq=_PLACEHOLDER_CSEQ
    )


def _parse_fast(head: str) -> tuple[Message, int | None] | None:
    """One pass over a well-formed header section: the message (body still empty) and its
    Content-Length, or None as soon as anything is unusual or wrong. The caller then runs the
    general path (``_split_head`` + ``_content_length`` + ``_build``), which is the reference:
    it produces the same message, or raises the precise error in the precise order."""
    if "\r\n " in head or "\r\n\t" in head:
        return None
    lines = head.split("\r\n")
    start = lines[0]
    parts = start.split(" ", 2)
    if len(parts) != 3:
        return None
    is_request = start[:4] != "SIP/"
    if is_request:
        method, uri_s, version = parts
        if version != "SIP/2.0" or method not in KNOWN_METHODS or not SIP_URI_VALID(uri_s):
            return None
    else:
        code = parts[1]
        if parts[0] != "SIP/2.0" or not STATUS_CODE_RE.fullmatch(code):
            return None
    names = HEADER_NAMES
    # One dict probe for a routing header's line (its wire spelling gives its list directly),
    # two for any other; single-valued headers collect into lists too and are checked for
    # exactly one value afterwards.
    kind_of = _EAGER_KIND
    buckets: tuple[list[str], ...] = ([], [], [], [], [], [], [], [], [], [])
    via, from_l, to_l, call_id_l, cseq_l, mf_l, contact, route, record_route, cl_l = buckets
    headers: list[tuple[str, str]] = []
    add_other = headers.append
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            return None
        kind = kind_of.get(name)
        if kind is None:
            canon = names.get(name)
            if canon is None:
                if not TOKEN_RE.fullmatch(name) or name.lower() in names:
                    return None
                canon = name  # an unknown name, kept as written
            add_other((canon, value.strip(" \t")))
        else:
            buckets[kind].append(value.strip(" \t"))
    if not via or len(from_l) != 1 or len(to_l) != 1 or len(call_id_l) != 1 or len(cseq_l) != 1:
        return None
    from_ = from_l[0]
    to = to_l[0]
    call_id = call_id_l[0]
    if not call_id or _WS_RE.search(call_id):
        return None
    num_s, sp, cseq_method = cseq_l[0].partition(" ")
    if not (sp and cseq_method in KNOWN_METHODS and num_s.isascii() and num_s.isdigit()):
        return None
    if len(num_s) > 10 or int(num_s) >= _MAX_CSEQ or (is_request and cseq_method != method):
        return None
    max_forwards: int | None = None
    if mf_l:
        mf_s = mf_l[0]
        if len(mf_l) > 1 or not (mf_s.isascii() and mf_s.isdigit()) or len(mf_s) > 10:
            return None
        max_forwards = int(mf_s)
    cl: int | None = None
    if cl_l:
        cl_s = cl_l[0]
        if len(cl_l) > 1 or not (cl_s.isascii() and cl_s.isdigit()) or len(cl_s) > 10:
            return None
        cl = int(cl_s)
    if not VIA_LIST_VALID(via[0] if len(via) == 1 else ", ".join(via)):
        return None
    if (
        "," in from_
        or "," in to
        or not NAME_ADDR_LIST_VALID(", ".join([from_, to, *contact, *route, *record_route]))
    ):
        return None
    msg: Message
    if is_request:
        req = _new_request(method)
        req._uri = None
        req._uri_raw = uri_s
        msg = req
    else:
        msg = _new_response(int(code), parts[2])
    cseq = CSeq(int(num_s), cseq_method)
    _fill(msg, via, from_, to, call_id, cseq, max_forwards, contact, route, record_route, headers, b"")
    return msg, cl


def _annotate(e: RemoteProtocolError, start: str, raw: list[tuple[str, str]]) -> RemoteProtocolError:
    e.is_request = _start_kind(start)
    e.raw_headers = raw
    return e


def _decode(head: bytes | bytearray) -> str:
    # surrogateescape: arbitrary octets survive and re-encode to the same bytes.
    return head.decode("utf-8", "surrogateescape")


def parse_datagram(data: bytes) -> Message:
    """Parse one UDP datagram (RFC 3261 18.3: Content-Length frames the body, trailing octets
    are ignored; without Content-Length the body is the rest of the datagram)."""
    start = ""
    raw: list[tuple[str, str]] = []
    try:
        # Leading CRLFs are keepalive residue (RFC 3261 7.5 tells parsers to skip them).
        pos = 0
        while data.startswith(b"\r\n", pos):
            pos += 2
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            if not data.endswith(b"\r\n") or len(data) <= pos:
                start = _decode(data[pos : pos + 200]).partition("\r\n")[0]
                raise _bad("header section not terminated by an empty line")
            # The datagram ends right after the last header line (RFC 4475 baddn as archived):
            # judge the headers rather than the missing empty line.
            end = len(data) - 2
            body_start = len(data)
        else:
            body_start = end + 4
        head = _decode(data[pos:end])
        fast = _parse_fast(head)
        if fast is not None:
            msg, cl = fast
            if cl is None:
                msg.body = data[body_start:]
                return msg
            if body_start + cl <= len(data):
                msg.body = data[body_start : body_start + cl]
                return msg
        start, raw, bad = _split_head(head)
        cl = _content_length(raw)
        if cl is None:
            body = data[body_start:]
        else:
            if body_start + cl > len(data):
                raise _bad("Content-Length larger than the datagram")
            body = data[body_start : body_start + cl]
        return _build(start, raw, bad, body)
    except RemoteProtocolError as e:
        raise _annotate(e, start, raw) from None
    except (ValueError, IndexError, KeyError, UnicodeError) as e:  # defensive: never leak these
        raise _annotate(_bad(f"unparseable message: {e}"), start, raw) from e


class StreamParser:
    """Frame messages out of a TCP/TLS byte stream (Content-Length is mandatory there).

    ``next_message()`` returns ``None`` when more data is needed. A framing error (bad or missing
    Content-Length, oversized header section or body) is final: every later call raises it again
    and the connection should be closed. A message that frames correctly but is otherwise
    malformed raises once and the stream carries on with the next message.
    """

    def __init__(self, *, max_header_size: int = 16384, max_body_size: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max_header = max_header_size
        self._max_body = max_body_size
        self._failed: RemoteProtocolError | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def _fail(self, e: RemoteProtocolError, start: str, raw: list[tuple[str, str]]) -> RemoteProtocolError:
        self._failed = _annotate(e, start, raw)
        return self._failed

    def next_message(self) -> Message | None:
        if self._failed is not None:
            raise self._failed
        buf = self._buf
        pos = 0
        while buf.startswith(b"\r\n", pos):  # RFC 5626 keepalive CRLFs between messages
            pos += 2
        if pos:
            del buf[:pos]
        if not buf:
            return None
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._max_header:
                raise self._fail(_bad("header section too large", 413), "", [])
            return None
        if end > self._max_header:
            raise self._fail(_bad("header section too large", 413), "", [])
        head = _decode(buf[:end])
        fast = _parse_fast(head)
        if fast is not None:
            msg, fast_cl = fast
            if fast_cl is not None and fast_cl <= self._max_body:
                total = end + 4 + fast_cl
                if len(buf) < total:
                    return None
                msg.body = bytes(buf[end + 4 : total])
                del buf[:total]
                return msg
        start, raw, bad = _split_head(head)
        try:
            cl = _content_length(raw)
        except RemoteProtocolError as e:
            raise self._fail(e, start, raw) from None
        if cl is None:
            raise self._fail(_bad("Content-Length is mandatory on stream transports"), start, raw)
        if cl > self._max_body:
            raise self._fail(_bad("body too large", 413), start, raw)
        total = end + 4 + cl
        if len(buf) < total:
            return None
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        try:
            return _build(start, raw, bad, body)
        except RemoteProtocolError as e:
            raise _annotate(e, start, raw) from None
        except (ValueError, IndexError, KeyError, UnicodeError) as e:
            raise _annotate(_bad(f"unparseable message: {e}"), start, raw) from e
