"""WAV helpers (stdlib ``wave``): concatenate fragments into one file, measure duration and RMS."""

from __future__ import annotations

import math
import sys
import wave
from array import array
from collections.abc import Sequence
from pathlib import Path

import structlog

__all__ = ["SILENCE_RMS", "concat_wavs", "wav_duration", "wav_stats"]

log = structlog.get_logger("media.audio")

# 16-bit RMS below this (about -50 dBFS) counts as silence: a line with nobody speaking.
SILENCE_RMS = 100.0


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def wav_stats(path: Path) -> tuple[float, float]:
    """(duration in seconds, RMS of the 16-bit samples)."""
    with wave.open(str(path), "rb") as w:
        rate, width, frames = w.getframerate(), w.getsampwidth(), w.getnframes()
        data = w.readframes(frames)
    if width != 2 or not data:
        return frames / float(rate or 1), 0.0
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
    return frames / float(rate), rms


def concat_wavs(paths: Sequence[Path], out: Path) -> float:
    """Write the fragments one after the other into ``out``; returns its duration in seconds.

    Every fragment must have the first one's format (prompts and recordings are all 8 kHz mono
    16-bit); a fragment in another format is skipped and logged rather than played as noise.
    """
    params: tuple[int, int, int] | None = None
    frames_total = 0
    with wave.open(str(out), "wb") as dst:
        for path in paths:
            try:
                src = wave.open(str(path), "rb")
            except (OSError, wave.Error, EOFError) as e:
                log.warning("prompt.unreadable", path=str(path), error=str(e))
                continue
            with src:
                these = (src.getnchannels(), src.getsampwidth(), src.getframerate())
                if params is None:
                    params = these
                    dst.setnchannels(these[0])
                    dst.setsampwidth(these[1])
                    dst.setframerate(these[2])
                elif these != params:
                    log.warning("prompt.format_mismatch", path=str(path), got=these, expected=params)
                    continue
                n = src.getnframes()
                dst.writeframes(src.readframes(n))
                frames_total += n
        if params is None:
            dst.setnchannels(1)
            dst.setsampwidth(2)
            dst.setframerate(8000)
            params = (1, 2, 8000)
    return frames_total / float(params[2])
