"""Forwarding headers and URIs: RFC 4458 (voicemail URIs), RFC 7044 (History-Info), RFC 5806
(Diversion), and the ``X-Vidare-*`` headers the media server reads.

The media server relies on exactly these names and formats:

- Request-URI ``sip:<service>@<media host:port>;target=<%-escaped user AOR>;cause=<code>`` where
  service is ``voicemail``, ``announcement``, ``announcement_voicemail`` or ``queue`` and the
  cause is 486 (busy), 408 (no answer) or 302 (unconditional: activity, off hours);
- ``X-Vidare-Activity`` (activity kind), ``X-Vidare-Return`` (ISO-8601, when known),
  ``X-Vidare-Name``, ``X-Vidare-Extension``, ``X-Vidare-Language``, ``X-Vidare-Play-Activity: yes|no``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from sipcore.message import Uri

__all__ = ["DIVERSION_REASONS", "diversion", "history_info", "media_uri", "vidare_headers"]

# RFC 5806 reason values for the RFC 4458 cause codes.
DIVERSION_REASONS = {
    486: "user-busy",
    408: "no-answer",
    302: "unconditional",
    480: "unavailable",
    503: "unavailable",
}


def media_uri(service: str, media_host: str, media_port: int, user_aor: str, cause: int) -> Uri:
    # RFC 4458 section 3.2 escapes the target's '@' and ':' inside the URI parameter.
    return Uri(
        user=service,
        host=media_host,
        port=media_port,
        params={"target": quote(user_aor, safe=""), "cause": str(cause)},
    )


def history_info(chain: Sequence[tuple[str, int]], retarget: Uri) -> str:
    """RFC 7044: every target the call was sent to, in order, each with the Reason that made us
    retarget it (index 1, 1.1, 1.1.1, ...; ``mp`` names the entry it was retargeted from), and
    the new target last. ``chain`` holds (diverting address, cause) from the first diversion."""
    parts: list[str] = []
    index = parent = "1"
    for addr, cause in chain:
        reason = quote(f"SIP;cause={cause}", safe="")
        parts.append(f"<{addr}?Reason={reason}>;index={index}" + (f";mp={parent}" if parts else ""))
        parent, index = index, index + ".1"
    parts.append(f"<{retarget}>;index={index};mp={parent}")
    return ", ".join(parts)


def diversion(chain: Sequence[tuple[str, int]]) -> str:
    """RFC 5806: one entry per diversion, the most recent first."""
    return ", ".join(
        f"<{addr}>;reason={DIVERSION_REASONS.get(cause, 'unknown')};counter=1"
        for addr, cause in reversed(chain)
    )


def vidare_headers(
    *,
    name: str,
    extension: str,
    language: str,
    activity: str | None,
    until: datetime | None,
    play_activity: bool,
) -> list[tuple[str, str]]:
    out = [
        ("X-Vidare-Name", name),
        ("X-Vidare-Extension", extension),
        ("X-Vidare-Language", language),
        ("X-Vidare-Play-Activity", "yes" if play_activity else "no"),
    ]
    if activity is not None:
        out.append(("X-Vidare-Activity", activity))
    if until is not None:
        out.append(("X-Vidare-Return", until.isoformat()))
    return out
