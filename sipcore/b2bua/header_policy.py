"""Which headers cross from one leg to the other: an explicit allowlist.

A B2BUA is two user agents back to back: everything that is not listed here stays on the leg it
arrived on (Via, Route, Record-Route, Contact, Call-ID, tags, CSeq, Supported/Require, auth
headers, ...). Identity headers cross only from a trusted source (a trunk), because anything a
softphone or an unknown peer asserts about identity is not believed (RFC 3325 section 5).
"""

from __future__ import annotations

from sipcore.message import Message

__all__ = ["ALWAYS", "TRUSTED_ONLY", "copy_headers"]

# Session description and the harmless call-presentation headers.
ALWAYS = frozenset(
    {
        "content-type",
        "content-disposition",
        "content-language",
        "accept",
        "allow",
        "subject",
        "priority",
        "alert-info",
        "call-info",
        "reason",
    }
)

# Identity: believed only from a trusted trunk; Vidare sets its own toward the far end otherwise.
TRUSTED_ONLY = frozenset({"p-asserted-identity", "privacy", "history-info", "diversion"})


def copy_headers(
    src: Message, *, trusted: bool, exclude: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``src`` allowed onto the other leg, in arrival order."""
    out: list[tuple[str, str]] = []
    for name, value in src.headers:
        lname = name.lower()
        if lname in exclude:
            continue
        if lname in ALWAYS or (trusted and lname in TRUSTED_ONLY):
            out.append((name, value))
    return out
