"""Regenerate every prompt WAV from ``prompts/texts.toml`` (``make prompts``).

Each fragment is spoken by Debian's ``espeak-ng`` and converted by ``sox`` to 8 kHz mono 16-bit
PCM with the leading and trailing silence trimmed, so fragments concatenate into natural sentences.
The tone and the hold music are synthesised by sox. Usage: ``python -m prompts.generate [--only sv]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from prompts import LANGUAGES, PROMPTS_DIR

_SOX_OUT = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]
# trim silence at both ends (sox idiom), normalise to -3 dBFS
_TRIM = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
_TRIM += ["gain", "-n", "-3"]


def load_texts() -> dict[str, dict[str, str]]:
    """Fragment id -> text, per language, including the generated numbers n0..n59."""
    with (PROMPTS_DIR / "texts.toml").open("rb") as f:
        raw = tomllib.load(f)
    count = int(raw["numbers"]["count"])
    texts: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        table = {f"n{i}": str(i) for i in range(count)}
        table.update({k: str(v) for k, v in raw[lang].items()})
        texts[lang] = table
    return texts


def voices() -> dict[str, str]:
    with (PROMPTS_DIR / "texts.toml").open("rb") as f:
        return {k: str(v) for k, v in tomllib.load(f)["voice"].items()}


def _speak(voice: str, text: str, out: Path, tmp: Path) -> None:
    raw = tmp / "raw.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "175", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), *_SOX_OUT, str(out), *_TRIM], check=True)


def _common(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    # the beep before recording: 0.4 s of 1 kHz
    subprocess.run(
        ["sox", "-n", *_SOX_OUT, str(out_dir / "tone.wav"), "synth", "0.4", "sine", "1000", "gain", "-6"],
        check=True,
    )
    # 8 s of gentle hold music: four chords of three sines, with fades
    chords = [("C4", "E4", "G4"), ("A3", "C4", "E4"), ("F3", "A3", "C4"), ("G3", "B3", "D4")]
    with tempfile.TemporaryDirectory() as d:
        parts = []
        for i, chord in enumerate(chords):
            part = Path(d) / f"c{i}.wav"
            synth = ["synth", "2"] + [x for note in chord for x in ("sine", f"%{_semitones(note)}")]
            subprocess.run(
                ["sox", "-n", *_SOX_OUT, str(part), *synth, "fade", "q", "0.1", "2", "0.3", "gain", "-12"],
                check=True,
            )
            parts.append(str(part))
        subprocess.run(["sox", *parts, *_SOX_OUT, str(out_dir / "music.wav")], check=True)


def _semitones(note: str) -> int:
    """Semitones from A4 (sox's %n notation)."""
    names = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}
    return names[note[0]] + 12 * (int(note[1]) - 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prompts.generate", description=__doc__)
    ap.add_argument("--only", choices=LANGUAGES, help="regenerate one language")
    args = ap.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"prompts.generate: {tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 2
    texts, voice = load_texts(), voices()
    with tempfile.TemporaryDirectory() as d:
        for lang in [args.only] if args.only else LANGUAGES:
            out_dir = PROMPTS_DIR / lang
            out_dir.mkdir(exist_ok=True)
            for old in out_dir.glob("*.wav"):
                if old.stem not in texts[lang]:
                    old.unlink()
            for fragment, text in texts[lang].items():
                _speak(voice[lang], text, out_dir / f"{fragment}.wav", Path(d))
            print(f"prompts/{lang}: {len(texts[lang])} fragments")
    _common(PROMPTS_DIR / "common")
    print("prompts/common: tone, music")
    return 0


if __name__ == "__main__":
    sys.exit(main())
