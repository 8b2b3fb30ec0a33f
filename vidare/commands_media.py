"""``vidare media``: the media server alone (``vidare serve`` spawns it unless media.spawn = false)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vidare.config import Config

__all__ = ["add_commands"]


def _media(args: argparse.Namespace, config: Config) -> int:
    from media.run import run_media

    return run_media(config)


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("media", help="run the media server (announcements, voicemail, queue) alone")
    common(p)
    p.set_defaults(handler=_media)
