"""``vidare serve``: the SIP server (and, when present, the admin web) on uvloop."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from vidare.config import Config

__all__ = ["add_commands"]


def _serve(args: argparse.Namespace, config: Config) -> int:
    from vidare.serve import run

    return run(config)


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("serve", help="run the SIP server, the admin web and the media server")
    common(p)
    p.set_defaults(handler=_serve)
