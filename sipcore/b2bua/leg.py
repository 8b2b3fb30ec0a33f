"""One outbound leg (B side) of a call: a UAC INVITE toward a device, a trunk or the media server."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from sipcore.dialog import Dialog
from sipcore.message import Request, Uri
from sipcore.transaction.events import Destination

__all__ = ["CallState", "Leg", "LegKind", "LegState", "dest_of", "dest_of_dialog"]


class LegKind(enum.StrEnum):
    SOFTPHONE = "softphone"
    MOBILE = "mobile"
    PSTN = "pstn"
    MEDIA = "media"


class CallState(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


class LegState(enum.Enum):
    CALLING = "calling"  # INVITE sent, nothing back yet
    EARLY = "early"  # a provisional arrived: CANCEL is now allowed (RFC 3261 9.1)
    ANSWERED = "answered"  # this leg's 2xx won
    CANCELLING = "cancelling"  # CANCEL sent (or owed once a provisional arrives)
    FAILED = "failed"  # a final non-2xx
    ENDED = "ended"  # BYE sent or received, or a late 2xx torn down


@dataclass(slots=True)
class Leg:
    ref: str
    kind: LegKind
    invite: Request
    dest: Destination
    user: str | None = None  # whose device this leg rings (busy accounting)
    state: LegState = LegState.CALLING
    status: int | None = None  # final status
    dialog: Dialog | None = None
    ack: Request | None = None  # our ACK for its 2xx, re-sent on a retransmitted 2xx
    cancel_reason: str | None = None  # Reason for a CANCEL owed until the first provisional
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """Still ringing: no final response yet and not being cancelled."""
        return self.state in (LegState.CALLING, LegState.EARLY)


def dest_of(uri: Uri, fallback: Destination | None = None) -> Destination:
    """Where to send a request for ``uri`` (numeric hosts only: no DNS on the call path)."""
    transport = (uri.transport or (fallback.transport if fallback else "udp")).upper()
    if fallback is not None and uri.host_bare == fallback.host and uri.port in (None, fallback.port):
        return fallback
    return Destination(uri.host_bare, uri.port or 5060, transport)


def dest_of_dialog(leg: Leg) -> Destination:
    assert leg.dialog is not None
    hop = leg.dialog.next_hop()
    # Trunks and the media server are reached at their configured address, whatever Contact says.
    if leg.kind is not LegKind.SOFTPHONE:
        return leg.dest
    return dest_of(hop, leg.dest)
