"""Transaction keys: pure functions of a message (pjsip ``pjsip_tsx_create_key``).

Matching rules
==============

Client transactions (RFC 3261 17.1.3). We always generate the branch, so it always carries the
``z9hG4bK`` cookie. A response matches the client transaction whose request had the same
top-Via ``branch`` and the same CSeq method (the method is needed because a CANCEL carries the
branch of the INVITE it cancels). Key: ``("c", branch, method)``.

Server transactions, RFC 3261 rules (17.2.3), used when the top-Via branch starts with the
magic cookie ``z9hG4bK`` and is longer than the cookie itself:

- a request matches when the branch, the sent-by (host lower-cased, port as written) of the top
  Via and the method are equal; key ``("s", branch, host, port, method)``;
- an ACK matches the INVITE transaction: its method counts as INVITE;
- a CANCEL is a transaction of its own (method CANCEL); ``cancel_target_key`` gives the key of
  the INVITE it cancels (same fields, method INVITE).

RFC 2543 fallback (17.2.3, last paragraphs), for a branch without the cookie, a missing branch,
or a branch that is *only* the cookie (RFC 4475 ``badbranch``): the request matches when the
Request-URI, From tag, Call-ID, CSeq number, method and top Via are equal, and for non-INVITE
requests also the To tag. Key ``("s2543", uri, from_tag, call_id, cseq_number, method, via,
to_tag)``. For INVITE, ACK and the CANCEL target the To tag is left out of the key, because the
ACK carries the tag of *our* response while the INVITE had none; ``ack_matches`` then checks the
ACK's To tag against the To tag of the response the transaction sent.

The top Via enters a 2543 key as (transport, host, port, branch), so a retransmission (identical
Via) matches while a request through a different hop does not.
"""

from __future__ import annotations

from sipcore.message import Request, Response, Via

from .events import TxKey

__all__ = [
    "MAGIC_COOKIE",
    "ack_matches",
    "cancel_target_key",
    "client_key",
    "is_rfc3261_branch",
    "server_key",
]

MAGIC_COOKIE = "z9hG4bK"


def is_rfc3261_branch(branch: str | None) -> bool:
    """True when ``branch`` carries the cookie and something after it (RFC 4475 3.3.1 badbranch)."""
    return branch is not None and len(branch) > 7 and branch.startswith(MAGIC_COOKIE)


def _top_via(msg: Request | Response) -> Via | None:
    return msg.via[0] if msg.via else None


def client_key(msg: Request | Response) -> TxKey:
    """The client transaction key of our request, or of a response to it."""
    via = _top_via(msg)
    return ("c", via.branch if via is not None else None, msg.cseq.method)


def _server_key(req: Request, method: str) -> TxKey:
    via = _top_via(req)
    branch = via.branch if via is not None else None
    if via is not None and is_rfc3261_branch(branch):
        return ("s", branch, via.host.lower(), via.port, method)
    via_key = None if via is None else f"{via.transport.upper()} {via.host.lower()}:{via.port} {branch}"
    to_tag = None if method == "INVITE" else req.to.tag
    return ("s2543", str(req.uri), req.from_.tag, req.call_id, req.cseq.number, method, via_key, to_tag)


def server_key(req: Request) -> TxKey:
    """The server transaction key of an incoming request; an ACK gets its INVITE's key."""
    return _server_key(req, "INVITE" if req.method == "ACK" else req.method)


def cancel_target_key(cancel: Request) -> TxKey:
    """The key of the INVITE server transaction that a CANCEL cancels (RFC 3261 9.2)."""
    return _server_key(cancel, "INVITE")


def ack_matches(ack: Request, last_response: Response | None) -> bool:
    """The 2543 To-tag rule: the ACK's To tag must be the one our final response carried.

    With an RFC 3261 branch the branch already identifies the transaction, so this is only
    consulted for 2543 keys.
    """
    return last_response is not None and ack.to.tag == last_response.to.tag
