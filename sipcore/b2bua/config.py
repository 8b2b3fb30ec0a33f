"""The B2BUA's settings: plain frozen data built by the glue from config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

from sipcore.transaction.timers import DEFAULT_TIMERS, TimerConfig

__all__ = ["B2buaConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class B2buaConfig:
    local_host: str  # our address in Via and Contact
    local_port: int
    domain: str  # SIP domain: user AORs are sip:<username>@<domain>
    pstn: tuple[str, int]
    mobile: tuple[str, int]
    media: tuple[str, int]
    max_ring_seconds: float = 120.0
    max_diversions: int = 5
    region: str = "SE"
    timers: TimerConfig = field(default=DEFAULT_TIMERS)
    # True when the transaction layer answers a CANCEL with 200 itself (RFC 3261 9.2).
    layer_answers_cancel: bool = True
    # Voicemail access: the number anyone may call (E.164 or as dialled) and the code a
    # user's own softphone dials (the media server then skips the PIN: X-Vidare-User).
    voicemail_number: str | None = None
    voicemail_access_code: str = "*98"
    # Message waiting (RFC 3842): also NOTIFY registered contacts out of dialog.
    unsolicited_mwi: bool = False
    subscribe_min_expires: int = 60
    subscribe_max_expires: int = 3600
    # OPTIONS keepalive to the media server while media calls are up (0: off); this many
    # unanswered probes in a row mean it is gone.
    media_keepalive: float = 5.0
    media_keepalive_misses: int = 2
    # Personal queue hand-over: how long the user's devices ring with the queued caller.
    queue_ring_seconds: float = 30.0
    # The media server's media.queue_max_wait: a caller queued longer is in voicemail (0: no limit).
    queue_max_wait: float = 0.0
