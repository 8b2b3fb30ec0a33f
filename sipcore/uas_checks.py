"""The UAS-core request checks of RFC 3261 8.2, as one pure function.

Order follows the RFC: method inspection (8.2.1), then header inspection (8.2.2: Request-URI
scheme, Require), content processing (8.2.3), the Accept of the request (21.4.7) and, for a
REGISTER, the registrar's To check (10.3 step 3). The first failing check answers.
Max-Forwards is deliberately not checked: an endpoint processes Max-Forwards 0 normally
(RFC 4475 3.3.11); only a proxying decision may answer 483.
"""

from __future__ import annotations

from sipcore._abnf import KNOWN_METHODS
from sipcore.builders import make_response, new_tag
from sipcore.message import Request, Response

__all__ = ["check_request"]

_URI_SCHEMES = frozenset({"sip", "sips", "tel"})
# Methods whose body is a session description (offer/answer, RFC 3264 and 6337).
_SDP_METHODS = frozenset({"INVITE", "ACK", "PRACK", "UPDATE"})
# Methods whose responses carry a session description, so their Accept must admit it.
_ACCEPT_METHODS = frozenset({"INVITE", "OPTIONS"})


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _accepts(accept_values: list[str], wanted: frozenset[str]) -> bool:
    for v in accept_values:
        mt = _media_type(v)
        if mt in wanted or mt == "*/*":
            return True
        if mt.endswith("/*") and any(w.startswith(mt[:-1]) for w in wanted):
            return True
    return False


def check_request(
    req: Request,
    *,
    allowed_methods: frozenset[str],
    supported: frozenset[str],
    accepted_content_types: frozenset[str] = frozenset({"application/sdp"}),
    to_tag: str | None = None,
) -> Response | None:
    """The error response the UAS core must send for ``req``, or ``None`` to process it.

    ``to_tag`` is the tag put on the error response's To (a fresh one when omitted).
    """
    if req.method == "ACK":
        return None  # a UAS never answers an ACK (RFC 3261 17.2.3); a broken one is dropped
    allow = ", ".join(sorted(allowed_methods))
    tag = to_tag if to_tag is not None else new_tag()
    method = req.method
    if method not in allowed_methods:
        # 405 for a method we know of but do not offer here, 501 for one we do not recognise.
        code = 405 if method in KNOWN_METHODS else 501
        return make_response(req, code, to_tag=tag, headers=[("Allow", allow)])
    if req.uri.scheme not in _URI_SCHEMES:
        return make_response(req, 416, to_tag=tag)
    if method != "CANCEL":  # Require is ignored on CANCEL (8.2.2.3)
        wanted = req.header_values("Require") + req.header_values("Proxy-Require")
        unsupported = [t for t in wanted if t and t.lower() not in supported]
        if unsupported:
            return make_response(req, 420, to_tag=tag, headers=[("Unsupported", ", ".join(unsupported))])
    accept_list = ", ".join(sorted(accepted_content_types))
    if req.body and method in _SDP_METHODS:
        ctype = req.content_type
        if ctype is None or _media_type(ctype) not in accepted_content_types:
            return make_response(req, 415, to_tag=tag, headers=[("Accept", accept_list)])
    if method in _ACCEPT_METHODS:
        accept = [v for v in req.header_values("Accept") if v]
        if accept and not _accepts(accept, accepted_content_types):
            return make_response(req, 406, to_tag=tag, headers=[("Accept", accept_list)])
    if method == "REGISTER" and (req.to.star or not req.to.uri.is_sip):
        return make_response(req, 400, "Invalid AOR in To", to_tag=tag)
    return None
