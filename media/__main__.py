"""``python -m media [--config PATH] [--data-dir DIR] [--set section.key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from media.run import run_media
from vidare.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m media", description="Vidare media server")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides, args.data_dir)
    except ConfigError as e:
        print(f"vidare media: {e}", file=sys.stderr)
        return 2
    return run_media(config)


if __name__ == "__main__":
    sys.exit(main())
