"""The dialog identifier (RFC 3261 12): Call-ID plus local and remote tag, seen from our side."""

from __future__ import annotations

from dataclasses import dataclass

from sipcore.message import Request, Response

__all__ = ["DialogId"]


@dataclass(frozen=True, slots=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str

    @classmethod
    def of_incoming_request(cls, req: Request) -> DialogId:
        """For a request we receive, our tag is in To and the peer's in From (12.2.2)."""
        return cls(req.call_id, req.to.tag or "", req.from_.tag or "")

    @classmethod
    def of_response(cls, resp: Response) -> DialogId:
        """For a response to a request we sent, our tag is in From and the peer's in To (12.1.2)."""
        return cls(resp.call_id, resp.from_.tag or "", resp.to.tag or "")
