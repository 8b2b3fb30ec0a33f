"""Dialog state per RFC 3261 section 12, for both roles.

A dialog is created from the INVITE and the response that carries the UAS's tag: a UAC takes
the route set from the response's Record-Route in reverse order (12.1.2), a UAS from the
request's Record-Route in order (12.1.1); both take the remote target from the peer's Contact.
In-dialog requests are built from that state (12.2.1.1): Request-URI and Route per loose
routing, or strict routing when the first route lacks ``lr`` (12.2.1.1, 16.12.1.1). An
incoming in-dialog request is checked against the remote CSeq (12.2.2: lower -> 500) and a
target refresh (re-INVITE, UPDATE) replaces the remote target.

Pure data: building a request never sends it; the caller picks the branch (``Via``).
"""

from __future__ import annotations

import enum

from sipcore.errors import LocalProtocolError
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via

from .dialog_id import DialogId

__all__ = ["TARGET_REFRESH_METHODS", "Dialog", "DialogState"]

# Requests whose Contact replaces the remote target (RFC 3261 12.2, RFC 3311 5.1).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE"})


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Dialog:
    """One dialog; ``role`` is "uac" (we sent the INVITE) or "uas" (we received it)."""

    __slots__ = (
        "id",
        "local",
        "local_contact",
        "local_seq",
        "remote",
        "remote_seq",
        "remote_target",
        "role",
        "route_set",
        "state",
    )

    def __init__(
        self,
        *,
        id: DialogId,
        role: str,
        state: DialogState,
        local: NameAddr,
        remote: NameAddr,
        local_seq: int,
        remote_seq: int | None,
        remote_target: Uri,
        route_set: list[NameAddr],
        local_contact: NameAddr,
    ) -> None:
        self.id = id
        self.role = role
        self.state = state
        self.local = local  # our From (UAC) or To (UAS) value, with our tag
        self.remote = remote  # the peer's, with its tag
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_contact = local_contact

    # -- creation -------------------------------------------------------------------------------

    @classmethod
    def uac(cls, invite: Request, response: Response, local_contact: NameAddr) -> Dialog:
        """Our INVITE got ``response`` (101-299 with a To tag): a dialog per 12.1.2."""
        tag = response.to.tag
        if not tag or not 100 < response.status < 300:
            raise LocalProtocolError(f"no dialog from a {response.status} without a To tag")
        target = response.contact[0].uri.copy() if response.contact else invite.uri.copy()
        return cls(
            id=DialogId(invite.call_id, invite.from_.tag or "", tag),
            role="uac",
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            local=invite.from_.copy(),
            remote=response.to.copy(),
            local_seq=invite.cseq.number,
            remote_seq=None,
            remote_target=target,
            route_set=[r.copy() for r in reversed(response.record_route)],
            local_contact=local_contact,
        )

    @classmethod
    def uas(cls, invite: Request, local_tag: str, local_contact: NameAddr) -> Dialog:
        """We answer ``invite`` with ``local_tag``: an early dialog per 12.1.1 (confirm on 2xx)."""
        local = invite.to.copy()
        local.params["tag"] = local_tag
        target = invite.contact[0].uri.copy() if invite.contact else invite.from_.uri.copy()
        return cls(
            id=DialogId(invite.call_id, local_tag, invite.from_.tag or ""),
            role="uas",
            state=DialogState.EARLY,
            local=local,
            remote=invite.from_.copy(),
            local_seq=0,
            remote_seq=invite.cseq.number,
            remote_target=target,
            route_set=[r.copy() for r in invite.record_route],
            local_contact=local_contact,
        )

    # -- updates from the peer --------------------------------------------------------------------

    def on_response(self, response: Response) -> None:
        """A response within this dialog: 2xx confirms; a 2xx/1xx Contact refreshes the target."""
        if 200 <= response.status < 300 and self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED
            if self.role == "uac":
                # The route set is recomputed from the 2xx (12.1.2): it may differ from the 1xx's.
                self.route_set = [r.copy() for r in reversed(response.record_route)]
        if response.contact and response.status < 300 and response.cseq.method in TARGET_REFRESH_METHODS:
            self.remote_target = response.contact[0].uri.copy()

    def receive_request(self, req: Request) -> int | None:
        """Check an incoming in-dialog request (12.2.2); returns an error status or None.

        ACK and CANCEL reuse the CSeq of their INVITE, so they are not ordered.
        """
        if req.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and req.cseq.number < self.remote_seq:
                return 500
            self.remote_seq = req.cseq.number
        if req.method in TARGET_REFRESH_METHODS and req.contact:
            self.remote_target = req.contact[0].uri.copy()
        if req.method == "BYE":
            self.state = DialogState.TERMINATED
        return None

    def confirm(self) -> None:
        """The UAS sent its 2xx."""
        self.state = DialogState.CONFIRMED

    # -- building requests ------------------------------------------------------------------------

    def next_hop(self) -> Uri:
        """Where an in-dialog request goes: the first route, or the remote target (8.1.2)."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def _uri_and_route(self) -> tuple[Uri, list[NameAddr]]:
        routes = [r.copy() for r in self.route_set]
        if routes and "lr" not in routes[0].uri.params:
            # Strict routing (12.2.1.1): the first route becomes the Request-URI and the remote
            # target goes to the end of the Route set.
            first = routes.pop(0).uri
            routes.append(NameAddr(self.remote_target.copy()))
            return first.copy(), routes
        return self.remote_target.copy(), routes

    def new_request(
        self,
        method: str,
        via: Via,
        *,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> Request:
        """An in-dialog request. CSeq increments except for ACK (``cseq`` = the INVITE's) and CANCEL."""
        if method == "ACK" or method == "CANCEL":
            if cseq is None:
                raise LocalProtocolError(f"{method} needs the CSeq number of its INVITE")
            number = cseq
        else:
            self.local_seq += 1
            number = self.local_seq
        uri, routes = self._uri_and_route()
        return Request(
            method=method,
            uri=uri,
            via=[via],
            from_=self.local.copy(),
            to=self.remote.copy(),
            call_id=self.id.call_id,
            cseq=CSeq(number, method),
            max_forwards=70,
            contact=[self.local_contact.copy()]
            if method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY")
            else [],
            route=routes,
            headers=list(headers or []),
            body=body,
        )

    def ack(
        self, invite_cseq: int, via: Via, *, body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> Request:
        """The ACK for a 2xx to our INVITE (13.2.2.4): same CSeq number, method ACK, new branch."""
        return self.new_request("ACK", via, body=body, headers=headers, cseq=invite_cseq)

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED
