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


def history_info(original: str, retarget: Uri, cause: int, count: int = 1) -> str:
    """RFC 7044: the original target (with the Reason that made us retarget) and the new one."""
    reason = quote(f"SIP;cause={cause}", safe="")
    index = "1" + ".1" * count
    return f"<{original}?Reason={reason}>;index=1, <{retarget}>;index={index};mp=1"


def diversion(diverting: str, cause: int, counter: int) -> str:
    reason = DIVERSION_REASONS.get(cause, "unknown")
    return f"<{diverting}>;reason={reason};counter={counter}"


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
