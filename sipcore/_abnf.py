"""RFC 3261 grammar pieces (section 25) as compiled regexes, with the ABNF quoted beside them.

As in h11's ``_abnf.py``, the regexes are written from the ABNF so a reader can check one against
the other. Everything works on ``str`` (the parser decodes header sections as UTF-8 with
``surrogateescape``, so arbitrary octets survive a round trip).
"""

from __future__ import annotations

import re

__all__ = [
    "COMPACT_NAMES",
    "HEADER_NAMES",
    "KNOWN_METHODS",
    "canonical_name",
    "split_commas",
]

# LWS  =  [*WSP CRLF] 1*WSP ; linear whitespace
# SWS  =  [LWS] ; sep whitespace
# The parser unfolds continuation lines first, so only WSP is left to match here.
SWS = r"[ \t]*"
LWS = r"[ \t]+"

# token  =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN)

# quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
# Tolerant on qdtext (any octet but DQUOTE and backslash): peers put raw bytes in display names.
# Written as an unrolled loop ("normal* (special normal*)*"): much faster in CPython's re.
QUOTED_STRING = r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"'
QUOTED_STRING_RE = re.compile(QUOTED_STRING)

# display-name  =  *(token LWS)/ quoted-string
DISPLAY_TOKENS_RE = re.compile(rf"{TOKEN}(?:{LWS}{TOKEN})*")

# scheme  =  ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")

# IPv4address  =  1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
# hostname     =  *( domainlabel "." ) toplabel [ "." ]
# Tolerant: underscores occur in real host names.
HOSTNAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?")
# IPv6reference  =  "[" IPv6address "]"
# IPv6address    =  hexpart [ ":" IPv4address ]
# hexpart        =  hexseq / hexseq "::" [ hexseq ] / "::" [ hexseq ]
# The RFC 3261 ABNF also admits "2001:db8:::192.0.2.1" (RFC 5118 4.10); we tolerate it.
IPV6_REFERENCE_RE = re.compile(r"\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\]")

# SIP-URI          =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]
# userinfo         =  ( user / telephone-subscriber ) [ ":" password ] "@"
# uri-parameters   =  *( ";" uri-parameter)
# uri-parameter    =  transport-param / user-param / method-param / ttl-param / maddr-param
#                     / lr-param / other-param
# other-param      =  pname [ "=" pvalue ]
# Fast path for the common form (no password, no ?headers, no ';' or '?' in the user part);
# anything it does not match goes through the general URI parser, which decides.
_SIP_URI_FAST = (
    r'(sips?):(?:([^@:\s<>";?]+)@)?'
    r"([A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\])"
    r"(?::([0-9]{1,5}))?"
    r'((?:;[^;?=\s<>"@]+(?:=[^;?\s<>"@]*)?)*)'
)
SIP_URI_FAST_RE = re.compile(_SIP_URI_FAST)

# generic-param  =  token [ EQUAL gen-value ]
# gen-value      =  token / host / quoted-string
# Fast path: ';'-separated params without LWS or quotes (the usual ";tag=abc;lr").
_PARAMS_FAST = rf'(?:;{TOKEN}(?:=[^;"\s]*)?)'
PARAMS_FAST_RE = re.compile(_PARAMS_FAST + "+")

# name-addr  =  [ display-name ] LAQUOT addr-spec RAQUOT
# Fast path: a SIP URI in <> with fast-path params, so one regex call does the whole value.
# Groups: quoted display, token display, then the SIP_URI_FAST_RE groups, then header params.
NAME_ADDR_FAST_RE = re.compile(
    rf"(?:({QUOTED_STRING})[ \t]*|({TOKEN}(?:{LWS}{TOKEN})*)[ \t]*)?<{_SIP_URI_FAST}>({_PARAMS_FAST}*)"
)

# via-parm       =  sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol  =  protocol-name SLASH protocol-version SLASH transport
# sent-by        =  host [ COLON port ]
# Fast path for the common, unfolded form; anything else goes through the tolerant VIA_RE.
VIA_FAST_RE = re.compile(
    r"SIP/2\.0/([A-Za-z]+) "
    r"([A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\])"
    rf"(?::([0-9]{{1,5}}))?({_PARAMS_FAST}*)"
)
# --- validation-only patterns for lazily kept values -----------------------------------------
# The parser keeps From, To, Contact, Route, Record-Route, Via and the Request-URI as raw text and
# builds objects only when asked. A value these patterns accept is guaranteed to parse later: each
# is a strict subset of the corresponding fast path above, with the port limited to 0..65535 and
# header-parameter values barred from ',', '<' and '>' so that a comma between elements is exactly
# where ``split_commas`` cuts. Anything they reject goes through the full parser at parse time,
# which raises (or, for an unusual but valid value, succeeds and the raw text is kept all the same).
PORT16 = r"(?:[0-5]?[0-9]{1,4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
# Possessive quantifiers (``*+``, ``++``) only where what follows can never start with a character
# the repeat consumed, so they change no match, only skip futile backtracking (about a third
# faster on CPython's re).
_TOKEN_P = r"[A-Za-z0-9\-.!%*_+`'~]++"
_HOST_V = r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_.])?|\[[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*\])"
_SIP_URI_V = (
    r'sips?:(?:[^@:\s<>";?]++@)?'
    rf"{_HOST_V}(?::{PORT16})?"
    r'(?:;[^;?=\s<>"@]++(?:=[^;?\s<>"@]*+)?)*+'
)
_PARAMS_V = rf'(?:;{_TOKEN_P}(?:=[^;,"\s<>]*+)?)*+'
_NAME_ADDR_V = rf"(?:{QUOTED_STRING}[ \t]*|{TOKEN}(?:{LWS}{TOKEN})*[ \t]*)?<{_SIP_URI_V}>{_PARAMS_V}"
_VIA_V = rf"SIP/2\.0/[A-Za-z]++ {_HOST_V}(?::{PORT16})?{_PARAMS_V}"
_COMMA = r"[ \t]*,[ \t]*"
# A Request-URI / a From or To value / a Contact, Route or Record-Route line / a Via line.
SIP_URI_VALID = re.compile(_SIP_URI_V).fullmatch
NAME_ADDR_VALID = re.compile(_NAME_ADDR_V).fullmatch
NAME_ADDR_LIST_VALID = re.compile(rf"{_NAME_ADDR_V}(?:{_COMMA}{_NAME_ADDR_V})*+").fullmatch
VIA_LIST_VALID = re.compile(rf"{_VIA_V}(?:{_COMMA}{_VIA_V})*+").fullmatch

# port  =  1*DIGIT
PORT_RE = re.compile(r"[0-9]{1,5}")

# Status-Code  =  3DIGIT ; 100-699
STATUS_CODE_RE = re.compile(r"[1-6][0-9][0-9]")

# SIP-Version  =  "SIP" "/" 1*DIGIT "." 1*DIGIT
SIP_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)

# CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ_RE = re.compile(rf"{SWS}([0-9]+){LWS}({TOKEN}){SWS}")

VIA_RE = re.compile(
    rf"(?:{TOKEN}){SWS}/{SWS}({TOKEN}){SWS}/{SWS}({TOKEN}){LWS}"
    rf"(\[[^\]]*\]|[^;:\s\[]+){SWS}(?::{SWS}([0-9]+))?{SWS}(;.*)?",
    re.DOTALL,
)

# Methods this stack knows about (RFC 3261 and its extensions), to tell 501 from 400.
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE",
        "NOTIFY", "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
    }
)  # fmt: skip

# Compact forms (RFC 3261 7.3.3 and the extension RFCs that define one).
COMPACT_NAMES = {
    "v": "Via",
    "i": "Call-ID",
    "f": "From",
    "t": "To",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "e": "Content-Encoding",
    "k": "Supported",
    "s": "Subject",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "b": "Referred-By",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

# Names whose canonical spelling is not simple title case are listed as such.
_KNOWN = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Diversion", "Error-Info", "Event", "Expires", "From",
    "History-Info", "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires",
    "Min-SE", "MIME-Version", "Organization", "P-Asserted-Identity", "P-Preferred-Identity",
    "Path", "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require",
    "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Replaces",
    "Reply-To", "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
    "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate",
)  # fmt: skip

# Lookup keyed by the spelling seen on the wire: exact canonical, lower case and compact forms.
# (The parser consults it directly on its hot path; use ``canonical_name`` elsewhere.)
HEADER_NAMES: dict[str, str] = {}
_NAMES = HEADER_NAMES
for _n in _KNOWN:
    _NAMES[_n] = _n
    _NAMES[_n.lower()] = _n
for _c, _n in COMPACT_NAMES.items():
    _NAMES[_c] = _n
    _NAMES[_c.upper()] = _n


def canonical_name(name: str) -> str:
    """The canonical long name of a header (``i`` -> ``Call-ID``, ``cseq`` -> ``CSeq``).

    Unknown names are kept as written: a proxy forwards them unchanged, and comparisons are
    case-insensitive anyway.
    """
    c = _NAMES.get(name)
    if c is not None:
        return c
    return _NAMES.get(name.lower(), name)


def split_commas(value: str) -> list[str]:
    """Split a header value on top-level commas (not inside quotes or <>), stripping each part.

    Empty parts are kept (as ``""``) so a caller can reject ``a,,b`` (RFC 3261 7.3.1 allows
    no empty elements).
    """
    if "," not in value:
        return [value.strip(" \t")]
    if '"' not in value and "<" not in value:
        return [p.strip(" \t") for p in value.split(",")]
    out: list[str] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            out.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(" \t"))
    return out
