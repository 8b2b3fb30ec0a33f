"""What a call to the media server is for: parsed from the INVITE the B2BUA sends (pure).

Request-URI (RFC 4458): ``sip:<service>@<media>;target=<%-escaped user AOR>;cause=<486|408|302>``;
headers ``History-Info`` (RFC 7044), ``X-Vidare-Activity``, ``X-Vidare-Return``, ``X-Vidare-Name``,
``X-Vidare-Extension``, ``X-Vidare-Language``, ``X-Vidare-Play-Activity``, ``X-Vidare-User``.
The contract is written down in media/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["SERVICES", "CallRequest", "parse_invite", "parse_sip_uri_user"]

SERVICES = ("voicemail", "announcement", "announcement_voicemail", "queue", "voicemail-access")

_COMPACT = {"f": "from", "t": "to", "i": "call-id", "m": "contact"}
_URI_RE = re.compile(r"<([^>]*)>")


@dataclass(frozen=True, slots=True)
class CallRequest:
    service: str
    target: str | None  # the diverting user's AOR, e.g. sip:bob@demo.test
    username: str | None  # bob
    domain: str | None  # demo.test
    cause: str | None  # 486 | 408 | 302
    caller: str  # the From URI
    call_id: str
    activity: str | None = None
    returns: str | None = None  # X-Vidare-Return as sent (ISO-8601)
    name: str | None = None
    extension: str | None = None
    language: str | None = None
    play_activity: bool = False
    vidare_user: str | None = None  # set by the B2BUA for an authenticated *98 caller


def parse_sip_uri_user(uri: str) -> tuple[str | None, str | None]:
    """``sip:bob@demo.test;x=y`` -> (``bob``, ``demo.test``)."""
    uri = uri.strip().strip("<>")
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        return None, None
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    user, at, host = rest.rpartition("@")
    if not at:
        return None, host or None
    return unquote(user) or None, host or None


def _headers(text: str) -> tuple[str, dict[str, list[str]]]:
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last is not None:  # folded continuation
            headers[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return lines[0], headers


def _uri_params(uri: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in uri.split("?", 1)[0].split(";")[1:]:
        k, _, v = part.partition("=")
        params[k.strip().lower()] = unquote(v.strip())
    return params


def _history_target(values: list[str]) -> str | None:
    """The first History-Info entry (the user the call was diverted from)."""
    for value in values:
        m = _URI_RE.search(value)
        if m:
            return m.group(1).split("?", 1)[0].split(";", 1)[0]
    return None


def parse_invite(text: str) -> CallRequest | None:
    """The request behind an INVITE, or None when its Request-URI names no service of ours."""
    request_line, headers = _headers(text)
    parts = request_line.split()
    if len(parts) < 3 or parts[0] != "INVITE":
        return None
    ruri = parts[1]
    service, _ = parse_sip_uri_user(ruri)
    if service not in SERVICES:
        return None
    params = _uri_params(ruri)

    def one(name: str) -> str | None:
        values = headers.get(name.lower())
        return values[0].strip() if values and values[0].strip() else None

    target = params.get("target") or _history_target(headers.get("history-info", []))
    username, domain = parse_sip_uri_user(target) if target else (None, None)
    from_value = one("from") or ""
    m = _URI_RE.search(from_value)
    caller = m.group(1) if m else from_value.split(";", 1)[0].strip()
    activity = (one("X-Vidare-Activity") or "").lower() or None
    return CallRequest(
        service=service,
        target=target,
        username=username,
        domain=domain,
        cause=params.get("cause"),
        caller=caller,
        call_id=one("call-id") or "",
        activity=activity,
        returns=one("X-Vidare-Return"),
        name=one("X-Vidare-Name"),
        extension=one("X-Vidare-Extension"),
        language=one("X-Vidare-Language"),
        play_activity=(one("X-Vidare-Play-Activity") or "").lower() in ("yes", "true", "1", "on"),
        vidare_user=one("X-Vidare-User"),
    )
