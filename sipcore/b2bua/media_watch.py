"""Is the media server alive? An OPTIONS keepalive, sans-IO.

While at least one answered call has its winning leg at the media server, the manager probes the
media address with an out-of-dialog OPTIONS every ``media_keepalive`` seconds. Any response
means alive. ``media_keepalive_misses`` probes in a row without an answer (UDP to a dead process
is silent), or a transport error or timeout delivered for a probe (synthesized 503/408), means the
media server is gone: the manager ends the calls whose legs point at it (BYE to the caller, CDR
with the cause) and logs ``media.unreachable``. ``vidare serve`` restarts the process meanwhile.

Probing stops when no media call is up, so an idle system sends nothing. Timer key ``MEDIA_KEY``,
name ``probe``; transaction owners ``(MEDIA_KEY, "o<n>")``.
"""

from __future__ import annotations

from sipcore.builders import new_branch, new_call_id, new_tag
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.transaction.events import Destination

from .config import B2buaConfig
from .events import B2buaAction, SendRequest, SetTimer

__all__ = ["MEDIA_KEY", "MediaWatch"]

MEDIA_KEY = "media"


class MediaWatch:
    __slots__ = ("_seq", "config", "misses", "outstanding", "running")

    def __init__(self, config: B2buaConfig) -> None:
        self.config = config
        self.running = False
        self.outstanding: str | None = None  # the probe awaiting an answer
        self.misses = 0
        self._seq = 0

    def start(self, now: float) -> list[B2buaAction]:
        """A media call was answered: probe from now on (if not already)."""
        if self.running or self.config.media_keepalive <= 0:
            return []
        self.running = True
        self.outstanding, self.misses = None, 0
        return [SetTimer(MEDIA_KEY, "probe", now + self.config.media_keepalive)]

    def stop(self) -> None:
        self.running = False
        self.outstanding, self.misses = None, 0

    def on_timer(self, now: float, media_calls: int) -> tuple[list[B2buaAction], bool]:
        """(actions, unreachable). ``media_calls``: answered calls at the media server now."""
        if not self.running:
            return [], False
        if media_calls == 0:
            self.stop()
            return [], False
        if self.outstanding is not None:
            self.misses += 1
            if self.misses >= self.config.media_keepalive_misses:
                self.stop()
                return [], True
        return [self._probe(), SetTimer(MEDIA_KEY, "probe", now + self.config.media_keepalive)], False

    def on_response(self, ref: str, resp: Response) -> bool:
        """True when this response says the media server is gone."""
        if resp.status < 200 or ref != self.outstanding:
            return False
        self.outstanding = None
        if resp.status in (408, 503) and self.running:
            # Our transaction layer's timeout or a transport error (ICMP unreachable).
            self.stop()
            return True
        self.misses = 0
        return False

    def _probe(self) -> SendRequest:
        cfg = self.config
        host, port = cfg.media
        dest = Destination(host, port)
        self._seq += 1
        ref = f"o{self._seq}"
        self.outstanding = ref
        req = Request(
            method="OPTIONS",
            uri=Uri(host=host, port=port),
            via=[Via("UDP", cfg.local_host, cfg.local_port, {"branch": new_branch(), "rport": None})],
            from_=NameAddr(Uri(user="vidare", host=cfg.domain), params={"tag": new_tag()}),
            to=NameAddr(Uri(host=host, port=port)),
            call_id=new_call_id(cfg.local_host),
            cseq=CSeq(self._seq, "OPTIONS"),
            max_forwards=70,
        )
        return SendRequest(req, dest, (MEDIA_KEY, ref))
