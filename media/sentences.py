"""Sentences composed from prompt fragments, the way PBXs say names, numbers and times (pure).

A fragment is a prompt id (``"act_meeting"``, ``"n14"``; a file under ``prompts/<lang>/``) or a
``Path`` to a recorded WAV (the user's recorded name, a voicemail message). Nothing here touches the
file system or the clock: callers pass in whether a recorded name exists and what time it is.

    >>> activity_sentence("en", name_fragments("1002", None), "meeting",
    ...                   parse_return("2026-11-26T14:30+01:00"), parse_return("2026-11-26T09:00+01:00"))
    ['n1', 'n0', 'n0', 'n2', 'act_meeting', 'back_at', 'n14', 'n30']
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

__all__ = [
    "ACTIVITIES",
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Fragment",
    "activity_sentence",
    "count_sentence",
    "greeting_sentence",
    "name_fragments",
    "normalise_language",
    "number_fragments",
    "parse_return",
    "queue_position_sentence",
    "received_sentence",
    "time_fragments",
]

Fragment = str | Path

ACTIVITIES = ("meeting", "lunch", "away", "gone", "vacation", "sick", "trip")
LANGUAGES = ("sv", "en")
DEFAULT_LANGUAGE = "sv"  # the demo company's language; the B2BUA sends X-Vidare-Language


def normalise_language(value: str | None) -> str:
    """``sv``/``en`` (also ``sv-SE``, ``EN``); anything else falls back to the default."""
    lang = (value or "").strip().lower()[:2]
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def parse_return(value: str | None) -> datetime | None:
    """``X-Vidare-Return``: ISO-8601 with offset (``2026-11-26T14:30+01:00``); bad or naive -> None."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def number_fragments(n: int) -> list[Fragment]:
    """0..59 are single fragments; larger numbers are read digit by digit."""
    if 0 <= n < 60:
        return [f"n{n}"]
    return [f"n{d}" for d in str(abs(n))]


def name_fragments(extension: str | None, recorded_name: Path | None) -> list[Fragment]:
    """The user's recorded name if there is one, else the extension digit by digit."""
    if recorded_name is not None:
        return [recorded_name]
    digits = [c for c in (extension or "") if c.isdigit()]
    if digits:
        return [f"n{d}" for d in digits]
    return ["person_you_called"]


def time_fragments(language: str, hour: int, minute: int) -> list[Fragment]:
    """14:30 -> fourteen thirty; 14:05 -> fourteen oh five (sv: fjorton noll fem);
    14:00 -> fourteen hundred (sv: fjorton)."""
    parts: list[Fragment] = [f"n{hour}"]
    if minute == 0:
        if language == "en":
            parts.append("hundred")
    elif minute < 10:
        parts += ["oh", f"n{minute}"]
    else:
        parts.append(f"n{minute}")
    return parts


def _day_fragments(language: str, when: datetime, now: datetime) -> list[Fragment]:
    """Empty on the same day, the weekday within a week either way, else day and month."""
    days = (when.date() - now.date()).days
    if days == 0:
        return []
    if 0 < abs(days) < 7:
        return [f"day_{when.weekday()}"]
    if language == "en":
        return [f"month_{when.month}", *number_fragments(when.day)]
    return [*number_fragments(when.day), f"month_{when.month}"]


def activity_sentence(
    language: str,
    name: Sequence[Fragment],
    activity: str | None,
    returns_at: datetime | None,
    now: datetime,
) -> list[Fragment]:
    """``<name> is in a meeting [and is back [on Friday] at fourteen thirty]``.

    The return time is said in its own offset (the user's local time); ``now`` is converted to that
    offset to decide whether it is the same day. An unknown activity says "is not available".
    """
    parts: list[Fragment] = list(name)
    parts.append(f"act_{activity}" if activity in ACTIVITIES else "not_available")
    if returns_at is not None and returns_at.tzinfo is not None:
        local_now = now.astimezone(returns_at.tzinfo)
        if returns_at > local_now - timedelta(minutes=1):
            day = _day_fragments(language, returns_at, local_now)
            if day:
                parts += ["back_on", *day, "at"]
            else:
                parts.append("back_at")
            parts += time_fragments(language, returns_at.hour, returns_at.minute)
    return parts


def greeting_sentence(name: Sequence[Fragment], cause: str | None) -> list[Fragment]:
    """The default voicemail greeting: ``<name> is on the phone / is not available. Please leave
    a message after the tone.`` followed by the tone."""
    state = "busy" if cause == "486" else "not_available"
    return [*name, state, "leave_message", "tone"]


def count_sentence(new: int) -> list[Fragment]:
    """``You have N new message(s)``; ``You have no more messages`` for zero."""
    if new == 0:
        return ["no_messages"]
    return ["you_have", *number_fragments(new), "new_message" if new == 1 else "new_messages"]


def received_sentence(language: str, when_local: datetime, now_local: datetime) -> list[Fragment]:
    """``Message received [on Tuesday] at fourteen thirty``, in the listener's local time."""
    day = _day_fragments(language, when_local, now_local)
    return ["message_received", *day, "at", *time_fragments(language, when_local.hour, when_local.minute)]


def queue_position_sentence(position: int) -> list[Fragment]:
    """``You are number N in the queue. Please hold.``"""
    return ["queue_position", *number_fragments(position), "in_queue"]
