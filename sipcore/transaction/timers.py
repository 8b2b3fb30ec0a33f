"""RFC 3261 section 17 timer values (table 4), with the RFC 6026 Timers L and M.

Everything derives from three base values held in a frozen ``TimerConfig`` that is passed to each
transaction at construction: there are no module-level timer globals to patch (sipgo's
``SetTimers`` is the example to avoid). Durations are seconds. Where the RFC says a timer is
zero on a reliable transport, the ``*_for`` methods take ``reliable`` and return 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMERS", "TRYING_DELAY", "TimerConfig"]


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1 (RTT estimate), T2 (max non-INVITE retransmit interval), T4 (max network lifetime)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 <= 0:
            raise ValueError(f"bad timer base values {self!r}: need 0 < t1 <= t2 and t4 > 0")

    # -- client INVITE (figure 5) ---------------------------------------------------------------
    @property
    def timer_a(self) -> float:
        """Initial INVITE retransmit interval (UDP only); doubles each time."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """Wait for response retransmissions in Completed (UDP; 0 for reliable)."""
        return max(32.0, 64 * self.t1)

    # -- client non-INVITE (figure 6) -----------------------------------------------------------
    @property
    def timer_e(self) -> float:
        """Initial non-INVITE retransmit interval (UDP only); doubles up to T2."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_k(self) -> float:
        """Wait for response retransmissions (UDP; 0 for reliable)."""
        return self.t4

    # -- server INVITE (figure 7) ---------------------------------------------------------------
    @property
    def timer_g(self) -> float:
        """Initial final-response retransmit interval (UDP only); doubles up to T2."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for ACK receipt."""
        return 64 * self.t1

    @property
    def timer_i(self) -> float:
        """Wait time for ACK retransmissions (UDP; 0 for reliable)."""
        return self.t4

    # -- server non-INVITE (figure 8) -----------------------------------------------------------
    @property
    def timer_j(self) -> float:
        """Wait time for request retransmissions (UDP: 64*T1; 0 for reliable)."""
        return 64 * self.t1

    # -- RFC 6026 Accepted states ---------------------------------------------------------------
    @property
    def timer_l(self) -> float:
        """Server INVITE Accepted: absorb INVITE retransmissions, pass ACKs up."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """Client INVITE Accepted: pass further 2xx (forked or retransmitted) up."""
        return 64 * self.t1

    # -- transport-dependent values -------------------------------------------------------------
    def timer_d_for(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_d

    def timer_i_for(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_i

    def timer_j_for(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_j

    def timer_k_for(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_k

    def next_interval(self, current: float) -> float:
        """Timer E/G backoff: double, capped at T2 (RFC 3261 17.1.2.2, 17.2.1)."""
        return min(2 * current, self.t2)


DEFAULT_TIMERS = TimerConfig()

# RFC 3261 17.2.1: a server INVITE transaction sends 100 Trying itself unless the TU answers
# within 200 ms. A constant, not configuration: it is not derived from T1.
TRYING_DELAY = 0.2
