"""Vidare's WAV prompts: ``prompts/<lang>/<id>.wav`` (8 kHz mono 16-bit), addressed by id."""

from __future__ import annotations

from pathlib import Path

__all__ = ["LANGUAGES", "PROMPTS_DIR", "prompt_path"]

PROMPTS_DIR = Path(__file__).resolve().parent
LANGUAGES = ("sv", "en")


def prompt_path(language: str, fragment: str) -> Path:
    """The WAV of one fragment; ``common/`` holds the language-free ones (tone, music)."""
    common = PROMPTS_DIR / "common" / f"{fragment}.wav"
    if common.exists():
        return common
    return PROMPTS_DIR / language / f"{fragment}.wav"
