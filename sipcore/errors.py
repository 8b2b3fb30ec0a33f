"""Protocol errors, h11 style: who is at fault decides what the caller does with it."""

from __future__ import annotations

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ProtocolError(Exception):
    """Abstract base: never raised itself."""

    def __init__(self, message: str) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise LocalProtocolError or RemoteProtocolError")
        super().__init__(message)


class LocalProtocolError(ProtocolError):
    """Our own code asked for something illegal: a bug, never the peer's fault."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed; answer ``status_hint`` (requests) or drop (responses).

    ``is_request`` is ``True`` for a request, ``False`` for a response (drop it), ``None`` when
    not even the start line could tell. ``raw_headers`` holds the (canonical name, raw value)
    header lines that could be split, so a stateless 4xx/505 can copy Via/From/To/Call-ID/CSeq.
    """

    def __init__(
        self,
        message: str,
        status_hint: int = 400,
        *,
        is_request: bool | None = None,
        raw_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.is_request = is_request
        self.raw_headers: list[tuple[str, str]] = raw_headers if raw_headers is not None else []
