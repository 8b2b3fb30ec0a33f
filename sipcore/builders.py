"""Building responses and fresh identifiers (RFC 3261 8.2.6, 8.1.1.4, 8.1.1.7, 19.3)."""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from sipcore.message import Request, Response

__all__ = ["REASON_PHRASES", "make_response", "new_branch", "new_call_id", "new_tag"]

# RFC 3261 section 21 plus the extension codes this stack sends.
REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

# Default reason for codes missing from the table, by class.
_CLASS_REASON = {
    1: "Trying", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error", 6: "Global Failure"
}  # fmt: skip


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """A response to ``request`` per RFC 3261 8.2.6.2: Via list, From, To, Call-ID and CSeq
    copied (deep copies, so later edits of either message do not leak into the other); the
    To tag is added only when given and the request's To has none."""
    to = request.to.copy()
    if to_tag is not None and "tag" not in to.params:
        to.params["tag"] = to_tag
    if reason is None:
        reason = REASON_PHRASES.get(status) or _CLASS_REASON.get(status // 100, "")
    return Response(
        status=status,
        reason=reason,
        via=[v.copy() for v in request.via],
        from_=request.from_.copy(),
        to=to,
        call_id=request.call_id,
        cseq=request.cseq,
        headers=list(headers),
    )


def new_branch() -> str:
    """A Via branch with the RFC 3261 magic cookie (unique in space and time, 8.1.1.7)."""
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    """A From/To tag: at least 32 bits of randomness (19.3)."""
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID (8.1.1.4), ``random@host``."""
    return f"{secrets.token_hex(12)}@{host}"
