"""media.sentences: which fragments a sentence is made of (pure, table-driven)."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from media import sentences
from media.sentences import Fragment
from prompts import LANGUAGES, PROMPTS_DIR, prompt_path
from prompts.generate import load_texts

CET = timezone(timedelta(hours=1))
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=CET)  # a Thursday
NAME = Path("/var/voicemail/bob/name.wav")

ACTIVITY_CASES = [
    # (id, language, extension, recorded name, activity, return, expected)
    ("en-meeting-1430", "en", "1002", None, "meeting", "2026-11-26T14:30+01:00",
     ["n1", "n0", "n0", "n2", "act_meeting", "back_at", "n14", "n30"]),
    ("sv-meeting-1430", "sv", "1002", None, "meeting", "2026-11-26T14:30+01:00",
     ["n1", "n0", "n0", "n2", "act_meeting", "back_at", "n14", "n30"]),
    ("recorded-name", "sv", "1002", NAME, "lunch", "2026-11-26T13:00+01:00",
     [NAME, "act_lunch", "back_at", "n13"]),
    ("en-on-the-hour", "en", "1002", None, "lunch", "2026-11-26T13:00+01:00",
     ["n1", "n0", "n0", "n2", "act_lunch", "back_at", "n13", "hundred"]),
    ("en-oh-five", "en", "1003", None, "away", "2026-11-26T10:05+01:00",
     ["n1", "n0", "n0", "n3", "act_away", "back_at", "n10", "oh", "n5"]),
    ("sv-noll-fem", "sv", "1003", None, "away", "2026-11-26T10:05+01:00",
     ["n1", "n0", "n0", "n3", "act_away", "back_at", "n10", "oh", "n5"]),
    ("tomorrow-weekday", "en", "1002", None, "gone", "2026-11-27T08:00+01:00",
     ["n1", "n0", "n0", "n2", "act_gone", "back_on", "day_4", "at", "n8", "hundred"]),
    ("sv-far-date", "sv", "1002", None, "vacation", "2026-12-14T08:15+01:00",
     ["n1", "n0", "n0", "n2", "act_vacation", "back_on", "n14", "month_12", "at", "n8", "n15"]),
    ("en-far-date", "en", "1002", None, "vacation", "2026-12-14T08:15+01:00",
     ["n1", "n0", "n0", "n2", "act_vacation", "back_on", "month_12", "n14", "at", "n8", "n15"]),
    ("no-return", "en", "1002", None, "sick", None, ["n1", "n0", "n0", "n2", "act_sick"]),
    ("return-passed", "en", "1002", None, "meeting", "2026-11-26T08:00+01:00",
     ["n1", "n0", "n0", "n2", "act_meeting"]),
    ("other-offset", "en", "1002", None, "trip", "2026-11-26T14:30+00:00",
     ["n1", "n0", "n0", "n2", "act_trip", "back_at", "n14", "n30"]),
    ("unknown-activity", "en", "1002", None, "bowling", None, ["n1", "n0", "n0", "n2", "not_available"]),
    ("no-extension", "en", None, None, "meeting", None, ["person_you_called", "act_meeting"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("language", "extension", "recorded", "activity", "returns", "expected"),
    [c[1:] for c in ACTIVITY_CASES],
    ids=[c[0] for c in ACTIVITY_CASES],
)
def test_activity_sentence(
    language: str,
    extension: str | None,
    recorded: Path | None,
    activity: str,
    returns: str | None,
    expected: list[Fragment],
) -> None:
    name = sentences.name_fragments(extension, recorded)
    got = sentences.activity_sentence(language, name, activity, sentences.parse_return(returns), NOW)
    assert got == expected


OTHER_CASES = [
    ("greeting-busy", sentences.greeting_sentence(["n1"], "486"), ["n1", "busy", "leave_message", "tone"]),
    ("greeting-no-answer", sentences.greeting_sentence(["n1"], "408"),
     ["n1", "not_available", "leave_message", "tone"]),
    ("one-new", sentences.count_sentence(1), ["you_have", "n1", "new_message"]),
    ("three-new", sentences.count_sentence(3), ["you_have", "n3", "new_messages"]),
    ("none-new", sentences.count_sentence(0), ["no_messages"]),
    ("many-new", sentences.count_sentence(120), ["you_have", "n1", "n2", "n0", "new_messages"]),
    ("queue-2", sentences.queue_position_sentence(2), ["queue_position", "n2", "in_queue"]),
    ("received-today", sentences.received_sentence("en", NOW.replace(hour=8, minute=45), NOW),
     ["message_received", "at", "n8", "n45"]),
    ("received-monday", sentences.received_sentence("sv", NOW - timedelta(days=3), NOW),
     ["message_received", "day_0", "at", "n9"]),
]  # fmt: skip


@pytest.mark.parametrize(("got", "expected"), [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_other_sentences(got: list[Fragment], expected: list[Fragment]) -> None:
    assert got == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("sv", "sv"), ("EN", "en"), ("en-GB", "en"), ("de", "sv"), (None, "sv"), ("", "sv")],
    ids=["sv", "upper", "region", "unknown", "none", "empty"],
)
def test_normalise_language(value: str | None, expected: str) -> None:
    assert sentences.normalise_language(value) == expected


@pytest.mark.parametrize(
    "value", ["", "14:30", "2026-11-26T14:30", "tomorrow"], ids=["empty", "time-only", "naive", "words"]
)
def test_parse_return_refuses_what_it_cannot_place(value: str) -> None:
    assert sentences.parse_return(value) is None


def _all_fragments(language: str) -> set[str]:
    """Every prompt id any sentence can use in ``language``."""
    used: set[str] = set()
    for activity in (*sentences.ACTIVITIES, None):
        for hours in range(0, 24 * 20, 7):
            back = NOW + timedelta(hours=hours, minutes=hours % 60)
            for ext in ("1234567890", None):
                name = sentences.name_fragments(ext, None)
                used.update(str(f) for f in sentences.activity_sentence(language, name, activity, back, NOW))
            used.update(str(f) for f in sentences.received_sentence(language, back, NOW))
            used.update(str(f) for f in sentences.received_sentence(language, NOW, back))
    for n in range(0, 61):
        used.update(str(f) for f in sentences.count_sentence(n))
        used.update(str(f) for f in sentences.queue_position_sentence(n))
    for cause in ("486", "408", "302"):
        used.update(str(f) for f in sentences.greeting_sentence([], cause))
    from media import calls  # the fixed prompts the services play

    source = Path(calls.__file__).read_text()
    for fragment in load_texts()[language]:
        if f'"{fragment}"' in source:
            used.add(fragment)
    return used


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_fragment_a_sentence_can_use_exists_as_8khz_mono_16bit(language: str) -> None:
    import wave

    texts = load_texts()[language]
    for fragment in sorted(_all_fragments(language)):
        path = prompt_path(language, fragment)
        assert path.exists(), f"{language}/{fragment}.wav missing"
        assert fragment in texts or path.parent.name == "common", fragment
        with wave.open(str(path), "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), path
            assert w.getnframes() > 800, f"{path} is shorter than 0.1 s"


def test_committed_prompts_match_the_text_list_and_stay_small() -> None:
    with (PROMPTS_DIR / "texts.toml").open("rb") as f:
        raw = tomllib.load(f)
    for language in LANGUAGES:
        on_disk = {p.stem for p in (PROMPTS_DIR / language).glob("*.wav")}
        assert on_disk == set(load_texts()[language]), language
        assert set(raw[language]) <= on_disk
    total = sum(p.stat().st_size for p in PROMPTS_DIR.rglob("*.wav"))
    assert total < 5_000_000
