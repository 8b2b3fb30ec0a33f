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
